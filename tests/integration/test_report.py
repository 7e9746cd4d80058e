"""``report``: the demo's month as FOCUS, checked by the FinOps Foundation's focus-validator, and
its BilledCost summed per account equal to aicost_billed_cost_usd_total less
aicost_billed_credit_usd_total on /metrics."""

from __future__ import annotations

import csv
import glob
import json
import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.core.ledger import month_start
from exporter.demo import demo_config_text
from exporter.simulator import Simulator
from tests.integration.exporter_process import ROOT, pinned_env
from tests.integration.polled import exposition_after_first_poll
from tests.integration.series import PINNED, frozen_simulator

VALIDATOR_VENV = ROOT / ".venv-focus"
RENAMED_RULES = (
    # focus-validator 1.0.0 checks FOCUS 1.0 under the names of its drafts; `--format focus`
    # writes the final names (InvoiceIssuerName, ProviderName, PublisherName, ResourceId,
    # ChargeCategory), which `--format focus-1.0` adds these under too.
    "InvoiceIssuer_Required",
    "Provider_Required",
    "Publisher_Required",
    "ResourceID_Required",
    "SkuPriceId_Nullable",  # reads ChargeType
)


@pytest.fixture
def simulator(moment: float) -> Iterator[Simulator]:
    yield from frozen_simulator(1, moment)


def validate(path: Path, tmp_path: Path, *, skip: tuple[str, ...] = ()) -> ET.Element:
    """focus-validator 1.0.0's JUnit report on ``path`` as FOCUS 1.0."""
    binary = VALIDATOR_VENV / "bin" / "focus-validator"
    assert binary.exists(), "focus-validator not installed: run `make .venv-focus/bin/.installed`"
    (site,) = glob.glob(str(VALIDATOR_VENV / "lib" / "python*" / "site-packages"))
    args = [str(binary), "--data-file", str(path), "--validate-version", "1.0"]
    if skip:
        overrides = tmp_path / "overrides.yaml"
        overrides.write_text("overrides:\n" + "".join(f"  - {rule}\n" for rule in skip))
        args += ["--override-file", str(overrides)]
    junit = tmp_path / f"{path.name}.xml"
    args += ["--output-type", "unittest", "--output-destination", str(junit)]
    # It reads its ISO 4217 list from a path relative to its package's parent directory.
    subprocess.run(args, cwd=site, check=True, capture_output=True, timeout=300)
    return ET.parse(junit).getroot()


def metrics_billed(config_text: str, env: dict[str, str], moment: float) -> dict[str, float]:
    """Billed cost less credits per account on /metrics after a first poll at ``moment``."""
    text = exposition_after_first_poll(config_text, env, moment)
    totals: dict[str, float] = {}
    signs = {"aicost_billed_cost_usd": 1.0, "aicost_billed_credit_usd": -1.0}
    for family in text_string_to_metric_families(text):
        if family.name in signs:
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    account = sample.labels["account"]
                    totals[account] = totals.get(account, 0.0) + signs[family.name] * sample.value
    return totals


@PINNED
def test_report_is_valid_focus_and_its_billed_cost_is_the_exporters(
    simulator: Simulator, moment: float, tmp_path: Path
) -> None:
    text, env = demo_config_text(simulator)
    config = tmp_path / "config.yaml"
    config.write_text(text)
    month = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m")
    child_env = {**os.environ, **env, **pinned_env(moment)}
    for fmt in ("focus", "focus-1.0", "json"):
        subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "ai-cost-exporter"),
                "report",
                "--config.file",
                str(config),
                "--month",
                month,
                "--format",
                fmt,
                "--out",
                str(tmp_path / f"report-{fmt}.{'json' if fmt == 'json' else 'csv'}"),
            ],
            env=child_env,
            check=True,
            timeout=300,
        )
    rows = list(csv.DictReader((tmp_path / "report-focus.csv").open(newline="")))
    billed: dict[str, float] = {}
    for row in rows:
        billed[row["BillingAccountId"]] = billed.get(row["BillingAccountId"], 0.0) + float(
            row["BilledCost"]
        )
        assert row["x_CostSource"] in ("billed", "estimated")
        if row["x_CostSource"] == "estimated":  # only an estimate: never billed
            assert float(row["BilledCost"]) == 0 and float(row["EffectiveCost"]) >= 0
        assert row["ChargePeriodStart"].startswith(month)
        assert json.loads(row["Tags"])["account"] == row["BillingAccountId"]
    on_metrics = metrics_billed(text, env, moment)
    assert {a for a, usd in on_metrics.items() if usd} == {a for a, usd in billed.items() if usd}
    for account, usd in on_metrics.items():
        assert round(billed.get(account, 0.0), 2) == round(usd, 2), account
    # the estimated days of a provider without a cost API (Groq) are there, as estimates
    groq = [row for row in rows if row["BillingAccountId"] == "groq-demo"]
    assert {row["x_CostSource"] for row in groq} <= {"estimated"}
    minutes_into_month = (moment - month_start(int(moment))) / 60
    if minutes_into_month > 60:  # Groq's usage of the first minutes is not in its API yet
        assert groq and sum(float(row["EffectiveCost"]) for row in groq) > 0
    # the JSON has the same rows
    document = json.loads((tmp_path / "report-json.json").read_text())
    assert document["month"] == month and len(document["rows"]) == len(rows)
    # FOCUS, as the FinOps Foundation's validator checks it
    strict = validate(tmp_path / "report-focus-1.0.csv", tmp_path)
    assert (strict.get("tests"), strict.get("failures"), strict.get("errors")) == ("133", "0", "0")
    final_names = validate(tmp_path / "report-focus.csv", tmp_path, skip=RENAMED_RULES)
    assert (final_names.get("failures"), final_names.get("skipped")) == (
        "0",
        str(len(RENAMED_RULES)),
    )


def test_a_broken_validator_run_would_be_seen(tmp_path: Path) -> None:
    """The validator's verdict is read from its JUnit report (it exits 0 either way)."""
    bad = tmp_path / "bad.csv"
    bad.write_text("BilledCost,ChargeCategory\nlots,Spending\n")
    report = validate(bad, tmp_path)
    assert int(report.get("failures") or 0) > 0
