"""Run the real exporter as a child process, over real sockets."""

from __future__ import annotations

import glob
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import real_binary

Labels = frozenset[tuple[str, str]]
ROOT = Path(__file__).resolve().parents[2]


def libfaketime() -> str:
    """Path of Debian's libfaketime (package ``faketime``); its absence fails the test."""
    real_binary("faketime")  # the same package: a missing one fails with the install hint
    found = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1"))
    assert found, "libfaketime.so.1 not found: run `make system-packages`"
    return found[0]


def pinned_env(moment: float, *, ticking: bool = False) -> dict[str, str]:
    """The environment for a child process whose wall clock libfaketime pins at ``moment``.

    Frozen there, or with ``ticking`` started there and running. Only the wall clock: the monotonic
    clock stays real, so timers and the poll loop behave as usual (and libfaketime 0.9.10 never
    wakes a timed wait on a faked one). The settings of a libfaketime the suite itself runs under
    (``faketime '2027-01-01 00:03' make test``) are left out: its shared start time would move the
    child's. The process itself is the child, so signals reach it.
    """
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(moment))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME")}
    return {
        **env,
        "LD_PRELOAD": libfaketime(),
        "FAKETIME": ("@" if ticking else "") + stamp,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "TZ": "UTC",
    }


def real_clock_env() -> dict[str, str]:
    """The environment without libfaketime, also when the suite itself runs under it: for a
    child whose behaviour under load is measured (libfaketime wraps every clock read and timed
    wait of every thread, and slows a busy server down by half or more)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME")}
    preload = [p for p in env.pop("LD_PRELOAD", "").split() if "faketime" not in p]
    if preload:
        env["LD_PRELOAD"] = " ".join(preload)
    return env


def run_command(config: Path, port: int, *flags: str) -> list[str]:
    """``python -m exporter run`` with ``config`` on 127.0.0.1:``port`` and more ``flags``."""
    return [
        sys.executable,
        "-m",
        "exporter",
        "run",
        "--config.file",
        str(config),
        "--web.listen-address",
        f"127.0.0.1:{port}",
        *flags,
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ExporterProcess:
    """``python -m exporter run`` with a config file, stopped with SIGTERM.

    ``env`` is added to this process's environment, ``flags`` to the command line. With
    ``now``, the exporter's clock is pinned at that moment: frozen, or with ``ticking``
    started there (see :func:`pinned_env`).
    """

    def __init__(
        self,
        config: Path,
        env: dict[str, str],
        log: Path,
        *,
        now: float | None = None,
        ticking: bool = False,
        real_clock: bool = False,
        flags: Sequence[str] = (),
        log_level: str = "debug",
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = log
        self._log = log.open("ab")
        if real_clock:
            base = real_clock_env()
        else:
            base = dict(os.environ) if now is None else pinned_env(now, ticking=ticking)
        self.process = subprocess.Popen(
            run_command(config, self.port, "--log.level", log_level, *flags),
            env={**base, **env},
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> ExporterProcess:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()

    @property
    def log(self) -> str:
        self._log.flush()
        return self._log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0, auth: tuple[str, str] | None = None) -> None:
        """Wait until /-/ready answers 200 (every account polled once)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"exporter exited with {self.process.returncode}:\n{self.log}")
            try:
                if httpx.get(self.url + "/-/ready", auth=auth, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"exporter not ready after {timeout}s:\n{self.log}")

    def wait_until(
        self, predicate: object, timeout: float = 60.0
    ) -> dict[str, dict[Labels, float]]:
        """Scrape until ``predicate(samples)`` is true; return the last scrape."""
        assert callable(predicate)
        deadline = time.monotonic() + timeout
        while True:
            samples = self.scrape()
            if predicate(samples):
                return samples
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met after {timeout}s:\n{self.log}")
            time.sleep(0.25)

    def scrape(self) -> dict[str, dict[Labels, float]]:
        """Samples by name, then by label set."""
        text = httpx.get(self.url + "/metrics", timeout=5).text
        samples: dict[str, dict[Labels, float]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, {})[frozenset(sample.labels.items())] = sample.value
        return samples

    def stop(self) -> int:
        """SIGTERM and wait; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=15)
