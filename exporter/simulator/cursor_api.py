"""Fake Cursor Admin API: ``POST /teams/filtered-usage-events`` and ``POST /teams/spend``.

Both take their query as a JSON body, answer Cursor's shapes (timestamps as strings of epoch
milliseconds, money in cents, limits in dollars) and refuse a ``pageSize`` above the
documented maximum. Authentication is HTTP Basic with the key as the user name.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from .cursor_data import MEMBERS, TEAM_PER_USER_LIMIT, events
from .data import month_start
from .query import ApiError, Query

PROVIDER: Final = "cursor"
PREFIX: Final = "/cursor"  # stands for https://api.cursor.com
JSON = dict[str, Any]
MAX_EVENTS_PAGE: Final = 1000
FAULT_MESSAGES: Final = {
    "429": "Rate limit exceeded. Please try again later.",
    "500": "Internal server error",
    "503": "Service unavailable",
    "529": "Service unavailable",
}
TRUNCATED: Final = b'{"totalUsageEventsCount": 12, "pagination": {"numPages": 1, "curr'
_ERRORS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}


def check_headers(headers: Mapping[str, str], key: str) -> None:
    """401 unless ``Authorization: Basic base64(<key>:)``."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    try:
        user = base64.b64decode(token.strip(), validate=True).decode().partition(":")[0]
    except (binascii.Error, UnicodeDecodeError):
        user = ""
    if scheme.lower() != "basic" or not hmac.compare_digest(user.encode(), key.encode()):
        raise ApiError(401, "Invalid API key")


def error_body(err: ApiError) -> JSON:
    """Cursor's error envelope."""
    return {"error": _ERRORS.get(err.status, "Error"), "message": err.message}


