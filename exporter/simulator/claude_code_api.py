"""Fake Anthropic Claude Code Analytics report: ``/v1/organizations/usage_report/claude_code``.

Served below the ``/anthropic`` prefix with the Anthropic admin key and error envelope.
Quirks kept: ``starting_at`` is a bare UTC date (one day per request), ``limit`` is
records per page (default 20, max 1000), ``next_page`` is an opaque cursor bound to the
day, the estimated cost is a number in cents, data younger than one hour is not shown.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .claude_code_data import ACTORS, DAY, TOOLS, Actor, ClaudeCodeData, DayValues
from .query import ApiError, Query

PATH = "/v1/organizations/usage_report/claude_code"
ORGANIZATION_ID = "5b0e7a0c-2f1c-4d5e-9a7b-1c2d3e4f5a6b"
JSON = dict[str, Any]
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def handle(query: Query, now: float, data: ClaudeCodeData) -> JSON:
    """One page of the report for the day in ``starting_at``."""
    raw = query.required("starting_at")
    if _DATE.fullmatch(raw) is None:
        raise ApiError(400, "starting_at: expected a UTC date YYYY-MM-DD", "starting_at")
    try:
        day = int(datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
    except ValueError:
        raise ApiError(400, f"starting_at: invalid date {raw!r}", "starting_at") from None
    limit = query.limit(20, 1000)
    offset = _decode(query.one("page"), day)
    records = [r for r in (_record(a, day, data.values(a, day, now)) for a in ACTORS) if r]
    page = records[offset : offset + limit]
    more = offset + limit < len(records)
    return {
        "data": page,
        "has_more": more,
        "next_page": _encode(day, offset + limit) if more else None,
    }


def _encode(day: int, offset: int) -> str:
    return "page_" + base64.urlsafe_b64encode(f"cc:{day}:{offset}".encode()).decode()


def _decode(token: str | None, day: int) -> int:
    if token is None:
        return 0
    try:
        if not token.startswith("page_"):
            raise ValueError(token)
        kind, token_day, offset = base64.urlsafe_b64decode(token[5:]).decode().split(":")
        if kind != "cc" or int(token_day) != day:
            raise ValueError(token)
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "page: invalid page token", "page") from None


def _number(cents: Decimal) -> int | float:
    return int(cents) if cents == cents.to_integral_value() else float(cents)


def _record(actor: Actor, day: int, values: DayValues | None) -> JSON | None:
    if values is None:
        return None
    who: JSON = (
        {"type": "user_actor", "email_address": actor.name}
        if actor.kind == "user_actor"
        else {"type": "api_actor", "api_key_name": actor.name}
    )
    breakdown = []
    for index, model in enumerate(actor.models):
        n_input, n_output, n_read, n_write = values.tokens[index]
        breakdown.append(
            {
                "model": model,
                "tokens": {
                    "input": n_input,
                    "output": n_output,
                    "cache_read": n_read,
                    "cache_creation": n_write,
                },
                "estimated_cost": {
                    "currency": "USD",
                    "amount": _number(values.cents(index, model)),
                },
            }
        )
    return {
        "date": datetime.fromtimestamp(day, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "actor": who,
        "organization_id": ORGANIZATION_ID,
        "customer_type": actor.customer_type,
        "terminal_type": actor.terminal_type,
        "core_metrics": {
            "num_sessions": values.sessions,
            "lines_of_code": {"added": values.added, "removed": values.removed},
            "commits_by_claude_code": values.commits,
            "pull_requests_by_claude_code": values.pull_requests,
        },
        "tool_actions": {
            tool: {"accepted": accepted, "rejected": rejected}
            for tool, (accepted, rejected) in zip(TOOLS, values.tools, strict=True)
        },
        "model_breakdown": breakdown,
    }


def expected(data: ClaudeCodeData, start: int, end: int, now: float) -> dict[str, dict[Any, float]]:
    """Ground truth per family over the UTC days starting in ``[start, end)``, as of ``now``.

    Keys: tokens (user, model, token_type, customer_type), cost (user, model,
    customer_type), sessions/commits/pull_requests (user,), lines (user, change),
    tool_actions (user, tool, decision).
    """
    out: dict[str, dict[Any, Decimal]] = {
        name: {}
        for name in ("tokens", "cost", "sessions", "commits", "pull_requests", "lines", "tools")
    }

    def add(name: str, key: tuple[str, ...], value: int | Decimal) -> None:
        if value:
            out[name][key] = Decimal(out[name].get(key, 0)) + value

    first = -(-start // DAY) * DAY
    for day in range(first, end, DAY):
        for actor in ACTORS:
            values = data.values(actor, day, now)
            if values is None:
                continue
            user = actor.name
            add("sessions", (user,), values.sessions)
            add("commits", (user,), values.commits)
            add("pull_requests", (user,), values.pull_requests)
            add("lines", (user, "added"), values.added)
            add("lines", (user, "removed"), values.removed)
            for tool, (accepted, rejected) in zip(TOOLS, values.tools, strict=True):
                name = tool.removesuffix("_tool")
                add("tools", (user, name, "accepted"), accepted)
                add("tools", (user, name, "rejected"), rejected)
            for index, model in enumerate(actor.models):
                kind = actor.customer_type
                for token_type, n in zip(
                    ("input", "output", "input_cache_read", "input_cache_write"),
                    values.tokens[index],
                    strict=True,
                ):
                    add("tokens", (user, model, token_type, kind), n)
                add("cost", (user, model, kind), values.cents(index, model) / 100)
    return {name: {k: float(v) for k, v in values.items()} for name, values in out.items()}
