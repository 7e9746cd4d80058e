"""The exporter's pod: security context, probes, key mounts, resources, and what scrapes it."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from exporter import __version__

from .manifests import (
    BASE,
    CONFIG_MOUNT,
    JOB,
    KEYS_MOUNT,
    KEYS_SECRET,
    OPERATOR,
    SIDECAR,
    container,
    image_port,
    image_user,
    kustomization,
    load_all,
    restricted_violations,
    sidecar_workload,
)
from .manifests import ROOT as REPO

UID, GID = image_user()
CONTAINER_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": UID,
    "runAsGroup": GID,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def deployment() -> dict[str, Any]:
    (doc,) = load_all(BASE / "deployment.yaml")
    return doc


def standalone_pod() -> dict[str, Any]:
    spec: dict[str, Any] = deployment()["spec"]["template"]["spec"]
    return spec


def sidecar_pod() -> dict[str, Any]:
    spec: dict[str, Any] = sidecar_workload()["spec"]["template"]["spec"]
    return spec


# Both shapes: (pod spec, exporter container name, metrics port name).
SHAPES = {
    "standalone": (standalone_pod, "exporter", "metrics"),
    "sidecar": (sidecar_pod, "ai-cost-exporter", "aicost-metrics"),
}


def exporter(shape: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    pod_spec, name, port = SHAPES[shape]
    pod = pod_spec()
    return pod, container(pod, name), port


def test_standalone_is_one_replica_with_a_gapless_rollout() -> None:
    spec = deployment()["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
    }
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()


def test_standalone_pod_security_context_is_restricted_with_the_image_user() -> None:
    pod = standalone_pod()
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": GID,
        "fsGroup": GID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == "ai-cost-exporter"
    (account,) = load_all(BASE / "serviceaccount.yaml")
    assert account["automountServiceAccountToken"] is False


@pytest.mark.parametrize("shape", SHAPES)
def test_exporter_container_security_context(shape: str) -> None:
    _, exporter_container, _ = exporter(shape)
    assert (UID, GID) == (10001, 10001)  # the Dockerfile's fixed user
    assert exporter_container["securityContext"] == CONTAINER_SECURITY


@pytest.mark.parametrize("shape", SHAPES)
def test_pod_passes_the_restricted_pod_security_standard(shape: str) -> None:
    pod, _, _ = exporter(shape)
    assert restricted_violations(pod) == []


def test_the_restricted_check_is_not_a_rubber_stamp() -> None:
    pod = standalone_pod()
    broken = copy.deepcopy(pod)
    del broken["securityContext"]["seccompProfile"]
    del broken["containers"][0]["securityContext"]["seccompProfile"]
    broken["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    broken["containers"][0]["securityContext"]["capabilities"] = {"add": ["NET_ADMIN"]}
    broken["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    broken["hostNetwork"] = True
    assert restricted_violations(broken) == [
        "hostNetwork",
        "volume host: ['hostPath']",
        "exporter: allowPrivilegeEscalation is not false",
        "exporter: capabilities do not drop ALL",
        "exporter: adds capabilities",
        "exporter: seccompProfile is not RuntimeDefault or Localhost",
    ]


def test_namespace_enforces_the_restricted_profile() -> None:
    (namespace,) = load_all(BASE / "namespace.yaml")
    labels = namespace["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("shape", SHAPES)
def test_command_port_and_liveness(shape: str) -> None:
    _, c, port = exporter(shape)
    assert c["args"] == ["run", "--config.file", f"{CONFIG_MOUNT}/config.yaml"]
    # The tag is set by the kustomization's `images` (rendered: the sidecar).
    assert c["image"] in ("ai-cost-exporter", f"ai-cost-exporter:{__version__}")
    assert c["ports"] == [{"name": port, "containerPort": image_port(), "protocol": "TCP"}]
    assert len(port) <= 15  # a port name is an IANA service name
    # Liveness never depends on the providers: /-/healthy only says the process serves.
    assert c["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": port}
    assert c["livenessProbe"]["timeoutSeconds"] < c["livenessProbe"]["periodSeconds"]


def test_standalone_readiness_waits_for_the_first_poll() -> None:
    c = container(standalone_pod(), "exporter")
    assert c["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "metrics"}
    assert c["livenessProbe"]["httpGet"]["path"] != c["readinessProbe"]["httpGet"]["path"]


def test_sidecar_never_makes_the_workload_unready() -> None:
    c = container(sidecar_pod(), "ai-cost-exporter")
    assert "readinessProbe" not in c and "startupProbe" not in c


@pytest.mark.parametrize("shape", SHAPES)
def test_resources_fit_the_benchmark(shape: str) -> None:
    _, c, _ = exporter(shape)
    # bench/run.py: RSS 50 MB empty, 76 MB at 10k series, 151 MB (peak 208 MB) at 50k series.
    assert c["resources"] == {
        "requests": {"cpu": "50m", "memory": "128Mi"},
        "limits": {"cpu": "1", "memory": "256Mi"},
    }


@pytest.mark.parametrize("shape", SHAPES)
def test_keys_are_a_whole_secret_directory_mounted_read_only(shape: str) -> None:
    pod, c, _ = exporter(shape)
    volumes = {v["name"]: v for v in pod["volumes"]}
    secret_mounts = [m for m in c["volumeMounts"] if "secret" in volumes[m["name"]]]
    (mount,) = secret_mounts
    # subPath (or subPathExpr) would pin the file at mount time: a rotated key would never arrive.
    assert mount == {"name": mount["name"], "mountPath": KEYS_MOUNT, "readOnly": True}
    secret = volumes[mount["name"]]["secret"]
    assert secret["secretName"] == KEYS_SECRET
    assert "items" not in secret and "optional" not in secret
    if shape == "standalone":
        assert secret["defaultMode"] == 0o440  # group-readable through fsGroup, nobody else
    else:
        # The workload owns fsGroup; only this container mounts the volume.
        assert secret["defaultMode"] == 0o444
        others = [x for x in pod["containers"] if x is not c]
        assert all(m["name"] != mount["name"] for x in others for m in x.get("volumeMounts", []))
    # And no mount anywhere in the pod uses subPath.
    assert not any(
        "subPath" in m or "subPathExpr" in m
        for x in pod["containers"]
        for m in x.get("volumeMounts", [])
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_config_and_tmp_mounts(shape: str) -> None:
    pod, c, _ = exporter(shape)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    assert set(mounts) == {CONFIG_MOUNT, KEYS_MOUNT, "/tmp"}
    config = mounts[CONFIG_MOUNT]
    assert config["readOnly"] is True
    # The generator's name, with kustomize's content hash once rendered (the sidecar).
    (name,) = volumes[config["name"]]["configMap"].values()
    assert re.fullmatch(r"ai-cost-exporter-config(-[a-z0-9]{10})?", name)
    tmp = volumes[mounts["/tmp"]["name"]]
    assert tmp["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Mi"}
    # No mount nests inside another (a read-only volume cannot hold a mountpoint).
    paths = sorted(mounts)
    assert not any(b.startswith(a.rstrip("/") + "/") for a in paths for b in paths if a != b)


@pytest.mark.parametrize("directory", [BASE, SIDECAR])
def test_the_configmap_generator_feeds_the_mounted_config(directory: Any) -> None:
    (generator,) = kustomization(directory)["configMapGenerator"]
    assert generator["name"] == "ai-cost-exporter-config"
    assert generator["files"] == ["config.yaml"]  # the key the args' --config.file reads
    assert generator.get("options", {}).get("disableNameSuffixHash") is not True  # rollout on edit


@pytest.mark.parametrize("directory", [BASE, SIDECAR])
def test_the_image_tag_is_the_exporter_version(directory: Any) -> None:
    from exporter import __version__

    assert kustomization(directory)["images"] == [
        {"name": "ai-cost-exporter", "newTag": __version__}
    ]


def test_service_exposes_the_pods_metrics_port() -> None:
    (service,) = load_all(BASE / "service.yaml")
    pod_labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert service["metadata"]["name"] == JOB
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["ports"] == [
        {"name": "metrics", "port": image_port(), "targetPort": "metrics", "protocol": "TCP"}
    ]


def alert_job() -> str:
    """The job the AICostExporterDown alert watches, from the shipped rule file."""
    text = (REPO / "deploy" / "prometheus" / "rules" / "aicost-alerts.yml").read_text()
    jobs: set[str] = set(re.findall(r'up\{job="([^"]+)"\}', text))
    assert len(jobs) == 1, jobs
    return jobs.pop()


def test_service_monitor_scrapes_the_service_as_the_expected_job() -> None:
    (monitor,) = load_all(OPERATOR / "servicemonitor.yaml")
    (service,) = load_all(BASE / "service.yaml")
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert "namespaceSelector" not in spec  # the Service is in the ServiceMonitor's namespace
    (endpoint,) = spec["endpoints"]
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert (endpoint["interval"], endpoint["scrapeTimeout"]) == ("30s", "10s")
    # Without jobLabel the job is the Service's name.
    assert "jobLabel" not in spec and service["metadata"]["name"] == alert_job() == JOB


def test_pod_monitor_scrapes_every_sidecar_as_the_expected_job() -> None:
    (monitor,) = load_all(SIDECAR / "podmonitor.yaml")
    workload = sidecar_workload()
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"].items() <= (
        workload["spec"]["template"]["metadata"]["labels"].items()
    )
    (endpoint,) = spec["podMetricsEndpoints"]
    c = container(workload["spec"]["template"]["spec"], "ai-cost-exporter")
    assert endpoint["port"] == c["ports"][0]["name"]
    # A PodMonitor's job would be "<namespace>/<name>": it is set to the one the rules expect.
    assert "jobLabel" not in spec
    assert endpoint["relabelings"] == [
        {"action": "replace", "targetLabel": "job", "replacement": alert_job()}
    ]


@pytest.mark.parametrize(
    "path", [OPERATOR / "servicemonitor.yaml", SIDECAR / "podmonitor.yaml"], ids=lambda p: p.name
)
def test_monitors_carry_the_kube_prometheus_stack_release_label(path: Any) -> None:
    (monitor,) = load_all(path)
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
