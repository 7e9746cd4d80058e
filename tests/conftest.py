from __future__ import annotations

import os
import shutil

import pytest


def real_binary(name: str) -> str:
    """Path of a real tool the test needs; in CI its absence is a failure, never a skip."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not found: install Debian's prometheus package (see .ci/run)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def promtool() -> str:
    return real_binary("promtool")
