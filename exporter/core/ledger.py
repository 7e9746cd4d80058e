"""Month-to-date totals of one account, rebuilt from the provider's own history.

The ledger keeps what the provider returned per UTC day and dataset for the
days that may still change, and one folded sum for the settled days before
them. A fetch replaces exactly the days it covered, so re-reading the recent
window picks up late-arriving usage without counting anything twice. The
published totals never decrease within a month: a downward revision keeps the
higher value and is counted instead. What a bill takes off comes as a family of
its own (``BILLED_CREDIT``, see ``Batch.credits_apart``); a credit restated smaller
or taken back is added to the charges instead, so that billed less credited is
the provider's net (higher only by a charge's own downward revisions).

A month starts with every series the account had in the week before it, at 0:
dashboards are not empty on the 1st, and ``increase()`` sees a counter's first
rise of the month.

An account has at most ``max_label_sets`` distinct grouping label sets
(:class:`Dims`) a month. Data of label sets beyond them is still counted, under
:data:`OVERFLOW` in every grouped dimension, so every total stays exact while a
stranger pushing random project names cannot grow the exposition.
"""

from __future__ import annotations

from datetime import UTC, datetime

from exporter.core.gcpause import paused_gc
from exporter.core.records import (
    DAY,
    ELSEWHERE_BILLED,
    Batch,
    Dataset,
    Dims,
    Family,
    FetchResult,
    SeriesKey,
    day_start,
)

_TOLERANCE = 1e-9
SPEND_FAMILIES = frozenset((Family.BILLED_COST, Family.ESTIMATED_COST))
DEFAULT_MAX_LABEL_SETS = 5000
MAX_LABEL_SETS_LIMIT = 100_000
OVERFLOW = "(other)"
"""The label value of every grouped dimension of series beyond an account's label-set cap."""
LOOKBACK = 7 * DAY
"""A first poll of a month also reads this long before the month start: the daily spend that
weekly budgets and forecasts need, and the series the month starts with at 0."""

DailySpend = dict[int, dict[Dims, float]]


def month_start(ts: float) -> int:
    """Start of the UTC calendar month containing ``ts`` (Unix seconds)."""
    dt = datetime.fromtimestamp(ts, UTC)
    return int(datetime(dt.year, dt.month, 1, tzinfo=UTC).timestamp())


def next_month_start(ts: float) -> int:
    """Start of the UTC calendar month after the one containing ``ts``."""
    dt = datetime.fromtimestamp(ts, UTC)
    year, month = (dt.year + 1, 1) if dt.month == 12 else (dt.year, dt.month + 1)
    return int(datetime(year, month, 1, tzinfo=UTC).timestamp())


def history_start(now: float) -> int:
    """The first day a first poll of the month reads at ``now``."""
    return month_start(now) - LOOKBACK


def _overflow(dims: Dims) -> Dims:
    # The provider label is not a grouping dimension: a folded series keeps it.
    project_id, model, api_key_id, user_id = (OVERFLOW if v else "" for v in dims[:-1])
    return Dims(project_id, model, api_key_id, user_id, dims.provider)


def _folded(dims: Dims) -> bool:
    """Whether ``dims`` is already the overflow label set (a source may fold as well)."""
    grouped = dims[:-1]
    return any(grouped) and all(value in ("", OVERFLOW) for value in grouped)


