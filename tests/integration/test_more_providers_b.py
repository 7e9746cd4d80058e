"""GitHub Copilot and Claude Code: the real exporter process against the bundled simulator."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.core.ledger import history_start
from exporter.simulator import Simulator
from exporter.simulator.github_api import AI_CREDITS_BUDGET

from .exporter_process import ExporterProcess
from .series import PINNED, Series, assert_same, frozen_simulator, month_to_date, served_something

pytestmark = pytest.mark.integration

CONFIG = """
accounts:
  - name: gh-org
    provider: github_copilot
    api_key: ${{IT_GITHUB_TOKEN}}
    base_url: {github}
    poll_interval: 10s
    timeout: 5s
    options: {{organization: {org}}}
  - name: gh-ent
    provider: github_copilot
    api_key: ${{IT_GITHUB_TOKEN}}
    base_url: {github}
    poll_interval: 10s
    timeout: 5s
    options: {{enterprise: {enterprise}}}
  - name: ant-cc
    provider: anthropic
    api_key: ${{IT_ANTHROPIC_KEY}}
    base_url: {anthropic}
    poll_interval: 10s
    timeout: 5s
    options: {{claude_code: true}}
  - name: ant-cc-users
    provider: anthropic
    api_key: ${{IT_ANTHROPIC_KEY}}
    base_url: {anthropic}
    poll_interval: 10s
    timeout: 5s
    group_by: [model, user]
    options: {{claude_code: true}}
"""

# oracle key -> (metric, label names of the oracle key)
CLAUDE_CODE = {
    "tokens": (
        "aicost_claude_code_tokens_total",
        ("user_id", "model", "token_type", "customer_type"),
    ),
    "cost": ("aicost_claude_code_estimated_cost_usd_total", ("user_id", "model", "customer_type")),
    "sessions": ("aicost_claude_code_sessions_total", ("user_id",)),
    "commits": ("aicost_claude_code_commits_total", ("user_id",)),
    "pull_requests": ("aicost_claude_code_pull_requests_total", ("user_id",)),
    "lines": ("aicost_claude_code_lines_of_code_total", ("user_id", "change")),
    "tools": ("aicost_claude_code_tool_actions_total", ("user_id", "tool", "decision")),
}
FAMILIES = {
    "aicost_billed_cost_usd_total",
    "aicost_premium_requests_total",
    "aicost_ai_credits_total",
    "aicost_tokens_total",
    *(metric for metric, _ in CLAUDE_CODE.values()),
}


def _put(out: Series, metric: str, labels: dict[str, str], value: float) -> None:
    key = frozenset((k, v) for k, v in labels.items() if v)
    out.setdefault(metric, {})
    out[metric][key] = out[metric].get(key, 0.0) + value


def expected_series(sim: Simulator, start: int, end: int) -> Series:
    """What /metrics must show for the four accounts, from the simulator's ground truth."""
    out: Series = {}
    for account, owner in (("gh-org", sim.github_organizations[0]), ("gh-ent", "octo-ent")):
        base = {"provider": "github_copilot", "account": account}
        truth = sim.expected_github(owner, start, end)
        for (org, sku), value in truth["cost"].items():
            labels = {**base, "project_id": org, "project": org, "line_item": sku}
            _put(out, "aicost_billed_cost_usd_total", labels, value)
        # AI credits (every pinned moment is after 2026-06-01): billed by model from the
        # credit report, and not again by organization from /usage.
        for (model, sku), value in truth["ai_credit_cost"].items():
            labels = {**base, "model": model, "line_item": sku}
            _put(out, "aicost_billed_cost_usd_total", labels, value)
        for (model,), value in truth["ai_credits"].items():
            _put(out, "aicost_ai_credits_total", {**base, "model": model}, value)
        for (model, sku), value in truth["premium_requests"].items():
            _put(
                out,
                "aicost_premium_requests_total",
                {**base, "model": model, "line_item": sku},
                value,
            )
    # ant-cc: the messages tokens are exactly the messages report's (no Claude Code added).
    names = {**sim.anthropic_workspace_names(), "default": "default"}
    base = {"provider": "anthropic", "account": "ant-cc"}
    truth_ant = sim.expected_anthropic(start, end)["labelled_tokens"]
    for (workspace, model, token_type, modality, tier, speed, geo), value in truth_ant.items():
        labels = {
            **base,
            "project_id": workspace,
            "project": names.get(workspace, workspace),
            "model": model,
            "token_type": token_type,
            "modality": modality,
            "service_tier": tier,
            "speed": speed,
            "inference_geo": geo,
        }
        _put(out, "aicost_tokens_total", labels, value)
    truth_cc = sim.expected_claude_code(start, end)
    for account, by_user in (("ant-cc", False), ("ant-cc-users", True)):
        base = {"provider": "anthropic", "account": account}
        for name, (metric, label_names) in CLAUDE_CODE.items():
            for key, value in truth_cc[name].items():
                labels = {**base, **dict(zip(label_names, key, strict=True))}
                if not by_user:
                    labels.pop("user_id")
                _put(out, metric, labels, value)
    return out


