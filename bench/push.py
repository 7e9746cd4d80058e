"""Push API throughput: accepted events per second over HTTP into the real exporter process.

Starts ``python -m exporter run`` with a push-only configuration in a temporary
directory (the SQLite file is on that disk, with ``synchronous=FULL``), then
``--clients`` threads each POST batches of ``--batch`` new events for
``--seconds``. Every batch is acknowledged only after its commit reached the disk.

    python -m bench.push [--clients 8] [--batch 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.integration.exporter_process import ExporterProcess

TOKEN = "bench-push-token"


def _config(directory: Path) -> Path:
    path = directory / "config.yaml"
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    path.write_text(
        "accounts: []\n"
        "push:\n"
        "  database: push.db\n"
        "  accounts: [{name: bench, provider: openai}]\n"
        f"  tokens: [{{name: bench, token_sha256: {digest}, accounts: [bench]}}]\n"
    )
    return path


def _events(worker: int, n: int, size: int, stamp: float) -> dict[str, Any]:
    return {
        "events": [
            {
                "id": f"w{worker}-b{n}-e{i}",
                "timestamp": stamp,
                "account": "bench",
                "project": f"proj-{i % 5}",
                "model": "gpt-4.1",
                "tokens": {"input": 1200, "input_cache_read": 300, "output": 250},
                "requests": 1,
                "cost_usd": 0.0051,
            }
            for i in range(size)
        ]
    }


def run(clients: int, size: int, seconds: float) -> tuple[int, float, list[float]]:
    """(accepted events, elapsed seconds, per-request latencies)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp))
        log = Path(tmp) / "exporter.log"
        flags = ("--web.max-requests", "0")
        with ExporterProcess(config, {}, log, flags=flags, log_level="warn") as exporter:
            exporter.wait_ready()
            url = exporter.url
            accepted = [0] * clients
            latencies: list[float] = []
            lock = threading.Lock()
            stamp = time.time() - 60
            start = time.monotonic()
            end = start + seconds

            def client(worker: int) -> None:
                headers = {"Authorization": f"Bearer {TOKEN}"}
                n = 0
                with httpx.Client(headers=headers, timeout=30) as http:
                    while time.monotonic() < end:
                        body = _events(worker, n, size, stamp)
                        sent = time.monotonic()
                        response = http.post(url + "/api/v1/usage", json=body)
                        took = time.monotonic() - sent
                        response.raise_for_status()
                        accepted[worker] += response.json()["accepted"]
                        with lock:
                            latencies.append(took)
                        n += 1

            threads = [threading.Thread(target=client, args=(w,)) for w in range(clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return sum(accepted), time.monotonic() - start, latencies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    events, elapsed, latencies = run(args.clients, args.batch, args.seconds)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    print(
        f"push API: {events / elapsed:,.0f} accepted events/s "
        f"({events:,} events in {len(latencies):,} batches of {args.batch}, "
        f"{args.clients} clients, {elapsed:.1f}s; batch latency p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms)"
    )


if __name__ == "__main__":
    main()
