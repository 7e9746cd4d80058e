"""``ai-cost-exporter demo``: the exporter against the bundled simulator, no keys needed."""

from __future__ import annotations

import asyncio
import logging

from exporter.config import Config, parse_config
from exporter.daemon import Daemon
from exporter.simulator import Simulator

log = logging.getLogger(__name__)

DEMO_CONFIG = """
accounts:
  - name: openai-demo
    provider: openai
    api_key: ${{DEMO_OPENAI_KEY}}
    base_url: {openai}
    poll_interval: 30s
  - name: anthropic-demo
    provider: anthropic
    api_key: ${{DEMO_ANTHROPIC_KEY}}
    base_url: {anthropic}
    poll_interval: 30s
"""


def demo_config(simulator: Simulator) -> Config:
    """The demo's configuration, pointing at a running simulator."""
    text = DEMO_CONFIG.format(
        openai=simulator.openai_base_url, anthropic=simulator.anthropic_base_url
    )
    env = {"DEMO_OPENAI_KEY": simulator.openai_key, "DEMO_ANTHROPIC_KEY": simulator.anthropic_key}
    return parse_config(text, source="demo", env=env)


def run_demo(listen_address: str) -> int:
    """Run simulator and exporter in this process until SIGINT/SIGTERM."""
    simulator = Simulator(seed=1)
    simulator.start("127.0.0.1", 0)
    try:
        daemon = Daemon(demo_config(simulator), listen_address)
        port = daemon.server.port

        def announce() -> None:
            print(
                f"\nai-cost-exporter demo: simulated OpenAI and Anthropic organizations\n"
                f"  exporter     http://localhost:{port}/\n"
                f"  metrics      http://localhost:{port}/metrics\n"
                f"  simulator    {simulator.url} (OpenAI {simulator.openai_base_url}, "
                f"Anthropic {simulator.anthropic_base_url})\n"
                f"Press Ctrl-C to stop.\n",
                flush=True,
            )

        asyncio.run(daemon.serve(on_started=announce))
    finally:
        simulator.stop()
    return 0
