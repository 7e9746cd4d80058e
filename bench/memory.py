"""Resident memory of an exporter process holding ``N`` month-to-date series.

Run in a fresh interpreter (bench/run.py does): it imports the whole daemon,
feeds one account's ledger a month of per-day data for N series (as a first
poll does), builds the snapshot and serves one scrape as Prometheus asks for it
(OpenMetrics, gzip; the exposition keeps that body until the next snapshot), then
prints the peak and current RSS.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import exporter.daemon  # noqa: F401  (the real process imports all of it)
from bench.render import snapshot_with
from bench.scrape import PROMETHEUS_HEADERS
from exporter.web.exposition import Exposition


def rss_mb(field: str, pid: int | str = "self") -> float:
    """``field`` of /proc/PID/status (VmRSS, VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    baseline = rss_mb("VmRSS")
    snap, ledger = snapshot_with(count, days=25)
    exposition = Exposition(lambda: snap)
    exposition.body(PROMETHEUS_HEADERS["Accept"], gzipped=True)
    gc.collect()
    print(
        f"memory {count} series: RSS {rss_mb('VmRSS'):.0f} MB after first poll and one scrape, "
        f"peak {rss_mb('VmHWM'):.0f} MB, empty process {baseline:.0f} MB (target <= 120 MB)"
    )


if __name__ == "__main__":
    main()
