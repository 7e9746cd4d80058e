"""Shared helpers of the integration tests: pinned moments, a frozen simulator, series comparison.

Time is an input of these tests. The simulator is frozen at a moment and the exporter process runs
with its clock frozen at the same moment (``ExporterProcess(now=sim.now())``, libfaketime), so an
expectation never depends on when the suite runs, and the two clocks never straddle a day or a
month. Tests whose exporter clock must run (reload, push, the soak) start it at a moment chosen so
that what they assert does not depend on a boundary, or cross one on purpose.
"""

from __future__ import annotations

import math
import time
from calendar import timegm
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from exporter.core.ledger import LOOKBACK, month_start
from exporter.core.records import DAY
from exporter.simulator import Simulator

from .exporter_process import ExporterProcess, Labels

Series = dict[str, dict[Labels, float]]
"""Samples by metric name, then by label set (as ExporterProcess.scrape returns them)."""


def utc(text: str) -> int:
    """Unix seconds of ``YYYY-MM-DDTHH:MM:SS`` in UTC."""
    return timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))


MOMENTS = {
    # A moment of the day the suite runs, frozen like the others.
    "today": int(time.time()) - 120,
    # The first minutes of a year: the first poll reads last year's December for the known series.
    "new-year": utc("2027-01-01T00:03:00"),
    # The 1st-6th of a month: weekly budgets and forecasts reach into the previous month.
    "month-day-3": utc("2027-03-03T08:30:00"),
    "mid-month": utc("2027-05-14T15:30:00"),
    # Minutes before a month (of 28 days) ends.
    "month-end": utc("2027-02-28T23:57:00"),
    "leap-day": utc("2028-02-29T12:00:00"),
}
"""Moments every clock-sensitive integration test runs at: ``parametrize("moment", ...)``."""
PINNED = pytest.mark.parametrize("moment", list(MOMENTS.values()), ids=list(MOMENTS))


def frozen_simulator(seed: int, moment: float) -> Iterator[Simulator]:
    """A started simulator frozen at ``moment``, so every value is final and known."""
    simulator = Simulator(seed=seed)
    simulator.set_now(float(moment))
    simulator.start("127.0.0.1", 0)
    yield simulator
    simulator.stop()


def frozen_window(sim: Simulator) -> tuple[int, int]:
    """``[month start, frozen now]``: the month to date of an exporter frozen at ``sim.now()``."""
    now = int(sim.now())
    return month_start(now), now + 1


def month_to_date(expected: Callable[[Simulator, int, int], Series], sim: Simulator) -> Series:
    """What /metrics must show at ``sim.now()``: the month's series by ``expected``, and at 0 every
    series the account had in the days before the month start that the exporter reads."""
    start, end = frozen_window(sim)
    out = expected(sim, start, end)
    for metric, series in expected(sim, start - LOOKBACK, start).items():
        for labels in series:
            out.setdefault(metric, {}).setdefault(labels, 0.0)
    return out


def served_something(expected: Series) -> bool:
    """Whether the month (not only the series at 0 from before it) has a value to compare."""
    return any(value > 0 for series in expected.values() for value in series.values())


def assert_same(actual: Series, expected: Series) -> None:
    """Same metrics, same label sets, values equal to 1e-9 relative."""
    assert actual.keys() == expected.keys()
    for metric in expected:
        assert actual[metric].keys() == expected[metric].keys(), metric
        for labels, value in expected[metric].items():
            assert math.isclose(actual[metric][labels], value, rel_tol=1e-9), (metric, labels)


def first_poll(
    config: Path, env: Mapping[str, str], sim: Simulator, key: str, run_dir: Path
) -> Series:
    """The samples the real exporter serves after its first poll of ``config``, its clock at the
    simulator's moment; it must stop cleanly, with every account up and ``key`` in no log line."""
    with ExporterProcess(config, dict(env), run_dir / "run.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        samples = exporter.scrape()
        assert set(samples["aicost_collector_up"].values()) == {1.0}
        assert exporter.stop() == 0
        log = exporter.log
    assert key not in log
    return samples


def assert_month_to_date(
    expected: Callable[[Simulator, int, int], Series], samples: Series, sim: Simulator
) -> None:
    """``samples`` hold exactly the month to date ``expected`` says at ``sim.now()``, for the
    metrics it names; past the month's first two days, something was served."""
    truth = month_to_date(expected, sim)
    if sim.now() - month_start(sim.now()) > 2 * DAY:  # (none in the first night of a month)
        assert served_something(truth), "the simulated account is busy every day"
    assert_same({name: samples.get(name, {}) for name in truth}, truth)
