"""A short soak (under a minute): the real process, random faults, non-stop scrapes.

The long version is ``python bench/soak.py --minutes N``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import run_soak

from .series import utc

pytestmark = pytest.mark.integration


def test_short_soak_across_a_month_end(tmp_path: Path) -> None:
    # The clocks start 20 s before July: the exporter polls June, then July under faults (a new
    # month's first poll, June's last week at 0), and ends equal to July's oracle.
    start = utc("2027-06-30T23:59:40")
    report = run_soak(30.0, tmp_path, seed=11, settle_timeout=25.0, start=start)
    print("\n" + report.summary())
    assert report.problems == []
    assert report.scrapes > 100
    assert report.faults_injected >= 20
    assert report.final_series > 50
    assert len(report.rss_kib) >= 50
    assert sum(report.provider_errors.values()) > 0  # faults did fail polls
    assert report.months == {utc("2027-06-01T00:00:00"), utc("2027-07-01T00:00:00")}
