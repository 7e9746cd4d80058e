"""Grafana provisioning and dashboards, checked without a Grafana server."""

from __future__ import annotations

import re
import subprocess
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
import yaml

from .assets import (
    DASHBOARDS,
    GRAFANA_BUILTINS,
    GRAFANA_DIR,
    PROMETHEUS_METRICS,
    dashboard,
    exporter_series_names,
    label_values,
    load_yaml,
    metric_names,
    panels,
    queries,
    recorded_names,
    substitute,
    variable_queries,
    variables_used,
)

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
UIDS = {
    "ai-spend-overview.json": "aicost-overview",
    "exporter-health.json": "aicost-exporter-health",
}
# Values for a syntax check: regex-safe for =~ matchers, valid durations for range selectors.
CHECK_VALUES = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"} | {
    name: ".*" for name in ("job", "provider", "account", "project", "model")
}


def test_the_dashboards_are_the_expected_ones() -> None:
    assert {path.name: dashboard(path)["uid"] for path in DASHBOARDS} == UIDS
    titles = [dashboard(path)["title"] for path in DASHBOARDS]
    assert sorted(titles) == ["AI cost exporter health", "AI spend overview"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    text = path.read_text()
    board = dashboard(path)
    assert "__inputs" not in board and "${DS_" not in text  # never resolved by file provisioning
    assert board["id"] is None and 13 <= board["schemaVersion"] <= 39
    assert board["timezone"] == "utc"  # budgets and month-to-date counters are UTC calendar periods
    variables = board["templating"]["list"]
    assert variables[0] == {
        **variables[0],
        "name": "datasource",
        "type": "datasource",
        "query": "prometheus",
    }
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(board):
        where = f"{path.name} panel {panel['id']} {panel.get('title')!r}"
        assert panel["title"] and panel["description"], where
        assert panel["datasource"] == DATASOURCE, where
        assert panel["fieldConfig"]["defaults"]["unit"], where
        assert panel["targets"], where
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, where
            assert target["expr"].strip() and target["refId"], where
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), where


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_grid_is_valid_and_panels_do_not_overlap(path: Path) -> None:
    boxes = []
    for panel in panels(dashboard(path)):
        pos = panel["gridPos"]
        assert pos["w"] > 0 and pos["h"] > 0 and pos["x"] >= 0 and pos["y"] >= 0, panel["title"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        boxes.append((panel["title"], pos))
    for (a, p), (b, q) in combinations(boxes, 2):
        overlap_x = p["x"] < q["x"] + q["w"] and q["x"] < p["x"] + p["w"]
        overlap_y = p["y"] < q["y"] + q["h"] and q["y"] < p["y"] + p["h"]
        assert not (overlap_x and overlap_y), f"{a!r} overlaps {b!r}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_variables_are_defined_before_use(path: Path) -> None:
    board = dashboard(path)
    defined: set[str] = set()
    for var in board["templating"]["list"]:
        if var["type"] == "query":
            assert var["datasource"] == DATASOURCE
            query = var["query"]["query"]
            assert variables_used(query) <= defined, var["name"]
            # "All" is .* except for the job: there it is the jobs found (a shared Prometheus
            # has other jobs, which `up` and the scrape panels must not show).
            all_value = None if var["name"] == "job" else ".*"
            assert var["includeAll"] and var.get("allValue") == all_value, var["name"]
            assert var["multi"], var["name"]
        defined.add(var["name"])
    for panel in panels(board):
        for target in panel["targets"]:
            assert variables_used(target["expr"]) <= defined | GRAFANA_BUILTINS, target["expr"]


def test_every_query_selects_a_job_and_uses_rate_interval_for_raw_ranges() -> None:
    for query in queries():
        for selector in re.findall(r"[a-zA-Z_:][\w:]*\{[^}]*\}", query.expr):
            assert 'job=~"$job"' in selector, (query.panel, selector)
        bare = re.sub(r"\{[^}]*\}", "", query.expr)
        assert re.findall(r"\b[a-zA-Z_:][\w:]*\s*(?=\[)", bare) == re.findall(
            r"\b[a-zA-Z_:][\w:]*(?=\[\$__rate_interval\])", bare
        ), f"{query.panel}: range selectors must use $__rate_interval"


def test_queries_use_only_metrics_that_exist() -> None:
    """Recording rules (deploy/prometheus/rules), exporter/web/metrics.py series, or Prometheus'."""
    available = exporter_series_names() | recorded_names() | PROMETHEUS_METRICS
    missing = {
        (q.dashboard, q.panel, name) for q in queries() for name in metric_names(q.expr) - available
    }
    assert missing == set()


def test_every_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses each expression as a record rule (after substituting Grafana variables)."""
    exprs = [substitute(q.expr, CHECK_VALUES) for q in queries()]
    exprs += [
        selector
        for _, _, query in variable_queries()
        if (selector := substitute(label_values(query)[0], CHECK_VALUES))
    ]
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard:query:{i}", "expr": expr} for i, expr in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


def test_promql_check_catches_a_broken_query(promtool: str, tmp_path: Path) -> None:
    path = tmp_path / "broken.yml"
    path.write_text(
        yaml.safe_dump(
            {
                "groups": [
                    {
                        "name": "g",
                        "rules": [{"record": "dashboard:query:0", "expr": "sum(rate(x[5m])"}],
                    }
                ]
            }
        )
    )
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 1 and "unclosed left parenthesis" in result.stdout + result.stderr


def provisioning(kind: str) -> dict[str, Any]:
    (path,) = (GRAFANA_DIR / "provisioning" / kind).glob("*.yml")
    data: dict[str, Any] = load_yaml(path)
    return data


def test_datasource_provisioning() -> None:
    config = provisioning("datasources")
    assert config["apiVersion"] == 1
    (source,) = config["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus" and source["isDefault"]
    assert source["url"] == "http://prometheus:9090"


def test_dashboard_provider_points_at_the_dashboards() -> None:
    config = provisioning("dashboards")
    (provider,) = config["providers"]
    assert provider["type"] == "file" and provider["options"]["path"].startswith("/")
    assert provider["folderUid"] and provider["disableDeletion"]
