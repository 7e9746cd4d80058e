"""CSV import: the same validation and idempotency as the push API; all or nothing per file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from exporter.cli import main
from exporter.core.records import DAY
from exporter.sources.csv_import import (
    CsvImportError,
    format_report,
    import_csv,
    load_push_config,
)
from exporter.sources.push.settings import PushConfig
from exporter.sources.push.store import EventStore

NOV = 1793491200  # 2026-11-01T00:00:00Z
NOW = NOV + 25 * DAY + 13 * 3600  # 2026-11-26T13:00:00Z
EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "usage.csv"
HEADER = "id,timestamp,project,model,input,output,requests,cost_usd\n"


@pytest.fixture
def config(tmp_path: Path) -> PushConfig:
    return PushConfig.model_validate({
        "database": tmp_path / "push.db",
        "accounts": [{"name": "team-a", "provider": "perplexity"}],
        "tokens": [{"name": "t", "token_sha256": "0" * 64, "accounts": ["team-a"]}],
    })  # fmt: skip


def totals(config: PushConfig) -> tuple[int, int, float]:
    assert config.database is not None
    store = EventStore(config.database)
    rows = store.daily("team-a", 0, NOW + DAY)
    store.close()
    return (
        sum(r.tokens[0] for r in rows),
        sum(r.requests for r in rows),
        round(sum(r.cost_usd for r in rows), 6),
    )


def test_example_file_imports_and_reimporting_changes_nothing(config: PushConfig) -> None:
    report = import_csv(EXAMPLE, "team-a", config, clock=lambda: NOW)
    assert (report.rows, report.stored, report.duplicates, report.rejected) == (4, 4, 0, 0)
    assert totals(config) == (182000 + 90500 + 201500 + 40000, 140 + 300 + 151 + 75, 2.361)
    again = import_csv(EXAMPLE, "team-a", config, clock=lambda: NOW)
    assert (again.stored, again.duplicates, again.rejected) == (0, 4, 0)
    assert totals(config) == (514000, 666, 2.361)
    assert format_report(EXAMPLE, again) == [
        f"{EXAMPLE}: 4 row(s): 0 stored, 4 duplicate(s) skipped, 0 rejected"
    ]


def test_any_rejected_row_stores_nothing(config: PushConfig, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        HEADER
        + "a,2026-11-25T00:00:00Z,p,sonar,10,5,1,0.1\n"
        + "b,2026-11-25T00:00:00Z,p,sonar,ten,-5,1,\n"
        + "c,2026-09-01T00:00:00Z,p,sonar,1,1,1,x\n"
        + "d,1795651200,p,sonar,1,1,1,\n"  # Unix seconds are accepted
        + ",2026-11-25T00:00:00Z,p,sonar,1,1,1,0.1,extra\n"
    )
    report = import_csv(path, "team-a", config, clock=lambda: NOW)
    assert (report.rows, report.stored, report.rejected) == (5, 0, 3)
    assert report.problems == [
        "line 3: input: must be a whole number",
        "line 3: output: must not be negative",
        "line 4: cost_usd: must be a number of US dollars",
        "line 4: timestamp: is older than the retention window (this month and the 7 days "
        "before it: from 2026-10-25)",
        "line 6: more cells than the 8 columns",
        "line 6: id: required",
    ]
    assert format_report(path, report)[-1] == (
        f"{path}: 5 row(s): 3 rejected; nothing stored (fix the rows and import the file again)"
    )
    assert totals(config) == (0, 0, 0.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty; expected a header line"),
        ("id,timestamp,colour\n", "line 1: unknown column(s) 'colour'; columns: id, timestamp, "
         "provider, project, model, service_tier, input, input_cache_read, input_cache_write, "
         "input_cache_write_1h, output, requests, cost_usd"),
        ("id,model\n", "line 1: missing column(s) timestamp; columns: id, timestamp, provider, "
         "project, model, service_tier, input, input_cache_read, input_cache_write, "
         "input_cache_write_1h, output, requests, cost_usd"),
    ],
)  # fmt: skip
def test_header_problems(config: PushConfig, tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "f.csv"
    path.write_text(text)
    with pytest.raises(CsvImportError) as info:
        import_csv(path, "team-a", config, clock=lambda: NOW)
    assert str(info.value) == message


def test_unknown_account(config: PushConfig) -> None:
    with pytest.raises(
        CsvImportError, match=r"--account 'x' is not a push account \(configured: team-a\)"
    ):
        import_csv(EXAMPLE, "x", config)


def test_load_push_config_needs_no_api_keys(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "accounts:\n  - {name: oai, provider: openai, api_key: '${UNSET_KEY_FOR_THIS_TEST}'}\n"
        "push:\n  database: push.db\n  accounts: [{name: team-a, provider: perplexity}]\n"
        f"  tokens: [{{name: t, token_sha256: {'a' * 64}, accounts: [team-a]}}]\n"
    )
    assert load_push_config(path).database == tmp_path / "push.db"
    path.write_text("accounts: []\n")
    with pytest.raises(CsvImportError, match="no push: section"):
        load_push_config(path)


def test_cli_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "accounts: []\n"
        "push:\n  database: push.db\n  accounts: [{name: team-a, provider: perplexity}]\n"
        f"  tokens: [{{name: t, token_sha256: {hashlib.sha256(b'x').hexdigest()}, "
        "accounts: [team-a]}]\n"
    )
    good = tmp_path / "good.csv"
    good.write_text(HEADER + f"a,{_recent()},p,sonar,10,5,1,0.1\n")
    args = ["import", str(good), "--account", "team-a", "--config.file", str(config)]
    assert main(args) == 0
    assert (
        capsys.readouterr().out
        == f"{good}: 1 row(s): 1 stored, 0 duplicate(s) skipped, 0 rejected\n"
    )
    assert main(args) == 0
    assert "0 stored, 1 duplicate(s) skipped" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + f"b,{_recent()},p,sonar,x,5,1,0.1\n")
    assert main(["import", str(bad), "--account", "team-a", "--config.file", str(config)]) == 1
    out = capsys.readouterr()
    assert out.err == (
        f"{bad}: line 2: input: must be a whole number\n"
        f"{bad}: 1 row(s): 1 rejected; nothing stored (fix the rows and import the file again)\n"
    )
    assert main(["import", str(bad), "--account", "nope", "--config.file", str(config)]) == 1
    assert "is not a push account" in capsys.readouterr().err


def _recent() -> str:
    import time

    return str(int(time.time()) - 3600)
