"""Idle cost side by side: the exporter against a plain prometheus_client exporter.

The exporter polls one OpenAI and one Anthropic account of the simulator (every 10 minutes, so
nothing is due during the measurement); the baseline is ``start_http_server`` serving as many
gauges. After both are up, neither is scraped: CPU time and RSS come from /proc.

    python -m bench.idle [SECONDS]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

from exporter.simulator import Simulator
from tests.integration.exporter_process import free_port, run_command

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """
accounts:
  - {{name: oai, provider: openai, api_key: "${{IDLE_OPENAI_KEY}}", base_url: "{openai}",
     poll_interval: 10m}}
  - {{name: ant, provider: anthropic, api_key: "${{IDLE_ANTHROPIC_KEY}}", base_url: "{anthropic}",
     poll_interval: 10m}}
"""
BASELINE_SERIES = 160  # about what the two simulated accounts export
BASELINE = textwrap.dedent(
    """
    import sys, time
    from prometheus_client import Gauge, start_http_server
    gauge = Gauge("aicost_tokens", "baseline", ["series"])
    for i in range(int(sys.argv[2])):
        gauge.labels(str(i)).set(i)
    start_http_server(int(sys.argv[1]), addr="127.0.0.1")
    while True:
        time.sleep(3600)
    """
)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not up within 60 s")


def idle(
    command: list[str], env: dict[str, str], ready: str, seconds: float
) -> tuple[float, float]:
    """(CPU seconds per minute while idle, RSS MB) of ``command`` once ``ready`` answers 200."""
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_up(ready)
        time.sleep(2)  # let the start-up work (first polls, imports) finish
        before = cpu_seconds(process.pid)
        time.sleep(seconds)
        used = cpu_seconds(process.pid) - before
        return used * 60 / seconds, rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=15)


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    with Simulator(seed=1) as sim, tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "idle.yaml"
        config.write_text(
            CONFIG.format(openai=sim.openai_base_url, anthropic=sim.anthropic_base_url)
        )
        env = {**os.environ, "IDLE_OPENAI_KEY": sim.openai_key,
               "IDLE_ANTHROPIC_KEY": sim.anthropic_key}  # fmt: skip
        port = free_port()
        ours_cpu, ours_rss = idle(
            run_command(config, port), env, f"http://127.0.0.1:{port}/-/ready", seconds
        )
        port = free_port()
        base_cpu, base_rss = idle(
            [sys.executable, "-c", BASELINE, str(port), str(BASELINE_SERIES)],
            dict(os.environ),
            f"http://127.0.0.1:{port}/metrics",
            seconds,
        )
    ratio = f"{ours_cpu / base_cpu:.2f}" if base_cpu else "n/a: below one clock tick"
    print(
        f"idle {seconds:.0f} s: CPU {ours_cpu:.3f} s/min vs prometheus_client {base_cpu:.3f} s/min "
        f"(ratio {ratio}); RSS {ours_rss:.0f} MB vs {base_rss:.0f} MB "
        "(two accounts polled once; target <= 45 MB)"
    )


if __name__ == "__main__":
    main()
