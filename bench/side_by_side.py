"""The exporter process side by side with a plain prometheus_client exporter of the same samples.

The exporter polls one OpenAI and one Anthropic account of the simulator (every 10 minutes, so no
poll is due while it is measured). The baseline is a prometheus_client ``start_http_server``
whose collector yields exactly the samples of the exporter's first scrape. Both then idle for
the same window (CPU time from /proc), are scraped in turn with the headers Prometheus sends
(OpenMetrics, gzip), and their RSS is read. Both see only the packages of a production
install (bench/installed.py), not the test extra of the venv the bench runs in.

    python -m bench.side_by_side [IDLE_SECONDS]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

from bench import installed
from bench.memory import rss_mb
from bench.scrape import PROMETHEUS_HEADERS, p99
from exporter.simulator import Simulator
from tests.integration.exporter_process import free_port, run_command

ROOT = Path(__file__).resolve().parent.parent
SCRAPES = 400
CONFIG = """
accounts:
  - {{name: oai, provider: openai, api_key: "${{SBS_OPENAI_KEY}}", base_url: "{openai}",
     poll_interval: 10m}}
  - {{name: ant, provider: anthropic, api_key: "${{SBS_ANTHROPIC_KEY}}", base_url: "{anthropic}",
     poll_interval: 10m}}
"""
BASELINE = textwrap.dedent(
    """
    import sys, time
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    families = list(text_string_to_metric_families(open(sys.argv[2]).read()))
    class Same:
        def collect(self):
            return iter(families)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Same())
    start_http_server(int(sys.argv[1]), addr="127.0.0.1", registry=registry)
    while True:
        time.sleep(3600)
    """
)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


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


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs else "n/a: below one clock tick"


def main() -> None:
    idle_seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    processes: list[subprocess.Popen[bytes]] = []
    with Simulator(seed=1) as sim, tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "sbs.yaml"
        config.write_text(
            CONFIG.format(openai=sim.openai_base_url, anthropic=sim.anthropic_base_url)
        )
        env = {
            **os.environ,
            "SBS_OPENAI_KEY": sim.openai_key,
            "SBS_ANTHROPIC_KEY": sim.anthropic_key,
        }
        try:
            port = free_port()
            ours = start(installed.command("exporter", *run_command(config, port)[3:]), env)
            processes.append(ours)
            urls = {"ours": f"http://127.0.0.1:{port}/metrics"}
            wait_up(f"http://127.0.0.1:{port}/-/ready")
            samples = Path(directory) / "samples.txt"
            accept = {"Accept": PROMETHEUS_HEADERS["Accept"]}
            samples.write_text(httpx.get(urls["ours"], headers=accept, timeout=10).text)
            port = free_port()
            theirs = start(installed.script(BASELINE, str(port), str(samples)), env)
            processes.append(theirs)
            urls["theirs"] = f"http://127.0.0.1:{port}/metrics"
            wait_up(urls["theirs"])
            time.sleep(2)  # start-up work done
            before = {p.pid: cpu_seconds(p.pid) for p in processes}
            time.sleep(idle_seconds)
            idle = {
                name: (cpu_seconds(p.pid) - before[p.pid]) * 60 / idle_seconds
                for name, p in zip(("ours", "theirs"), processes, strict=True)
            }
            times: dict[str, list[float]] = {"ours": [], "theirs": []}
            with httpx.Client(timeout=30) as client:
                for _ in range(SCRAPES // 10):  # interleaved: host speed drifts
                    for name, url in urls.items():
                        for _ in range(10):
                            started = time.perf_counter()
                            response = client.get(url, headers=PROMETHEUS_HEADERS)
                            times[name].append(time.perf_counter() - started)
                            assert response.status_code == 200
            rss = {
                name: rss_mb("VmRSS", p.pid)
                for name, p in zip(("ours", "theirs"), processes, strict=True)
            }
            count = sum(1 for line in samples.read_text().splitlines() if not line.startswith("#"))
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=15)
    median = {name: statistics.median(t) * 1000 for name, t in times.items()}
    tail = {name: p99(t) * 1000 for name, t in times.items()}
    print(f"side by side, {count} samples (ours | prometheus_client | ratio):")
    print(f"  scrape median  {median['ours']:7.2f} | {median['theirs']:7.2f} ms | "
          f"{ratio(median['ours'], median['theirs'])} (target <= 0.5)")  # fmt: skip
    print(f"  scrape p99     {tail['ours']:7.2f} | {tail['theirs']:7.2f} ms | "
          f"{ratio(tail['ours'], tail['theirs'])} (target <= 1)")  # fmt: skip
    print(f"  idle CPU       {idle['ours']:7.3f} | {idle['theirs']:7.3f} s/min | "
          f"{ratio(idle['ours'], idle['theirs'])} (target <= 1)")  # fmt: skip
    print(f"  RSS            {rss['ours']:7.0f} | {rss['theirs']:7.0f} MB | "
          f"{ratio(rss['ours'], rss['theirs'])} (ours: target <= 45 MB)")  # fmt: skip


if __name__ == "__main__":
    main()
