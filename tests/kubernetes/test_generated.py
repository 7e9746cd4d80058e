"""The generated PrometheusRule and dashboard ConfigMaps match their sources."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from .manifests import OPERATOR, ROOT, load_all

SCRIPT = ROOT / "scripts" / "generate_kubernetes.py"
RULE_FILES = sorted((ROOT / "deploy" / "prometheus" / "rules").glob("*.yml"))
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
GENERATED = [OPERATOR / "prometheusrule.yaml", OPERATOR / "grafana-dashboards.yaml"]
# kubectl's client-side apply stores the whole object in an annotation, limited to 256 KiB.
APPLY_ANNOTATION_LIMIT = 262144


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generate_kubernetes", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


def test_generating_into_an_empty_directory_reproduces_the_committed_files(tmp_path: Path) -> None:
    result = run("--out-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(p.relative_to(ROOT) for p in GENERATED)
    for path in GENERATED:
        assert (tmp_path / path.relative_to(ROOT)).read_text() == path.read_text(), (
            f"{path.relative_to(ROOT)} is out of date: run `make generate`"
        )


def test_check_mode_passes_on_the_repository_and_fails_on_drift(tmp_path: Path) -> None:
    result = run("--check")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")

    # A copy of the generated files where the rule file "changed" since they were generated.
    for path in GENERATED:
        target = tmp_path / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    stale = tmp_path / "deploy/kubernetes/operator/prometheusrule.yaml"
    stale.write_text(stale.read_text().replace("for: 15m", "for: 10m", 1))
    result = run("--check", "--out-dir", str(tmp_path))
    assert result.returncode == 1
    assert "deploy/kubernetes/operator/prometheusrule.yaml: out of date" in result.stderr
    assert "grafana-dashboards.yaml" not in result.stderr
    assert "for: 10m" in stale.read_text()  # --check never writes


def test_a_changed_source_changes_the_output(tmp_path: Path) -> None:
    module = generator()
    for source in [*RULE_FILES, *DASHBOARDS]:
        target = tmp_path / source.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
    assert module.outputs(tmp_path) == module.outputs(ROOT)
    rules = tmp_path / "deploy/prometheus/rules/aicost-alerts.yml"
    rules.write_text(rules.read_text().replace("severity: critical", "severity: page", 1))
    changed = module.outputs(tmp_path)
    rule_file = Path("deploy/kubernetes/operator/prometheusrule.yaml")
    assert changed[rule_file] != module.outputs(ROOT)[rule_file]
    assert "severity: page" in changed[rule_file]


def test_a_rules_file_with_more_than_groups_is_refused(tmp_path: Path) -> None:
    module = generator()
    bad = tmp_path / "rules.yml"
    bad.write_text("groups: []\nextra: 1\n")
    with pytest.raises(module.GenerateError, match="only a top-level 'groups' key"):
        module.prometheus_rule([Path("rules.yml")], tmp_path)


def test_prometheus_rule_groups_are_the_rule_files_groups() -> None:
    (rule,) = load_all(OPERATOR / "prometheusrule.yaml")
    expected: list[Any] = []
    for path in RULE_FILES:
        expected.extend(yaml.safe_load(path.read_text())["groups"])
    assert rule["spec"]["groups"] == expected
    assert [g["name"] for g in rule["spec"]["groups"]] == [
        "aicost-budget-alerts",
        "aicost-spend-alerts",
        "aicost-exporter-alerts",
        "aicost-cost-recording",
        "aicost-tokens-recording",
        "aicost-budgets-recording",
    ]
    assert rule["metadata"]["name"] == "ai-cost-exporter"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # The replica deduplication the sidecar docs rely on travels with the rules.
    assert "max without (instance, pod)" in json.dumps(rule)


def test_dashboard_configmaps_hold_the_dashboards_for_the_grafana_sidecar() -> None:
    docs = load_all(OPERATOR / "grafana-dashboards.yaml")
    assert [d["metadata"]["name"] for d in docs] == [
        f"ai-cost-exporter-dashboard-{p.stem}" for p in DASHBOARDS
    ]
    for doc, path in zip(docs, DASHBOARDS, strict=True):
        assert doc["data"] == {path.name: path.read_text()}
        assert doc["metadata"]["labels"]["grafana_dashboard"] == "1"  # a string, as labels are
        assert doc["metadata"]["annotations"] == {"grafana_folder": "AI cost"}
        assert len(json.dumps(doc)) < APPLY_ANNOTATION_LIMIT


def test_generated_files_say_so() -> None:
    for path in GENERATED:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# Generated by scripts/generate_kubernetes.py from ")
        assert first.endswith("do not edit.")
    (rule,) = load_all(OPERATOR / "prometheusrule.yaml")
    assert len(json.dumps(rule)) < APPLY_ANNOTATION_LIMIT
