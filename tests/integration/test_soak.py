"""A short soak (under a minute): the real process, random faults, non-stop scrapes.

The long version is ``python bench/soak.py --minutes N``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import run_soak

pytestmark = pytest.mark.integration


def test_short_soak(tmp_path: Path) -> None:
    report = run_soak(30.0, tmp_path, seed=11, settle_timeout=25.0)
    print("\n" + report.summary())
    assert report.problems == []
    assert report.scrapes > 100
    assert report.faults_injected >= 20
    assert report.final_series > 50
    assert len(report.rss_kib) >= 50
    assert sum(report.provider_errors.values()) > 0  # faults did fail polls
