"""Every panel query of both dashboards, against a real Prometheus (shipped rules) scraping the
demo.

For the default selection ("All" everywhere) and for each provider selected on its own, every
query must return data whenever that provider exports the exporter families the query reads
(through the recording rules). A panel that goes empty although its data is there is a dashboard
bug; the few families a provider cannot have by construction are listed with their reason. The
panel-by-panel result is written to test-artifacts/dashboard-queries.txt.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import real_binary
from tests.integration.exporter_process import free_port, pinned_env
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
)
from .servers import Server, prometheus

pytestmark = pytest.mark.integration

ARTIFACT = ROOT / "test-artifacts" / "dashboard-queries.txt"
SCRAPE_SECONDS = 20  # scrapes every second: enough samples for every rate() window to answer
GRAFANA = {"__rate_interval": "30s", "__interval": "5s", "__range": "1h"}
# (query panel, provider) pairs that may be empty although the provider exports the families,
# because the data cannot exist for that provider.
NO_DATA_BY_CONSTRUCTION: dict[tuple[str, str], str] = {}


def all_selected(job: str) -> dict[str, str]:
    """Grafana's "All": the job variable is every job found, the others match everything."""
    return GRAFANA | {n: ".*" for n in ("provider", "account", "project", "model")} | {"job": job}


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

    def providers_with(self, family: str) -> set[str]:
        """Providers with a sample of exporter family ``family`` (a metric name) in the scrape."""
        pattern = re.compile(rf'^{re.escape(family)}{{[^}}]*provider="([^"]+)"', re.MULTILINE)
        return set(pattern.findall(self.metrics))


def raw_dependencies(names: set[str]) -> set[str]:
    """The exporter and Prometheus series behind ``names``, through the recording rules."""
    recorded = {rule["record"]: rule["expr"] for rule in rules() if "record" in rule}
    out: set[str] = set()
    for name in names:
        out |= raw_dependencies(metric_names(recorded[name])) if name in recorded else {name}
    return out


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("dashboards")
    prometheus_bin = real_binary("prometheus")
    port, prom_port = free_port(), free_port()
    log = (tmp / "demo.log").open("wb")
    demo = subprocess.Popen(
        [sys.executable, "-m", "exporter", "demo", f"--web.listen-address=127.0.0.1:{port}"],
        env=pinned_env(MOMENTS["mid-month"], ticking=True),
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


def expected_providers(stack: Stack, query: Query) -> set[str]:
    """Providers whose selection must show data: those exporting every family the query reads.

    A query that keeps only values above zero (``... > 0``: failed polls) may be empty anywhere.
    """
    if re.search(r">\s*0\s*$", query.expr):
        return set()
    families = raw_dependencies(metric_names(query.expr)) - PROMETHEUS_METRICS
    if not families:  # Prometheus' own series of the exporter's job: every selection has them
        return set(stack.providers_with("aicost_collector_up"))
    found = [stack.providers_with(f) | stack.providers_with(f + "_total") for f in families]
    return set.intersection(*found)


def test_every_panel_has_data_for_every_selection_that_has_its_families(stack: Stack) -> None:
    providers = sorted(stack.providers_with("aicost_collector_up"))
    assert {"openai", "anthropic", "openrouter", "github_copilot"} <= set(providers)
    lines, empty = [], []
    for query in queries():
        default = substitute(query.expr, all_selected("ai-cost-exporter"))
        expected = expected_providers(stack, query)
        has_default = bool(stack.query(default))
        must = bool(expected) or not re.search(r">\s*0\s*$", query.expr)
        row = ["data" if has_default else ("EMPTY" if must else "-")]
        if must and not has_default:
            empty.append((query.dashboard, query.panel, query.ref, "All"))
        for provider in providers:
            values = all_selected("ai-cost-exporter") | {"provider": provider}
            has = bool(stack.query(substitute(query.expr, values)))
            should = provider in expected and (query.panel, provider) not in NO_DATA_BY_CONSTRUCTION
            row.append("data" if has else ("EMPTY" if should else "-"))
            if should and not has:
                empty.append((query.dashboard, query.panel, query.ref, provider))
        lines.append(f"{query.dashboard:24} {query.panel[:40]:40} {query.ref:2} " + " ".join(row))
    header = f"{'dashboard':24} {'panel':40} {'':2} All " + " ".join(providers)
    ARTIFACT.parent.mkdir(exist_ok=True)
    ARTIFACT.write_text("\n".join([header, *lines]) + "\n")
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
