"""The Alertmanager configuration: amtool checks, routing by severity, grouping, inhibition."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import real_binary

from .assets import ALERTMANAGER_CONFIG, ALERTS, load_yaml


@pytest.fixture
def amtool() -> str:
    return real_binary("amtool")


def check_config(amtool: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [amtool, "check-config", str(path)], capture_output=True, text=True, timeout=60
    )


def test_amtool_accepts_the_config(amtool: str) -> None:
    result = check_config(amtool, ALERTMANAGER_CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 inhibit rules" in result.stdout and "3 receivers" in result.stdout


def uncomment_examples(text: str) -> str:
    """The config with its commented email/Slack examples switched on."""
    return "\n".join(
        re.sub(r"^(\s+)# ((?:[a-z_]+:|- |\s).*)$", r"\1\2", line) for line in text.splitlines()
    )


def test_the_commented_email_and_slack_examples_are_valid(amtool: str, tmp_path: Path) -> None:
    text = uncomment_examples(ALERTMANAGER_CONFIG.read_text())
    config = yaml.safe_load(text)
    receivers = {r["name"]: r for r in config["receivers"]}
    for name in ("aicost-webhook", "aicost-critical"):
        assert receivers[name].keys() == {
            "name",
            "webhook_configs",
            "email_configs",
            "slack_configs",
        }
    assert "smtp_smarthost" in config["global"]
    path = tmp_path / "alertmanager.yml"
    path.write_text(text)
    result = check_config(amtool, path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_config_is_rejected(amtool: str, tmp_path: Path) -> None:
    path = tmp_path / "alertmanager.yml"
    path.write_text(
        ALERTMANAGER_CONFIG.read_text().replace("receiver: aicost-critical", "receiver: x")
    )
    result = check_config(amtool, path)
    assert result.returncode == 1
    assert 'undefined receiver "x"' in result.stdout + result.stderr


RECEIVER_BY_SEVERITY = {
    "critical": "aicost-critical",
    "warning": "aicost-webhook",
    "info": "aicost-null",
}


@pytest.mark.parametrize("alertname", sorted(ALERTS))
def test_each_alert_routes_by_its_severity(amtool: str, alertname: str) -> None:
    expected = RECEIVER_BY_SEVERITY[ALERTS[alertname]]
    result = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            "--config.file",
            str(ALERTMANAGER_CONFIG),
            f"--verify.receivers={expected}",
            f"alertname={alertname}",
            f"severity={ALERTS[alertname]}",
            "budget=b",
            "account=a",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == expected


def test_a_wrong_receiver_fails_verification(amtool: str) -> None:
    result = subprocess.run(
        [
            amtool,
            "config",
            "routes",
            "test",
            "--config.file",
            str(ALERTMANAGER_CONFIG),
            "--verify.receivers=aicost-webhook",
            "severity=critical",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1


def test_grouping_and_inhibition() -> None:
    config = load_yaml(ALERTMANAGER_CONFIG)
    assert {"budget", "account"} <= set(config["route"]["group_by"])
    budget_rule = config["inhibit_rules"][0]
    assert budget_rule["source_matchers"] == ['alertname="AICostBudgetExceeded"']
    (target,) = budget_rule["target_matchers"]
    pattern = re.fullmatch(r'alertname=~"(.*)"', target)
    assert pattern is not None
    silenced = {name for name in ALERTS if re.fullmatch(pattern.group(1), name)}
    assert silenced == {"AICostBudgetWarning", "AICostBudgetForecastOverrun"}
    assert budget_rule["equal"] == ["budget"]
    for receiver in config["receivers"]:
        # Alertmanager quotes receiver names into the webhook payload's regexp: keep them plain.
        assert re.fullmatch(r"[A-Za-z0-9_-]+", receiver["name"])
    # Webhook by default, and `url:` (0.25 has no url_file).
    hooks = [hook for r in config["receivers"] for hook in r.get("webhook_configs", [])]
    assert hooks and all("url" in hook and "url_file" not in hook for hook in hooks)
