"""The poll path's check of label values for secrets: seconds for a first poll's batch.

A first poll of a month holds every series on each day so far; the poller judges each distinct
series once and each distinct label value once (``AccountPoller._drop_secret_labels``).
"""

from __future__ import annotations

import time

from bench.render import series_keys
from exporter.config.secrets import redact
from exporter.core.records import DAY, Batch, Dataset
from exporter.scheduler import AccountPoller

KEY = "sk-admin-BENCH-0123456789abcdef0123"


class _Redacting:
    name = "bench"

    def redact(self, text: str) -> str:
        return redact(text, [KEY])


def seconds(count: int, days: int) -> float:
    """Best of three checks of a batch of ``count`` series on ``days`` days."""
    best = float("inf")
    for _ in range(3):
        batch = Batch(Dataset.USAGE, 0, 0)
        keys = series_keys(count)
        for day in range(days):
            for key in keys:
                batch.add(day * DAY, key, 1.0)
        poller = AccountPoller.__new__(AccountPoller)  # only its provider is used
        poller.provider = _Redacting()  # type: ignore[assignment]
        start = time.perf_counter()
        poller._drop_secret_labels(batch)
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    for count in (10_000, 50_000):
        print(f"secret check of label values, first poll of {count} series x 25 days: "
              f"{seconds(count, 25) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