def relevant(samples: Series) -> Series:
    """Only the series :func:`expected_series` predicts (the Anthropic billed cost and the
    user-grouped messages tokens are test_against_simulator's business)."""
    out: Series = {}
    for metric in FAMILIES:
        for labels, value in samples.get(metric, {}).items():
            account = dict(labels)["account"]
            if metric == "aicost_billed_cost_usd_total" and not account.startswith("gh-"):
                continue
            if metric == "aicost_tokens_total" and account != "ant-cc":
                continue
            if account in ("gh-org", "gh-ent", "ant-cc", "ant-cc-users"):
                out.setdefault(metric, {})[labels] = value
    return out


@pytest.fixture
def sim(moment: int) -> Iterator[Simulator]:
    yield from frozen_simulator(seed=11, moment=moment)


@pytest.fixture
def config(tmp_path: Path, sim: Simulator) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        CONFIG.format(
            github=sim.github_base_url,
            org=sim.github_organizations[0],
            enterprise=sim.github_enterprise,
            anthropic=sim.anthropic_base_url,
        )
    )
    return path


@pytest.fixture
def env(sim: Simulator) -> dict[str, str]:
    return {"IT_GITHUB_TOKEN": sim.github_token, "IT_ANTHROPIC_KEY": sim.anthropic_key}


