"""Shared helpers of the integration tests: a frozen simulator and series comparison."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import pytest

from exporter.ledger import month_start
from exporter.records import DAY
from exporter.simulator import Simulator

from .exporter_process import Labels

Series = dict[str, dict[Labels, float]]
"""Samples by metric name, then by label set (as ExporterProcess.scrape returns them)."""


def frozen_simulator(seed: int) -> Iterator[Simulator]:
    """A started simulator frozen a little in the past, so every value is final and known."""
    simulator = Simulator(seed=seed)
    simulator.set_now(float(int(time.time()) - 120))
    simulator.start("127.0.0.1", 0)
    yield simulator
    simulator.stop()


def frozen_window(sim: Simulator, *, same_day: bool = False) -> tuple[int, int]:
    """``[month start, frozen now]``; skips (saying why) when the clocks straddle a boundary."""
    now = int(sim.now())
    if month_start(now) != month_start(time.time()):
        pytest.skip("the simulator's frozen clock and the exporter's are in different months")
    if same_day and now // DAY != int(time.time()) // DAY:
        pytest.skip("the simulator's frozen clock and the exporter's are on different days")
    return month_start(now), now + 1


def assert_same(actual: Series, expected: Series) -> None:
    """Same metrics, same label sets, values equal to 1e-9 relative."""
    assert actual.keys() == expected.keys()
    for metric in expected:
        assert actual[metric].keys() == expected[metric].keys(), metric
        for labels, value in expected[metric].items():
            assert math.isclose(actual[metric][labels], value, rel_tol=1e-9), (metric, labels)
