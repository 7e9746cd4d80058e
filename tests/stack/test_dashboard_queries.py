"""Every panel query of both dashboards, against a real Prometheus (shipped rules) scraping the
demo.

For the default selection ("All" everywhere) and for each provider selected on its own, every
query must return data whenever that provider exports the exporter families the query reads
(through the recording rules). A panel that goes empty although its data is there is a dashboard
bug; the few families a provider cannot have by construction are listed with their reason. The
panel-by-panel result is written to test-artifacts/dashboard-queries.txt.
"""

from __future__ import annotations

import contextlib
import functools
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import real_binary
from tests.integration.exporter_process import free_port, pinned_env, real_clock_env
from tests.integration.series import MOMENTS

from .assets import (
    PROMETHEUS_CONFIG,
    PROMETHEUS_METRICS,
    ROOT,
    RULE_FILES,
    Query,
    label_values,
    load_yaml,
    metric_names,
    queries,
    rules,
    substitute,
    variable_queries,
    variables_used,
)
from .servers import Server, prometheus

pytestmark = pytest.mark.integration

ARTIFACT = ROOT / "test-artifacts" / "dashboard-queries.txt"
SCRAPE_SECONDS = 20  # scrapes every second: enough samples for every rate() window to answer
GRAFANA = {"__rate_interval": "30s", "__interval": "5s", "__range": "1h"}
# (query panel, provider, model or None) that may be empty although the provider has one of the
# families the query reads, because the data cannot exist for that selection.
NO_DATA_BY_CONSTRUCTION: dict[tuple[str, str, str | None], str] = {}


def grafana_regex(value: str) -> str:
    """A single value of a variable with "All", as Grafana puts it in a Prometheus query:
    regex metacharacters escaped, the backslash doubled for the PromQL string."""
    return re.sub(r"([\\$^*+?.()|{}\[\]'])", r"\\\\\1", value)


def all_selected(job: str) -> dict[str, str]:
    """Grafana's "All": the job variable is every job found, the others match everything."""
    return GRAFANA | {n: ".*" for n in ("provider", "account", "project", "model")} | {"job": job}


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}", re.MULTILINE)
_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


@dataclass
class Stack:
    prometheus: Server
    metrics: str  # one scrape of the exporter, text format

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": expr} | ({} if at is None else {"time": str(at)})
        response = httpx.get(self.prometheus.url + "/api/v1/query", params=params, timeout=10)
        body = response.json()
        assert response.status_code == 200 and body["status"] == "success", (expr, body)
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    @functools.cached_property
    def samples(self) -> dict[str, list[dict[str, str]]]:
        """The label sets of the scrape's samples, by series name."""
        out: dict[str, list[dict[str, str]]] = {}
        for name, labels in _SAMPLE.findall(self.metrics):
            out.setdefault(name, []).append(dict(_PAIR.findall(labels)))
        return out

    def values(self, name: str) -> list[tuple[dict[str, str], float]]:
        """The samples of series name ``name`` in the scrape: (labels, value)."""
        pattern = re.compile(rf"^{re.escape(name)}\{{([^}}]*)\}} (\S+)$", re.MULTILINE)
        found = pattern.findall(self.metrics)
        return [(dict(_PAIR.findall(labels)), float(value)) for labels, value in found]

    def labelled(self, family: str, provider: str, model: str | None = None) -> bool:
        """Whether family ``family`` (a metric name, ``_total`` optional) has a sample of
        ``provider`` (and ``model``, if given) in the scrape."""
        return any(
            labels.get("provider") == provider and model in (None, labels.get("model"))
            for name in (family, family + "_total")
            for labels in self.samples.get(name, [])
        )

    def provider_scoped(self, family: str) -> bool:
        """Whether the family's samples are per provider (not the exporter's own, per job)."""
        return any(
            "provider" in labels
            for name in (family, family + "_total")
            for labels in self.samples.get(name, [])
        )

    def providers_with(self, family: str) -> set[str]:
        """Providers with a sample of exporter family ``family`` (a metric name) in the scrape."""
        return {
            labels["provider"] for labels in self.samples.get(family, []) if "provider" in labels
        }

    def model_of(self, provider: str) -> str:
        """The model of ``provider`` found in the most families: the selection to check."""
        counts: dict[str, int] = {}
        for samples in self.samples.values():
            ours = (s for s in samples if s.get("provider") == provider)
            for model in {s["model"] for s in ours if s.get("model")}:
                counts[model] = counts.get(model, 0) + 1
        return min(counts, key=lambda m: (-counts[m], m)) if counts else ""


