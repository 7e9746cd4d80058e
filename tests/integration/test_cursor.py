"""Cursor: the real exporter process against the bundled simulator's Admin API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.core.ledger import month_start
from exporter.core.records import DAY
from exporter.simulator import Simulator

from .exporter_process import ExporterProcess
from .series import PINNED, Series, assert_same, frozen_simulator, month_to_date, served_something

pytestmark = pytest.mark.integration

CONFIG = """
accounts:
  - name: team
    provider: cursor
    api_key: ${{IT_CURSOR_KEY}}
    base_url: {cursor}
    poll_interval: 10s
    timeout: 5s
    group_by: [model, user]
"""
BASE = {"provider": "cursor", "account": "team"}
FAMILIES = ("aicost_tokens_total", "aicost_requests_total", "aicost_billed_cost_usd_total")


def _labels(**labels: str) -> frozenset[tuple[str, str]]:
    return frozenset({**BASE, **labels}.items())


def expected_series(sim: Simulator, start: int, end: int) -> Series:
    truth = sim.expected_cursor(start, end)
    out: Series = {name: {} for name in FAMILIES}
    for (model, user, token_type), n in truth["tokens"].items():
        labels = _labels(model=model, user_id=user, token_type=token_type, modality="text",
                         service_tier="default")
        out["aicost_tokens_total"][labels] = n
    for (model, user), n in truth["requests"].items():
        labels = _labels(model=model, user_id=user, service_tier="default")
        out["aicost_requests_total"][labels] = n
    for (model, user, line_item), usd in truth["cost"].items():
        labels = _labels(model=model, user_id=user, line_item=line_item)
        out["aicost_billed_cost_usd_total"][labels] = usd
    return out


@pytest.fixture
def sim(moment: int) -> Iterator[Simulator]:
    yield from frozen_simulator(seed=5, moment=moment)


@pytest.fixture
def config(tmp_path: Path, sim: Simulator) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(cursor=sim.cursor_base_url))
    return path


@PINNED
def test_metrics_equal_the_simulator_ground_truth(
    sim: Simulator, config: Path, tmp_path: Path
) -> None:
    expected = month_to_date(expected_series, sim)
    if sim.now() - month_start(sim.now()) > 2 * DAY:  # (none in the first night of a year)
        assert served_something(expected), "the team works every week"
    env = {"IT_CURSOR_KEY": sim.cursor_key}
    with ExporterProcess(config, env, tmp_path / "run.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        samples = exporter.scrape()
        assert samples["aicost_collector_up"] == {frozenset(BASE.items()): 1.0}
        assert_same({name: samples.get(name, {}) for name in FAMILIES}, expected)
        # Members on usage-based pricing have a hard limit, with the spend Cursor counts.
        truth = sim.expected_cursor(int(sim.now()), int(sim.now()))
        hard = {"limit": "hard", "period": "month"}
        assert samples["aicost_provider_limit_usd"] == {
            _labels(user_id=user, **hard): limit for user, limit in truth["limit"].items()
        }
        assert samples["aicost_provider_limit_spend_usd"] == {
            _labels(user_id=user, **hard): spend for user, spend in truth["spend"].items()
        }
        assert samples["aicost_provider_limit_enforcing"] == {
            _labels(user_id=user, **hard): float(truth["spend"][user] >= limit)
            for user, limit in truth["limit"].items()
        }
        assert samples["aicost_provider_limit_forecast_usd"].keys() == (
            samples["aicost_provider_limit_usd"].keys()
        )
        assert exporter.stop() == 0
        log = exporter.log
    assert sim.cursor_key not in log
    # The first poll: the events (the month and the week before it, 1000 a page) and the
    # spend report once.
    assert sim.request_count("cursor", "/teams/spend") == 1


def test_a_rate_limited_poll_recovers_and_a_broken_spend_report_fails_only_limits(
    sim: Simulator, config: Path, tmp_path: Path
) -> None:
    sim.inject("cursor", "/teams/filtered-usage-events", "429", times=1, retry_after=1)
    sim.inject("cursor", "/teams/spend", "malformed")
    env = {"IT_CURSOR_KEY": sim.cursor_key}
    expected = month_to_date(expected_series, sim)
    with ExporterProcess(config, env, tmp_path / "faults.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        first = exporter.scrape()
        datasets = first["aicost_dataset_up"]
        assert datasets[_labels(dataset="usage")] == 1.0  # the 429 was waited out and retried
        assert datasets[_labels(dataset="limits")] == 0.0
        assert first["aicost_collector_errors_total"][_labels(reason="parse")] == 1.0
        assert_same({name: first.get(name, {}) for name in FAMILIES}, expected)
        final = exporter.wait_until(
            lambda s: s["aicost_dataset_up"][_labels(dataset="limits")] == 1.0, timeout=40
        )
        assert final["aicost_provider_limit_usd"]
        assert exporter.stop() == 0