@PINNED
def test_metrics_equal_the_simulator_ground_truth(
    sim: Simulator, config: Path, env: dict[str, str], tmp_path: Path
) -> None:
    expected = month_to_date(expected_series, sim)
    assert served_something(expected), "seats are billed every day"
    with ExporterProcess(config, env, tmp_path / "run.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        samples = exporter.scrape()
        assert {v for k, v in samples["aicost_collector_up"].items()} == {1.0}
        assert_same(relevant(samples), expected)
        watermarks = samples["aicost_data_watermark_timestamp_seconds"]
        assert (
            frozenset(
                {("provider", "anthropic"), ("account", "ant-cc"), ("dataset", "claude_code")}
            )
            in watermarks
        )
        # The organization's budget that stops AI credits (the enterprise reads none; the
        # user's budget needs per-user grouping).
        hard = {"limit": "hard", "period": "month"}
        org_limit = frozenset({"provider": "github_copilot", "account": "gh-org", **hard}.items())
        assert samples["aicost_provider_limit_usd"] == {org_limit: float(AI_CREDITS_BUDGET)}
        assert samples["aicost_provider_limit_forecast_usd"].keys() == {org_limit}
        assert exporter.stop() == 0
        log = exporter.log
    assert sim.github_token not in log and sim.anthropic_key not in log
    # One Claude Code request per day a first poll reads, per account (pages: 1 each).
    days = (int(sim.now()) - history_start(sim.now())) // 86_400 + 1
    assert sim.request_count("anthropic", "/v1/organizations/usage_report/claude_code") == 2 * days


def test_faults_are_retried_or_fail_the_poll_then_recover(
    sim: Simulator, config: Path, env: dict[str, str], tmp_path: Path
) -> None:
    expected = month_to_date(expected_series, sim)
    org = sim.github_organizations[0]
    credits = f"/organizations/{org}/settings/billing/ai_credit/usage"
    sim.inject("github", credits, "500", times=2)
    sim.inject("github", "/enterprises/octo-ent/settings/billing/usage", "wrong_shape")
    with ExporterProcess(config, env, tmp_path / "faults.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        first = exporter.scrape()
        org_base = {("provider", "github_copilot"), ("account", "gh-org")}
        ent_base = {("provider", "github_copilot"), ("account", "gh-ent")}
        assert first["aicost_collector_up"][frozenset(org_base)] == 1.0
        code_500 = org_base | {("endpoint", credits), ("code", "500")}
        assert first["aicost_api_requests_total"][frozenset(code_500)] == 2.0
        assert first["aicost_collector_up"][frozenset(ent_base)] == 0.0
        errors = first["aicost_collector_errors_total"]
        assert errors[frozenset(ent_base | {("reason", "parse")})] == 1.0
        # Only the enterprise's cost dataset failed: its AI credits are read and published.
        datasets = first["aicost_dataset_up"]
        assert datasets[frozenset(ent_base | {("dataset", "cost")})] == 0.0
        assert datasets[frozenset(ent_base | {("dataset", "ai_credits")})] == 1.0
        def ent_credits(series: Series) -> Series:
            credits = series["aicost_ai_credits_total"]
            return {"credits": {k: v for k, v in credits.items() if ("account", "gh-ent") in k}}

        assert_same(ent_credits(relevant(first)), ent_credits(expected))
        final = exporter.wait_until(
            lambda s: s["aicost_collector_up"][frozenset(ent_base)] == 1.0, timeout=40
        )
        assert_same(relevant(final), expected)
        assert exporter.stop() == 0


def test_claude_code_malformed_page_fails_only_its_dataset(
    sim: Simulator, config: Path, env: dict[str, str], tmp_path: Path
) -> None:
    expected = month_to_date(expected_series, sim)
    sim.inject("anthropic", "/v1/organizations/usage_report/claude_code", "malformed")
    with ExporterProcess(config, env, tmp_path / "cc.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        first = exporter.scrape()
        up = first["aicost_collector_up"]
        failed = [dict(k)["account"] for k, v in up.items() if v == 0.0]
        assert len(failed) == 1 and failed[0] in ("ant-cc", "ant-cc-users")
        account = failed[0]
        base = {("provider", "anthropic"), ("account", account)}
        assert first["aicost_dataset_up"][frozenset(base | {("dataset", "claude_code")})] == 0.0
        assert first["aicost_dataset_up"][frozenset(base | {("dataset", "usage")})] == 1.0
        # Nothing partial of the failed dataset; the account's messages usage is published.
        assert not [k for k in first.get("aicost_claude_code_sessions_total", {})
                    if ("account", account) in k]
        assert [k for k in first.get("aicost_tokens_total", {}) if ("account", account) in k]
        final = exporter.wait_until(lambda s: set(s["aicost_collector_up"].values()) == {1.0})
        assert_same(relevant(final), expected)
        assert exporter.stop() == 0


# --- the simulator's documented quirks, over HTTP ----------------------------------------


def _get(sim: Simulator, path: str, token: str | None = None, **params: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or sim.github_token}"}
    return httpx.get(sim.github_base_url + path, params=params, headers=headers, timeout=5)


def test_github_simulator_quirks(sim: Simulator) -> None:
    org = sim.github_organizations[0]
    usage = f"/organizations/{org}/settings/billing/usage"
    bad = _get(sim, usage, token="ghp_wrong")
    assert (bad.status_code, bad.json()) == (
        401,
        {
            "message": "Bad credentials",
            "documentation_url": "https://docs.github.com/rest",
            "status": "401",
        },
    )
    version = httpx.get(
        sim.github_base_url + usage,
        headers={
            "Authorization": f"token {sim.github_token}",
            "X-GitHub-Api-Version": "2020-01-01",
        },
    )
    assert version.status_code == 400
    assert _get(sim, "/organizations/nobody/settings/billing/usage").status_code == 404
    assert _get(sim, usage, year=2000, month=1).status_code == 400  # only 24 months back
    assert _get(sim, usage, year=2026, month=2, day=30).status_code == 400
    now = time.gmtime(sim.now())
    whole_year = _get(sim, usage).json()["usageItems"]  # no month: the whole year so far
    month = _get(sim, usage, year=now.tm_year, month=now.tm_mon).json()["usageItems"]
    assert len(whole_year) >= len(month) > 0
    assert {i["product"] for i in month} == {"Copilot", "Actions"}
    assert all(isinstance(i["netAmount"], float) for i in month)
    day = time.gmtime(sim.now() - 86_400)
    period = {"year": day.tm_year, "month": day.tm_mon, "day": day.tm_mday}
    credits = _get(sim, f"/organizations/{org}/settings/billing/ai_credit/usage", **period).json()
    assert credits["timePeriod"] == period
    assert credits["usageItems"] and all("date" not in i for i in credits["usageItems"])
    assert {(i["sku"], i["unitType"], i["pricePerUnit"]) for i in credits["usageItems"]} == {
        ("Copilot AI Credits", "credits", 0.01)
    }
    # Premium requests ended on 2026-05-31: none after, and no AI credits before.
    premium = f"/organizations/{org}/settings/billing/premium_request/usage"
    assert _get(sim, premium, **period).json()["usageItems"] == []
    may = {"year": 2026, "month": 5, "day": 31}
    if sim.now() < calendar.timegm((2028, 5, 1, 0, 0, 0)):  # within the 24 months kept
        old = _get(sim, premium, **may).json()
        assert old["timePeriod"] == may
        assert {i["sku"] for i in old["usageItems"]} == {"Copilot Premium Request"}
        ai_may = f"/organizations/{org}/settings/billing/ai_credit/usage"
        assert _get(sim, ai_may, **may).json()["usageItems"] == []


def test_claude_code_simulator_quirks(sim: Simulator) -> None:
    headers = {"x-api-key": sim.anthropic_key, "anthropic-version": "2023-06-01"}
    url = sim.anthropic_base_url + "/v1/organizations/usage_report/claude_code"
    assert httpx.get(url, params={"starting_at": "2026-03-02"}).status_code == 401
    for bad in ("2026-03-02T00:00:00Z", "2026-02-30"):
        response = httpx.get(url, params={"starting_at": bad}, headers=headers)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"
    for back in range(1, 30):  # a recent day with several actors, to page through
        day = time.strftime("%Y-%m-%d", time.gmtime(sim.now() - back * 86_400))
        full = httpx.get(url, params={"starting_at": day, "limit": 1000}, headers=headers).json()
        if len(full["data"]) >= 2:
            break
    assert full["has_more"] is False and len(full["data"]) >= 2
    assert isinstance(
        full["data"][0]["model_breakdown"][0]["estimated_cost"]["amount"], int | float
    )
    records, page = [], None
    while True:
        params: dict[str, Any] = {"starting_at": day, "limit": 1}
        if page:
            params["page"] = page
        body = httpx.get(url, params=params, headers=headers).json()
        records += body["data"]
        if not body["has_more"]:
            break
        page = body["next_page"]
    assert records == full["data"]
    assert page is not None
    response = httpx.get(url, params={"starting_at": "2026-01-01", "page": page}, headers=headers)
    assert response.status_code == 400  # a cursor is bound to its day
