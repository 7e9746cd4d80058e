"""Print the exporter's performance figures (run with `make bench`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import api_calls, floor, focus, ingest, render, scrape, scrub, side_by_side  # noqa: E402


def main() -> None:
    ingest.main()
    scrub.main()
    render.main()
    scrape.main()
    for count in ("10000", "50000"):
        # A fresh interpreter, so the figure is one process's whole footprint.
        subprocess.run([sys.executable, "-m", "bench.memory", count], cwd=ROOT, check=True)
    api_calls.main()
    side_by_side.main()
    floor.main()
    focus.main()


if __name__ == "__main__":
    main()
