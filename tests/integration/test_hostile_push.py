"""A push client inventing a new project name in every event cannot grow the exposition.

Measured before the cap: one token created 240k series in 61 requests (a 145 MB exposition,
19 s scrapes). Now the account keeps its first ``max_label_sets`` label sets and counts the rest
under "(other)": the totals stay exact, the series stay bounded, and so across a restart.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from .exporter_process import ExporterProcess, Labels
from .series import MOMENTS

pytestmark = pytest.mark.integration

TOKEN = "hostile-push-token-DoNotLeak"
CAP, BATCHES, PER_BATCH = 100, 20, 100
MOMENT = MOMENTS["mid-month"]


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"""
accounts: []
push:
  database: push.db
  refresh_interval: 1s
  accounts:
    - {{name: team-a, provider: perplexity, max_label_sets: {CAP}}}
  tokens:
    - {{name: it, token_sha256: {hashlib.sha256(TOKEN.encode()).hexdigest()}, accounts: [team-a]}}
"""
    )
    return config


def tokens_of(samples: dict[str, dict[Labels, float]]) -> dict[Labels, float]:
    return {
        labels: value
        for labels, value in samples.get("aicost_tokens_total", {}).items()
        if ("account", "team-a") in labels
    }


def test_a_flood_of_new_label_sets_is_folded_and_counted_exactly(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with ExporterProcess(config, {}, tmp_path / "exporter.log", now=MOMENT) as exporter:
        exporter.wait_ready()
        for n in range(BATCHES):
            events = [
                {
                    "id": f"b{n}-e{i}",
                    "timestamp": MOMENT - 60,
                    "account": "team-a",
                    "project": f"random-{n}-{i}",  # a new label set in every event
                    "model": "sonar-pro",
                    "tokens": {"input": 100},
                }
                for i in range(PER_BATCH)
            ]
            response = httpx.post(exporter.url + "/api/v1/usage", json={"events": events},
                                  headers=headers, timeout=10)  # fmt: skip
            assert response.status_code == 200, response.text
        folded = BATCHES * PER_BATCH - CAP
        samples = exporter.wait_until(
            lambda s: s.get("aicost_series_overflow_total", {}).get(
                frozenset({"provider": "perplexity", "account": "team-a"}.items())
            ) == folded
        )
        tokens = tokens_of(samples)
        assert len(tokens) == CAP + 1  # the first CAP projects, and "(other)"
        assert sum(tokens.values()) == BATCHES * PER_BATCH * 100  # not a token lost
        other = [v for labels, v in tokens.items() if ("project", "(other)") in labels]
        assert other == [folded * 100.0]
        size = len(httpx.get(exporter.url + "/metrics", timeout=10).content)
        assert exporter.stop() == 0
    # A restart rebuilds the month from the push store with the same bound.
    with ExporterProcess(config, {}, tmp_path / "exporter.log", now=MOMENT) as exporter:
        exporter.wait_ready()
        again = tokens_of(exporter.wait_until(lambda s: len(tokens_of(s)) == CAP + 1))
        assert again == tokens
        assert len(httpx.get(exporter.url + "/metrics", timeout=10).content) <= size + 1024
        assert exporter.stop() == 0
