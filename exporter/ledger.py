"""Month-to-date totals of one account, rebuilt from the provider's own history.

The ledger keeps what the provider returned per UTC day and dataset for the
days that may still change, and one folded sum for the settled days before
them. A fetch replaces exactly the days it covered, so re-reading the recent
window picks up late-arriving usage without counting anything twice. The
published totals never decrease within a month: a downward revision keeps the
higher value and is counted instead.

A month starts with every series the account had in the week before it, at 0:
dashboards are not empty on the 1st, and ``increase()`` sees a counter's first
rise of the month.

Both forms a batch carries are kept side by side: scalar series (``days``) and
row vectors of series groups (``rows``), folded and summed as vectors and
expanded to series only for the totals.
"""

from __future__ import annotations

import itertools
import operator
from datetime import UTC, datetime
from typing import cast

from exporter.gcpause import paused_gc
from exporter.records import (
    DAY,
    Batch,
    Dataset,
    Dims,
    Family,
    FetchResult,
    SeriesGroup,
    SeriesKey,
    Vector,
    day_start,
    expand_rows,
    sum_rows,
)

_TOLERANCE = 1e-9
SPEND_FAMILIES = (Family.BILLED_COST, Family.ESTIMATED_COST)
LOOKBACK = 7 * DAY
"""A first poll of a month also reads this long before the month start: the daily spend that
weekly budgets and forecasts need, and the series the month starts with at 0."""

_WEIGHTS = operator.attrgetter("weights")
_FAMILY = operator.attrgetter("family")
_DIMS = operator.attrgetter("dims")

DailySpend = dict[int, dict[Dims, float]]
Rows = dict[SeriesGroup, Vector]


def month_start(ts: float) -> int:
    """Start of the UTC calendar month containing ``ts`` (Unix seconds)."""
    dt = datetime.fromtimestamp(ts, UTC)
    return int(datetime(dt.year, dt.month, 1, tzinfo=UTC).timestamp())


def history_start(now: float) -> int:
    """The first day a first poll of the month reads at ``now``."""
    return month_start(now) - LOOKBACK


def _add_row_spend(spend: dict[tuple[Family, Dims], float], rows: Rows) -> None:
    """Add the summed rows of spend-family groups to ``spend`` by (family, dims)."""
    # C-level map/zip/compress throughout: this runs for every row of a month on a first poll.
    wanted = map(SPEND_FAMILIES.__contains__, map(_FAMILY, rows))
    groups = list(itertools.compress(rows, wanted))
    if not groups:
        return
    # Only spend families are left, never None.
    families, dims = map(_FAMILY, groups), map(_DIMS, groups)
    keys = cast(list[tuple[Family, Dims]], list(zip(families, dims, strict=True)))
    values = map(rows.__getitem__, groups)
    weights = list(map(_WEIGHTS, groups))
    if None in weights:
        sums = list(map(SeriesGroup.total, groups, values))
    else:  # every row priced: dot products at C speed
        sums = list(map(sum, map(map, itertools.repeat(operator.mul), values, weights)))
    if not spend:
        spend.update(zip(keys, sums, strict=True))
        if len(spend) == len(keys):  # one row per key: the usual case
            return
        spend.clear()
    for key, usd in zip(keys, sums, strict=True):
        spend[key] = spend.get(key, 0.0) + usd


