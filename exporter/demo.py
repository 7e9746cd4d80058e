"""``ai-cost-exporter demo``: the exporter against the bundled simulator, no keys needed."""

from __future__ import annotations

import asyncio
import logging

from exporter.config.schema import Config, parse_config
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
    options: {{claude_code: true}}
  - name: copilot-demo
    provider: github_copilot
    api_key: ${{DEMO_GITHUB_TOKEN}}
    base_url: {github}
    poll_interval: 30s
    options: {{organization: {github_org}}}
"""

# Appended to the accounts list of DEMO_CONFIG.
DEMO_MORE_ACCOUNTS = """\
  - name: openrouter-demo
    provider: openrouter
    api_key: ${{DEMO_OPENROUTER_KEY}}
    base_url: {openrouter}
    poll_interval: 30s
  - name: deepseek-demo
    provider: deepseek
    api_key: ${{DEMO_DEEPSEEK_KEY}}
    base_url: {deepseek}
    poll_interval: 30s
  - name: groq-demo
    provider: groq
    api_key: ${{DEMO_GROQ_KEY}}
    base_url: {groq}
    poll_interval: 30s
  - name: cursor-demo
    provider: cursor
    api_key: ${{DEMO_CURSOR_KEY}}
    base_url: {cursor}
    poll_interval: 30s
    group_by: [model, user]
  - name: fireworks-demo
    provider: fireworks
    api_key: ${{DEMO_FIREWORKS_KEY}}
    base_url: {fireworks}
    poll_interval: 30s
    group_by: [model, api_key]
    options: {{account_id: {fireworks_account}}}
  - name: xai-demo
    provider: xai
    api_key: ${{DEMO_XAI_KEY}}
    base_url: {xai}
    poll_interval: 30s
  - name: mistral-demo
    provider: mistral
    api_key: ${{DEMO_MISTRAL_KEY}}
    base_url: {mistral}
    poll_interval: 30s
    options: {{currency_rates: {{EUR: 1.08}}}}
  - name: chatgpt-demo
    provider: chatgpt
    api_key: ${{DEMO_CHATGPT_KEY}}
    base_url: {chatgpt}
    poll_interval: 30s
    group_by: [model, user]
    options: {{workspace_id: {chatgpt_workspace}, credit_usd_rate: 0.04}}
"""


DEMO_BUDGETS = """
budgets:
  - name: openai-monthly
    period: month
    limit_usd: 2000
    match: {provider: openai}
  - name: anthropic-weekly
    period: week
    limit_usd: 500
    warning_ratio: 0.7
    match: {provider: anthropic}
  - name: search-daily
    period: day
    limit_usd: 40
    basis: estimated
    match: {project: Internal Search}
"""


def demo_config(simulator: Simulator) -> Config:
    """The demo's configuration, pointing at a running simulator."""
    text, env = demo_config_text(simulator)
    return parse_config(text, source="demo", env=env)


def demo_config_text(simulator: Simulator) -> tuple[str, dict[str, str]]:
    """The demo's configuration file, and the environment variables holding its keys."""
    text = DEMO_CONFIG.format(
        openai=simulator.openai_base_url,
        anthropic=simulator.anthropic_base_url,
        github=simulator.github_base_url,
        github_org=simulator.github_organizations[0],
    )
    env = {"DEMO_OPENAI_KEY": simulator.openai_key, "DEMO_ANTHROPIC_KEY": simulator.anthropic_key}
    env["DEMO_GITHUB_TOKEN"] = simulator.github_token
    text += DEMO_MORE_ACCOUNTS.format(
        openrouter=simulator.openrouter_base_url,
        deepseek=simulator.deepseek_base_url,
        groq=simulator.groq_base_url,
        cursor=simulator.cursor_base_url,
        fireworks=simulator.fireworks_base_url,
        fireworks_account=simulator.fireworks_account,
        xai=simulator.xai_base_url,
        mistral=simulator.mistral_base_url,
        chatgpt=simulator.chatgpt_base_url,
        chatgpt_workspace=simulator.chatgpt_workspace,
    )
    env["DEMO_OPENROUTER_KEY"] = simulator.openrouter_key
    env["DEMO_DEEPSEEK_KEY"] = simulator.deepseek_key
    env["DEMO_GROQ_KEY"] = simulator.groq_key
    env["DEMO_CURSOR_KEY"] = simulator.cursor_key
    env["DEMO_FIREWORKS_KEY"] = simulator.fireworks_key
    env["DEMO_XAI_KEY"] = simulator.xai_key
    env["DEMO_MISTRAL_KEY"] = simulator.mistral_key
    env["DEMO_CHATGPT_KEY"] = simulator.chatgpt_key
    return text + DEMO_BUDGETS, env


def run_demo(listen_address: str) -> int:
    """Run simulator and exporter in this process until SIGINT/SIGTERM."""
    simulator = Simulator(seed=1)
    simulator.start("127.0.0.1", 0)
    try:
        daemon = Daemon(demo_config(simulator), listen_address, demo=True)
        port = daemon.server.port

        def announce() -> None:
            providers = ", ".join(provider for provider, _, _ in simulator.endpoints())
            print(
                f"\nai-cost-exporter demo: simulated organizations of {providers}\n"
                f"  exporter     http://localhost:{port}/\n"
                f"  metrics      http://localhost:{port}/metrics\n"
                f"  simulator    {simulator.url}\n"
                f"Press Ctrl-C to stop.\n",
                flush=True,
            )

        asyncio.run(daemon.serve(on_started=announce))
    finally:
        simulator.stop()
    return 0