def raw_dependencies(names: set[str]) -> set[str]:
    """The exporter and Prometheus series behind ``names``, through the recording rules."""
    recorded = {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}
    out: set[str] = set()
    for name in names:
        out |= raw_dependencies(metric_names(recorded[name])) if name in recorded else {name}
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The demo pinned mid-month (its clock running from there), so its data and budgets are
    the same whatever day the suite runs."""
    with demo_stack(tmp_path_factory.mktemp("dashboards"), pinned_env(MOMENTS["mid-month"],
                                                                       ticking=True)) as stack:
        yield stack


@pytest.fixture(scope="module")
def live_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The demo on the real clock, Prometheus' own: what `make demo` shows a newcomer."""
    with demo_stack(tmp_path_factory.mktemp("live"), real_clock_env()) as stack:
        yield stack


@contextlib.contextmanager
def demo_stack(tmp: Path, env: dict[str, str]) -> Iterator[Stack]:
    """The demo exporter under ``env``, and a real Prometheus with the shipped rules that has
    scraped it every second for ``SCRAPE_SECONDS``."""
    prometheus_bin = real_binary("prometheus")
    port, prom_port = free_port(), free_port()
    log = (tmp / "demo.log").open("wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "exporter", "demo", f"--web.listen-address=127.0.0.1:{port}"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while not _ready(url):
            alive = demo.poll() is None and time.monotonic() < deadline
            assert alive, (tmp / "demo.log").read_text()
            time.sleep(0.2)
        config = load_yaml(PROMETHEUS_CONFIG)
        config["global"] |= {
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
        }
        config["rule_files"] = [str(path) for path in RULE_FILES]
        config.pop("alerting", None)
        targets = {"ai-cost-exporter": f"127.0.0.1:{port}", "prometheus": f"127.0.0.1:{prom_port}"}
        for job in config["scrape_configs"]:
            job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        with prometheus(
            prometheus_bin, tmp / "prometheus.yml", tmp / "data", prom_port, tmp / "prom.log"
        ) as prom:
            prom.wait_ready()
            time.sleep(SCRAPE_SECONDS)
            yield Stack(prom, httpx.get(url + "/metrics", timeout=10).text)
    finally:
        demo.terminate()
        demo.wait(timeout=15)
        log.close()


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def expected(stack: Stack, query: Query, provider: str, model: str | None = None) -> bool:
    """Whether the selection of ``provider`` (and ``model``) must show data: it has a sample of
    one of the per-provider families the query reads (through the recording rules), or the
    query reads only the exporter's own series, which every selection has. Queries that need
    several families a provider has only some of are in ``NO_DATA_BY_CONSTRUCTION``.

    A query that keeps only values above zero (``... > 0``: failed polls) may be empty anywhere.
    """
    if re.search(r">\s*0\s*$", query.expr):
        return False
    families = raw_dependencies(metric_names(query.expr)) - PROMETHEUS_METRICS
    scoped = [f for f in families if stack.provider_scoped(f)]
    if not scoped:  # the exporter's and Prometheus' own series: every selection has them
        return model is None
    return any(stack.labelled(f, provider, model) for f in scoped)


def test_every_panel_has_data_for_every_selection_that_has_its_families(stack: Stack) -> None:
    """Each provider on its own, then with its most common model (for queries that read
    ``$model``): a selection that has the data must show it."""
    providers = sorted(stack.providers_with("aicost_collector_up"))
    assert {"openai", "anthropic", "openrouter", "github_copilot"} <= set(providers)
    models = {provider: stack.model_of(provider) for provider in providers}
    lines: list[str] = []
    empty: list[tuple[str | None, ...]] = []
    for query in queries():
        default = substitute(query.expr, all_selected("ai-cost-exporter"))
        has_default = bool(stack.query(default))
        must = not re.search(r">\s*0\s*$", query.expr)
        row = ["data" if has_default else ("EMPTY" if must else "-")]
        if must and not has_default:
            empty.append((query.dashboard, query.panel, query.ref, "All"))
        for provider in providers:
            selections: list[str | None] = [None]
            if "model" in variables_used(query.expr) and models[provider]:
                selections.append(models[provider])
            cells = []
            for model in selections:
                values = all_selected("ai-cost-exporter") | {"provider": provider}
                if model is not None:
                    values["model"] = grafana_regex(model)
                has = bool(stack.query(substitute(query.expr, values)))
                should = (
                    expected(stack, query, provider, model)
                    and (query.panel, provider, model) not in NO_DATA_BY_CONSTRUCTION
                )
                cells.append("data" if has else ("EMPTY" if should else "-"))
                if should and not has:
                    empty.append((query.dashboard, query.panel, query.ref, provider, model))
            row.append("/".join(cells))
        lines.append(f"{query.dashboard:24} {query.panel[:40]:40} {query.ref:2} " + " ".join(row))
    header = f"{'dashboard':24} {'panel':40} {'':2} All " + " ".join(providers)
    selected = "\n".join(f"  {p}: model {m!r}" for p, m in models.items() if m)
    legend = (
        "Each provider column: provider selected alone / with this model (queries reading $model):"
    )
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text("\n".join([legend, selected, "", header, *lines]) + "\n")
    assert empty == [], "\n".join(map(str, empty))


def test_the_job_variable_all_selects_only_exporter_jobs(stack: Stack) -> None:
    # "All" of a variable without a custom all value is the regex of the values it found.
    for path in sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json")):
        board = yaml.safe_load(path.read_text())
        (job,) = [v for v in board["templating"]["list"] if v["name"] == "job"]
        assert job.get("allValue") in (None, ""), path.name
    values = {r["metric"]["job"] for r in stack.query("aicost_build_info")}
    regex = "|".join(sorted(values))
    jobs = {r["metric"]["job"] for r in stack.query(f'up{{job=~"{regex}"}}')}
    assert jobs == {"ai-cost-exporter"}


def test_poll_errors_draw_only_the_reasons_that_occurred(stack: Stack) -> None:
    """Every reason is exported at 0 from the first poll; drawn, that was 60 zero series."""
    (panel,) = [q for q in queries() if q.panel == "Poll errors by reason"]
    result = stack.query(substitute(panel.expr, all_selected("ai-cost-exporter")))
    assert all(float(r["value"][1]) > 0 for r in result), result
    raw = panel.expr.removesuffix(" > 0")
    assert len(stack.query(substitute(raw, all_selected("ai-cost-exporter")))) > 10  # the zeros


def test_openrouter_billed_month_to_date_includes_its_spend_today(stack: Stack) -> None:
    (panel,) = [
        q for q in queries() if q.panel == "Billed spend, month to date" and "by" not in q.expr
    ]
    values = all_selected("ai-cost-exporter") | {"provider": "openrouter"}
    # One instant, Prometheus' own (the suite's clock may be faked), for the panel and the raw
    # series: the demo's clock runs.
    (shown,) = stack.query(substitute(panel.expr, values))
    at = float(shown["value"][0])
    (billed,) = stack.query('sum(aicost_billed_cost_usd_total{provider="openrouter"})', at)
    (today,) = stack.query('sum(aicost_billed_cost_today_usd{provider="openrouter"})', at)
    assert float(today["value"][1]) > 0  # the demo's OpenRouter key counters have spend today
    expected = float(billed["value"][1]) + float(today["value"][1])
    assert float(shown["value"][1]) == pytest.approx(expected, rel=1e-12)
    # A project selection leaves the account-level counter out rather than misattributing it.
    values["project"] = "no-such-project"
    assert stack.query(substitute(panel.expr, values), at) == []


def test_every_variable_query_finds_values(stack: Stack) -> None:
    for board, name, variable in variable_queries():
        selector, label = label_values(variable)
        result = stack.query(substitute(selector, all_selected("ai-cost-exporter")))
        # Grafana lists the values of the series that have the label (Cursor's have no project).
        assert any(label in r["metric"] for r in result), (board, name)


def test_a_model_selection_keeps_openai_billed_spend(stack: Stack) -> None:
    """OpenAI's cost API has no model dimension; its billed spend is selected by the model its
    line items name, so the billed panels do not go empty when one model is selected."""
    (panel,) = [
        q for q in queries() if q.panel == "Billed spend, month to date" and "by" not in q.expr
    ]
    estimated = {
        labels["model"]
        for labels in stack.samples["aicost_estimated_cost_usd_total"]
        if labels.get("provider") == "openai" and labels.get("token_type") == "output"
    }
    assert len(estimated) >= 2, estimated  # the demo's chat models
    for model in sorted(estimated):
        values = all_selected("ai-cost-exporter") | {"provider": "openai"}
        values["model"] = grafana_regex(model)
        (shown,) = stack.query(substitute(panel.expr, values))
        at = float(shown["value"][0])
        raw = f'sum(aicost_billed_cost_usd_total{{provider="openai",model="{model}"}})'
        (billed,) = stack.query(raw, at)
        assert float(billed["value"][1]) > 0, model
        assert float(shown["value"][1]) == pytest.approx(float(billed["value"][1]), rel=1e-12)


_ALERT_IDENTITY_LEFT_OUT = {"__name__", "alertname", "alertstate", "severity", "job"}


def active_alerts(stack: Stack) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    """Every pending or firing alert: its name and identifying labels."""
    return {
        (r["metric"]["alertname"],
         frozenset((k, v) for k, v in r["metric"].items() if k not in _ALERT_IDENTITY_LEFT_OUT))
        for r in stack.query("ALERTS")
    }  # fmt: skip


def test_on_the_demo_only_the_alerts_its_figures_call_for_are_active(stack: Stack) -> None:
    """The budget and provider-limit alerts that the exporter's own figures call for, by each
    alert's documented condition, are pending (every one waits its `for:`), and no other alert
    is: no data staleness, collector, spike or unpriced alert on a healthy demo."""
    expected: set[tuple[str, frozenset[tuple[str, str]]]] = set()

    def by_budget(name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {frozenset(labels.items()): value for labels, value in stack.values(name)}

    used = by_budget("aicost_budget_utilization_ratio")
    warns = by_budget("aicost_budget_warning_ratio")
    forecast, limit = by_budget("aicost_budget_forecast_usd"), by_budget("aicost_budget_limit_usd")
    assert len(used) == 3, used  # the demo's three budgets
    for budget, ratio in used.items():
        if ratio >= 1:
            expected.add(("AICostBudgetExceeded", budget))
        elif ratio >= warns[budget]:
            expected.add(("AICostBudgetWarning", budget))
        if forecast[budget] > limit[budget]:
            expected.add(("AICostBudgetForecastOverrun", budget))
    limits = by_budget("aicost_provider_limit_usd")
    limit_forecast = by_budget("aicost_provider_limit_forecast_usd")
    enforcing = by_budget("aicost_provider_limit_enforcing")
    assert len(limits) >= 4, limits
    for scope, usd in limits.items():
        if enforcing.get(scope) == 1:
            expected.add(("AICostProviderLimitEnforcing", scope))
        elif limit_forecast[scope] > usd:
            expected.add(("AICostProviderLimitForecast", scope))
    # The demo shows alerting at work, and budgets and limits that are fine.
    assert any(name.startswith("AICostBudget") for name, _ in expected), expected
    assert any(name.startswith("AICostProviderLimit") for name, _ in expected), expected
    assert len({b for name, b in expected if name.startswith("AICostBudget")}) < len(used)
    assert len({s for name, s in expected if name.startswith("AICostProviderLimit")}) < len(limits)
    assert active_alerts(stack) == expected
    assert {r["metric"]["alertstate"] for r in stack.query("ALERTS")} == {"pending"}


def test_on_the_demo_on_the_real_clock_no_data_is_stale(live_stack: Stack) -> None:
    """With the demo on Prometheus' own clock, as `make demo` runs: every dataset's watermark
    is within its expected lag (OpenRouter's completed days and the daily cost reports
    included), whatever the day and hour the suite runs."""
    (stale_rule,) = [r for r in rules() if r.get("alert") == "AICostDataStale"]
    ages = live_stack.query("time() - aicost_data_watermark_timestamp_seconds")
    lags = live_stack.query("aicost_data_expected_lag_seconds")
    assert len(ages) >= 20 and len(lags) >= 20, (len(ages), len(lags))
    assert {r["metric"]["provider"] for r in ages} >= {"openai", "anthropic", "openrouter"}
    assert live_stack.query(stale_rule["expr"]) == []
    quiet = "AICostDataStale|AICostCollectorDown|AICostExporterDown|AICostUnpricedUsage"
    assert live_stack.query(f'ALERTS{{alertname=~"{quiet}"}}') == []
