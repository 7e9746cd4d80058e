"""Scrape latency of the exporter's web server against a plain prometheus_client exporter.

Both serve the same token series in one process (ours from a snapshot, theirs from
prometheus_client gauges through ``start_http_server``), and one client scrapes them in turn,
sequentially, with the headers Prometheus sends (OpenMetrics, gzip).
"""

from __future__ import annotations

import statistics
import time

import httpx
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from bench.render import series_keys, snapshot_with
from exporter.web.http import MetricsApp
from exporter.web.server import WebServer

PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    "Accept-Encoding": "gzip",
}
LABELS = ("provider", "account", "project_id", "project", "model", "token_type", "modality",
          "service_tier")  # fmt: skip


def baseline_port(count: int) -> int:
    """A prometheus_client exporter of ``count`` token series; its port."""
    registry = CollectorRegistry()
    gauge = Gauge("aicost_tokens", "baseline", LABELS, registry=registry)
    for _, dims, extra in series_keys(count):
        gauge.labels("openai", "main", dims.project_id, dims.project_id, dims.model, *extra).set(1)
    server, _ = start_http_server(0, addr="127.0.0.1", registry=registry)
    return int(server.server_port)


def scrape_times(client: httpx.Client, url: str, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        response = client.get(url, headers=PROMETHEUS_HEADERS)
        response.read()
        times.append(time.perf_counter() - start)
        assert response.status_code == 200
    return times


def p99(times: list[float]) -> float:
    return sorted(times)[int(len(times) * 0.99) - 1]


def compare(count: int, scrapes: int) -> None:
    snap, _ = snapshot_with(count)
    ours = WebServer("127.0.0.1:0", MetricsApp(lambda: snap))
    ours.start()
    theirs = baseline_port(count)
    try:
        with httpx.Client(timeout=30) as client:
            urls = {"ours": f"http://127.0.0.1:{ours.port}/metrics",
                    "theirs": f"http://127.0.0.1:{theirs}/metrics"}  # fmt: skip
            times: dict[str, list[float]] = {"ours": [], "theirs": []}
            for _ in range(10):  # interleaved rounds: host speed drifts
                for name, url in urls.items():
                    times[name] += scrape_times(client, url, scrapes // 10)
    finally:
        ours.stop()
    median = {name: statistics.median(t) for name, t in times.items()}
    tail = {name: p99(t) for name, t in times.items()}
    print(
        f"scrape {count:>6} series: median {median['ours'] * 1000:6.2f} ms vs prometheus_client "
        f"{median['theirs'] * 1000:6.2f} ms (ratio {median['ours'] / median['theirs']:4.2f}), "
        f"p99 {tail['ours'] * 1000:6.2f} vs {tail['theirs'] * 1000:6.2f} ms "
        f"(ratio {tail['ours'] / tail['theirs']:4.2f})"
    )


def main() -> None:
    compare(160, 2000)
    compare(10_000, 200)


if __name__ == "__main__":
    main()
