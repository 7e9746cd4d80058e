"""The days of past (and the current) months of every configured account.

History is read through the path a poll takes (``AccountPoller.fetch_priced``: the provider,
pricing, the secret-label check) and merged into one ledger per account and month, so that
what ``report`` and ``backfill`` write is what ``/metrics`` shows for that month.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from exporter.config.schema import Config
from exporter.core.ledger import Ledger, month_start, next_month_start
from exporter.core.pricing import Pricer
from exporter.core.records import Batch, FetchResult, SeriesKey
from exporter.core.snapshot import SnapshotStore
from exporter.daemon import provider_factory
from exporter.scheduler import AccountPoller
from exporter.sources.providers.base import ProviderError
from exporter.sources.push.wiring import PseudoAccounts


class HistoryError(Exception):
    """History could not be read in full (a provider failed): nothing is written."""


@dataclass(frozen=True, slots=True)
class AccountMonth:
    """One account's days of one UTC month, as its ledger holds them."""

    provider: str
    """The account's ``provider`` label (a series may carry its own: ``Dims.provider``)."""
    account: str
    month_start: int
    end: int
    """The end of the days read: the next month's start, or the time of reading."""
    days: dict[int, dict[SeriesKey, float]]
    project_names: dict[str, str]


def months(start: int, end: int) -> Iterator[tuple[int, int]]:
    """``[month start, month end)`` of every UTC month from ``start``'s to ``end``'s, the last
    one cut at ``end``."""
    month = month_start(start)
    while month < end:
        following = next_month_start(month)
        yield month, min(following, end)
        month = following


def _split(result: FetchResult, month: int, end: int) -> FetchResult:
    """The part of ``result`` in ``[month, end)``, as its own fetch of that range."""
    batches = [
        Batch(
            batch.dataset,
            max(batch.start, month),
            min(batch.end, end),
            days={day: dict(series) for day, series in batch.days.items() if month <= day < end},
            watermark=batch.watermark,
        )
        for batch in result.batches
    ]
    return FetchResult(batches, dict(result.project_names))


def pollers(
    config: Config, clock: Callable[[], float]
) -> tuple[list[AccountPoller], PseudoAccounts]:
    """A poller of every configured account (polled, pushed, subscriptions), never started."""
    store = SnapshotStore()
    pricer = Pricer(config.pricing)
    found = [
        AccountPoller(
            account=account.name,
            provider_factory=provider_factory(account),
            store=store,
            poll_interval=account.poll_interval,
            settle_window=account.settle_window,
            pricer=pricer,
            clock=clock,
            max_label_sets=account.max_label_sets,
        )
        for account in config.accounts
    ]
    pseudo = PseudoAccounts(config, clock=clock)
    found += pseudo.pollers(store, pricer, lambda: None)
    return found, pseudo


async def _read(
    poller: AccountPoller, start: int, end: int, warnings: list[str] | None
) -> FetchResult:
    """``[start, end)`` of one account, complete, else :class:`HistoryError`; the rows the
    provider left out (malformed, or with a label that looks like a secret, as a poll leaves
    them out) are told in ``warnings``."""
    try:
        result = await poller.fetch_priced(start, end)
    except ProviderError as err:
        message = poller.provider.redact(str(err))
        raise HistoryError(f"account {poller.account}: {err.reason}: {message}") from None
    for dataset, failure in result.failures.items():
        reason = failure.reason if isinstance(failure, ProviderError) else "internal"
        message = poller.provider.redact(str(failure))
        raise HistoryError(f"account {poller.account}: {dataset}: {reason}: {message}")
    for batch in result.batches:
        if batch.skipped_rows and warnings is not None:
            first = poller.provider.redact(batch.skipped_error)
            warnings.append(
                f"account {poller.account}: {batch.dataset}: {batch.skipped_rows} row(s) "
                f"left out, as /metrics leaves them out (first: {first})"
            )
    return result


def _month(poller: AccountPoller, result: FetchResult, month: int, end: int) -> AccountMonth:
    ledger = Ledger(poller.ledger.max_label_sets)
    ledger.apply(_split(result, month, end), end - 1)
    days: dict[int, dict[SeriesKey, float]] = {}
    for dataset_days in ledger.days.values():
        for day, series in dataset_days.items():
            target = days.setdefault(day, {})
            for key, value in series.items():
                target[key] = target.get(key, 0.0) + value
    return AccountMonth(
        provider=poller.provider.name,
        account=poller.account,
        month_start=month,
        end=end,
        days=days,
        project_names=dict(result.project_names),
    )


async def read_history(
    config: Config,
    start: int,
    end: int,
    *,
    clock: Callable[[], float] = time.time,
    as_far_as_kept: list[str] | None = None,
    warnings: list[str] | None = None,
) -> list[AccountMonth]:
    """Every account's days of each month from ``start``'s to ``end`` (exclusive), in
    configuration order; :class:`HistoryError` if any account cannot be read in full. Rows
    left out of what was read are told in ``warnings``.

    With ``as_far_as_kept`` (a list), each account is read month by month back from ``end``
    until a month fails (a provider keeps only so much history: ChatGPT's Codex analytics 90
    days): that month and the ones before it are left out, and the reason appended to the list.
    """
    accounts, pseudo = pollers(config, clock)
    out: list[AccountMonth] = []
    try:
        for poller in accounts:
            try:
                if as_far_as_kept is None:
                    result = await _read(poller, month_start(start), end, warnings)
                    out.extend(_month(poller, result, m, e) for m, e in months(start, end))
                    continue
                kept: list[AccountMonth] = []
                for month, month_end in reversed(list(months(start, end))):
                    try:
                        result = await _read(poller, month, month_end, warnings)
                    except HistoryError as exc:
                        as_far_as_kept.append(f"{exc} (months up to {_name(month)} left out)")
                        break
                    kept.insert(0, _month(poller, result, month, month_end))
                out.extend(kept)
            finally:
                await poller.provider.aclose()
    finally:
        pseudo.close()
    return out


def _name(month: int) -> str:
    return datetime.fromtimestamp(month, UTC).strftime("%Y-%m")
