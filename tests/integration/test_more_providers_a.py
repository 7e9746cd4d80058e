"""OpenRouter, DeepSeek and Groq: the real exporter process against the simulator."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.simulator import Simulator

from .exporter_process import ExporterProcess, Labels
from .series import PINNED, Series, assert_same, frozen_simulator, month_to_date, served_something

pytestmark = pytest.mark.integration

CONFIG = """
accounts:
  - name: or
    provider: openrouter
    api_key: ${{IT_OPENROUTER_KEY}}
    base_url: {openrouter}
    poll_interval: 10s
    timeout: 5s
  - name: ds
    provider: deepseek
    api_key: ${{IT_DEEPSEEK_KEY}}
    base_url: {deepseek}
    poll_interval: 10s
    timeout: 5s
  - name: groq
    provider: groq
    api_key: ${{IT_GROQ_KEY}}
    base_url: {groq}
    poll_interval: 10s
    timeout: 5s
  - name: groq-free
    provider: groq
    api_key: ${{IT_GROQ_FREE_KEY}}
    base_url: {groq}
    poll_interval: 10s
    timeout: 5s
budgets:
  - name: openrouter-today
    period: day
    limit_usd: 1000
    basis: billed
    match: {{provider: openrouter}}
"""
MINE = (
    "aicost_tokens_total",
    "aicost_requests_total",
    "aicost_reasoning_tokens_total",
    "aicost_billed_cost_usd_total",
    "aicost_credits_remaining_usd",
    "aicost_billed_cost_today_usd",
)


def _labels(names: dict[str, str] | None = None, **labels: str) -> Labels:
    if "project_id" in labels:  # the workspace names (OpenRouter), else the id is the name
        labels["project"] = (names or {}).get(labels["project_id"], labels["project_id"])
    return frozenset((k, v) for k, v in labels.items() if v)


def expected_series(sim: Simulator, start: int, end: int) -> Series:
    """What /metrics must show for the three accounts, from the simulator's ground truth."""
    out: Series = {name: {} for name in MINE}
    router = sim.expected_openrouter(start, end)
    names = router["workspace_names"]
    base = {"provider": "openrouter", "account": "or"}
    for (workspace, model, token_type), value in router.get("tokens", {}).items():
        labels = _labels(names, **base, project_id=workspace, model=model, token_type=token_type)
        out["aicost_tokens_total"][labels] = value
    for metric, key in (
        ("aicost_requests_total", "requests"),
        ("aicost_reasoning_tokens_total", "reasoning"),
    ):
        for (workspace, model), value in router.get(key, {}).items():
            out[metric][_labels(names, **base, project_id=workspace, model=model)] = value
    for (workspace, model), value in router["cost"].items():
        labels = _labels(names, **base, project_id=workspace, model=model, line_item="inference")
        out["aicost_billed_cost_usd_total"][labels] = value
    out["aicost_credits_remaining_usd"][_labels(**base)] = router["credits"]
    out["aicost_billed_cost_today_usd"][_labels(**base)] = router["today"]
    groq = sim.expected_groq(start, end)
    base = {"provider": "groq", "account": "groq"}
    for (project, model, token_type), value in groq["tokens"].items():
        labels = _labels(**base, project_id=project, model=model, token_type=token_type)
        out["aicost_tokens_total"][labels] = value
    for (project, model, status), value in groq["requests"].items():
        labels = _labels(**base, project_id=project, model=model, status_code=status)
        out["aicost_requests_total"][labels] = value
    balance = sim.expected_deepseek()
    assert balance is not None
    out["aicost_credits_remaining_usd"][_labels(provider="deepseek", account="ds")] = balance
    return {name: values for name, values in out.items() if values}


def mine(samples: Series) -> Series:
    """My providers' series (other accounts' and pricing's families are not compared)."""
    providers = {("provider", p) for p in ("openrouter", "deepseek", "groq")}
    out: Series = {}
    for name in MINE:
        values = {k: v for k, v in samples.get(name, {}).items() if k & providers}
        if values:
            out[name] = values
    return out


@pytest.fixture
def sim(moment: int) -> Iterator[Simulator]:
    yield from frozen_simulator(seed=11, moment=moment)


@pytest.fixture
def config(tmp_path: Path, sim: Simulator) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        CONFIG.format(
            openrouter=sim.openrouter_base_url,
            deepseek=sim.deepseek_base_url,
            groq=sim.groq_base_url,
        )
    )
    return path


@pytest.fixture
def env(sim: Simulator) -> dict[str, str]:
    return {
        "IT_OPENROUTER_KEY": sim.openrouter_key,
        "IT_DEEPSEEK_KEY": sim.deepseek_key,
        "IT_GROQ_KEY": sim.groq_key,
        "IT_GROQ_FREE_KEY": sim.groq_free_key,
    }


