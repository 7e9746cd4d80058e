"""The real exporter process against the bundled simulator, over real sockets."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from exporter.core.ledger import month_start
from exporter.simulator import Simulator
from exporter.simulator.catalog import SPEND_LIMITS_CENTS
from exporter.web import metrics
from exporter.web.metrics import MetricDef

from .exporter_process import ExporterProcess, Labels, free_port, pinned_env
from .series import PINNED, assert_same, frozen_simulator, month_to_date, served_something

pytestmark = pytest.mark.integration

OPENAI_FAMILIES = {
    "tokens": (
        "aicost_tokens_total",
        ("project_id", "model", "token_type", "modality", "service_tier"),
    ),
    "requests": ("aicost_requests_total", ("project_id", "model", "service_tier")),
    "cost": ("aicost_billed_cost_usd_total", ("project_id", "model", "line_item")),
    "labelled_images": ("aicost_images_total", ("project_id", "model", "size", "source")),
    "audio_speech_characters": ("aicost_audio_speech_characters_total", ("project_id", "model")),
    "audio_transcription_seconds": (
        "aicost_audio_transcription_seconds_total",
        ("project_id", "model"),
    ),
    "tool_calls": ("aicost_tool_calls_total", ("project_id", "model", "tool")),
    "vector_store_bytes": ("aicost_vector_store_bytes", ("project_id",)),
}
ANTHROPIC_FAMILIES = {
    "labelled_tokens": (
        "aicost_tokens_total",
        ("project_id", "model", "token_type", "modality", "service_tier", "speed", "inference_geo"),
    ),
    "tool_calls": ("aicost_tool_calls_total", ("project_id", "model", "tool")),
    "labelled_cost": (
        "aicost_billed_cost_usd_total",
        (
            "project_id",
            "model",
            "line_item",
            "cost_type",
            "token_type",
            "service_tier",
            "context_window",
            "inference_geo",
        ),
    ),
}
SERIES_FAMILIES = {name for name, _ in [*OPENAI_FAMILIES.values(), *ANTHROPIC_FAMILIES.values()]}

CONFIG = """
accounts:
  - name: oai
    provider: openai
    api_key: ${{IT_OPENAI_KEY}}
    base_url: {openai}
    poll_interval: 10s
    timeout: 5s
  - name: ant
    provider: anthropic
    api_key: ${{IT_ANTHROPIC_KEY}}
    base_url: {anthropic}
    poll_interval: 10s
    timeout: 5s
budgets:
  - name: everything-estimated
    period: month
    limit_usd: 1000000
    basis: estimated
  - name: openai-billed
    period: month
    limit_usd: 1
    basis: billed
    match: {{provider: openai}}
"""


def expected_series(sim: Simulator, start: int, end: int) -> dict[str, dict[Labels, float]]:
    """What /metrics must show, derived from the simulator's own ground truth."""
    out: dict[str, dict[Labels, float]] = {}
    for provider, account, truth, families, names in (
        (
            "openai",
            "oai",
            sim.expected_openai(start, end),
            OPENAI_FAMILIES,
            sim.openai_project_names(),
        ),
        (
            "anthropic",
            "ant",
            sim.expected_anthropic(start, end),
            ANTHROPIC_FAMILIES,
            {**sim.anthropic_workspace_names(), "default": "default"},
        ),
    ):
        for key, (metric, label_names) in families.items():
            for values, value in truth[key].items():
                if not value:
                    continue
                labels = {
                    "provider": provider,
                    "account": account,
                    **dict(zip(label_names, values, strict=True)),
                }
                labels["project"] = names.get(labels["project_id"], labels["project_id"])
                series = frozenset((k, v) for k, v in labels.items() if v)
                out.setdefault(metric, {})[series] = value
    return out


def assert_provider_limits(scraped: dict[str, dict[Labels, float]], sim: Simulator) -> None:
    """The simulated organization's hard spend limits, enforcing where this month's billed cost
    in their scope reached them, each with a forecast."""
    names = sim.openai_project_names()
    billed = scraped["aicost_billed_cost_usd_total"]
    expected, enforcing = {}, {}
    for project_id, cents in SPEND_LIMITS_CENTS.items():
        scope = {"provider": "openai", "account": "oai", "limit": "hard", "period": "month"}
        if project_id is not None:
            scope |= {"project_id": project_id, "project": names[project_id]}
        labels = frozenset(scope.items())
        expected[labels] = cents / 100
        spent = sum(v for k, v in billed.items()
                    if ("provider", "openai") in k and (project_id is None or (
                        "project_id", project_id) in k))
        enforcing[labels] = float(spent * 100 >= cents)
    assert scraped["aicost_provider_limit_usd"] == expected
    assert scraped["aicost_provider_limit_enforcing"] == enforcing
    forecasts = scraped["aicost_provider_limit_forecast_usd"]
    assert forecasts.keys() == expected.keys() and min(forecasts.values()) >= 0


