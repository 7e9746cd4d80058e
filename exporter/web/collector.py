"""The Prometheus collector: metric families from the current snapshot, nothing else."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

from exporter import __version__
from exporter.core.budgets import BudgetStatus
from exporter.core.snapshot import Snapshot
from exporter.web import metrics as m
from exporter.web.metrics import FAMILY_METRICS, MetricDef


def _family(definition: MetricDef) -> Metric:
    return Metric(definition.name, definition.help, definition.type, definition.unit)


def _sample(name: str, labels: dict[str, str], value: float) -> Sample:
    return Sample(name, labels, value, None, None, None)


class SnapshotCollector:
    """Yields fresh metric families built from ``source()``, the latest snapshot.

    ``openmetrics`` adds the ``_created`` samples (start of the month) to the
    month-to-date counters; the plain text format leaves them out so they do
    not become extra gauge series.
    """

    def __init__(self, source: Callable[[], Snapshot], *, openmetrics: bool = False) -> None:
        self._source = source
        self._openmetrics = openmetrics

    def describe(self) -> Iterator[Metric]:
        """Family names without samples, so registering never polls."""
        return iter(())

    def collect(self) -> Iterator[Metric]:
        """Build every family from one consistent snapshot; a family without samples is left
        out (its HELP and TYPE lines alone would only grow the exposition)."""
        snap = self._source()
        for family in itertools.chain(
            self._series_families(snap),
            self._budget_families(snap),
            self._health_families(snap),
        ):
            if family.samples:
                yield family
        reload_ok = _family(m.CONFIG_RELOAD_SUCCESSFUL)
        reload_ok.samples.append(
            _sample(reload_ok.name, {}, 1.0 if snap.reload_successful else 0.0)
        )
        reload_time = _family(m.CONFIG_RELOAD_SUCCESS_TIME)
        reload_time.samples.append(_sample(reload_time.name, {}, snap.reload_success_time))
        yield reload_ok
        yield reload_time
        info = _family(m.BUILD_INFO)
        info.samples.append(_sample(m.BUILD_INFO.name, {"version": __version__}, 1.0))
        yield info

    def _series_families(self, snap: Snapshot) -> Iterator[Metric]:
        for family, definition in FAMILY_METRICS.items():
            metric = _family(definition)
            counter = definition.type == "counter"
            name = definition.name + ("_total" if counter else "")
            created = definition.name + "_created"
            append = metric.samples.append
            for account in snap.accounts:
                series = account.data.families.get(family)
                if series is None:
                    continue
                if self._openmetrics and counter:
                    # OpenMetrics wants each series' _created right after it: the month start.
                    start = float(account.data.month_start or 0)
                    for labels, value in zip(series.labels, series.values, strict=True):
                        append(Sample(name, labels, value, None, None, None))  # type: ignore[arg-type]
                        append(Sample(created, labels, start, None, None, None))  # type: ignore[arg-type]
                else:
                    metric.samples.extend(
                        Sample(name, labels, value, None, None, None)  # type: ignore[arg-type]
                        for labels, value in zip(series.labels, series.values, strict=True)
                    )
            yield metric

    def _budget_families(self, snap: Snapshot) -> Iterator[Metric]:
        reconciliation = _family(m.COST_RECONCILIATION)
        for account in snap.accounts:
            if account.data.reconciliation is not None:
                labels = {"provider": account.provider, "account": account.account}
                reconciliation.samples.append(
                    _sample(reconciliation.name, labels, account.data.reconciliation)
                )
        yield reconciliation
        values: dict[MetricDef, Callable[[BudgetStatus], float]] = {
            m.BUDGET_LIMIT: lambda b: b.limit_usd,
            m.BUDGET_SPEND: lambda b: b.spend_usd,
            m.BUDGET_FORECAST: lambda b: b.forecast_usd,
            m.BUDGET_UTILIZATION: lambda b: b.utilization,
            m.BUDGET_WARNING: lambda b: b.warning_ratio,
            m.BUDGET_PERIOD_END: lambda b: float(b.period_end),
        }
        for definition, value in values.items():
            metric = _family(definition)
            for budget in snap.budgets:
                labels = {"budget": budget.name, "period": budget.period}
                metric.samples.append(_sample(metric.name, labels, value(budget)))
            yield metric

    def _health_families(self, snap: Snapshot) -> Iterator[Metric]:
        watermark = _family(m.DATA_WATERMARK)
        expected_lag = _family(m.DATA_EXPECTED_LAG)
        revisions = _family(m.DATA_REVISIONS)
        overflow = _family(m.SERIES_OVERFLOW)
        up = _family(m.COLLECTOR_UP)
        last_success = _family(m.COLLECTOR_LAST_SUCCESS)
        dataset_up = _family(m.DATASET_UP)
        dataset_success = _family(m.DATASET_LAST_SUCCESS)
        duration = _family(m.COLLECTOR_DURATION)
        errors = _family(m.COLLECTOR_ERRORS)
        requests = _family(m.API_REQUESTS)
        for account in snap.accounts:
            base = {"provider": account.provider, "account": account.account}
            data, status = account.data, account.status
            for dataset, ts in sorted(data.watermarks.items()):
                watermark.samples.append(_sample(watermark.name, {**base, "dataset": dataset}, ts))
            for dataset, lag in sorted(data.expected_lags.items()):
                labels = {**base, "dataset": dataset}
                expected_lag.samples.append(_sample(expected_lag.name, labels, lag))
            revisions.samples.append(
                _sample(revisions.name + "_total", base, float(data.revisions))
            )
            overflow.samples.append(
                _sample(overflow.name + "_total", base, float(data.series_overflow))
            )
            up.samples.append(_sample(up.name, base, 1.0 if status.up else 0.0))
            if status.last_success is not None:
                last_success.samples.append(_sample(last_success.name, base, status.last_success))
            for dataset, state in sorted(status.datasets.items()):
                labels = {**base, "dataset": dataset}
                dataset_up.samples.append(_sample(dataset_up.name, labels, float(state.up)))
                if state.last_success is not None:
                    sample = _sample(dataset_success.name, labels, state.last_success)
                    dataset_success.samples.append(sample)
            duration.samples.extend(
                self._histogram(
                    base, status.duration_buckets, status.duration_count, status.duration_sum
                )
            )
            for reason, count in sorted(status.errors.items()):
                errors.samples.append(
                    _sample(errors.name + "_total", {**base, "reason": reason}, float(count))
                )
            for (endpoint, code), count in sorted(status.api_requests.items()):
                labels = {**base, "endpoint": endpoint, "code": code}
                requests.samples.append(_sample(requests.name + "_total", labels, float(count)))
        yield from (watermark, expected_lag, revisions, overflow, up, last_success)
        yield from (dataset_up, dataset_success, duration)
        yield errors
        yield requests

    @staticmethod
    def _histogram(
        base: dict[str, str], buckets: tuple[int, ...], count: int, total: float
    ) -> list[Sample]:
        name = m.COLLECTOR_DURATION.name
        samples = []
        cumulative = 0
        for bound, n in zip(m.DURATION_BUCKETS, buckets, strict=False):
            cumulative += n
            samples.append(_sample(name + "_bucket", {**base, "le": _le(bound)}, float(cumulative)))
        samples.append(_sample(name + "_bucket", {**base, "le": "+Inf"}, float(count)))
        samples.append(_sample(name + "_count", base, float(count)))
        samples.append(_sample(name + "_sum", base, total))
        return samples


def _le(bound: float) -> str:
    return repr(float(bound))
