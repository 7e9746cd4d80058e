from __future__ import annotations

import pytest

from .series import MOMENTS


@pytest.fixture
def moment() -> int:
    """The moment a test's simulator and exporter are frozen at, unless it is parametrized."""
    return MOMENTS["mid-month"]
