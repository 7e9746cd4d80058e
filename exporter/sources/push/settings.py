"""The ``push:`` section of the configuration: the event database, pushable accounts, tokens."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from exporter.config.durations import EXPECTED_FORM, parse_duration
from exporter.config.names import Name, ProviderLabel, fail
from exporter.core.ledger import MAX_LABEL_SETS_LIMIT

DEFAULT_REFRESH_INTERVAL = 10.0
MIN_REFRESH_INTERVAL = 1.0
DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_EVENTS = 1000
DEFAULT_MAX_CLOCK_SKEW = 300.0

_SHA256 = re.compile(r"[0-9a-f]{64}")
FILE_CONTEXT = "aicost_load"
"""The validation context key ``exporter.config.schema`` sets when validating a file."""


def duration(value: object, info: ValidationInfo) -> object:
    """A duration string such as ``10s`` in seconds; plain numbers only from Python callers."""
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except ValueError as exc:
            fail(str(exc))
    if isinstance(value, bool) or not isinstance(value, int | float):
        fail(f"must be a duration; {EXPECTED_FORM}")
    if isinstance(info.context, dict) and FILE_CONTEXT in info.context:
        fail(f"a plain number has no unit; {EXPECTED_FORM}")
    return value


DEFAULT_PUSH_LABEL_SETS = 1000
"""A pushed account's label sets a month by default: a team's projects x models, with room."""


class PushAccount(BaseModel):
    """An account whose usage is pushed to the exporter instead of polled."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: Name
    provider: ProviderLabel
    max_label_sets: int = Field(
        default=DEFAULT_PUSH_LABEL_SETS, gt=0, le=MAX_LABEL_SETS_LIMIT, strict=True
    )
    """Distinct project x model label sets a month; pushes beyond them count under ``(other)``."""


class PushToken(BaseModel):
    """A bearer token (only its SHA-256 is configured) and the accounts it may write."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: Name
    token_sha256: str = Field(repr=False)
    accounts: tuple[str, ...]

    @field_validator("token_sha256")
    @classmethod
    def _check_hash(cls, value: str) -> str:
        digest = value.strip().lower()
        if _SHA256.fullmatch(digest) is None:
            fail(
                "must be the SHA-256 of the token as 64 hex digits "
                '(printf %s "$TOKEN" | sha256sum), not the token itself'
            )
        return digest

    @field_validator("accounts")
    @classmethod
    def _check_accounts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            fail("list at least one push account this token may write")
        return value


class PushConfig(BaseModel):
    """The ``push:`` section: where events are stored and who may push them."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    database: Path | None = None
    accounts: tuple[PushAccount, ...] = ()
    tokens: tuple[PushToken, ...] = ()
    refresh_interval: float = DEFAULT_REFRESH_INTERVAL
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024, le=64 << 20)
    max_events: int = Field(default=DEFAULT_MAX_EVENTS, ge=1, le=100_000)
    max_clock_skew: float = DEFAULT_MAX_CLOCK_SKEW

    @field_validator("refresh_interval", "max_clock_skew", mode="before")
    @classmethod
    def _parse_duration(cls, value: object, info: ValidationInfo) -> object:
        return duration(value, info)

    @field_validator("refresh_interval")
    @classmethod
    def _check_refresh(cls, value: float) -> float:
        if not value >= MIN_REFRESH_INTERVAL:
            fail(f"must be at least {MIN_REFRESH_INTERVAL:g}s")
        return value

    @field_validator("max_clock_skew")
    @classmethod
    def _check_skew(cls, value: float) -> float:
        if not 0 <= value <= 86_400:
            fail("must be between 0s and 1d")
        return value

    @property
    def enabled(self) -> bool:
        """True when at least one account may be pushed."""
        return bool(self.accounts)


def push_problems(push: object) -> list[str]:
    """Cross-field problems of a raw (or dumped) ``push:`` mapping, each with its path."""
    if not isinstance(push, dict):
        return []
    problems: list[str] = []
    accounts = [a for a in push.get("accounts") or () if isinstance(a, dict)]
    tokens = [t for t in push.get("tokens") or () if isinstance(t, dict)]
    names = [a.get("name") for a in accounts]
    if accounts and push.get("database") is None:
        problems.append("push.database: required when push.accounts is set")
    if accounts and not tokens:
        problems.append("push.tokens: at least one token is required when push.accounts is set")
    for index, name in enumerate(names):
        if isinstance(name, str) and names.index(name) != index:
            problems.append(f"push.accounts[{index}].name: duplicate push account {name!r}")
    token_names = [t.get("name") for t in tokens]
    digests = [str(t.get("token_sha256", "")).strip().lower() for t in tokens]
    for index, token in enumerate(tokens):
        where = f"push.tokens[{index}]"
        if token_names.index(token_names[index]) != index:
            problems.append(f"{where}.name: duplicate token name {token_names[index]!r}")
        if digests[index] and digests.index(digests[index]) != index:
            problems.append(f"{where}.token_sha256: the same token is configured twice")
        for position, account in enumerate(token.get("accounts") or ()):
            if isinstance(account, str) and account not in names:
                problems.append(
                    f"{where}.accounts[{position}]: no push account is named {account!r}"
                )
    return problems
