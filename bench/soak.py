"""Soak: the real exporter process against the simulator with random faults, scraped non-stop.

    python bench/soak.py --minutes 30

Prints the figures (scrapes served, faults injected, RSS and open files over
time) and exits non-zero if a check failed. ``tests/integration/test_soak.py``
runs a short version of the same soak.

Checks: the process never dies; every scrape answers 200; no counter ever
decreases within a month (OpenMetrics ``_created``, the month start, tells the
months apart); after the faults stop, the values equal the simulator's
fault-free ground truth; RSS and open file descriptors stay flat
(the last third's maximum at most the first third's maximum plus a margin).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.openmetrics.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from exporter.simulator import Simulator  # noqa: E402
from tests.integration.exporter_process import ExporterProcess  # noqa: E402
from tests.integration.series import month_to_date  # noqa: E402
from tests.integration.test_against_simulator import (  # noqa: E402
    expected_series,
    series_only,
)

Labels = frozenset[tuple[str, str]]
Samples = dict[str, dict[Labels, float]]

RSS_MARGIN_KIB = 8 * 1024
FD_MARGIN = 4
ENDPOINTS = {
    "openai": (
        "/organization/usage/completions",
        "/organization/usage/embeddings",
        "/organization/usage/moderations",
        "/organization/usage/images",
        "/organization/usage/audio_speeches",
        "/organization/usage/audio_transcriptions",
        "/organization/costs",
    ),
    "anthropic": ("/v1/organizations/usage_report/messages", "/v1/organizations/cost_report"),
}
RETRIED = ("429", "500", "502", "503", "529", "reset", "slow")  # a retry inside the poll heals
FAILING = ("malformed", "wrong_shape", "401")  # the poll fails; the next one heals
CONFIG = """
accounts:
  - name: oai
    provider: openai
    api_key: ${{SOAK_OPENAI_KEY}}
    base_url: {openai}
    poll_interval: 10s
    timeout: 2s
  - name: ant
    provider: anthropic
    api_key: ${{SOAK_ANTHROPIC_KEY}}
    base_url: {anthropic}
    poll_interval: 10s
    timeout: 2s