class Ledger:
    """Per-day provider data and monotonic month-to-date totals for one account."""

    def __init__(self) -> None:
        self.month_start: int | None = None
        self.days: dict[Dataset, dict[int, dict[SeriesKey, float]]] = {}
        self.rows: dict[Dataset, dict[int, Rows]] = {}
        self.watermarks: dict[Dataset, float] = {}
        self.revisions = 0
        self._settled: dict[Dataset, dict[SeriesKey, float]] = {}
        self._settled_rows: dict[Dataset, Rows] = {}
        self._settled_until: dict[Dataset, int] = {}
        self._computed: dict[SeriesKey, float] = {}
        self._published: dict[SeriesKey, float] = {}
        self._known: dict[SeriesKey, float] = {}  # insertion-ordered: a stable exposition
        self._spend: dict[Dataset, dict[int, dict[tuple[Family, Dims], float]]] = {}

    @property
    def totals(self) -> dict[SeriesKey, float]:
        """Month-to-date value of every series (never lower than before within a month)."""
        return self._published

    @property
    def settled_before(self) -> int:
        """Days before this day start are settled (not fetched again this month)."""
        return min(self._settled_until.values(), default=self.month_start or 0)

    def daily_spend(self, family: Family) -> DailySpend:
        """Per-day dollars of a spend family by dims, this month and the week before it."""
        out: DailySpend = {}
        for days in self._spend.values():
            for day, series in days.items():
                target = out.setdefault(day, {})
                for (f, dims), usd in series.items():
                    if f is family:
                        target[dims] = target.get(dims, 0.0) + usd
        return out

    def apply(self, result: FetchResult, now: float, *, settled_before: int = 0) -> None:
        """Merge one successful fetch made at ``now`` and recompute the totals.

        The ledger takes ownership of the batches' per-day dictionaries.

        Days before a batch's start, and before ``settled_before`` (the caller
        promises not to fetch them again), are settled: they are folded into
        one sum and cannot be replaced again, except by a fetch from the month
        start.
        """
        month = month_start(now)
        if month != self.month_start:
            self._start_month(month)
        with paused_gc():
            for batch in result.batches:
                self._replace_spend(batch, month)
                self._replace_days(batch, month, settled_before)
                # Release the days just folded now, not when the caller drops the fetch: a
                # first poll's month of per-day data is the process's memory peak.
                batch.days.clear()
                batch.rows.clear()
            self._recompute()

    def _start_month(self, month: int) -> None:
        self.month_start = month
        self.days = {}
        self.rows = {}
        self.watermarks = {}
        self._settled = {}
        self._settled_rows = {}
        self._settled_until = {}
        self._computed = {}
        self._published = {}
        self._known = {}

    def _replace_spend(self, batch: Batch, month: int) -> None:
        """Keep per-day spend by dims (before folding) for budgets and forecasts."""
        days = self._spend.setdefault(batch.dataset, {})
        first = day_start(batch.start)
        for day in [d for d in days if d >= first or d < month - LOOKBACK]:
            del days[day]
        for day in batch.days.keys() | batch.rows.keys():
            if not (first <= day < batch.end and day >= month - LOOKBACK):
                continue
            spend: dict[tuple[Family, Dims], float] = {}
            for (family, dims, _), value in batch.days.get(day, {}).items():
                if family in SPEND_FAMILIES:
                    spend[family, dims] = spend.get((family, dims), 0.0) + value
            rows = batch.rows.get(day)
            if rows:
                _add_row_spend(spend, rows)
            if spend:
                days[day] = spend

    def _replace_days(self, batch: Batch, month: int, settled_before: int) -> None:
        dataset = batch.dataset
        first = max(day_start(batch.start), month)
        if first < self._settled_until.get(dataset, month):
            if first != month:
                raise ValueError(f"{dataset} fetch starts inside days already settled")
            self._settled.pop(dataset, None)
            self._settled_rows.pop(dataset, None)
            self.days.pop(dataset, None)
            self.rows.pop(dataset, None)
        self._remember_known(batch, month)
        days = self.days.setdefault(dataset, {})
        rows = self.rows.setdefault(dataset, {})
        for stored in (days, rows):
            for day in [d for d in stored if d >= first]:
                del stored[day]
        # The ledger owns the batch's dictionaries from here on.
        days.update((d, series) for d, series in batch.days.items() if first <= d < batch.end)
        rows.update((d, vectors) for d, vectors in batch.rows.items() if first <= d < batch.end)
        settled = self._settled.setdefault(dataset, {})
        boundary = max(first, settled_before)
        for day in sorted(d for d in days if d < boundary):
            for key, value in days.pop(day).items():
                settled[key] = settled.get(key, 0.0) + value
        folded = [rows.pop(day) for day in sorted(d for d in rows if d < boundary)]
        if folded:
            settled_rows = self._settled_rows.get(dataset, {})
            self._settled_rows[dataset] = sum_rows([settled_rows, *folded])
        self._settled_until[dataset] = boundary
        if batch.watermark is not None:
            self.watermarks[batch.dataset] = batch.watermark

    def _remember_known(self, batch: Batch, month: int) -> None:
        """Add the series of the batch's days in the week before ``month`` to the known ones."""
        seen: dict[SeriesKey, float] = {}
        for day in sorted(batch.days.keys() | batch.rows.keys()):
            if month - LOOKBACK <= day < month:
                seen.update(batch.days.get(day, {}))
                expand_rows(batch.rows.get(day, {}), seen)
        self._known.update(dict.fromkeys(seen, 0.0))

    def _recompute(self) -> None:
        computed = dict(self._known)
        datasets = self.days.keys() | self._settled.keys() | self.rows.keys()
        for dataset in sorted(datasets | self._settled_rows.keys()):
            for key, value in self._settled.get(dataset, {}).items():
                computed[key] = computed.get(key, 0.0) + value
            days = self.days.get(dataset, {})
            for day in sorted(days):
                for key, value in days[day].items():
                    computed[key] = computed.get(key, 0.0) + value
            days_rows = self.rows.get(dataset, {})
            rows = [self._settled_rows.get(dataset, {}), *(days_rows[d] for d in sorted(days_rows))]
            expand_rows(sum_rows(rows), computed)
        previous = self._computed
        published = self._published
        for key, old in previous.items():
            new = computed.get(key, 0.0)
            if new < old - _TOLERANCE * max(1.0, abs(old)):
                self.revisions += 1
        for key, value in computed.items():
            if value > published.get(key, float("-inf")):
                published[key] = value
        self._computed = computed
