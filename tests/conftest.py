from __future__ import annotations

import shutil

import pytest


def real_binary(name: str) -> str:
    """Path of a real tool the test needs; its absence fails the test, never skips it.

    ``make test`` installs every one of them (scripts/system-packages.sh).
    """
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: run `make system-packages` to install it")
    return path


@pytest.fixture
def promtool() -> str:
    return real_binary("promtool")
