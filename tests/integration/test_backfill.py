"""``backfill``: the simulator's history → OpenMetrics → the real promtool's blocks → a real
Prometheus, whose last month's totals are the ones the exporter reports for that month."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.schema import parse_config
from exporter.core.ledger import month_start
from exporter.core.records import DAY, day_start
from exporter.demo import demo_config_text
from exporter.history.collect import read_history
from exporter.history.report import report_rows
from exporter.simulator import Simulator
from tests.conftest import real_binary
from tests.integration.exporter_process import ROOT, free_port, pinned_env
from tests.integration.polled import exposition_after_first_poll
from tests.integration.series import PINNED, frozen_simulator
from tests.stack.servers import Server


@pytest.fixture
def simulator(moment: float) -> Iterator[Simulator]:
    yield from frozen_simulator(1, moment)


def query(url: str, promql: str, at: float) -> list[dict[str, object]]:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": promql, "time": at}, timeout=30)
    answer.raise_for_status()
    result: list[dict[str, object]] = answer.json()["data"]["result"]
    return result


def live_series(text: str, env: dict[str, str], moment: float, metric: str) -> set[frozenset]:
    """The label sets of ``metric`` on /metrics after a first poll at ``moment``."""
    exposition = exposition_after_first_poll(text, env, moment)
    return {
        frozenset(sample.labels.items())
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == metric
    }


@PINNED
def test_backfilled_history_answers_last_months_totals_in_prometheus(
    simulator: Simulator, moment: float, tmp_path: Path
) -> None:
    text, env = demo_config_text(simulator)
    config = tmp_path / "config.yaml"
    config.write_text(text)
    this_month = month_start(int(moment))
    last_month = month_start(this_month - 1)
    first = datetime.fromtimestamp(last_month, UTC).strftime("%Y-%m-%d")
    out = tmp_path / "openmetrics"
    subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "ai-cost-exporter"),
            "backfill",
            "--config.file",
            str(config),
            "--from",
            first,
            "--out",
            str(out),
            "--step",
            "1h",
        ],
        env={**os.environ, **env, **pinned_env(moment)},
        check=True,
        timeout=600,
    )
    files = sorted(out.glob("*.om"))
    assert files[0].name == datetime.fromtimestamp(last_month, UTC).strftime("aicost-%Y-%m.om")
    data = tmp_path / "tsdb"
    for path in files:
        subprocess.run(
            [
                real_binary("promtool"),
                "tsdb",
                "create-blocks-from",
                "openmetrics",
                "--max-block-duration=744h",
                str(path),
                str(data),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    prometheus_config = tmp_path / "prometheus.yml"
    prometheus_config.write_text("global: {scrape_interval: 1m}\n")
    port = free_port()
    command = [
        real_binary("prometheus"),
        f"--config.file={prometheus_config}",
        f"--storage.tsdb.path={data}",
        "--storage.tsdb.retention.time=10y",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with Server("prometheus", command, port, tmp_path / "prometheus.log") as prometheus:
        prometheus.wait_ready()
        # last month's total, as of its last sample
        at = this_month - 1
        answer = query(
            prometheus.url,
            "sum by (account) (last_over_time(aicost_billed_cost_usd_total[2h]))",
            at,
        )
        in_prometheus = {r["metric"]["account"]: float(r["value"][1]) for r in answer}  # type: ignore[index]
        # the month's totals by day: the counter restarts with the month
        first_day = query(
            prometheus.url,
            "sum(last_over_time(aicost_tokens_total[2h]))",
            last_month + DAY - 1,
        )
        current = query(
            prometheus.url, "count(last_over_time(aicost_tokens_total[2h]))", day_start(moment) - 1
        )
        backfilled_series = {
            frozenset(r["metric"].items())  # type: ignore[union-attr]
            for r in query(
                prometheus.url, "last_over_time(aicost_tokens_total[2h])", day_start(moment) - 1
            )
        }
    months = asyncio.run(
        read_history(parse_config(text, env=env), last_month, this_month, clock=lambda: moment)
    )
    rows = report_rows(months)
    expected: dict[str, float] = {}
    for row in rows:
        expected[row.account] = expected.get(row.account, 0.0) + row.billed
    assert {a for a, usd in expected.items() if usd} == set(in_prometheus)
    for account, usd in in_prometheus.items():
        assert round(usd, 2) == round(expected[account], 2), account
    day_one = sum(row.tokens for row in rows if row.day == last_month)
    assert first_day and round(float(first_day[0]["value"][1])) == round(day_one)  # type: ignore[index]
    if day_start(moment) > this_month:  # a day of this month has ended: it is backfilled too
        assert current and float(current[0]["value"][1]) > 0  # type: ignore[index]
        live = live_series(text, env, moment, "aicost_tokens_total")
        backfilled = {
            labels - {("__name__", "aicost_tokens_total")} for labels in backfilled_series
        }
        assert backfilled and backfilled <= live  # the names and labels of /metrics
