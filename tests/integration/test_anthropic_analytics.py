"""Claude Enterprise Analytics API: the real exporter process against the bundled simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.core.ledger import history_start
from exporter.simulator import Simulator

from .exporter_process import ExporterProcess
from .series import PINNED, Series, assert_same, frozen_simulator, month_to_date

pytestmark = pytest.mark.integration

CONFIG = """
accounts:
  - name: ent
    provider: anthropic
    api_key: ${{IT_ANALYTICS_KEY}}
    base_url: {anthropic}
    poll_interval: 10s
    timeout: 5s
    group_by: [model]
    options: {{api: analytics}}
  - name: ent-users
    provider: anthropic
    api_key: ${{IT_ANALYTICS_KEY}}
    base_url: {anthropic}
    poll_interval: 10s
    timeout: 5s
    group_by: [model, user]
    options: {{api: analytics}}
"""
FAMILIES = ("aicost_tokens_total", "aicost_billed_cost_usd_total", "aicost_tool_calls_total")


def _put(out: Series, metric: str, labels: dict[str, str], value: float) -> None:
    key = frozenset((k, v) for k, v in labels.items() if v)
    out.setdefault(metric, {})
    out[metric][key] = out[metric].get(key, 0.0) + value


def expected_series(sim: Simulator, start: int, end: int) -> Series:
    """What /metrics must show for both accounts, from the simulator's ground truth."""
    truth = sim.expected_anthropic_analytics(start, end)
    out: Series = {}
    for account in ("ent", "ent-users"):
        base = {"provider": "anthropic", "account": account}
        for (model, token_type, speed, geo), value in truth["tokens"].items():
            labels = {**base, "model": model, "token_type": token_type, "modality": "text",
                      "service_tier": "standard", "speed": speed, "inference_geo": geo}
            _put(out, "aicost_tokens_total", labels, value)
        for (model,), value in truth["web_searches"].items():
            _put(out, "aicost_tool_calls_total", {**base, "model": model, "tool": "web_search"},
                 value)
    # ent: by product (no product: "other") and cost type.
    base = {"provider": "anthropic", "account": "ent"}
    for (product, model, cost_type), value in truth["cost"].items():
        labels = {**base, "model": model, "line_item": product or "other", "cost_type": cost_type}
        _put(out, "aicost_billed_cost_usd_total", labels, value)
    # ent-users: each seat user's cost, and the organization's rest without a user.
    base = {"provider": "anthropic", "account": "ent-users"}
    rest = dict(truth["cost"])
    for (user, product, model, cost_type), value in truth["user_cost"].items():
        labels = {**base, "model": model, "line_item": product, "cost_type": cost_type,
                  "user_id": user}
        _put(out, "aicost_billed_cost_usd_total", labels, value)
        rest[product, model, cost_type] -= value
    for (product, model, cost_type), value in rest.items():
        if value > 1e-9:
            labels = {**base, "model": model, "line_item": product or "other",
                      "cost_type": cost_type}
            _put(out, "aicost_billed_cost_usd_total", labels, value)
    return out


def relevant(samples: Series) -> Series:
    return {metric: dict(samples.get(metric, {})) for metric in FAMILIES}


@pytest.fixture
def sim(moment: int) -> Iterator[Simulator]:
    yield from frozen_simulator(seed=5, moment=moment)


@pytest.fixture
def config(tmp_path: Path, sim: Simulator) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(anthropic=sim.anthropic_base_url))
    return path


@PINNED
def test_metrics_equal_the_simulator_ground_truth(
    sim: Simulator, config: Path, tmp_path: Path
) -> None:
    expected = month_to_date(expected_series, sim)
    env = {"IT_ANALYTICS_KEY": sim.anthropic_analytics_key}
    with ExporterProcess(config, env, tmp_path / "run.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        samples = exporter.scrape()
        assert set(samples["aicost_collector_up"].values()) == {1.0}
        assert_same(relevant(samples), expected)
        up = samples["aicost_dataset_up"]
        for account in ("ent", "ent-users"):
            for dataset in ("analytics_usage", "analytics_cost"):
                labels = {("provider", "anthropic"), ("account", account), ("dataset", dataset)}
                assert up[frozenset(labels)] == 1.0
        assert exporter.stop() == 0
        log = exporter.log
    assert sim.anthropic_analytics_key not in log
    # A first poll reads the week before the month and the month: two requests of at most 31
    # days per report once the span is longer than 31 days, one otherwise; the per-user report
    # one a day.
    span = int(sim.now()) // 86_400 * 86_400 + 86_400 - history_start(sim.now())
    parts = -(-span // (31 * 86_400))
    assert sim.request_count("anthropic", "/v1/organizations/analytics/usage_report") == 2 * parts
    users = sim.request_count("anthropic", "/v1/organizations/analytics/user_cost_report")
    assert users == span // 86_400


def test_the_admin_key_is_refused_and_the_account_reports_why(
    sim: Simulator, config: Path, tmp_path: Path
) -> None:
    env = {"IT_ANALYTICS_KEY": sim.anthropic_key}  # the Admin API key: the wrong kind
    with ExporterProcess(config, env, tmp_path / "admin.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        samples = exporter.scrape()
        base = {("provider", "anthropic"), ("account", "ent")}
        assert samples["aicost_collector_up"][frozenset(base)] == 0.0
        assert samples["aicost_collector_errors_total"][frozenset(base | {("reason", "auth")})] >= 1
        assert exporter.stop() == 0
