"""FOCUS reader throughput: rows per second on a generated export (default 1 GB), and the time
of a second poll over the same files (parsed once, so it is cheap).

Run: ``python -m bench.focus [SIZE_MB]`` (``make bench`` runs it at 1024 MB; the file is written
to a temporary directory and removed afterwards).
"""

from __future__ import annotations

import asyncio
import csv
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from exporter.sources.providers.base import ProviderSettings
from exporter.sources.providers.focus import FocusProvider

NOVEMBER = 1_793_491_200  # 2026-11-01T00:00:00Z
HEADER = (
    "BilledCost,BillingAccountId,BillingCurrency,BillingPeriodStart,ChargeCategory,"
    "ChargePeriodStart,ChargePeriodEnd,ConsumedQuantity,ConsumedUnit,EffectiveCost,ProviderName,"
    "ServiceCategory,ServiceName,SkuId,SkuMeter,SubAccountId,SubAccountName,Tags"
).split(",")
SERVICES = (
    ("AI and Machine Learning", "Amazon Bedrock", "USE1-NovaPro-{}-tokens"),
    ("AI and Machine Learning", "Amazon Bedrock", "USE1-Llama3-3-70B-{}-tokens"),
    ("Compute", "Amazon Elastic Compute Cloud", "USE1-BoxUsage:m5.large"),
    ("Storage", "Amazon Simple Storage Service", "USE1-TimedStorage-ByteHrs"),
)


def write_export(path: Path, size: int) -> int:
    """An AWS-like FOCUS CSV of about ``size`` bytes (half the rows AI); its row count."""
    rows = 0
    with path.open("w", newline="") as file:
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(HEADER)
        while file.tell() < size:
            for index in range(1000):
                category, service, meter = SERVICES[index % 4]
                day = NOVEMBER + (index % 30) * 86_400
                account = f"{100000000000 + index % 40}"
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(day))
                end = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(day + 86_400))
                writer.writerow(
                    (
                        "0.0123",
                        "123456789012",
                        "USD",
                        "2026-11-01T00:00:00.000Z",
                        "Usage",
                        stamp,
                        end,
                        "15000",
                        "Tokens",
                        "0.0123",
                        "AWS",
                        category,
                        service,
                        f"SKU{index % 97}",
                        meter.format("input" if index % 8 < 4 else "output"),
                        account,
                        f"team-{index % 40}",
                        '{"user:team":"search"}',
                    )
                )
            rows += 1000
    return rows


def main(size_mb: int = 1024) -> None:
    directory = Path(tempfile.mkdtemp(prefix="bench-focus-"))
    try:
        export = directory / "focus-00001.csv"
        rows = write_export(export, size_mb * 1024 * 1024)
        settings = ProviderSettings(
            account="cloud", api_key=lambda: "", options={"directory": directory}
        )
        source = FocusProvider(settings, observe=lambda endpoint, code: None)
        started = time.perf_counter()
        result = asyncio.run(source.fetch(NOVEMBER, NOVEMBER + 30 * 86_400))
        first = time.perf_counter() - started
        assert not result.failures, result.failures
        started = time.perf_counter()
        asyncio.run(source.fetch(NOVEMBER, NOVEMBER + 30 * 86_400))
        again = time.perf_counter() - started
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = export.stat().st_size / 1024 / 1024
        print(
            f"focus reader: {size:.0f} MB, {rows:,} rows in {first:.1f} s = "
            f"{rows / first:,.0f} rows/s ({size / first:.1f} MB/s); "
            f"unchanged files again: {again * 1000:.1f} ms; peak RSS {peak:.0f} MB"
        )
    finally:
        shutil.rmtree(directory)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1024)
