"""Mistral: the real exporter process against the bundled simulator's Admin API."""

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

EUR_USD = 1.08
CONFIG = """
accounts:
  - name: org
    provider: mistral
    api_key: ${{IT_MISTRAL_KEY}}
    base_url: {base_url}
    poll_interval: 10s
    timeout: 5s
    options: {{currency_rates: {{EUR: 1.08}}}}
"""
BASE = {"provider": "mistral", "account": "org"}
FAMILIES = ("aicost_tokens_total", "aicost_billed_cost_usd_total")


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset({**BASE, **labels}.items())


def expected_series(sim: Simulator, start: int, end: int) -> Series:
    truth = sim.expected_mistral(start, end, EUR_USD)
    out: Series = {name: {} for name in FAMILIES}
    for (model, token_type), n in truth["tokens"].items():
        labels = _labels(model=model, token_type=token_type, modality="text",
                         service_tier="default")
        out["aicost_tokens_total"][labels] = n
    for (model, line_item), usd in truth["cost"].items():
        out["aicost_billed_cost_usd_total"][_labels(model=model, line_item=line_item)] = usd
    return out


@pytest.fixture
def sim(moment: int) -> Iterator[Simulator]:
    yield from frozen_simulator(seed=8, moment=moment)


@pytest.fixture
def config(tmp_path: Path, sim: Simulator) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(base_url=sim.mistral_base_url))
    return path


@PINNED
def test_metrics_equal_the_simulator_ground_truth(
    sim: Simulator, config: Path, tmp_path: Path
) -> None:
    samples = first_poll(config, {"IT_MISTRAL_KEY": sim.mistral_key}, sim, sim.mistral_key,
                         tmp_path)
    assert_month_to_date(expected_series, samples, sim)
    # The spend limit in euros, converted at the configured rate, with Mistral's spend.
    truth = sim.expected_mistral(0, 0, EUR_USD)
    hard = _labels(limit="hard", period="month")
    assert samples["aicost_provider_limit_usd"] == {hard: pytest.approx(truth["limit"])}
    assert samples["aicost_provider_limit_spend_usd"] == {hard: pytest.approx(truth["spend"])}
    assert samples["aicost_provider_limit_enforcing"] == {hard: float(truth["reached"])}
    # One request per calendar month the window touches (two while the settle window reaches
    # into the month before), and the limit once.
    assert 1 <= sim.request_count("mistral", "/usage") <= 2
    assert sim.request_count("mistral", "/spend-limit") == 1


def test_a_malformed_usage_answer_keeps_the_limit_and_recovers(
    sim: Simulator, config: Path, tmp_path: Path
) -> None:
    sim.inject("mistral", "/usage", "malformed")  # a truncated body
    env = {"IT_MISTRAL_KEY": sim.mistral_key}
    expected = month_to_date(expected_series, sim)
    with ExporterProcess(config, env, tmp_path / "faults.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        first = exporter.scrape()
        assert first["aicost_dataset_up"][_labels(dataset="usage")] == 0.0
        assert first["aicost_dataset_up"][_labels(dataset="cost")] == 0.0
        assert first["aicost_dataset_up"][_labels(dataset="limits")] == 1.0
        final = exporter.wait_until(
            lambda s: s["aicost_dataset_up"][_labels(dataset="cost")] == 1.0, timeout=40
        )
        assert_same({name: final.get(name, {}) for name in FAMILIES}, expected)
        assert exporter.stop() == 0
