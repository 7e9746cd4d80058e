"""What a running daemon loads: only what its configuration uses (#19). The exporter process
imports the push store, basic auth, the config's secret backends, the provider clients and
genai-prices' auto-updater only when configured."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.simulator import Simulator

from .exporter_process import free_port, real_clock_env
from .series import MOMENTS, frozen_simulator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# Runs the daemon in a thread; once it is ready (first polls published), prints which of the
# optional modules the process holds.
DRIVER = """
import json, sys, threading, time, httpx
from exporter import cli
port = sys.argv[2]
threading.Thread(target=cli.main, daemon=True, args=(
    ["run", "--config.file", sys.argv[1], "--web.listen-address", "127.0.0.1:" + port],)).start()
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    try:
        if httpx.get("http://127.0.0.1:" + port + "/-/ready", timeout=2).status_code == 200:
            break
    except httpx.TransportError:
        pass
    time.sleep(0.2)
metrics = httpx.get("http://127.0.0.1:" + port + "/metrics", timeout=10).text
print(json.dumps({"polled": 'aicost_collector_up{account="oai",provider="openai"} 1' in metrics,
                  "modules": sorted(sys.modules)}))
sys.stdout.flush()
import os; os._exit(0)
"""
OPTIONAL = {
    "sqlite3": "the push store",
    "exporter.sources.push.store": "the push store",
    "bcrypt": "basic auth users",
    "cryptography": "encrypted secrets",
    "pydantic_settings": "settings from the environment",
    "exporter.simulator": "the demo",
    "httpx2": "genai-prices' auto-updater (pricing.auto_update is off)",
    "exporter.sources.providers.focus": "the FOCUS reader",
    "exporter.sources.providers.anthropic": "a provider no account uses",
    "exporter.sources.providers.openrouter": "a provider no account uses",
}


@pytest.fixture
def sim() -> Iterator[Simulator]:
    yield from frozen_simulator(seed=3, moment=MOMENTS["today"])


def test_a_daemon_of_one_polled_account_loads_none_of_the_optional_parts(
    sim: Simulator, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "accounts:\n"
        f"  - {{name: oai, provider: openai, api_key: {sim.openai_key},"
        f" base_url: '{sim.openai_base_url}', poll_interval: 10m}}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, str(config), str(free_port())],
        cwd=ROOT, env=real_clock_env(), capture_output=True, text=True, timeout=90, check=True,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["polled"], done.stderr[-2000:]
    loaded = {m for m in OPTIONAL if m in result["modules"]}
    assert loaded == set(), {m: OPTIONAL[m] for m in loaded}