def series_only(samples: dict[str, dict[Labels, float]]) -> dict[str, dict[Labels, float]]:
    return {name: values for name, values in samples.items() if name in SERIES_FAMILIES}


@pytest.fixture
def sim(moment: int) -> Iterator[Simulator]:
    yield from frozen_simulator(seed=7, moment=moment)


@pytest.fixture
def config(tmp_path: Path, sim: Simulator) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(openai=sim.openai_base_url, anthropic=sim.anthropic_base_url))
    return path


@pytest.fixture
def env(sim: Simulator) -> dict[str, str]:
    return {"IT_OPENAI_KEY": sim.openai_key, "IT_ANTHROPIC_KEY": sim.anthropic_key}


@PINNED
def test_metrics_equal_what_the_simulator_served_and_restart_reproduces_them(
    sim: Simulator, config: Path, env: dict[str, str], tmp_path: Path
) -> None:
    expected = month_to_date(expected_series, sim)
    assert served_something(expected), "the simulator served nothing this month"
    with ExporterProcess(config, env, tmp_path / "run1.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        first = exporter.scrape()
        assert_same(series_only(first), expected)
        up = first["aicost_collector_up"]
        assert set(up.values()) == {1.0}
        # Budgets are computed from the same data: month budgets equal the month-to-date sums.
        estimated = sum(first["aicost_estimated_cost_usd_total"].values())
        billed_openai = sum(
            v
            for labels, v in first["aicost_billed_cost_usd_total"].items()
            if ("provider", "openai") in labels
        )
        spend = {dict(k)["budget"]: v for k, v in first["aicost_budget_spend_usd"].items()}
        assert estimated > 0
        assert math.isclose(spend["everything-estimated"], estimated, rel_tol=1e-9)
        assert math.isclose(spend["openai-billed"], billed_openai, rel_tol=1e-9)
        utilization = {
            dict(k)["budget"]: v for k, v in first["aicost_budget_utilization_ratio"].items()
        }
        assert math.isclose(utilization["openai-billed"], billed_openai, rel_tol=1e-9)
        assert_provider_limits(first, sim)
        assert exporter.stop() == 0
        log = exporter.log
    assert sim.openai_key not in log and sim.anthropic_key not in log
    with ExporterProcess(config, env, tmp_path / "run2.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        assert series_only(exporter.scrape()) == series_only(first)
        assert exporter.stop() == 0


def test_faults_end_with_correct_values_and_counted_errors(
    sim: Simulator, config: Path, env: dict[str, str], tmp_path: Path
) -> None:
    expected = month_to_date(expected_series, sim)
    sim.inject("openai", "/organization/usage/completions", "429", retry_after=1)
    sim.inject("openai", "/organization/costs", "500", times=2)
    sim.inject("openai", "/organization/usage/embeddings", "slow", delay=1.0)
    sim.inject("anthropic", "/v1/organizations/cost_report", "malformed")
    with ExporterProcess(config, env, tmp_path / "faults.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        first = exporter.scrape()
        base_oai = {("provider", "openai"), ("account", "oai")}
        base_ant = {("provider", "anthropic"), ("account", "ant")}
        # OpenAI: 429 and 500s were retried inside the poll, which succeeded.
        assert first["aicost_collector_up"][frozenset(base_oai)] == 1.0
        requests = first["aicost_api_requests_total"]
        assert (
            requests[
                frozenset(
                    base_oai | {("endpoint", "/organization/usage/completions"), ("code", "429")}
                )
            ]
            == 1.0
        )
        assert (
            requests[frozenset(base_oai | {("endpoint", "/organization/costs"), ("code", "500")})]
            == 2.0
        )
        # Anthropic: a malformed cost page fails that dataset only and publishes nothing
        # partial of it; the usage report of the same poll is published...
        assert first["aicost_collector_up"][frozenset(base_ant)] == 0.0
        datasets = first["aicost_dataset_up"]
        assert datasets[frozenset(base_ant | {("dataset", "cost")})] == 0.0
        assert datasets[frozenset(base_ant | {("dataset", "usage")})] == 1.0
        errors = first["aicost_collector_errors_total"]
        assert errors[frozenset(base_ant | {("reason", "parse")})] == 1.0
        assert not [
            labels
            for labels in first.get("aicost_billed_cost_usd_total", {})
            if ("provider", "anthropic") in labels
        ]
        ant_tokens = {
            labels: value
            for labels, value in first["aicost_tokens_total"].items()
            if ("provider", "anthropic") in labels
        }
        assert_same(
            {"aicost_tokens_total": ant_tokens},
            {
                "aicost_tokens_total": {
                    labels: value
                    for labels, value in expected["aicost_tokens_total"].items()
                    if ("provider", "anthropic") in labels
                }
            },
        )
        # ...and the next poll brings every value.
        final = exporter.wait_until(
            lambda s: s["aicost_collector_up"][frozenset(base_ant)] == 1.0, timeout=40
        )
        assert_same(series_only(final), expected)
        errors = final["aicost_collector_errors_total"]
        assert errors[frozenset(base_ant | {("reason", "parse")})] == 1.0
        assert errors[frozenset(base_oai | {("reason", "rate_limited")})] == 0.0
        assert exporter.stop() == 0


def test_real_exposition_passes_promtool_lint_and_openmetrics_parser(
    sim: Simulator, config: Path, env: dict[str, str], tmp_path: Path, promtool: str
) -> None:
    with ExporterProcess(config, env, tmp_path / "lint.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        text = httpx.get(exporter.url + "/metrics").text
        result = subprocess.run(
            [promtool, "check", "metrics"], input=text, text=True, capture_output=True, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        # promtool lints only the text format; OpenMetrics is checked by a strict parser.
        om = httpx.get(
            exporter.url + "/metrics",
            headers={"Accept": "application/openmetrics-text; version=1.0.0"},
        ).text
        families = {f.name: f for f in openmetrics_families(om)}
        assert families["aicost_tokens"].type == "counter"
        created = [s for s in families["aicost_tokens"].samples if s.name.endswith("_created")]
        assert created and {s.value for s in created} == {float(month_start(sim.now()))}
        assert exporter.stop() == 0


@PINNED
def test_demo_command_shows_every_family_and_stops_cleanly(tmp_path: Path, moment: int) -> None:
    # The demo's clock starts at the moment and runs: on the 1st of a month too, every family
    # shows (at 0 for the series the week before the month had), so no panel is empty.
    port = free_port()
    log = (tmp_path / "demo.log").open("wb")
    command = [sys.executable, "-m", "exporter", "demo", f"--web.listen-address=127.0.0.1:{port}"]
    process = subprocess.Popen(
        command,
        env=pinned_env(moment, ticking=True),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        text = httpx.get(url + "/metrics").text
        lines = [line for line in text.splitlines() if not line.startswith("#")]
        definitions = [v for v in vars(metrics).values() if isinstance(v, MetricDef)]
        missing = [
            family
            for family in (
                d.name + {"counter": "_total", "histogram": "_count"}.get(d.type, "")
                for d in definitions
                # Only for unknown models, premium requests (billed until 2026-05-31, before
                # any month the demo shows), a cost in a currency without a rate, and credits
                # (FOCUS exports have them; no simulated provider's API gives any).
                if d not in (
                    metrics.UNPRICED_TOKENS,
                    metrics.PREMIUM_REQUESTS,
                    metrics.UNCONVERTED_COST,
                    metrics.BILLED_CREDIT,
                )
            )
            if not any(line.startswith((family + "{", family + " ")) for line in lines)
        ]
        assert missing == []
        # Every model the simulated providers use has a price: nothing is left unpriced.
        assert not [line for line in lines if line.startswith("aicost_unpriced_tokens_total")]
        assert 'aicost_collector_up{account="openai-demo",provider="openai"} 1.0' in text
        assert 'aicost_collector_up{account="anthropic-demo",provider="anthropic"} 1.0' in text
        # The demo has no file to reload: a clear refusal, not a server error.
        reload = httpx.post(url + "/-/reload")
        assert reload.status_code == 403 and "--config.file" in reload.text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert f"http://localhost:{port}/metrics" in output
