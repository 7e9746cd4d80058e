"""The shipped stack files, and what the tests need to read from them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from exporter.web import metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
RULE_FILES = sorted((PROMETHEUS_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((ROOT / "tests" / "stack" / "rules").glob("*.yml"))
ALERTMANAGER_CONFIG = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA_DIR / "dashboards").glob("*.json"))
RUNBOOKS = ROOT / "docs" / "runbooks.md"

ALERTS = {
    "AICostBudgetWarning": "warning",
    "AICostBudgetExceeded": "critical",
    "AICostBudgetForecastOverrun": "warning",
    "AICostProviderLimitForecast": "warning",
    "AICostProviderLimitEnforcing": "critical",
    "AICostSpendSpike": "warning",
    "AICostCollectorDown": "warning",
    "AICostDataStale": "warning",
    "AICostExporterDown": "critical",
    "AICostUnpricedUsage": "info",
}
"""Every alert the stack ships, with its severity."""

GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range", "__range_s", "__interval_ms"}
PROMETHEUS_METRICS = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rules() -> list[dict[str, Any]]:
    """Every rule of every shipped rule file."""
    return [
        rule
        for path in RULE_FILES
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


def exporter_series_names() -> set[str]:
    """Every series name the exporter can expose, from exporter/web/metrics.py."""
    names: set[str] = set()
    for value in vars(metrics).values():
        if not isinstance(value, metrics.MetricDef):
            continue
        if value.type == "counter":
            names.add(value.name + "_total")
        elif value.type == "histogram":
            names.update(value.name + suffix for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(value.name)
    return names


_NAME = re.compile(r"(?<![\w:$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless"}
_KEYWORDS |= {"offset", "bool", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Series names a PromQL expression selects (functions, keywords and label names left out)."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = re.sub(r"\{[^}]*\}", "{}", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    bare = re.sub(r"\[[^\]]*\]", "[]", bare)
    return {name for name in _NAME.findall(bare) if name.lower() not in _KEYWORDS}


@dataclass(frozen=True)
class Query:
    dashboard: str
    panel: str
    ref: str
    expr: str


def dashboard(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def queries() -> list[Query]:
    """Every panel query of every shipped dashboard."""
    return [
        Query(path.name, panel["title"], target["refId"], target["expr"])
        for path in DASHBOARDS
        for panel in panels(dashboard(path))
        for target in panel.get("targets", [])
    ]


def variable_queries() -> list[tuple[str, str, str]]:
    """(dashboard, variable, query) of every query variable."""
    out = []
    for path in DASHBOARDS:
        for var in dashboard(path)["templating"]["list"]:
            if var["type"] == "query":
                query = var["query"]
                out.append(
                    (path.name, var["name"], query["query"] if isinstance(query, dict) else query)
                )
    return out


_LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?([a-zA-Z_][a-zA-Z0-9_]*)\)$")


def label_values(query: str) -> tuple[str, str]:
    """``label_values(selector, label)`` -> (selector, label)."""
    match = _LABEL_VALUES.match(query.strip())
    assert match, f"not a label_values() query: {query}"
    return match.group(1) or "", match.group(2)


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace Grafana variables ($name, ${name}, ${name:format}) with fixed values."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"no value for ${name} in {expr}"
        return values[name]

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", replace, expr)


def variables_used(expr: str) -> set[str]:
    return {a or b for a, b in re.findall(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", expr)}