class Ledger:
    """Per-day provider data and monotonic month-to-date totals for one account."""

    def __init__(self, max_label_sets: int = DEFAULT_MAX_LABEL_SETS) -> None:
        self.max_label_sets = max_label_sets
        self._admitted: dict[Dims, None] = {}
        # Hashes only: the label sets a stranger invents are what must not be kept.
        self._overflowed: set[int] = set()
        self._folded_by_source = 0
        self.month_start: int | None = None
        self.days: dict[Dataset, dict[int, dict[SeriesKey, float]]] = {}
        self.watermarks: dict[Dataset, float] = {}
        self.revisions = 0
        self._settled: dict[Dataset, dict[SeriesKey, float]] = {}
        self._settled_until: dict[Dataset, int] = {}
        self._billing: set[Dataset] = set()  # datasets that reported billed cost this month
        self._computed: dict[SeriesKey, float] = {}
        self._published: dict[SeriesKey, float] = {}
        self._known: dict[SeriesKey, float] = {}  # insertion-ordered: a stable exposition
        self._taken_back: dict[SeriesKey, float] = {}  # of each credit series, this month
        self._spend: dict[Dataset, dict[int, dict[tuple[Family, Dims], float]]] = {}

    @property
    def totals(self) -> dict[SeriesKey, float]:
        """Month-to-date value of every series (never lower than before within a month)."""
        return self._published

    @property
    def overflow_count(self) -> int:
        """Label sets of this month folded into :data:`OVERFLOW` (exported as a counter)."""
        return len(self._overflowed) + self._folded_by_source

    @property
    def settled_before(self) -> int:
        """Days before this day start are settled (not fetched again this month) in every
        dataset that bills: what budgets take the billed cost for. A usage-only dataset that
        keeps failing must not hold the bill's settled days back."""
        billing = [u for d, u in self._settled_until.items() if d in self._billing]
        return min(billing or self._settled_until.values(), default=self.month_start or 0)

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
        self._folded_by_source = result.folded_label_sets
        with paused_gc():
            for batch in result.batches:
                self._cap_label_sets(batch)
                self._replace_spend(batch, month)
                self._replace_days(batch, month, settled_before)
                # Release the days just folded now, not when the caller drops the fetch: a
                # first poll's month of per-day data is the process's memory peak.
                batch.days.clear()
                batch.long_context.clear()
            self._recompute()

    def _cap_label_sets(self, batch: Batch) -> None:
        """Fold the series of label sets beyond the cap into :data:`OVERFLOW`, day by day."""
        admitted, cap = self._admitted, self.max_label_sets
        for day, series in batch.days.items():
            fold = False
            for dims in dict.fromkeys(key[1] for key in series):  # in order: stable across runs
                if dims not in admitted and not _folded(dims):
                    if len(admitted) < cap:
                        admitted[dims] = None
                    else:
                        self._overflowed.add(hash(dims))
                        fold = True
            if fold:
                folded: dict[SeriesKey, float] = {}
                for (family, dims, labels), value in series.items():
                    if dims not in admitted and not _folded(dims):
                        dims = _overflow(dims)
                    key = (family, dims, labels)
                    folded[key] = folded.get(key, 0.0) + value
                batch.days[day] = folded

    def _start_month(self, month: int) -> None:
        self._admitted = {}
        self._overflowed = set()
        self._folded_by_source = 0
        self.month_start = month
        self.days = {}
        self.watermarks = {}
        self._settled = {}
        self._settled_until = {}
        self._billing = set()
        self._computed = {}
        self._published = {}
        self._known = {}
        self._taken_back = {}

    def _replace_spend(self, batch: Batch, month: int) -> None:
        """Keep per-day spend by dims (before folding) for budgets and forecasts."""
        days = self._spend.setdefault(batch.dataset, {})
        first = self._first_replaced(batch, month)  # as the totals do
        for day in [d for d in days if d >= first or d < month - LOOKBACK]:
            del days[day]
        for day, series in batch.days.items():
            if not (first <= day < batch.end and day >= month - LOOKBACK):
                continue
            spend: dict[tuple[Family, Dims], float] = {}
            for (family, dims, labels), value in series.items():
                if family is Family.BILLED_CREDIT:  # spend is net of what the bill takes off
                    family, value = Family.BILLED_COST, -value
                if family is Family.BILLED_COST:
                    self._billing.add(batch.dataset)
                if family in SPEND_FAMILIES and not (
                    family is Family.BILLED_COST and labels[:1] and labels[0] in ELSEWHERE_BILLED
                ):
                    spend[family, dims] = spend.get((family, dims), 0.0) + value
            if spend:
                days[day] = spend

    def _first_replaced(self, batch: Batch, month: int) -> int:
        """The first day ``batch`` replaces: its start, except that a window made longer for
        another dataset (one that failed for a while) leaves this dataset's settled days as
        they are, already in its sum; only a fetch from the month start reads them again."""
        first = day_start(batch.start)
        return max(first, self._settled_until.get(batch.dataset, month)) if first > month else first

    def _replace_days(self, batch: Batch, month: int, settled_before: int) -> None:
        dataset = batch.dataset
        first = max(self._first_replaced(batch, month), month)
        if first == month:  # the whole month again: nothing of it stays settled
            self._settled.pop(dataset, None)
            self.days.pop(dataset, None)
        self._remember_known(batch, month)
        days = self.days.setdefault(dataset, {})
        for day in [d for d in days if d >= first]:
            del days[day]
        # The ledger owns the batch's dictionaries from here on.
        days.update((d, series) for d, series in batch.days.items() if first <= d < batch.end)
        settled = self._settled.setdefault(dataset, {})
        boundary = max(first, settled_before)
        for day in sorted(d for d in days if d < boundary):
            for key, value in days.pop(day).items():
                settled[key] = settled.get(key, 0.0) + value
        self._settled_until[dataset] = boundary
        if batch.watermark is not None:
            self.watermarks[batch.dataset] = batch.watermark

    def _remember_known(self, batch: Batch, month: int) -> None:
        """Add the series of the batch's days in the week before ``month`` to the known ones."""
        for day in sorted(batch.days):
            if month - LOOKBACK <= day < month:
                self._known.update(dict.fromkeys(batch.days[day], 0.0))

    def _recompute(self) -> None:
        computed = dict(self._known)
        for dataset in sorted(self.days.keys() | self._settled.keys()):
            days = self.days.get(dataset, {})
            for series in (self._settled.get(dataset, {}), *(days[d] for d in sorted(days))):
                for key, value in series.items():
                    computed[key] = computed.get(key, 0.0) + value
        previous = self._computed
        published = self._published
        for key, old in previous.items():
            new = computed.get(key, 0.0)
            if new < old - _TOLERANCE * max(1.0, abs(old)):
                self.revisions += 1
        charges: dict[SeriesKey, float] = {}
        credits: dict[SeriesKey, float] = {}
        for key, value in computed.items():
            if key[0] is Family.BILLED_COST:
                charges[key] = value
            elif key[0] is Family.BILLED_CREDIT:
                credits[key] = value
            elif value > published.get(key, float("-inf")):
                published[key] = value
        for key in published:
            if key[0] is Family.BILLED_CREDIT:
                credits.setdefault(key, 0.0)  # a credit no longer in the provider's data
        for key, value in credits.items():
            # A credit restated smaller or taken back: what it fell by below the published
            # credit stays taken back for the month, as a charge under its line item, so that
            # credits that rise again later still move the credit counter.
            back = self._taken_back.get(key, 0.0)
            fall = published.get(key, 0.0) - value
            if fall > back + _TOLERANCE * max(1.0, value):
                back = self._taken_back[key] = fall
            if back:
                charge = (Family.BILLED_COST, key[1], key[2])
                charges[charge] = charges.get(charge, 0.0) + back
            if value + back > published.get(key, float("-inf")):
                published[key] = value + back
        for key, value in charges.items():
            if value > published.get(key, float("-inf")):
                published[key] = value
        self._computed = computed
