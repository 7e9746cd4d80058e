"""The resident memory of what the daemon cannot run without, before any line of its own code.

A process that sees only the packages of a production install (bench/installed.py) loads, in
turn, what a daemon of one OpenAI and one Anthropic account loads: the interpreter, ``ssl`` and
``asyncio``, PyYAML, pydantic (with ``importlib.metadata``, which its plugin loader imports at
the first model), httpx with one client on the default TLS settings (certifi's CA bundle),
prometheus_client, genai-prices' types and its price data. It prints the RSS each step adds,
so the exporter's own share of the side-by-side RSS can be told from its libraries'.

    python -m bench.floor
"""

from __future__ import annotations

import subprocess

from bench import installed

STEPS = (
    ("interpreter", "pass"),
    ("ssl", "import ssl"),
    ("asyncio", "import asyncio"),
    ("PyYAML", "import yaml"),
    ("pydantic", "import pydantic.main, pydantic.plugin._loader"),
    (
        "httpx and a client",
        "import httpx; c = httpx.AsyncClient(verify=httpx.create_ssl_context())",
    ),
    ("prometheus_client", "import prometheus_client"),
    ("genai-prices types", "import exporter.core.price_library"),
    ("genai-prices data", "import genai_prices.data"),
)
CHILD = """
import sys
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
for code in sys.argv[1:]:
    exec(code)
    print(rss(), flush=True)
"""


def main() -> None:
    output = subprocess.run(
        installed.script(CHILD, *(code for _, code in STEPS)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = [float(line) for line in output.split()]
    print("RSS of the libraries alone (MB: step, total):")
    before = 0.0
    for (name, _), total in zip(STEPS, figures, strict=True):
        print(f"  {name:20s} {total - before:+5.1f} {total:6.1f}")
        before = total
    print(f"  floor before any exporter code: {before:.0f} MB (side by side target: <= 45 MB)")


if __name__ == "__main__":
    main()
