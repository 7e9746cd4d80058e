"""Every manifest file against the Kubernetes and prometheus-operator schemas, offline."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from kubernetes_validate import SchemaNotFoundError  # type: ignore[import-untyped]

from .manifests import (
    CRD_MODELS,
    KUBERNETES_DIR,
    KUBERNETES_VERSIONS,
    KUSTOMIZATIONS,
    OPERATOR,
    SIDECAR,
    crd_problems,
    kubernetes_problems,
    kustomization,
    load_all,
    only,
    patch_files,
    resource_files,
    sidecar_workload,
)

FILES = resource_files()


def test_the_manifests_are_the_expected_ones() -> None:
    assert [str(p.relative_to(KUBERNETES_DIR)) for p in FILES] == [
        "base/deployment.yaml",
        "base/namespace.yaml",
        "base/service.yaml",
        "base/serviceaccount.yaml",
        "operator/grafana-dashboards.yaml",
        "operator/prometheusrule.yaml",
        "operator/servicemonitor.yaml",
        "sidecar/example-app.yaml",
        "sidecar/exporter-sidecar.yaml",
        "sidecar/podmonitor.yaml",
    ]


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_every_file_is_used_by_its_kustomization(directory: Path) -> None:
    data = kustomization(directory)
    used = {r for r in data.get("resources", []) if not r.startswith("../")}
    used |= {p["path"] for p in data.get("patches", [])}
    used |= {f for g in data.get("configMapGenerator", []) for f in g["files"]}
    present = {p.name for p in directory.iterdir() if p.name != "kustomization.yaml"}
    assert used == present
    for base in (r for r in data.get("resources", []) if r.startswith("../")):
        assert (directory / base / "kustomization.yaml").is_file()
    # kustomize v5 deprecates commonLabels (it also rewrites selectors); `labels` is used instead.
    assert "commonLabels" not in data and "secretGenerator" not in data


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(KUBERNETES_DIR)))
def test_manifest_matches_its_schema(path: Path, version: str) -> None:
    docs = load_all(path)
    assert docs
    if path in patch_files():
        # A patch is a partial object: what must be valid is the workload it is applied to.
        assert path == SIDECAR / "exporter-sidecar.yaml"
        docs = [sidecar_workload()]
    for doc in docs:
        if doc["kind"] in CRD_MODELS:
            assert crd_problems(doc) is None
        else:
            assert kubernetes_problems(doc, version) is None


def test_the_schema_check_is_strict_and_covers_workloads() -> None:
    deployment = load_all(KUBERNETES_DIR / "base" / "deployment.yaml")[0]
    version = KUBERNETES_VERSIONS[-1]
    assert kubernetes_problems(deployment, version) is None

    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["livenessprobe"] = {}
    problem = kubernetes_problems(typo, version)
    assert problem is not None and "livenessprobe" in problem

    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["template"]["spec"]["volumes"][1]["secret"]["defaultMode"] = "0440"
    problem = kubernetes_problems(wrong_type, version)
    assert problem is not None and "volumes/1/secret/defaultMode" in problem

    # A kind the bundled schemas do not define is an error, never silently "valid".
    with pytest.raises(SchemaNotFoundError):
        kubernetes_problems({**deployment, "kind": "Deploymnet"}, version)


def test_the_crd_check_catches_unknown_fields_and_bad_values() -> None:
    monitor = load_all(OPERATOR / "servicemonitor.yaml")[0]
    assert crd_problems(monitor) is None

    unknown = copy.deepcopy(monitor)
    unknown["spec"]["endpoints"][0]["scrape_interval"] = "30s"
    problem = crd_problems(unknown)
    assert problem is not None and "/spec/endpoints/0/scrape_interval" in problem

    bad_duration = copy.deepcopy(monitor)
    bad_duration["spec"]["endpoints"][0]["interval"] = "30 seconds"
    problem = crd_problems(bad_duration)
    assert problem is not None and "interval" in problem

    no_selector = copy.deepcopy(monitor)
    del no_selector["spec"]["selector"]
    problem = crd_problems(no_selector)
    assert problem is not None and "selector" in problem

    pod_monitor = load_all(SIDECAR / "podmonitor.yaml")[0]
    no_endpoints_key = copy.deepcopy(pod_monitor)
    no_endpoints_key["spec"]["podMetricsEndpoints"][0]["honor_labels"] = True
    assert crd_problems(pod_monitor) is None
    assert crd_problems(no_endpoints_key) is not None

    rule = load_all(OPERATOR / "prometheusrule.yaml")[0]
    misplaced = copy.deepcopy(rule)
    misplaced["spec"]["groups"][0]["rules"][0]["severity"] = "warning"
    assert crd_problems(rule) is None
    assert crd_problems(misplaced) is not None


def test_every_dashboard_configmap_is_valid() -> None:
    docs = load_all(OPERATOR / "grafana-dashboards.yaml")
    assert [d["kind"] for d in docs] == ["ConfigMap", "ConfigMap"]
    assert only(docs, "ConfigMap", "ai-cost-exporter-dashboard-exporter-health")
