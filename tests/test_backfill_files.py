"""backfill's files: written whole or not at all, never through a planted link; --from bounds."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.config.schema import parse_config
from exporter.history.backfill import _write, run_backfill


def test_a_planted_link_is_replaced_not_written_through(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "aicost-2026-11.om").symlink_to(victim)  # another user's trap in a shared --out
    assert _write(out / "aicost-2026-11.om", ["a 1\n", "# EOF\n"]) == 2
    assert victim.read_text() == "keep me\n"
    written = out / "aicost-2026-11.om"
    assert not written.is_symlink() and written.read_text() == "a 1\n# EOF\n"
    umask = os.umask(0)
    os.umask(umask)
    assert written.stat().st_mode & 0o777 == 0o666 & ~umask
    assert sorted(p.name for p in out.iterdir()) == ["aicost-2026-11.om"]


def test_a_failed_write_leaves_neither_a_partial_file_nor_its_temporary(tmp_path: Path) -> None:
    def lines() -> Iterator[str]:
        yield "a 1\n"
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    with pytest.raises(UnicodeEncodeError):
        _write(tmp_path / "aicost-2026-11.om", lines())
    assert list(tmp_path.iterdir()) == []


def test_from_before_2020_is_refused_before_anything_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = parse_config(
        "accounts:\n  - {name: cloud, provider: focus, options: {directory: absent}}\n",
        base_dir=tmp_path,
    )
    assert run_backfill(config, "0026-09-01", "2026-10-01", tmp_path / "out") == 1
    assert capsys.readouterr().err == (
        "error: --from 0026-09-01: no provider holds usage from before 2020\n"
    )
    assert not (tmp_path / "out").exists()
