"""The Prometheus configuration and rules: promtool checks, unit tests and the alert contract."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .assets import (
    ALERTS,
    PROMETHEUS_CONFIG,
    PROMETHEUS_METRICS,
    ROOT,
    RULE_FILES,
    RULE_TESTS,
    RUNBOOKS,
    exporter_series_names,
    load_yaml,
    metric_names,
    recorded_names,
    rules,
)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_promtool_check_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", *map(str, RULE_FILES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout  # the alerts file


def test_promtool_check_config_loads_the_rules(promtool: str) -> None:
    result = run(promtool, "check", "config", str(PROMETHEUS_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in result.stdout


def test_promtool_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(RULE_TESTS)


def test_promtool_unit_tests_can_fail(promtool: str, tmp_path: Path) -> None:
    """A wrong expectation makes the runner fail (so the passing run above means something)."""
    text = (RULE_TESTS[0].parent / "budgets_test.yml").read_text()
    broken = tmp_path / "rules" / "broken_test.yml"
    broken.parent.mkdir()
    broken.write_text(
        text.replace("../../../deploy", str(ROOT / "deploy")).replace("used 85%", "used 84%")
    )
    result = run(promtool, "test", "rules", str(broken))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "used 85%" in output and "FAILED" in output


def alert_rules() -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for rule in rules() if "alert" in rule}


def test_every_alert_exists_with_severity_and_annotations() -> None:
    alerts = alert_rules()
    assert alerts.keys() == ALERTS.keys()
    for name, rule in alerts.items():
        assert rule["labels"] == {"severity": ALERTS[name]}, name
        annotations = rule["annotations"]
        assert annotations.keys() == {"summary", "description", "runbook_url"}, name
        # The summary is static (identical across a notification group) and a sentence.
        assert "{{" not in annotations["summary"] and annotations["summary"].endswith("."), name
        assert "{{" in annotations["description"], f"{name}: description should carry values"
        assert annotations["runbook_url"] == f"docs/runbooks.md#{name.lower()}"


def github_anchors(markdown: str) -> set[str]:
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", markdown, flags=re.M):
        anchor = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(anchor)
    return anchors


def test_every_runbook_url_points_at_a_runbook_section() -> None:
    anchors = github_anchors(RUNBOOKS.read_text())
    for name, rule in alert_rules().items():
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in anchors, f"{name}: docs/runbooks.md has no section #{anchor}"


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        spec = load_yaml(path)
        for test in spec["tests"]:
            assert "interval" in test, f"{path.name}: 2.42 needs an explicit interval"
            for case in test.get("alert_rule_test", []):
                (fires if case["exp_alerts"] else silent).add(case["alertname"])
                for alert in case["exp_alerts"]:
                    assert alert["exp_labels"]["severity"] == ALERTS[case["alertname"]]
                    assert alert["exp_annotations"].keys() == {
                        "summary",
                        "description",
                        "runbook_url",
                    }
    assert fires == ALERTS.keys()
    assert silent == ALERTS.keys()


def test_unit_tests_load_the_shipped_rule_files() -> None:
    for path in RULE_TESTS:
        files = {(path.parent / f).resolve() for f in load_yaml(path)["rule_files"]}
        assert files <= set(RULE_FILES), path.name


def test_recording_rule_names_follow_level_metric_operations() -> None:
    known = exporter_series_names() | {n.removesuffix("_total") for n in exporter_series_names()}
    for rule in rules():
        if "record" not in rule:
            continue
        level, metric, operations = rule["record"].split(":")
        assert re.fullmatch(r"[a-z_]+", level) and re.fullmatch(r"[a-z0-9_]+", operations)
        assert metric in known, f"{rule['record']}: {metric} is not an exporter metric"
        # Aggregations keep `job` (by) or every label but the replica ones (without).
        expr = rule["expr"]
        for grouping in re.findall(r"\bby \(([^)]*)\)", expr):
            assert "job" in grouping.split(", "), rule["record"]
        assert "without (instance, pod)" in expr or metric_names(expr) <= recorded_names()


def test_raw_series_are_deduplicated_across_replicas() -> None:
    """Every expression that reads an exporter series directly removes replica duplicates first."""
    raw = exporter_series_names()
    for rule in rules():
        if "record" in rule and metric_names(rule["expr"]) & raw:
            assert "max without (instance, pod)" in rule["expr"], rule["record"]


def test_rules_use_only_metrics_that_exist() -> None:
    """Every series the rules read is exported by ai-cost-exporter (exporter/web/metrics.py),
    recorded by a rule, or Prometheus' own. Fails while a metric of the contract is missing."""
    available = exporter_series_names() | recorded_names() | PROMETHEUS_METRICS
    used = set().union(*(metric_names(rule["expr"]) for rule in rules()))
    assert used - available == set()


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule_files_avoid_features_newer_than_prometheus_2_42(path: Path) -> None:
    text = path.read_text()
    for feature in ("query_offset", "limitk", "limit_ratio", "holt_winters"):
        assert feature not in text
    for group in load_yaml(path)["groups"]:
        assert "labels" not in group  # rule-group labels are 3.0+


def test_the_scaling_guide_snippets_are_valid_prometheus_config(
    promtool: str, tmp_path: Path
) -> None:
    """docs/scaling.md's alert_relabel_configs and remote_write examples in prometheus.yml."""
    config = load_yaml(PROMETHEUS_CONFIG)
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / "rules" / "*.yml")]
    snippets = re.findall(r"```yaml\n(.*?)```", (ROOT / "docs" / "scaling.md").read_text(), re.S)
    merged = 0
    for snippet in snippets:
        part = yaml.safe_load(snippet)
        if "alerting" in part:
            config["alerting"] |= part["alerting"]
            merged += 1
        elif "remote_write" in part:
            config["remote_write"] = part["remote_write"]
            merged += 1
    assert merged == 2
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = run(promtool, "check", "config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
