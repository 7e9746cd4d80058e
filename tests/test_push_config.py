"""The push: section of the configuration file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from exporter.config.schema import ConfigError, parse_config

DIGEST = hashlib.sha256(b"token").hexdigest()


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_a_push_only_configuration(tmp_path: Path) -> None:
    config = parse_config(
        f"""
accounts: []
push:
  database: data/push.db
  refresh_interval: 2s
  accounts:
    - {{name: team-a, provider: perplexity}}
  tokens:
    - {{name: gateway, token_sha256: "{DIGEST.upper()}", accounts: [team-a]}}
budgets:
  - {{name: b, period: month, limit_usd: 5, match: {{provider: perplexity, account: team-a}}}}
""",
        base_dir=tmp_path,
    )
    push = config.push
    assert push.database == tmp_path / "data/push.db"  # relative to the config file
    assert push.refresh_interval == 2.0 and push.max_events == 1000
    assert push.tokens[0].token_sha256 == DIGEST
    assert DIGEST not in repr(push)


def test_every_push_problem_is_reported() -> None:
    text = f"""
accounts:
  - {{name: oai, provider: openai, api_key: sk-x}}
push:
  refresh_interval: 10
  accounts:
    - {{name: oai, provider: openai}}
    - {{name: team-a, provider: "bad label"}}
    - {{name: team-a, provider: x}}
  tokens:
    - {{name: t, token_sha256: my-token, accounts: [team-b]}}
    - {{name: t, token_sha256: {DIGEST}, accounts: []}}
"""
    assert problems(text) == [
        "push.accounts[1].provider: must be 1-64 characters, start with a letter or digit "
        "and contain only letters, digits, '_', '.' and '-'",
        "push.tokens[0].token_sha256: must be the SHA-256 of the token as 64 hex digits "
        '(printf %s "$TOKEN" | sha256sum), not the token itself',
        "push.tokens[1].accounts: list at least one push account this token may write",
        "push.refresh_interval: a plain number has no unit; use a duration such as 30s or 5m "
        "(units ms, s, m, h, d, w; combined: 1h30m)",
        "push.database: required when push.accounts is set",
        "push.accounts[2].name: duplicate push account 'team-a'",
        "push.tokens[0].accounts[0]: no push account is named 'team-b'",
        "push.tokens[1].name: duplicate token name 't'",
        "push.accounts[0].name: 'oai' is already the name of a polled account",
    ]


def test_accounts_still_required_without_push_or_subscriptions() -> None:
    assert problems("accounts: []\npush: {}\n") == ["accounts: at least one account is required"]
