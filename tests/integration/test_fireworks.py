"""Fireworks: the real exporter process against the bundled simulator's billing API."""

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
  - name: fw
    provider: fireworks
    api_key: ${{IT_FIREWORKS_KEY}}
    base_url: {base_url}
    poll_interval: 10s
    timeout: 5s
    group_by: [model, api_key]
    options: {{account_id: {account}}}
"""
BASE = {"provider": "fireworks", "account": "fw"}
FAMILIES = ("aicost_tokens_total", "aicost_billed_cost_usd_total")
COSTS = "/v1/accounts/demo-account/usageCosts:query"
USAGE = "/v1/accounts/demo-account/billingUsage"


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset({**BASE, **labels}.items())


def expected_series(sim: Simulator, start: int, end: int) -> Series:
    truth = sim.expected_fireworks(start, end)
    out: Series = {name: {} for name in FAMILIES}
    for (model, key, token_type), n in truth["tokens"].items():
        labels = _labels(model=model, api_key_id=key, token_type=token_type, modality="text",
                         service_tier="default")
        out["aicost_tokens_total"][labels] = n
    for model, usd in truth["cost"].items():
        # Costs group by one dimension besides the day: the model, the first of group_by.
        out["aicost_billed_cost_usd_total"][_labels(model=model, line_item="usage")] = usd
    return out


@pytest.fixture
def sim(moment: int) -> Iterator[Simulator]:
    yield from frozen_simulator(seed=6, moment=moment)


@pytest.fixture
def config(tmp_path: Path, sim: Simulator) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(base_url=sim.fireworks_base_url, account=sim.fireworks_account))
    return path


@PINNED
def test_metrics_equal_the_simulator_ground_truth(
    sim: Simulator, config: Path, tmp_path: Path
) -> None:
    samples = first_poll(config, {"IT_FIREWORKS_KEY": sim.fireworks_key}, sim,
                         sim.fireworks_key, tmp_path)
    assert_month_to_date(expected_series, samples, sim)
    assert samples["aicost_estimated_cost_usd_total"]  # tokens of priced models are estimated
    # One request per report and 31 days: the month and the settle window before it fit in two.
    assert 1 <= sim.request_count("fireworks", COSTS) <= 2
    assert 1 <= sim.request_count("fireworks", USAGE) <= 2


def test_a_broken_cost_page_keeps_tokens_and_recovers(
    sim: Simulator, config: Path, tmp_path: Path
) -> None:
    sim.inject("fireworks", COSTS, "malformed")
    env = {"IT_FIREWORKS_KEY": sim.fireworks_key}
    expected = month_to_date(expected_series, sim)
    with ExporterProcess(config, env, tmp_path / "faults.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        first = exporter.scrape()
        datasets = first["aicost_dataset_up"]
        assert datasets[_labels(dataset="cost")] == 0.0
        assert datasets[_labels(dataset="usage")] == 1.0
        assert_same({"aicost_tokens_total": first.get("aicost_tokens_total", {})},
                    {"aicost_tokens_total": expected["aicost_tokens_total"]})
        final = exporter.wait_until(
            lambda s: s["aicost_dataset_up"][_labels(dataset="cost")] == 1.0, timeout=40
        )
        assert_same({name: final.get(name, {}) for name in FAMILIES}, expected)
        assert exporter.stop() == 0
