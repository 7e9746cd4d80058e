"""Hostile peers against the real exporter process, with the figures they leave behind.

    python -m bench.attacks [--label-sets 240000]

* cardinality: one push token invents a new project name in every event (issue #14 measured
  240k series from 61 requests before the cap): series on /metrics, exposition size, scrape time
  and RSS afterwards;
* Retry-After: OpenAI answers 429 with ``Retry-After: 86400``; how long until the account polls
  successfully again (the backoff cap: 8 poll intervals, here 10 s each).
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.memory import rss_mb  # noqa: E402
from exporter.simulator import Simulator  # noqa: E402
from tests.integration.exporter_process import ExporterProcess  # noqa: E402

TOKEN = "bench-attack-token"
PER_REQUEST = 1000


def cardinality(label_sets: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        config.write_text(
            "accounts: []\npush:\n  database: push.db\n  refresh_interval: 1s\n"
            "  accounts: [{name: team-a, provider: perplexity}]\n"
            f"  tokens: [{{name: t, token_sha256: {digest}, accounts: [team-a]}}]\n"
        )
        log = Path(tmp) / "exporter.log"
        with ExporterProcess(config, {}, log, log_level="warn") as exporter:
            exporter.wait_ready()
            rss_before = rss_mb("VmRSS", exporter.process.pid)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            stamp = time.time() - 60
            started = time.monotonic()
            with httpx.Client(headers=headers, timeout=60) as client:
                for n in range(0, label_sets, PER_REQUEST):
                    events = [
                        {"id": f"e{i}", "timestamp": stamp, "account": "team-a",
                         "project": f"random-{i}", "model": "sonar", "tokens": {"input": 1}}
                        for i in range(n, min(n + PER_REQUEST, label_sets))
                    ]  # fmt: skip
                    client.post(exporter.url + "/api/v1/usage", json={"events": events})
            pushed = time.monotonic() - started
            exporter.wait_until(
                lambda s: sum(s.get("aicost_series_overflow_total", {}).values()) > 0, timeout=120
            )
            time.sleep(2)  # a refresh after the last push
            times, size = [], 0
            for _ in range(20):
                t = time.perf_counter()
                body = httpx.get(exporter.url + "/metrics", timeout=60).content
                times.append(time.perf_counter() - t)
                size = len(body)
            text = body.decode()
            lines = text.splitlines()
            series = sum(1 for line in lines if line.startswith("aicost_tokens_total{"))
            overflow = [line for line in lines if line.startswith("aicost_series_overflow_total")]
            print(
                f"cardinality: {label_sets:,} new label sets in {label_sets // PER_REQUEST} "
                f"requests ({pushed:.1f} s): {series} token series on /metrics, {overflow[0]}; "
                f"exposition {size / 1e3:.0f} kB, scrape median "
                f"{statistics.median(times) * 1000:.1f} ms; RSS {rss_before:.0f} -> "
                f"{rss_mb('VmRSS', exporter.process.pid):.0f} MB"
            )
            exporter.stop()


def retry_after() -> None:
    with Simulator(seed=3) as sim, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            "accounts:\n  - name: oai\n    provider: openai\n    api_key: ${ATTACK_KEY}\n"
            f"    base_url: {sim.openai_base_url}\n    poll_interval: 10s\n"
        )
        log = Path(tmp) / "exporter.log"
        with ExporterProcess(config, {"ATTACK_KEY": sim.openai_key}, log) as exporter:
            exporter.wait_ready()
            sim.inject("openai", "*", "429", times=1, retry_after=86_400)
            exporter.wait_until(lambda s: _up(s) == 0.0, timeout=60)
            down = time.monotonic()
            exporter.wait_until(lambda s: _up(s) == 1.0, timeout=300)
            print(
                "Retry-After 86400 s: the account polled successfully again after "
                f"{time.monotonic() - down:.0f} s (cap: 8 poll intervals of 10 s)"
            )
            exporter.stop()


def _up(samples: dict[str, dict[frozenset[tuple[str, str]], float]]) -> float | None:
    values = list(samples.get("aicost_collector_up", {}).values())
    return values[0] if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label-sets", type=int, default=240_000)
    args = parser.parse_args()
    cardinality(args.label_sets)
    retry_after()


if __name__ == "__main__":
    main()
