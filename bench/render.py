"""Exposition cost of the snapshot collector versus prometheus_client's own gauges."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import generate_latest

from exporter.core.ledger import Ledger
from exporter.core.records import DAY, Batch, Dataset, Dims, Family, FetchResult, SeriesKey
from exporter.core.snapshot import AccountSnapshot, Snapshot, build_account_data
from exporter.web.collector import SnapshotCollector

NOW = 1795000000.0  # 2026-11-18
TOKEN_TYPES = ("input", "input_cache_read", "input_cache_write", "output")


def series_keys(count: int) -> list[SeriesKey]:
    """``count`` token series over projects x models x token types."""
    keys: list[SeriesKey] = []
    i = 0
    while len(keys) < count:
        project, model = f"proj_{i // 50:04d}", f"model-{i % 50:02d}"
        for token_type in TOKEN_TYPES:
            keys.append((Family.TOKENS, Dims(project, model), (token_type, "text", "default")))
        i += 1
    return keys[:count]


def snapshot_with(count: int, days: int = 18) -> tuple[Snapshot, Ledger]:
    """A one-account snapshot with ``count`` series, each with data on ``days`` days."""
    ledger = Ledger()
    month = 1793491200
    batch = Batch(Dataset.USAGE, month, int(NOW))
    keys = series_keys(count)
    for d in range(days):  # day after day, as providers return their buckets
        for key in keys:
            batch.add(month + d * DAY, key, 1000.0 + d)
    ledger.apply(FetchResult([batch]), NOW, settled_before=int(NOW) // DAY * DAY - 2 * DAY)
    names = {f"proj_{i:04d}": f"Project {i}" for i in range(count // 200 + 1)}
    data = build_account_data("openai", "main", month, ledger.totals, names, ledger.watermarks, 0)
    return Snapshot((AccountSnapshot("openai", "main", data),)), ledger


def best_of(fn: object, repeat: int = 5) -> float:
    assert callable(fn)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def compare(count: int) -> tuple[float, float, int]:
    """(collector seconds, plain-gauge seconds, body bytes) for ``count`` series."""
    snap, _ = snapshot_with(count)
    ours = CollectorRegistry()
    ours.register(SnapshotCollector(lambda: snap))
    baseline = CollectorRegistry()
    gauge = Gauge(
        "aicost_tokens_total_baseline",
        "baseline",
        list(
            (
                "provider",
                "account",
                "project_id",
                "project",
                "model",
                "token_type",
                "modality",
                "service_tier",
            )
        ),
        registry=baseline,
    )
    for _, dims, extra in series_keys(count):
        gauge.labels("openai", "main", dims.project_id, dims.project_id, dims.model, *extra).set(
            1000.0
        )
    body = generate_latest(ours)
    return (
        best_of(lambda: generate_latest(ours)),
        best_of(lambda: generate_latest(baseline)),
        len(body),
    )


def main() -> None:
    for count in (10_000, 50_000):
        ours, base, size = compare(count)
        print(
            f"render {count:>6} series: collector {ours * 1000:7.1f} ms, plain gauges "
            f"{base * 1000:7.1f} ms, ratio {ours / base:4.2f} (target <= 1.5), "
            f"body {size / 1e6:.1f} MB"
        )


if __name__ == "__main__":
    main()
