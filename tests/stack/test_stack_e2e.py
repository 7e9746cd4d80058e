"""End to end: simulator -> exporter -> Prometheus (shipped rules) -> Alertmanager -> webhook.
Real processes on 127.0.0.1 only. Every dashboard query is run against the demo in
test_dashboard_queries.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from exporter.simulator import Simulator
from tests.conftest import real_binary
from tests.integration.exporter_process import ExporterProcess, free_port
from tests.integration.series import MOMENTS, frozen_simulator

from .assets import (
    ALERTMANAGER_CONFIG,
    PROMETHEUS_CONFIG,
    RULE_FILES,
    load_yaml,
)
from .servers import Server, WebhookReceiver, alertmanager, prometheus

pytestmark = pytest.mark.integration

CONFIG = """
accounts:
  - name: oai
    provider: openai
    api_key: ${{E2E_OPENAI_KEY}}
    base_url: {openai}
    poll_interval: 10s
    timeout: 5s
  - name: ant
    provider: anthropic
    api_key: ${{E2E_ANTHROPIC_KEY}}
    base_url: {anthropic}
    poll_interval: 10s
    timeout: 5s
budgets:
  - name: e2e-exceeded
    period: month
    limit_usd: 0.01
    basis: billed
    match: {{provider: openai}}
  - name: e2e-healthy
    period: month
    limit_usd: 1000000000
    basis: billed
    match: {{provider: anthropic}}
"""

def rewrite_rules(directory: Path) -> None:
    """The shipped rules with every `for:` cut to 2s, so alerts fire within seconds."""
    directory.mkdir()
    for path in RULE_FILES:
        spec = load_yaml(path)
        for group in spec["groups"]:
            for rule in group["rules"]:
                if "for" in rule:
                    rule["for"] = "2s"
        (directory / path.name).write_text(yaml.safe_dump(spec, sort_keys=False))


def rewrite_prometheus(path: Path, rules_dir: Path, exporter: str, own: int, am: int) -> None:
    """The shipped prometheus.yml, scraping and evaluating every second, on 127.0.0.1."""
    config = load_yaml(PROMETHEUS_CONFIG)
    config["global"] |= {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
    }
    config["rule_files"] = [str(rules_dir / "*.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{am}"]}]
    targets = {"ai-cost-exporter": exporter, "prometheus": f"127.0.0.1:{own}"}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [targets[job["job_name"]]]}]
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def rewrite_alertmanager(path: Path, webhook: str) -> None:
    """The shipped alertmanager.yml (routes and inhibitions unchanged) posting to the test's
    webhook, without the production waits."""
    config = load_yaml(ALERTMANAGER_CONFIG)
    config["route"] |= {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"}
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = webhook
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture
def sim() -> Iterator[Simulator]:
    # A pinned moment, so the budgets' spend is the same whatever day the suite runs (the 1st of a
    # month at 00:03 has spent almost nothing). Prometheus keeps the real clock: the assertions
    # read values and alerts of budgets, never time() against the exporter's timestamps (the
    # staleness alert and the watermark-age panels do, and are not asserted here).
    yield from frozen_simulator(seed=7, moment=MOMENTS["mid-month"])


def query(prom: Server, expr: str) -> list[dict[str, Any]]:
    response = httpx.get(prom.url + "/api/v1/query", params={"query": expr}, timeout=10)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (expr, body)
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_budget_alert_reaches_the_webhook(
    sim: Simulator, tmp_path: Path
) -> None:
    prometheus_bin = real_binary("prometheus")
    alertmanager_bin = real_binary("prometheus-alertmanager")
    started = time.monotonic()
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(openai=sim.openai_base_url, anthropic=sim.anthropic_base_url))
    env = {"E2E_OPENAI_KEY": sim.openai_key, "E2E_ANTHROPIC_KEY": sim.anthropic_key}
    prom_port, am_port = free_port(), free_port()

    with (
        WebhookReceiver() as webhook,
        ExporterProcess(config, env, tmp_path / "exporter.log", now=sim.now()) as exporter,
    ):
        rewrite_alertmanager(tmp_path / "alertmanager.yml", webhook.url)
        rewrite_rules(tmp_path / "rules")
        rewrite_prometheus(
            tmp_path / "prometheus.yml",
            tmp_path / "rules",
            f"127.0.0.1:{exporter.port}",
            prom_port,
            am_port,
        )
        with (
            alertmanager(
                alertmanager_bin,
                tmp_path / "alertmanager.yml",
                tmp_path / "am-data",
                am_port,
                tmp_path / "alertmanager.log",
            ) as am,
            prometheus(
                prometheus_bin,
                tmp_path / "prometheus.yml",
                tmp_path / "prom-data",
                prom_port,
                tmp_path / "prometheus.log",
            ) as prom,
        ):
            exporter.wait_ready()
            am.wait_ready()
            prom.wait_ready()

            # The exceeded budget's alert arrives, routed by severity, with the rule's labels.
            payload, alert = webhook.wait_for(
                lambda a: a["labels"]["alertname"] == "AICostBudgetExceeded", timeout=45
            )
            assert payload["receiver"] == "aicost-critical" and payload["status"] == "firing"
            assert alert["labels"] == {
                "alertname": "AICostBudgetExceeded",
                "budget": "e2e-exceeded",
                "period": "month",
                "severity": "critical",
                "job": "ai-cost-exporter",
            }
            assert alert["annotations"]["description"].startswith(
                "Budget e2e-exceeded (month) has used "
            )
            assert alert["annotations"]["runbook_url"] == "docs/runbooks.md#aicostbudgetexceeded"

            # Its forecast alert fires too, but the inhibition keeps it from being sent.
            deadline = time.monotonic() + 15
            while True:
                alerts = httpx.get(
                    am.url + "/api/v2/alerts",
                    params={"filter": 'alertname="AICostBudgetForecastOverrun"'},
                    timeout=5,
                ).json()
                if alerts or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert [a["labels"]["budget"] for a in alerts] == ["e2e-exceeded"], alerts
            assert alerts[0]["status"]["state"] == "suppressed"
            assert alerts[0]["status"]["inhibitedBy"]
            time.sleep(2)  # two more group intervals

            # Only the exceeded budget notified: nothing for the healthy budget, no forecast alert.
            notified = {
                (a["labels"]["alertname"], a["labels"].get("budget"))
                for _, a in webhook.notifications()
            }
            assert ("AICostBudgetExceeded", "e2e-exceeded") in notified
            assert not {n for n in notified if n[1] == "e2e-healthy"}, notified
            assert ("AICostBudgetForecastOverrun", "e2e-exceeded") not in notified
            assert ("AICostBudgetWarning", "e2e-exceeded") not in notified
            healthy = query(
                prom, 'budget_period:aicost_budget_utilization_ratio:max{budget="e2e-healthy"}'
            )
            assert len(healthy) == 1 and float(healthy[0]["value"][1]) < 0.5

    assert time.monotonic() - started < 90
