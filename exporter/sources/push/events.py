"""Pushed usage events: the validated form, and validation with field-level errors.

Both the HTTP push API and the CSV import turn their input into plain mappings
and validate them here, so both accept and reject exactly the same things.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from exporter.core.ledger import history_start
from exporter.core.records import TokenType

TOKEN_TYPES: tuple[str, ...] = tuple(t.value for t in TokenType)
FIELDS = frozenset(
    {
        "id",
        "timestamp",
        "provider",
        "account",
        "project",
        "model",
        "service_tier",
        "tokens",
        "requests",
        "cost_usd",
    }
)
MAX_ID_LENGTH = 256
MAX_LABEL_LENGTH = 200
MAX_TOKENS = 10**12
MAX_REQUESTS = 10**9
MAX_COST_USD = 1_000_000.0
DEFAULT_SERVICE_TIER = "default"


@dataclass(frozen=True, slots=True)
class UsageEvent:
    """One validated event; ``tokens`` in :data:`TOKEN_TYPES` order."""

    id: str
    account: str
    timestamp: float
    project: str = ""
    model: str = ""
    service_tier: str = DEFAULT_SERVICE_TIER
    tokens: tuple[int, ...] = (0, 0, 0, 0, 0)
    requests: int = 0
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class FieldError:
    """A problem with one field of one event (``event`` is its 0-based position)."""

    event: int
    field: str
    message: str

    def as_json(self) -> dict[str, Any]:
        """The error as it appears in a response body."""
        return {"event": self.event, "field": self.field, "message": self.message}


def retention_start(now: float) -> int:
    """Oldest accepted timestamp: the month start minus the week budgets and forecasts need."""
    return history_start(now)


class _Invalid(Exception):
    pass


_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def _text(value: object, *, limit: int, required: bool) -> str:
    if not isinstance(value, str):
        raise _Invalid("must be a string")
    if required and not value:
        raise _Invalid("must not be empty")
    if len(value) > limit:
        raise _Invalid(f"must be at most {limit} characters")
    if any(ch < " " or "\x7f" <= ch <= "\x9f" for ch in value):  # C0, DEL and C1
        raise _Invalid("must not contain control characters")
    if any("\ud800" <= ch <= "\udfff" for ch in value):  # JSON's \ud800 escapes decode to these
        raise _Invalid("must be valid Unicode (it contains a lone surrogate)")
    if any(ch in _BIDI_CONTROLS for ch in value):
        # They reorder what a dashboard or a log shows: a label that reads as another one.
        raise _Invalid("must not contain bidirectional control characters")
    return value


def _count(value: object, limit: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Invalid("must be a whole number")
    if value < 0:
        raise _Invalid("must not be negative")
    if value > limit:
        raise _Invalid(f"must be at most {limit}")
    return value


def _timestamp(value: object) -> float:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _Invalid(
                "must be an RFC 3339 time such as 2026-11-26T10:00:00Z, or Unix seconds"
            ) from None
        if parsed.tzinfo is None:
            raise _Invalid("needs a time zone, e.g. a trailing Z for UTC")
        return parsed.timestamp()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid("must be an RFC 3339 time string or Unix seconds")
    if not math.isfinite(value):
        raise _Invalid("must be finite")
    return float(value)


def _cost(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Invalid("must be a number of US dollars")
    if not math.isfinite(value) or value < 0:
        raise _Invalid("must be a finite number, 0 or more")
    if value > MAX_COST_USD:
        raise _Invalid(f"must be at most {MAX_COST_USD:g} per event")
    return float(value)


class EventValidator:
    """Validates raw events against the pushable accounts and the accepted time window."""

    def __init__(self, accounts: Mapping[str, str], *, max_clock_skew: float = 300.0) -> None:
        self.accounts = dict(accounts)
        """Pushable account name -> its ``provider`` label."""
        self.max_clock_skew = max_clock_skew

    def validate(
        self, raw: object, index: int, now: float
    ) -> tuple[UsageEvent | None, list[FieldError]]:
        """The event, or ``None`` and every problem found in it."""
        if not isinstance(raw, Mapping):
            return None, [FieldError(index, "", "must be a JSON object")]
        errors: list[FieldError] = []
        values: dict[str, Any] = {}

        def check(name: str, parse: Any, *, required: bool = False) -> None:
            if name not in raw or raw[name] is None:
                if required:
                    errors.append(FieldError(index, name, "required"))
                return
            try:
                values[name] = parse(raw[name])
            except _Invalid as exc:
                errors.append(FieldError(index, name, str(exc)))

        for name in sorted(k for k in raw if k not in FIELDS):
            errors.append(FieldError(index, str(name), "unknown field"))
        check("id", lambda v: _text(v, limit=MAX_ID_LENGTH, required=True), required=True)
        check("timestamp", _timestamp, required=True)
        check("account", lambda v: _text(v, limit=MAX_LABEL_LENGTH, required=True), required=True)
        for name in ("provider", "project", "model", "service_tier"):
            check(name, lambda v: _text(v, limit=MAX_LABEL_LENGTH, required=False))
        check("requests", lambda v: _count(v, MAX_REQUESTS))
        check("cost_usd", _cost)
        tokens = self._tokens(raw.get("tokens"), index, errors)

        account = values.get("account")
        if account is not None:
            provider = self.accounts.get(account)
            if provider is None:
                errors.append(FieldError(index, "account", f"not a push account: {account!r}"))
            elif values.get("provider", provider) != provider:
                errors.append(
                    FieldError(
                        index,
                        "provider",
                        f"account {account!r} is configured with provider {provider!r}",
                    )
                )
        ts = values.get("timestamp")
        if ts is not None:
            oldest = datetime.fromtimestamp(retention_start(now), UTC)
            if ts > now + self.max_clock_skew:
                errors.append(FieldError(index, "timestamp", "is in the future"))
            elif ts < retention_start(now):
                errors.append(
                    FieldError(
                        index,
                        "timestamp",
                        "is older than the retention window (this month and the 7 days "
                        f"before it: from {oldest:%Y-%m-%d})",
                    )
                )
        if errors:
            return None, errors
        return (
            UsageEvent(
                id=values["id"],
                account=values["account"],
                timestamp=values["timestamp"],
                project=values.get("project", ""),
                model=values.get("model", ""),
                service_tier=values.get("service_tier") or DEFAULT_SERVICE_TIER,
                tokens=tokens,
                requests=values.get("requests", 0),
                cost_usd=values.get("cost_usd"),
            ),
            [],
        )

    @staticmethod
    def _tokens(raw: object, index: int, errors: list[FieldError]) -> tuple[int, ...]:
        if raw is None:
            return (0,) * len(TOKEN_TYPES)
        if not isinstance(raw, Mapping):
            errors.append(FieldError(index, "tokens", "must be an object of token counts"))
            return ()
        for key in sorted(str(k) for k in raw if k not in TOKEN_TYPES):
            errors.append(
                FieldError(
                    index, f"tokens.{key}", f"unknown token type; one of {', '.join(TOKEN_TYPES)}"
                )
            )
        counts = []
        for token_type in TOKEN_TYPES:
            value = raw.get(token_type)
            if value is None:
                counts.append(0)
                continue
            try:
                counts.append(_count(value, MAX_TOKENS))
            except _Invalid as exc:
                errors.append(FieldError(index, f"tokens.{token_type}", str(exc)))
        return tuple(counts)
