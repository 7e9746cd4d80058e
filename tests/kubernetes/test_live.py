"""The Kubernetes configuration run for real: probes, and key rotation through a Secret volume.

The exporter process runs the shipped base/config.yaml against the bundled simulator, with its
key directory laid out the way the kubelet writes a Secret volume (files are symlinks through
``..data``, which is swapped atomically when the Secret changes).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter.simulator import Simulator
from tests.integration.exporter_process import ExporterProcess, Labels

from .manifests import BASE, KEYS_MOUNT, container, load_all

pytestmark = pytest.mark.integration

ROTATED_KEY = "sk-admin-rotated"


def write_secret_volume(directory: Path, files: dict[str, str], generation: int) -> None:
    """Lay out or update ``directory`` like the kubelet's atomic writer does for a Secret."""
    data = directory / f"..2025_01_01_00_00_0{generation}.000000001"
    data.mkdir(parents=True)
    for name, value in files.items():
        (data / name).write_text(value)
    link = directory / "..data_tmp"
    link.symlink_to(data.name)
    os.replace(link, directory / "..data")  # the one atomic step
    for name in files:
        visible = directory / name
        if not visible.is_symlink():
            visible.symlink_to(f"..data/{name}")


def config_for(sim: Simulator, keys: Path) -> str:
    """base/config.yaml with the key directory and the providers' URLs pointed at this test."""
    data: dict[str, Any] = yaml.safe_load((BASE / "config.yaml").read_text())
    urls = {"openai": sim.openai_base_url, "anthropic": sim.anthropic_base_url}
    for account in data["accounts"]:
        account["api_key_file"] = account["api_key_file"].replace(KEYS_MOUNT, str(keys))
        account["base_url"] = urls[account["provider"]]
        account["poll_interval"] = "10s"  # the minimum, so that the rotation shows quickly
    return yaml.safe_dump(data)


@pytest.fixture
def sim() -> Iterator[Simulator]:
    simulator = Simulator(seed=3, openai_key=ROTATED_KEY)
    simulator.start("127.0.0.1", 0)
    yield simulator
    simulator.stop()


def up(samples: dict[str, dict[Labels, float]], account: str) -> float:
    (value,) = [v for k, v in samples["aicost_collector_up"].items() if ("account", account) in k]
    return value


def test_probes_and_key_rotation_without_restart(sim: Simulator, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    revoked = {"openai-admin-key": "sk-admin-revoked\n", "anthropic-admin-key": sim.anthropic_key}
    write_secret_volume(keys, revoked, 1)
    config = tmp_path / "config.yaml"
    config.write_text(config_for(sim, keys))
    pod = load_all(BASE / "deployment.yaml")[0]["spec"]["template"]["spec"]
    probes = container(pod, "exporter")

    with ExporterProcess(config, {}, tmp_path / "exporter.log") as exporter:
        exporter.wait_ready()
        for probe in ("livenessProbe", "readinessProbe"):
            response = httpx.get(exporter.url + probes[probe]["httpGet"]["path"], timeout=5)
            assert response.status_code == 200, probe
        # Ready and alive although one provider rejects its key: only aicost_collector_up says so.
        samples = exporter.scrape()
        assert (up(samples, "openai-main"), up(samples, "anthropic-main")) == (0.0, 1.0)
        errors = samples["aicost_collector_errors_total"]
        assert any(("reason", "auth") in k and ("account", "openai-main") in k for k in errors)

        # The Secret is updated: the kubelet swaps ..data; the next poll reads the new key.
        write_secret_volume(keys, {**revoked, "openai-admin-key": ROTATED_KEY + "\n"}, 2)
        exporter.wait_until(lambda s: up(s, "openai-main") == 1.0, timeout=60)
        assert exporter.process.poll() is None  # no restart
        assert exporter.stop() == 0
        log = exporter.log
    assert ROTATED_KEY not in log and sim.anthropic_key not in log
