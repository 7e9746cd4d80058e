"""scripts/system-packages.sh: what `make test` does about missing Debian packages."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "system-packages.sh"
INSTALL_LINE = (
    "sudo apt-get install -y --no-install-recommends chromium chromium-driver faketime prometheus"
    " prometheus-alertmanager"
)


def bin_dir(tmp_path: Path, *tools: str) -> Path:
    """A PATH directory with only the shell utilities the script uses, plus ``tools``."""
    directory = tmp_path / "bin"
    directory.mkdir()
    for name in ("id", "sort", "tr", *tools):
        found = shutil.which(name)
        assert found, name
        (directory / name).symlink_to(found)
    return directory


def run(path: Path, *prefix: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash
    return subprocess.run(
        [*prefix, bash, str(SCRIPT)],
        env={"PATH": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_apt_get_it_prints_the_exact_install_line_and_fails(tmp_path: Path) -> None:
    result = run(bin_dir(tmp_path))
    assert result.returncode == 1
    assert INSTALL_LINE in result.stderr


def test_not_as_root_it_prints_only_what_is_missing() -> None:
    # As root (CI), run it as the user nobody, from a directory that user can read.
    with tempfile.TemporaryDirectory() as directory:
        base = Path(directory)
        base.chmod(0o755)
        tools = bin_dir(base, "promtool", "prometheus", "apt-get")
        prefix: list[str] = []
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            assert runuser
            prefix = [runuser, "-u", "nobody", "--"]
        result = run(tools, *prefix)
    assert result.returncode == 1
    assert (
        "sudo apt-get install -y --no-install-recommends chromium chromium-driver faketime"
        " prometheus-alertmanager" in result.stderr
    )


def test_with_everything_installed_it_does_nothing(tmp_path: Path) -> None:
    tools = bin_dir(
        tmp_path,
        "prometheus",
        "promtool",
        "prometheus-alertmanager",
        "amtool",
        "faketime",
        "chromium",
        "chromedriver",
    )
    result = run(tools)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
