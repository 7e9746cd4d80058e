"""Background polling: one asyncio task per account, with backoff and Retry-After.

A poll fetches the account's recent window (on the first poll the month and the
7 days before it), merges it into the account's ledger and publishes a new snapshot.
Datasets fail on their own: the ones read are published, a failed one keeps its last good
data and is reported (``aicost_dataset_up``). A poll in which nothing could be read publishes
only its status and backs off.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import replace

from exporter.config.secrets import REDACTED
from exporter.core.budgets import AccountSpend, limit_forecasts
from exporter.core.ledger import DEFAULT_MAX_LABEL_SETS, Ledger, history_start, month_start
from exporter.core.pricing import Pricer
from exporter.core.records import Batch, Dataset, Dims, Family, FetchResult, SeriesKey, day_start
from exporter.core.snapshot import (
    AccountData,
    AccountStatus,
    DatasetStatus,
    SnapshotStore,
    build_account_data,
)
from exporter.sources.providers.base import (
    ACCOUNT_WIDE,
    DEFAULT_EXPECTED_LAG,
    REASONS,
    Provider,
    ProviderError,
    RequestObserver,
)
from exporter.web.metrics import DURATION_BUCKETS

log = logging.getLogger(__name__)

ERROR_REASONS = (*REASONS, "internal")
MAX_BACKOFF = 3600.0
BACKOFF_INTERVALS = 8
"""Consecutive failures double the delay up to this many poll intervals (and MAX_BACKOFF), so
an outage is not hammered, yet recovery is noticed within a bounded time."""


def reconciliation(spend: AccountSpend, settled_before: int) -> float | None:
    """Estimated ÷ billed over the settled days of ``spend`` (the month so far and the 7 days
    before it); None unless both are positive (no NaN, and no meaningless 0 for a provider
    whose usage cannot be priced)."""

    def settled(daily: Mapping[int, Mapping[Dims, float]]) -> float:
        return sum(sum(daily[day].values()) for day in daily if day < settled_before)

    billed, estimated = settled(spend.billed), settled(spend.estimated)
    return estimated / billed if billed > 0 and estimated > 0 else None


class AccountPoller:
    """Polls one account on its interval and publishes the results."""

    def __init__(
        self,
        *,
        account: str,
        provider_factory: Callable[[RequestObserver], Provider],
        store: SnapshotStore,
        poll_interval: float,
        settle_window: float,
        pricer: Pricer | None = None,
        on_publish: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        max_label_sets: int = DEFAULT_MAX_LABEL_SETS,
    ) -> None:
        self.account = account
        self.pricer = pricer
        self._on_publish = on_publish
        self.provider = provider_factory(self.observe_request)
        self.poll_interval = poll_interval
        self.settle_window = settle_window
        self.ledger = Ledger(max_label_sets)
        self._store = store
        self._clock = clock
        self._rng = rng
        self._failures = 0
        self._last_success: float | None = None
        """The last poll in which every dataset was read."""
        self._last_read: float | None = None
        """The last poll in which at least one dataset was read."""
        self._dataset_success: dict[Dataset, float | None] = {}
        self._data: AccountData | None = None
        self._project_names: dict[str, str] = {}
        self._gauges: dict[Dataset, dict[SeriesKey, float]] = {}
        self._status = AccountStatus(
            errors={reason: 0 for reason in ERROR_REASONS},
            duration_buckets=(0,) * len(DURATION_BUCKETS),
        )
        self._api_requests: dict[tuple[str, str], int] = {}

    def observe_request(self, endpoint: str, code: str) -> None:
        """Count one provider API call (the provider's RequestObserver)."""
        key = (endpoint, code)
        self._api_requests[key] = self._api_requests.get(key, 0) + 1

    def fetch_start(self, now: float) -> int:
        """First day to fetch: the unsettled window of the dataset furthest behind, or on a
        first poll of the month (or of a dataset this month) all of it and the week before
        (``history_start``)."""
        month = month_start(now)
        if self._last_read is None or self.ledger.month_start != month:
            return history_start(now)
        starts = [
            history_start(now) if last is None or last < month else self._settle_start(last, month)
            for last in self._dataset_success.values()
        ]
        return min(starts, default=self._settle_start(self._last_read, month))

    def _settle_start(self, last: float, month: int) -> int:
        return max(month, day_start(last - self.settle_window))

    async def poll_once(self) -> float:
        """Run one poll; return the delay until the next one."""
        started = time.monotonic()
        now = self._clock()
        result: FetchResult | None = None
        failures: list[tuple[str, str, float | None]] = []  # (reason, message, retry_after)
        failed: dict[Dataset, str] = {}
        try:
            result = await self.fetch_priced(self.fetch_start(now), int(now))
            for dataset, err in result.failures.items():
                if isinstance(err, ProviderError):
                    reason, message = err.reason, self.provider.redact(str(err))
                    wait = err.retry_after
                else:
                    reason, message, wait = "internal", type(err).__name__, None
                failures.append((reason, f"{dataset}: {reason}: {message}", wait))
                failed[dataset] = message
            if result.batches:
                settled_before = day_start(now - self.settle_window)
                gauges = {batch.dataset: batch.gauges for batch in result.batches}
                skipped = self._skipped(result.batches)
                self.ledger.apply(result, now, settled_before=settled_before)
                self._published(result, now, gauges, skipped, settled_before)
        except ProviderError as exc:
            # The one place a poll error passes before the log, /metrics and the landing page.
            result, failures = None, [(exc.reason, self.provider.redact(str(exc)), exc.retry_after)]
            failed = dict.fromkeys(self._dataset_success, failures[0][1])
        except Exception as exc:  # a bug must not kill the account's loop
            log.exception("poll failed unexpectedly", extra={"account": self.account})
            # Nothing of this poll counts as read: the next one fetches the same days again.
            result, failures = None, [("internal", type(exc).__name__, None)]
            failed = dict.fromkeys(self._dataset_success, failures[0][1])
        self._record_datasets(now, result, failed)
        if not failures:
            series = 0 if self._data is None else self._data.series_count
            log.info("poll succeeded", extra={"account": self.account, "series": series})
            self._failures = 0
            self._last_success = now
            self._publish(started, up=True, error="", data=self._data)
            return self._jittered(self.poll_interval)
        errors = dict(self._status.errors)
        for reason, _, _ in failures:
            errors[reason] = errors.get(reason, 0) + 1
        self._status = replace(self._status, errors=errors)
        partial = result is not None and bool(result.batches)
        first_reason, first_message, _ = failures[0]
        error = first_message if partial else f"{first_reason}: {first_message}"
        self._publish(started, up=False, error=error, data=self._data if partial else None)
        cap = max(self.poll_interval, min(MAX_BACKOFF, BACKOFF_INTERVALS * self.poll_interval))
        throttled = any(reason in ACCOUNT_WIDE for reason, _, _ in failures)
        if partial and not throttled:
            # The datasets that were read stay on their interval; a failing one is tried again
            # with them, so it is not hammered more often than they are polled.
            self._failures = 0
            delay = self.poll_interval
        else:
            self._failures += 1
            delay = min(self.poll_interval * 2 ** min(self._failures - 1, 30), cap)
        retry_after = max((wait for _, _, wait in failures if wait is not None), default=None)
        if retry_after is not None:
            # A provider's hint is honoured up to the backoff cap: a Retry-After of a day (or
            # a date years ahead) must not stop the account until a restart.
            delay = max(delay, min(retry_after, cap))
        log.warning(
            "poll failed" if not partial else "poll failed for some datasets",
            extra={
                "account": self.account,
                "reason": ",".join(sorted({reason for reason, _, _ in failures})),
                "err": first_message,
                "retry_in": round(delay, 1),
            },
        )
        return self._jittered(delay)

    async def fetch_priced(self, start: int, end: int) -> FetchResult:
        """The provider's data of ``[start, end)`` as a poll merges it into the ledger: credits
        apart, estimated cost added and secret-like label values left out (``report`` and
        ``backfill`` read history through it too)."""
        result = await self.provider.fetch(start, end)
        for batch in result.batches:
            batch.credits_apart()
        if result.batches:
            if self.pricer is not None and getattr(self.provider, "estimates", True):
                self.pricer.annotate(self.provider.name, self.account, result)
            for batch in result.batches:
                self._drop_secret_labels(batch)
        self._drop_secret_names(result)
        return result

    def _drop_secret_names(self, result: FetchResult) -> None:
        """Leave out the project names that hold the key or look like one: a name becomes the
        ``project`` label of every series of its project, which then carries the project id
        alone. Counted as malformed rows, like a secret-like label value."""
        names = result.project_names
        bad = [project for project, name in names.items() if self._looks_secret(name)]
        for project in bad:
            del names[project]
        if bad and result.batches:
            batch = result.batches[0]
            batch.skipped_rows += len(bad)
            batch.skipped_error = batch.skipped_error or "a project name that looks like a secret"

    def _looks_secret(self, value: str) -> bool:
        return REDACTED in self.provider.redact(value)

    def _drop_secret_labels(self, batch: Batch) -> None:
        """Leave out (counted as malformed rows) the series of ``batch`` with a label value that
        holds the account's key or looks like one: a provider that echoes a key into a model or
        user name must not publish it (the redaction of error texts, applied to label values)."""
        verdicts: dict[str, bool] = {}
        keys: dict[SeriesKey, bool] = {}  # a series is on many days: judged once

        def secret(key: SeriesKey) -> bool:
            found = keys.get(key)
            if found is None:
                found = keys[key] = any(value_secret(value) for value in (*key[1], *key[2]))
            return found

        def value_secret(value: str) -> bool:
            found = verdicts.get(value)
            if found is None:
                found = verdicts[value] = self._looks_secret(value)
            return found

        dropped = 0
        for tables in (batch.days, batch.long_context):
            for series in tables.values():
                bad = [key for key in series if secret(key)]
                for key in bad:
                    del series[key]
                dropped += len(bad) if tables is batch.days else 0
        bad = [key for key in batch.gauges if secret(key)]
        for key in bad:
            del batch.gauges[key]
        if dropped or bad:
            batch.skipped_rows += dropped + len(bad)
            batch.skipped_error = batch.skipped_error or "a label value that looks like a secret"

    def _skipped(self, batches: list[Batch]) -> int:
        """Count (and log, once per dataset and poll) the malformed rows the provider left out."""
        total = 0
        for batch in batches:
            if batch.skipped_rows:
                total += batch.skipped_rows
                log.warning(
                    "malformed rows left out",
                    extra={
                        "account": self.account,
                        "dataset": str(batch.dataset),
                        "rows": batch.skipped_rows,
                        "err": self.provider.redact(batch.skipped_error),
                    },
                )
        return total

    def _published(
        self,
        result: FetchResult,
        now: float,
        gauges: Mapping[Dataset, dict[SeriesKey, float]],
        skipped: int,
        settled_before: int,
    ) -> None:
        """Build the account's data from the ledger after the datasets of ``result`` were read."""
        self._project_names.update(result.project_names)
        self._gauges.update(gauges)
        self._last_read = now
        if skipped:
            errors = dict(self._status.errors)
            errors["parse"] = errors.get("parse", 0) + skipped
            self._status = replace(self._status, errors=errors)
        assert self.ledger.month_start is not None
        spend = self._spend(now)
        levels = {key: value for values in self._gauges.values() for key, value in values.items()}
        levels.update(limit_forecasts(levels, spend, now))
        self._data = build_account_data(
            self.provider.name,
            self.account,
            self.ledger.month_start,
            self.ledger.totals,
            self._project_names,
            self.ledger.watermarks,
            self.ledger.revisions,
            levels,
            spend=spend,
            reconciliation=reconciliation(spend, settled_before),
            expected_lags={
                dataset: self.provider.expected_lag.get(dataset, DEFAULT_EXPECTED_LAG)
                for dataset in self.ledger.watermarks
            },
            series_overflow=self.ledger.overflow_count,
        )

    def _record_datasets(
        self, now: float, result: FetchResult | None, failed: Mapping[Dataset, str]
    ) -> None:
        read = [] if result is None else [batch.dataset for batch in result.batches]
        if result is not None:
            # A dataset the provider neither read nor failed is not expected any more (Copilot's
            # premium requests after May 2026): it must not hold the fetch window open.
            for dataset in [d for d in self._dataset_success if d not in read and d not in failed]:
                del self._dataset_success[dataset]
        for dataset in read:
            self._dataset_success[dataset] = now
        for dataset in failed:
            self._dataset_success.setdefault(dataset, None)
        self._status = replace(
            self._status,
            datasets={
                dataset: DatasetStatus(up=dataset not in failed, last_success=last)
                for dataset, last in sorted(self._dataset_success.items())
            },
        )

    def _publish(
        self, started: float, *, up: bool, error: str, data: AccountData | None = None
    ) -> None:
        elapsed = time.monotonic() - started
        status = self._status
        buckets = list(status.duration_buckets)
        index = bisect.bisect_left(DURATION_BUCKETS, elapsed)
        if index < len(buckets):
            buckets[index] += 1
        self._status = replace(
            status,
            up=up,
            polled=True,
            last_success=self._last_success,
            api_requests=dict(self._api_requests),
            duration_buckets=tuple(buckets),
            duration_count=status.duration_count + 1,
            duration_sum=status.duration_sum + elapsed,
            last_error=error,
        )
        self._store.update(self.account, status=self._status, data=data)
        if self._on_publish is not None:
            self._on_publish()

    def _spend(self, now: float) -> AccountSpend:
        ledger = self.ledger
        billed = ledger.daily_spend(Family.BILLED_COST)
        estimated = ledger.daily_spend(Family.ESTIMATED_COST)
        # Spend a provider knows for today but cannot put in the counters yet (OpenRouter's
        # key counters) is today's billed spend, and the best estimate of it too.
        today = day_start(now)
        gauges = (item for values in self._gauges.values() for item in values.items())
        for (family, dims, _), usd in gauges:
            if family is Family.BILLED_COST_TODAY:
                for spend in (billed, estimated):
                    day = spend.setdefault(today, {})
                    day[dims] = day.get(dims, 0.0) + usd
        return AccountSpend(
            provider=self.provider.name,
            account=self.account,
            billed=billed,
            estimated=estimated,
            settled_before=ledger.settled_before,
            project_names=dict(self._project_names),
        )

    def _jittered(self, delay: float) -> float:
        return delay * (0.9 + 0.2 * self._rng())

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set."""
        while not stop.is_set():
            started = time.monotonic()
            delay = await self.poll_once()
            remaining = max(0.0, delay - (time.monotonic() - started))
            try:
                await asyncio.wait_for(stop.wait(), timeout=remaining)
            except TimeoutError:
                pass
