"""xAI: the real exporter process against the bundled simulator's Management API."""

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

CONFIG = """
accounts:
  - name: team
    provider: xai
    api_key: ${{IT_XAI_KEY}}
    base_url: {base_url}
    poll_interval: 10s
    timeout: 5s
"""
BASE = {"provider": "xai", "account": "team"}
FAMILY = "aicost_billed_cost_usd_total"
USAGE = "/v1/billing/teams/7d3a5a8e-0b7c-4c55-9a0b-5e1f3c2d9a10/usage"


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset({**BASE, **labels}.items())


def expected_series(sim: Simulator, start: int, end: int) -> Series:
    truth = sim.expected_xai(start, end)
    return {FAMILY: {_labels(model=model, line_item="usage"): usd
                     for model, usd in truth["cost"].items()}}


@pytest.fixture
def sim(moment: int) -> Iterator[Simulator]:
    yield from frozen_simulator(seed=7, moment=moment)


@pytest.fixture
def config(tmp_path: Path, sim: Simulator) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(base_url=sim.xai_base_url))
    return path


@PINNED
def test_metrics_equal_the_simulator_ground_truth(
    sim: Simulator, config: Path, tmp_path: Path
) -> None:
    samples = first_poll(config, {"IT_XAI_KEY": sim.xai_key}, sim, sim.xai_key, tmp_path)
    assert_month_to_date(expected_series, samples, sim)
    # The team's postpaid spending limit, with the month-end forecast of its spend.
    hard = _labels(limit="hard", period="month")
    assert samples["aicost_provider_limit_usd"] == {hard: sim.expected_xai(0, 0)["limit"]}
    assert samples["aicost_provider_limit_forecast_usd"].keys() == {hard}
    # The key's team is looked up once; one usage request a poll.
    assert sim.request_count("xai", "/auth/management-keys/validation") == 1
    assert sim.request_count("xai", USAGE) >= 1


def test_a_failed_usage_read_keeps_the_last_spend_and_recovers(
    sim: Simulator, config: Path, tmp_path: Path
) -> None:
    sim.inject("xai", USAGE, "500", times=4)  # every attempt of the first poll
    env = {"IT_XAI_KEY": sim.xai_key}
    expected = month_to_date(expected_series, sim)
    with ExporterProcess(config, env, tmp_path / "faults.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        first = exporter.scrape()
        assert first["aicost_dataset_up"][_labels(dataset="cost")] == 0.0
        assert first["aicost_dataset_up"][_labels(dataset="limits")] == 1.0
        final = exporter.wait_until(
            lambda s: s["aicost_dataset_up"][_labels(dataset="cost")] == 1.0, timeout=60
        )
        assert_same({FAMILY: final.get(FAMILY, {})}, expected)
        assert exporter.stop() == 0
