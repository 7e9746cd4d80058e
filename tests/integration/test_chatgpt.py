"""ChatGPT workspace: the real exporter process against the simulator's Codex Analytics API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.simulator import Simulator

from .exporter_process import ExporterProcess
from .series import (
    PINNED,
    Series,
    assert_month_to_date,
    assert_same,
    first_poll,
    frozen_simulator,
    month_to_date,
)

pytestmark = pytest.mark.integration

RATE = 0.04
CONFIG = """
accounts:
  - name: ws
    provider: chatgpt
    api_key: ${{IT_CHATGPT_KEY}}
    base_url: {base_url}
    poll_interval: 10s
    timeout: 5s
    group_by: [model, user]
    options: {{workspace_id: {workspace}, credit_usd_rate: 0.04}}
"""
BASE = {"provider": "chatgpt", "account": "ws"}
FAMILIES = ("aicost_credits_used_total", "aicost_tokens_total", "aicost_billed_cost_usd_total")
USAGE = "/v1/analytics/codex/workspaces/ws-4f1d2c9a-demo/usage"


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    # An empty label value is no label (credits of no model).
    return frozenset({**BASE, **{k: v for k, v in labels.items() if v}}.items())


def expected_series(sim: Simulator, start: int, end: int) -> Series:
    truth = sim.expected_chatgpt(start, end, RATE)
    out: Series = {name: {} for name in FAMILIES}
    for (model, user), credits in truth["credits"].items():
        out["aicost_credits_used_total"][_labels(model=model, user_id=user,
                                                 product="codex")] = credits
    for (model, user), usd in truth["cost"].items():
        out["aicost_billed_cost_usd_total"][_labels(model=model, user_id=user,
                                                    line_item="credits")] = usd
    for (model, user, token_type), n in truth["tokens"].items():
        labels = _labels(model=model, user_id=user, token_type=token_type, modality="text",
                         service_tier="default")
        out["aicost_tokens_total"][labels] = n
    return out


@pytest.fixture
def sim(moment: int) -> Iterator[Simulator]:
    yield from frozen_simulator(seed=9, moment=moment)


@pytest.fixture
def config(tmp_path: Path, sim: Simulator) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(base_url=sim.chatgpt_base_url, workspace=sim.chatgpt_workspace))
    return path


@PINNED
def test_metrics_equal_the_simulator_ground_truth(
    sim: Simulator, config: Path, tmp_path: Path
) -> None:
    samples = first_poll(config, {"IT_CHATGPT_KEY": sim.chatgpt_key}, sim, sim.chatgpt_key,
                         tmp_path)
    assert_month_to_date(expected_series, samples, sim)
    assert sim.request_count("chatgpt", USAGE) >= 1


def test_a_failed_read_keeps_the_last_credits_and_recovers(
    sim: Simulator, config: Path, tmp_path: Path
) -> None:
    sim.inject("chatgpt", USAGE, "malformed")
    env = {"IT_CHATGPT_KEY": sim.chatgpt_key}
    expected = month_to_date(expected_series, sim)
    with ExporterProcess(config, env, tmp_path / "faults.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        first = exporter.scrape()
        assert first["aicost_dataset_up"][_labels(dataset="codex")] == 0.0
        final = exporter.wait_until(
            lambda s: s["aicost_dataset_up"][_labels(dataset="codex")] == 1.0, timeout=40
        )
        assert_same({name: final.get(name, {}) for name in FAMILIES}, expected)
        assert exporter.stop() == 0
