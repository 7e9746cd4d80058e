"""Pushed usage survives SIGKILL: the real exporter process, real sockets, a real SQLite file.

Every batch the exporter acknowledged must be on /metrics after a restart, and a
client retrying a batch whose answer it never got must not count it twice.
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from .exporter_process import ExporterProcess, Labels
from .series import PINNED

pytestmark = pytest.mark.integration

TOKEN = "it-push-token-DoNotLeak"
PUSH = "/api/v1/usage"
SERIES = {
    "provider": "perplexity",
    "account": "team-a",
    "project_id": "search",
    "project": "search",
    "model": "sonar-pro",
}


def write_config(tmp_path: Path, moment: int) -> Path:
    today = datetime.fromtimestamp(moment, UTC)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
accounts: []
push:
  database: push.db
  refresh_interval: 1s
  accounts:
    - {{name: team-a, provider: perplexity}}
  tokens:
    - {{name: it, token_sha256: {hashlib.sha256(TOKEN.encode()).hexdigest()}, accounts: [team-a]}}
subscriptions:
  - name: seats
    provider: perplexity
    account: perplexity-seats
    amount_usd: 40
    per_seat: true
    seats: 5
    period: monthly
    billing_day: {today.day}
budgets:
  - {{name: perplexity-month, period: month, limit_usd: 1000, basis: billed,
      match: {{provider: perplexity}}}}
"""
    )
    return config


def batch(n: int, moment: int, size: int = 20) -> dict[str, Any]:
    stamp = moment  # the exporter's clock starts there: never in the future, never last month
    return {
        "events": [
            {
                "id": f"b{n}-e{i}",
                "timestamp": stamp,
                "account": "team-a",
                "project": "search",
                "model": "sonar-pro",
                "tokens": {"input": 100, "output": 10},
                "requests": 1,
                "cost_usd": 0.25,
            }
            for i in range(size)
        ]
    }


def push(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(url + PUSH, json=body, headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=10)  # fmt: skip


def value(samples: dict[str, dict[Labels, float]], name: str, **extra: str) -> float:
    labels = frozenset({**SERIES, **extra}.items())
    return samples.get(name, {}).get(labels, 0.0)


def shows(requests: int) -> Any:
    def check(samples: dict[str, dict[Labels, float]]) -> bool:
        return value(samples, "aicost_requests_total", service_tier="default") == requests

    return check


@PINNED
def test_acknowledged_batches_survive_sigkill(tmp_path: Path, moment: int) -> None:
    config = write_config(tmp_path, moment)
    log = tmp_path / "exporter.log"
    acknowledged = 0
    for round_ in range(3):
        with ExporterProcess(config, {}, log, now=moment, ticking=True) as exporter:
            exporter.wait_ready()
            samples = exporter.wait_until(shows(acknowledged * 20), timeout=30)
            # Everything acknowledged before the last SIGKILL is there, nothing twice.
            assert value(samples, "aicost_billed_cost_usd_total", line_item="pushed") == (
                pytest.approx(acknowledged * 20 * 0.25))  # fmt: skip
            assert value(samples, "aicost_tokens_total", token_type="output", modality="text",
                         service_tier="default") == acknowledged * 20 * 10  # fmt: skip
            seats = {
                ("provider", "perplexity"),
                ("account", "perplexity-seats"),
                ("project_id", "seats"),
                ("project", "seats"),
                ("line_item", "subscription"),
            }
            assert samples["aicost_billed_cost_usd_total"][frozenset(seats)] == 200.0
            budget = frozenset({("budget", "perplexity-month"), ("period", "month")})
            assert samples["aicost_budget_spend_usd"][budget] == pytest.approx(
                200 + acknowledged * 20 * 0.25)  # fmt: skip
            if round_:
                # A retry of the batch acknowledged just before the kill is all duplicates.
                retry = push(exporter.url, batch(acknowledged - 1, moment))
                assert retry.json() == {"accepted": 0, "duplicates": 20}
            for _ in range(2):
                response = push(exporter.url, batch(acknowledged, moment))
                assert response.status_code == 200, response.text
                assert response.json() == {"accepted": 20, "duplicates": 0}
                acknowledged += 1
            exporter.process.kill()  # SIGKILL right after the acknowledgement
            exporter.process.wait()
    assert TOKEN not in log.read_text()


def test_sigkill_while_pushing_then_retry_counts_everything_once(
    tmp_path: Path, moment: int
) -> None:
    config = write_config(tmp_path, moment)
    log = tmp_path / "exporter.log"
    sent: list[int] = []
    unacknowledged: list[int] = []
    with ExporterProcess(config, {}, log, now=moment, ticking=True) as exporter:
        exporter.wait_ready()
        stop = threading.Event()

        def pusher() -> None:
            n = 0
            while not stop.is_set():
                try:
                    response = push(exporter.url, batch(n, moment, size=50))
                except httpx.TransportError:
                    unacknowledged.append(n)
                    return
                assert response.status_code == 200
                sent.append(n)
                n += 1

        thread = threading.Thread(target=pusher)
        thread.start()
        deadline = time.monotonic() + 10
        while len(sent) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        exporter.process.kill()
        exporter.process.wait()
        stop.set()
        thread.join()
    assert len(sent) >= 10
    with ExporterProcess(config, {}, log, now=moment, ticking=True) as exporter:
        exporter.wait_ready()
        samples = exporter.wait_until(
            lambda s: value(s, "aicost_requests_total", service_tier="default") >= len(sent) * 50
        )
        shown = value(samples, "aicost_requests_total", service_tier="default")
        # The batch in flight at the kill is either wholly stored or wholly absent.
        assert shown in (len(sent) * 50, (len(sent) + len(unacknowledged)) * 50)
        # The client retries what it got no answer for; then everything counts exactly once.
        for n in unacknowledged:
            response = push(exporter.url, batch(n, moment, size=50))
            assert response.status_code == 200
            assert response.json()["accepted"] + response.json()["duplicates"] == 50
        total = (len(sent) + len(unacknowledged)) * 50
        samples = exporter.wait_until(shows(total), timeout=30)
        assert value(samples, "aicost_billed_cost_usd_total", line_item="pushed") == (
            pytest.approx(total * 0.25))  # fmt: skip
        assert exporter.stop() == 0