def _int(query: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = query.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{key} must be an integer")
    return value


def _cents(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.0001")))


def handle(method: str, path: str, query: Query, body: bytes, now: float, seed: int) -> JSON:
    """Answer one request below the base URL, or raise :class:`ApiError` (Cursor takes its
    query as a JSON body: the query string is not read)."""
    if method != "POST" or path not in ("/teams/filtered-usage-events", "/teams/spend"):
        raise ApiError(404 if method == "POST" else 405, f"Cannot {method} {path}")
    try:
        query = json.loads(body or b"{}")
    except ValueError:
        raise ApiError(400, "Invalid JSON body") from None
    if not isinstance(query, dict):
        raise ApiError(400, "Invalid JSON body")
    if path == "/teams/spend":
        return _spend(query, now, seed)
    return _usage_events(query, now, seed)


def _usage_events(query: Mapping[str, Any], now: float, seed: int) -> JSON:
    end_ms = _int(query, "endDate", int(now * 1000))
    start_ms = _int(query, "startDate", end_ms - 7 * 86_400_000)
    page, size = _int(query, "page", 1), _int(query, "pageSize", 100)
    if not 1 <= size <= MAX_EVENTS_PAGE:
        raise ApiError(400, f"pageSize must be between 1 and {MAX_EVENTS_PAGE}")
    if page < 1 or start_ms > end_ms:
        raise ApiError(400, "page must be at least 1 and startDate not after endDate")
    found = events(seed, start_ms, end_ms, now)
    pages = max(1, math.ceil(len(found) / size))
    listed = []
    for e in found[(page - 1) * size : page * size]:
        read, write = e.tokens[2], e.tokens[3]
        listed.append(
            {
                "timestamp": str(e.ms),
                "userEmail": e.email,
                "model": e.model,
                "kind": e.kind,
                "maxMode": e.max_mode,
                "requestsCosts": 2.0 if e.max_mode else 1.0,
                "isTokenBasedCall": True,
                "isChargeable": e.charged_cents > 0,
                "isHeadless": False,
                "tokenUsage": {
                    "inputTokens": e.tokens[0],
                    "outputTokens": e.tokens[1],
                    "cacheWriteTokens": write,
                    "cacheReadTokens": read,
                    "totalCents": _cents(e.total_cents),
                },
                "chargedCents": _cents(e.charged_cents),
            }
        )
    return {
        "totalUsageEventsCount": len(found),
        "pagination": {
            "numPages": pages,
            "currentPage": page,
            "pageSize": size,
            "hasNextPage": page < pages,
            "hasPreviousPage": page > 1,
        },
        "usageEvents": listed,
        "period": {"startDate": start_ms, "endDate": end_ms},
    }


def member_spend_cents(seed: int, now: float) -> dict[str, Decimal]:
    """Each member's charged cents this calendar month, at ``now`` (exact, before rounding)."""
    spent = {email: Decimal(0) for _, email, *_ in MEMBERS}
    for e in events(seed, month_start(now) * 1000, int(now * 1000), now):
        spent[e.email] += e.charged_cents
    return spent


def member_limit(usage_based: bool, override: int | None) -> int | None:
    """A member's hard limit in dollars: members on usage-based pricing have one."""
    if not usage_based:
        return None
    return override or TEAM_PER_USER_LIMIT


def _spend(query: Mapping[str, Any], now: float, seed: int) -> JSON:
    page, size = _int(query, "page", 1), _int(query, "pageSize", 100)
    if page < 1 or not 1 <= size <= 1000:
        raise ApiError(400, "page must be at least 1 and pageSize between 1 and 1000")
    spent = member_spend_cents(seed, now)
    rows = []
    for user_id, email, name, role, usage_based, override in MEMBERS:
        cents = _cents(spent[email])
        limit = member_limit(usage_based, override)
        rows.append(
            {
                "userId": user_id,
                "email": email,
                "name": name,
                "role": role,
                "spendCents": cents,
                "overallSpendCents": cents,
                "fastPremiumRequests": 0,
                "hardLimitOverrideDollars": override or 0,
                "monthlyLimitDollars": None,
                "effectivePerUserLimitDollars": limit,
            }
        )
    pages = max(1, math.ceil(len(rows) / size))
    return {
        "teamMemberSpend": rows[(page - 1) * size : page * size],
        "subscriptionCycleStart": month_start(now) * 1000,
        "totalMembers": len(rows),
        "totalPages": pages,
    }


def expected(seed: int, start: int, end: int, now: float) -> dict[str, dict[Any, float]]:
    """What the exporter must publish for ``[start, end)`` by (model, user): ``tokens`` (also
    by token type), ``requests``, ``cost`` (also by line item: the cents served, summed
    exactly), and each limited member's ``limit`` and ``spend`` this month by email."""
    tokens: dict[Any, float] = {}
    requests: dict[Any, float] = {}
    cost: dict[Any, Decimal] = {}
    types = ("input", "output", "input_cache_read", "input_cache_write")
    for e in events(seed, start * 1000, end * 1000 - 1, now):
        for token_type, n in zip(types, (e.tokens[0], e.tokens[1], e.tokens[2], e.tokens[3]),
                                 strict=True):
            if n:
                key = (e.model, e.email, token_type)
                tokens[key] = tokens.get(key, 0) + n
        requests[e.model, e.email] = requests.get((e.model, e.email), 0) + 1
        if e.charged_cents:
            key = (e.model, e.email, "usage_based")
            cost[key] = cost.get(key, Decimal(0)) + Decimal(str(_cents(e.charged_cents))) / 100
    spent = member_spend_cents(seed, now)
    limits, spend = {}, {}
    for _, email, _, _, usage_based, override in MEMBERS:
        limit = member_limit(usage_based, override)
        if limit is not None:
            limits[email] = float(limit)
            spend[email] = _cents(spent[email]) / 100
    return {
        "tokens": tokens,
        "requests": requests,
        "cost": {key: float(value) for key, value in cost.items()},
        "limit": limits,
        "spend": spend,
    }
