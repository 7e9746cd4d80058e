"""Hostile peers against the real exporter process, with the figures they leave behind.

    python -m bench.attacks [--label-sets 240000] [--only NAME ...]

* cardinality: one push token invents a new project name in every event (issue #14 measured
  240k series from 61 requests before the cap): series on /metrics, exposition size, scrape time
  and RSS afterwards;
* connections: with a 3 MB exposition (8,000 pushed label sets), scrapes made like Prometheus's
  (gzip, 10 s timeout) while 45 and 600 clients ask for it and never read, then while 700 stay
  silent or send half a request (before: every scrape 503, and 58% failed);
* passwords: scrapes with the right basic-auth password while four clients flood wrong ones,
  and the time to refuse a known and an unknown user name (before: correct scrapes timed out;
  67 ms against 244 ms);
* oversized: a provider answers every request with 150 MB of chunked JSON: the poll's outcome,
  what was read of it and the peak RSS (before: 8.1 GB, and a successful poll);
* Retry-After: OpenAI answers 429 with ``Retry-After: 86400``; how long until the account polls
  successfully again (the backoff cap: 8 poll intervals, here 10 s each).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import bcrypt  # noqa: E402

from bench.memory import rss_mb  # noqa: E402
from exporter.simulator import Simulator  # noqa: E402
from tests.integration.attacks import (  # noqa: E402
    OversizedProvider,
    never_readers,
    push_config,
    push_label_sets,
    refusal_times,
    scrape_flood,
    scrapes,
    silent_connections,
    wrong_passwords,
)
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


def connections() -> None:
    label_sets = 8000
    with tempfile.TemporaryDirectory() as tmp:
        config = push_config(Path(tmp), label_sets)
        with ExporterProcess(config, {}, Path(tmp) / "e.log", log_level="warn") as exporter:
            exporter.wait_ready()
            push_label_sets(exporter.url, label_sets, time.time() - 60)
            exporter.wait_until(
                lambda s: len(s.get("aicost_tokens_total", {})) >= label_sets, timeout=60
            )
            size = len(httpx.get(exporter.url + "/metrics", timeout=30).content)
            url = exporter.url + "/metrics"
            print(f"connections: exposition {size / 1e6:.1f} MB uncompressed")
            print(f"  no attack: {scrapes(url, 20)}")
            for count in (45, 600):  # the measured attack, and more than the 512 threads
                with never_readers(exporter.port, count):
                    print(f"  {count} clients that never read their response: {scrapes(url, 20)}")
            with silent_connections(exporter.port, 700):
                print(f"  700 silent or half-sent connections: {scrapes(url, 20)}")
            with scrape_flood(url) as flood:
                during = scrapes(url, 20)
            print(
                f"  16 clients scraping non-stop ({len(flood)} scrapes, "
                f"{flood.count(503)} answered 503): {during}"
            )
            exporter.stop()


def passwords() -> None:
    password = "the right one"
    users = {"prometheus": bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode()}
    with tempfile.TemporaryDirectory() as tmp:
        web = Path(tmp) / "web.yaml"
        web.write_text(json.dumps({"basic_auth_users": users}))
        config = push_config(Path(tmp), 1000)
        flags = ("--web.config.file", str(web))
        log = Path(tmp) / "e.log"
        with ExporterProcess(config, {}, log, log_level="warn", flags=flags) as exporter:
            exporter.wait_ready(auth=("prometheus", password))
            url = exporter.url + "/metrics"
            times = refusal_times(url, ["prometheus", "nobody"], rounds=9)
            print(
                "passwords (bcrypt cost 10): a wrong password is refused in "
                + ", ".join(f"{t * 1000:.0f} ms for user {u!r}" for u, t in times.items())
            )
            with wrong_passwords(url, "prometheus") as refused:
                correct = scrapes(url, 20, auth=("prometheus", password))
            print(f"  4 clients flooding wrong passwords ({len(refused)} refused): {correct}")
            exporter.stop()


def oversized() -> None:
    with OversizedProvider(150 << 20) as hostile, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            "accounts:\n  - name: oai\n    provider: openai\n    api_key: ${ATTACK_KEY}\n"
            f"    base_url: {hostile.url}/v1\n    poll_interval: 10s\n"
        )
        env = {"ATTACK_KEY": "sk-admin-" + "k" * 40}
        with ExporterProcess(config, env, Path(tmp) / "e.log", log_level="warn") as exporter:
            exporter.wait_ready(60)
            samples = exporter.scrape()
            reasons = {
                dict(labels)["reason"]: value
                for labels, value in samples.get("aicost_collector_errors_total", {}).items()
                if value
            }
            print(
                f"oversized: a 150 MB response; failed polls by reason {reasons}, "
                f"{hostile.sent / 2**20:.0f} MiB sent before the exporter hung up, peak RSS "
                f"{rss_mb('VmHWM', exporter.process.pid):.0f} MB"
            )
            exporter.stop()


def _up(samples: dict[str, dict[frozenset[tuple[str, str]], float]]) -> float | None:
    values = list(samples.get("aicost_collector_up", {}).values())
    return values[0] if values else None


ATTACKS = ("cardinality", "connections", "passwords", "oversized", "retry_after")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label-sets", type=int, default=240_000)
    parser.add_argument("--only", nargs="+", choices=ATTACKS, default=ATTACKS)
    args = parser.parse_args()
    for name in args.only:
        if name == "cardinality":
            cardinality(args.label_sets)
        else:
            globals()[name]()


if __name__ == "__main__":
    main()