@PINNED
def test_values_equal_the_simulators_truth_faults_retried_restart_reproduces(
    sim: Simulator, config: Path, env: dict[str, str], tmp_path: Path
) -> None:
    expected = month_to_date(expected_series, sim)
    assert served_something(expected), "the simulator served nothing this month"
    sim.inject("openrouter", "/activity", "500")
    sim.inject("groq", "/api/v1/query_range", "503", after=1)
    sim.inject("deepseek", "/user/balance", "429", retry_after=0)
    with ExporterProcess(config, env, tmp_path / "run1.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        first = exporter.scrape()
        assert_same(mine(first), expected)
        # Today's spend, known only from the key counters, counts toward day budgets.
        spend = {dict(k)["budget"]: v for k, v in first["aicost_budget_spend_usd"].items()}
        assert math.isclose(
            spend["openrouter-today"],
            expected["aicost_billed_cost_today_usd"][_labels(provider="openrouter", account="or")],
            rel_tol=1e-9,
        )
        up = {dict(k)["account"]: v for k, v in first["aicost_collector_up"].items()}
        assert (up["or"], up["ds"], up["groq"], up["groq-free"]) == (1.0, 1.0, 1.0, 0.0)
        calls = first["aicost_api_requests_total"]
        # Retried inside the poll. (Either Groq account may have drawn the 503.)
        for provider, endpoint, code in (
            ("openrouter", "/activity", "500"),
            ("groq", "/api/v1/query_range", "503"),
            ("deepseek", "/user/balance", "429"),
        ):
            labels = {"provider": provider, "endpoint": endpoint, "code": code}
            assert [v for k, v in calls.items() if set(labels.items()) <= k] == [1.0], labels
        # A non-Enterprise Groq key: explained once, counted as "unsupported", no crash loop.
        errors = first["aicost_collector_errors_total"]
        free = {("provider", "groq"), ("account", "groq-free")}
        assert errors[frozenset(free | {("reason", "unsupported")})] == 1.0
        assert "available to Enterprise organizations only" in exporter.log
        watermarks = {
            (dict(k)["account"], dict(k)["dataset"]): v
            for k, v in first["aicost_data_watermark_timestamp_seconds"].items()
        }
        today = int(sim.now()) // 86_400 * 86_400
        assert watermarks[("or", "usage")] == watermarks[("or", "cost")] == float(today)
        assert ("ds", "usage") not in watermarks  # DeepSeek has no usage history
        assert exporter.stop() == 0
        log = exporter.log
    for key in env.values():
        assert key not in log
    with ExporterProcess(config, env, tmp_path / "run2.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        assert mine(exporter.scrape()) == mine(first)
        assert exporter.stop() == 0


def _get(sim: Simulator, url: str, key: str, **params: Any) -> httpx.Response:
    return httpx.get(url, params=params, headers={"Authorization": f"Bearer {key}"})


def test_simulated_quirks(sim: Simulator) -> None:
    base = sim.openrouter_base_url
    answer = _get(sim, base + "/credits", sim.openrouter_inference_key)
    assert answer.status_code == 403
    assert answer.json()["error"] == {
        "code": 403,
        "message": "Only management keys can perform this operation",
        "metadata": None,
    }
    today = time.strftime("%Y-%m-%d", time.gmtime(sim.now()))
    answer = _get(sim, base + "/activity", sim.openrouter_key, date=today)
    assert answer.status_code == 400
    assert answer.json()["error"]["message"] == (
        "Date must be within the last 30 (completed) UTC days"
    )
    names = [k["name"] for k in _get(sim, base + "/keys", sim.openrouter_key).json()["data"]]
    assert names == ["ci-bot", "prod-backend"]  # default workspace, enabled keys only
    names = [
        k["name"]
        for k in _get(sim, base + "/keys", sim.openrouter_key, include_disabled="true").json()[
            "data"
        ]
    ]
    assert names == ["ci-bot", "prod-backend", "old-prototype"]

    groq = sim.groq_base_url + "/api/v1/query_range"
    query = "sum(model_project_id:tokens_in:rate5m)"
    answer = _get(sim, groq, sim.groq_key, query=query, start=0, end=300 * 11_000, step=300)
    assert (answer.status_code, answer.json()["errorType"]) == (400, "bad_data")
    answer = _get(sim, groq, sim.groq_free_key, query=query, start=0, end=300, step=300)
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "unknown_url")

    answer = _get(sim, sim.deepseek_base_url + "/user/balance", "sk-wrong")
    assert answer.status_code == 401
    sim.more_data.deepseek_currency = "CNY"
    body = _get(sim, sim.deepseek_base_url + "/user/balance", sim.deepseek_key).json()
    assert body["balance_infos"][0]["currency"] == "CNY"
    assert sim.expected_deepseek() is None
