"""``python -m exporter.simulator --listen 127.0.0.1:9878 --seed 1``: serve in the foreground."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from .buckets import parse_rfc3339
from .control import Simulator


def main(argv: list[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m exporter.simulator", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:9878", help="host:port (port 0 = any)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--now", help="freeze the clock at this RFC 3339 time")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    now = None if args.now is None else float(parse_rfc3339(args.now, "--now"))
    sim = Simulator(seed=args.seed, now=now)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sim.start(host or "127.0.0.1", int(port))
    for provider, base_url, key in sim.endpoints():
        print(f"{provider:<15} {base_url}  (key: {key})", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