"""


@dataclass
class SoakReport:
    """What a soak measured; :attr:`problems` is empty when every check passed."""

    duration: float = 0.0
    scrapes: int = 0
    scrape_failures: list[str] = field(default_factory=list)
    faults: dict[str, int] = field(default_factory=dict)
    decreases: list[str] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)
    died: str = ""
    exit_code: int | None = None
    final_mismatches: list[str] = field(default_factory=list)
    final_series: int = 0
    provider_errors: dict[str, float] = field(default_factory=dict)
    secret_in_log: bool = False
    months: set[float] = field(default_factory=set)
    """Month starts the token counters were scraped in (their ``_created``)."""

    @property
    def faults_injected(self) -> int:
        """Faults handed to the simulator."""
        return sum(self.faults.values())

    def flat(self, samples: list[int], margin: int) -> bool:
        """The last third's maximum is at most the first third's maximum plus ``margin``."""
        third = max(1, len(samples) // 3)
        return max(samples[-third:]) <= max(samples[:third]) + margin

    @property
    def problems(self) -> list[str]:
        """Every failed check, in words."""
        found = []
        if self.died:
            found.append(f"the exporter died: {self.died}")
        if self.exit_code != 0:
            found.append(f"exit code on SIGTERM: {self.exit_code}")
        found += [f"scrape failed: {f}" for f in self.scrape_failures[:5]]
        found += [f"counter decreased: {d}" for d in self.decreases[:5]]
        found += [f"final value: {m}" for m in self.final_mismatches[:5]]
        if self.rss_kib and not self.flat(self.rss_kib, RSS_MARGIN_KIB):
            found.append(f"RSS grew: {self.thirds(self.rss_kib)}")
        if self.fds and not self.flat(self.fds, FD_MARGIN):
            found.append(f"open files grew: {self.thirds(self.fds)}")
        if self.secret_in_log:
            found.append("an API key appeared in the exporter's log")
        return found

    @staticmethod
    def thirds(samples: list[int]) -> str:
        """Max of the first, middle and last third."""
        third = max(1, len(samples) // 3)
        parts = (samples[:third], samples[third:-third] or samples, samples[-third:])
        return "/".join(str(max(part)) for part in parts)

    def summary(self) -> str:
        """The figures, one per line."""
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.faults.items()))
        errors = ", ".join(f"{k} {v:g}" for k, v in sorted(self.provider_errors.items()) if v)
        return "\n".join(
            [
                f"duration            {self.duration:.0f} s",
                f"scrapes served      {self.scrapes} ({len(self.scrape_failures)} failed)",
                f"faults injected     {self.faults_injected} ({kinds})",
                f"poll errors         {errors or 'none'}",
                f"max RSS             {max(self.rss_kib, default=0) / 1024:.1f} MiB "
                f"(thirds {self.thirds(self.rss_kib) if self.rss_kib else '-'} KiB)",
                f"open fds            max {max(self.fds, default=0)} "
                f"(thirds {self.thirds(self.fds) if self.fds else '-'})",
                f"final series        {self.final_series} compared with the simulator's oracle",
                f"counter decreases   {len(self.decreases)}",
                "result              "
                + ("OK" if not self.problems else "FAILED: " + "; ".join(self.problems)),
            ]
        )


def _proc_status(pid: int) -> tuple[int, int]:
    """(RSS in KiB, open file descriptors) of ``pid``."""
    rss = 0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


OPENMETRICS = {"Accept": "application/openmetrics-text; version=1.0.0"}


def _parse(text: str) -> tuple[Samples, dict[tuple[str, Labels], float]]:
    """Samples by name and label set, and the ``_created`` (for usage counters, the month start)
    of each counter and histogram sample by (sample name, labels)."""
    samples: Samples = {}
    monotonic: list[tuple[str, Labels, str]] = []  # sample name, labels, family name
    starts: dict[tuple[str, Labels], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = frozenset(sample.labels.items())
            if sample.name == family.name + "_created":
                starts[family.name, labels] = sample.value
                continue
            samples.setdefault(sample.name, {})[labels] = sample.value
            if family.type in ("counter", "histogram"):
                monotonic.append((sample.name, labels, family.name))
    return samples, {
        (name, labels): starts.get((family, frozenset(p for p in labels if p[0] != "le")), 0.0)
        for name, labels, family in monotonic
    }


class _Scraper:
    """Scrapes without pause, checking that no counter decreases within a month."""

    def __init__(self, url: str, report: SoakReport) -> None:
        self._url = url
        self._report = report
        self._highest: dict[tuple[str, Labels, float], float] = {}
        self.last: Samples = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self.stop.is_set():
                self.scrape(client)

    def scrape(self, client: httpx.Client) -> None:
        try:
            response = client.get(self._url, headers=OPENMETRICS)
        except httpx.HTTPError as exc:
            self._report.scrape_failures.append(f"{type(exc).__name__}: {exc}")
            time.sleep(0.1)
            return
        if response.status_code != 200:
            self._report.scrape_failures.append(f"HTTP {response.status_code}")
            return
        self._report.scrapes += 1
        samples, created = _parse(response.text)
        # A counter restarts with the month: its _created tells which month a value belongs to.
        for (name, labels), start in created.items():
            if name == "aicost_tokens_total":
                self._report.months.add(start)
            value = samples[name][labels]
            key = (name, labels, start)
            previous = self._highest.get(key)
            if previous is not None and value < previous:
                self._report.decreases.append(f"{name}{dict(labels)}: {previous} -> {value}")
            if previous is None or value > previous:
                self._highest[key] = value
        self.last = samples


def _inject_faults(
    sim: Simulator,
    stop: threading.Event,
    report: SoakReport,
    rng: random.Random,
    failing_until: float,
) -> None:
    # time.sleep, not stop.wait(timeout): under libfaketime a timed wait never wakes.
    while not stop.is_set():
        time.sleep(rng.uniform(0.3, 1.2))
        if stop.is_set():
            break
        kinds = RETRIED + (FAILING if time.monotonic() < failing_until else ())
        kind = rng.choice(kinds)
        provider = rng.choice(sorted(ENDPOINTS))
        if kind == "529" and provider == "openai":
            kind = "503"
        sim.inject(
            provider,
            rng.choice(ENDPOINTS[provider]),
            kind,
            times=rng.choice((1, 1, 2)),
            retry_after=1,
            delay=2.5,  # past the 2 s timeout: a client timeout
        )
        report.faults[kind] = report.faults.get(kind, 0) + 1


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.25)
    return predicate()


def run_soak(
    seconds: float,
    workdir: Path,
    *,
    seed: int = 11,
    settle_timeout: float = 60.0,
    start: float | None = None,
) -> SoakReport:
    """Run the soak for ``seconds`` of faults, then let it settle and compare with the oracle.

    With ``start``, the simulator's and the exporter's clocks start at that moment and run
    (libfaketime for the exporter); otherwise both follow the real clock.
    """
    report = SoakReport()
    rng = random.Random(seed)
    sim = Simulator(seed=seed)
    sim.start("127.0.0.1", 0)
    if start is not None:
        sim.set_now(start, running=True)
    config = workdir / "soak.yaml"
    config.write_text(CONFIG.format(openai=sim.openai_base_url, anthropic=sim.anthropic_base_url))
    log_path = workdir / "soak-exporter.log"
    keys = {"SOAK_OPENAI_KEY": sim.openai_key, "SOAK_ANTHROPIC_KEY": sim.anthropic_key}
    started = time.monotonic()
    exporter = ExporterProcess(
        config, keys, log_path, now=start, ticking=start is not None, log_level="info"
    )
    with exporter:
        process, url = exporter.process, exporter.url
        scraper = _Scraper(url + "/metrics", report)
        stop_faults = threading.Event()
        threads: list[threading.Thread] = []
        try:
            if not _wait(lambda: _ready(url) or process.poll() is not None, 30):
                report.died = "not ready within 30 s"
                return report
            threads = [
                threading.Thread(target=scraper.run, name="scraper"),
                threading.Thread(
                    target=_inject_faults,
                    args=(sim, stop_faults, report, rng, time.monotonic() + seconds * 0.6),
                    name="faults",
                ),
            ]
            for thread in threads:
                thread.start()
            end = time.monotonic() + seconds
            while time.monotonic() < end and process.poll() is None:
                report.rss_kib.append(0)
                report.rss_kib[-1], fds = _proc_status(process.pid)
                report.fds.append(fds)
                time.sleep(0.5)
            stop_faults.set()
            sim.clear_faults()
            # Frozen a second ahead of where the clock is, never behind: the simulator serves the
            # current hour up to its own now, so a poll served just before a freeze at int(now)
            # had seen more than that moment's oracle counts (the exporter rightly keeps the
            # higher value; the comparison was off by one rounding step). Ahead, every reply
            # served before or during the freeze is covered by the oracle.
            frozen = sim.now() + 1.0
            sim.set_now(frozen)

            def settled() -> bool:
                last = scraper.last.get("aicost_collector_last_success_timestamp_seconds", {})
                return len(last) == 2 and min(last.values()) >= frozen

            if process.poll() is None and not _wait(settled, settle_timeout):
                report.final_mismatches.append(
                    f"no successful poll of every account within {settle_timeout:.0f} s "
                    "after the faults stopped"
                )
            scraper.stop.set()
            for thread in threads:
                thread.join()  # each ends within one scrape or fault; a timed join hangs
            if process.poll() is not None:
                report.died = f"exit code {process.returncode}"
            else:
                with httpx.Client(timeout=5) as client:
                    scraper.scrape(client)
                _compare(sim, scraper.last, report)
                report.exit_code = exporter.stop()
        finally:
            stop_faults.set()
            scraper.stop.set()
            sim.stop()
    report.duration = time.monotonic() - started
    text = log_path.read_text(errors="replace")
    report.secret_in_log = sim.openai_key in text or sim.anthropic_key in text
    return report


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _compare(sim: Simulator, samples: Samples, report: SoakReport) -> None:
    """Count the poll errors and compare the values with the oracle of the frozen simulator."""
    errors = samples.get("aicost_collector_errors_total", {})
    for labels, value in errors.items():
        reason = dict(labels)["reason"]
        report.provider_errors[reason] = report.provider_errors.get(reason, 0.0) + value
    expected = month_to_date(expected_series, sim)
    actual = series_only(samples)
    for name, series in expected.items():
        for labels, value in series.items():
            report.final_series += 1
            got = actual.get(name, {}).get(labels)
            if got is None or not math.isclose(got, value, rel_tol=1e-9):
                report.final_mismatches.append(f"{name}{dict(labels)}: {got} != {value}")
    for name, series in actual.items():
        for labels in series.keys() - expected.get(name, {}).keys():
            report.final_mismatches.append(f"{name}{dict(labels)}: not in the oracle")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="fault phase length")
    parser.add_argument("--seed", type=int, default=11)
    # A run of failed polls backs off 10, 20, 40, ... s: the next poll after the faults stop may be
    # minutes away.
    parser.add_argument("--settle", type=float, default=660.0, help="seconds to wait for recovery")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        report = run_soak(
            args.minutes * 60, Path(directory), seed=args.seed, settle_timeout=args.settle
        )
    print(report.summary())
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()
