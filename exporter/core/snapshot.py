"""Immutable snapshots of what the exporter knows, swapped atomically after each poll.

A scrape reads the current :class:`Snapshot` and nothing else. Label sets are
built once per successful poll, not once per scrape, and stored compactly:
sorted, interned (name, value) pairs and an array of values per family.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from exporter.core.budgets import AccountSpend, BudgetStatus
from exporter.core.records import Dataset, Family, SeriesKey
from exporter.web.metrics import FAMILY_METRICS, SERIES_LABELS


class LabelPairs(tuple[tuple[str, str], ...]):
    """Sorted ``(name, value)`` pairs standing in for a sample's labels dict.

    The exposition code only calls ``items()`` (and sorts it: already sorted);
    a tuple of shared pairs takes a third of a dict's memory, which matters at
    tens of thousands of series.
    """

    __slots__ = ()

    def items(self) -> LabelPairs:
        """The pairs, as ``dict.items()`` would give them."""
        return self


@dataclass(frozen=True, slots=True)
class FamilySeries:
    """The series of one family for one account: label sets and values, same order."""

    labels: tuple[LabelPairs, ...] = ()
    values: array[float] = field(default_factory=lambda: array("d"))


@dataclass(frozen=True, slots=True)
class DatasetStatus:
    """Whether the last poll read one dataset, and when one last did."""

    up: bool = False
    last_success: float | None = None


@dataclass(frozen=True, slots=True)
class AccountStatus:
    """Poll health of one account; cumulative counters count since process start.

    ``up`` and ``last_success`` are the account's: every dataset of the poll read.
    """

    up: bool = False
    polled: bool = False
    last_success: float | None = None
    datasets: Mapping[Dataset, DatasetStatus] = field(default_factory=dict)
    errors: Mapping[str, int] = field(default_factory=dict)
    api_requests: Mapping[tuple[str, str], int] = field(default_factory=dict)
    duration_buckets: tuple[int, ...] = ()
    duration_count: int = 0
    duration_sum: float = 0.0
    last_error: str = ""


@dataclass(frozen=True, slots=True)
class AccountData:
    """Month-to-date data of one account as of its last successful poll."""

    month_start: int | None = None
    families: Mapping[Family, FamilySeries] = field(default_factory=dict)
    watermarks: Mapping[Dataset, float] = field(default_factory=dict)
    expected_lags: Mapping[Dataset, float] = field(default_factory=dict)
    """Per dataset with a watermark: how far behind it may be while the provider is healthy."""
    revisions: int = 0
    series_overflow: int = 0
    """Label sets of this month beyond the account's cap, folded into the overflow value."""
    series_count: int = 0
    spend: AccountSpend | None = None
    reconciliation: float | None = None


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """Everything published about one configured account."""

    provider: str
    account: str
    data: AccountData = AccountData()
    status: AccountStatus = AccountStatus()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """All accounts, in configuration order."""

    accounts: tuple[AccountSnapshot, ...] = ()
    budgets: tuple[BudgetStatus, ...] = ()
    reload_successful: bool = True
    reload_success_time: float = 0.0

    @property
    def ready(self) -> bool:
        """True once every account has completed at least one poll attempt."""
        return all(a.status.polled for a in self.accounts)


def build_account_data(
    provider: str,
    account: str,
    month_start: int,
    totals: Mapping[SeriesKey, float],
    project_names: Mapping[str, str],
    watermarks: Mapping[Dataset, float],
    revisions: int,
    gauges: Mapping[SeriesKey, float] | None = None,
    *,
    spend: AccountSpend | None = None,
    reconciliation: float | None = None,
    expected_lags: Mapping[Dataset, float] | None = None,
    series_overflow: int = 0,
) -> AccountData:
    """Turn ledger totals (and the last poll's gauges) into ready-to-expose series."""
    gauges = gauges or {}
    labels_of: dict[Family, list[LabelPairs]] = {}
    values_of: dict[Family, array[float]] = {}
    pairs: dict[tuple[str, str], tuple[str, str]] = {}  # one object per distinct pair
    for (family, dims, extra), value in (*totals.items(), *gauges.items()):
        definition = FAMILY_METRICS[family]
        if len(extra) > len(definition.labels):
            raise ValueError(f"{family}: more label values than labels: {extra!r}")
        project_id, model, api_key_id, user_id, series_provider = dims
        project = project_names.get(project_id, project_id) if project_id else ""
        values = (
            series_provider or provider, account, project_id, project, model, api_key_id, user_id
        )
        named = [*zip(SERIES_LABELS, values), *zip(definition.labels, extra)]  # noqa: B905
        labels = LabelPairs(sorted(pairs.setdefault(p, p) for p in named if p[1]))
        labels_of.setdefault(family, []).append(labels)
        values_of.setdefault(family, array("d")).append(value)
    families = {
        family: FamilySeries(tuple(labels), values_of[family])
        for family, labels in labels_of.items()
    }
    return AccountData(
        month_start=month_start,
        families=MappingProxyType(families),
        watermarks=MappingProxyType(dict(watermarks)),
        expected_lags=MappingProxyType(dict(expected_lags or {})),
        revisions=revisions,
        series_overflow=series_overflow,
        series_count=len(totals) + len(gauges),
        spend=spend,
        reconciliation=reconciliation,
    )


class SnapshotStore:
    """Holds the current snapshot; writers replace one account at a time."""

    def __init__(self, accounts: Iterable[AccountSnapshot] = ()) -> None:
        self._lock = threading.Lock()
        self._current = Snapshot(tuple(accounts))

    @property
    def current(self) -> Snapshot:
        """The latest snapshot (a plain attribute read: safe from any thread)."""
        return self._current

    def set_accounts(self, accounts: Iterable[AccountSnapshot]) -> None:
        """Replace the list of accounts (start-up and reload)."""
        with self._lock:
            self._current = replace(self._current, accounts=tuple(accounts))

    def set_reload(self, *, successful: bool, when: float | None = None) -> None:
        """Record the outcome of a configuration (re)load."""
        with self._lock:
            current = self._current
            self._current = replace(
                current,
                reload_successful=successful,
                reload_success_time=when if successful and when else current.reload_success_time,
            )

    def set_budgets(self, budgets: Iterable[BudgetStatus]) -> None:
        """Publish freshly evaluated budgets."""
        with self._lock:
            self._current = replace(self._current, budgets=tuple(budgets))

    def update(
        self, account: str, *, data: AccountData | None = None, status: AccountStatus | None = None
    ) -> None:
        """Publish new data and/or status for one account atomically."""
        with self._lock:
            accounts = list(self._current.accounts)
            for i, snap in enumerate(accounts):
                if snap.account == account:
                    accounts[i] = replace(
                        snap,
                        data=snap.data if data is None else data,
                        status=snap.status if status is None else status,
                    )
                    break
            else:
                raise KeyError(account)
            self._current = replace(self._current, accounts=tuple(accounts))
