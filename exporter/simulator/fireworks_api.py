"""Fake Fireworks billing API: ``POST /v1/accounts/{id}/usageCosts:query`` and
``GET /v1/accounts/{id}/billingUsage``.

Shapes follow the generated types of Fireworks' Gateway REST API: Google ``Money`` subtotals
(``units`` as a string, ``nanos``), int64 token counts as strings, empty lists and the last
page's ``nextPageToken`` left out as proto3 JSON does. Either request refuses a range over
31 days; ``usageCosts:query`` refuses more than two ``groupBy`` dimensions, ``HOUR`` with
``DAY``, and a ``pageSize`` over 1000. The error envelope (``{"code", "message"}``) is the
gRPC gateway's, a guess: Fireworks does not document it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from .data import DAY, HOUR
from .fireworks_data import Usage, usage
from .query import ApiError, Query

PROVIDER: Final = "fireworks"
PREFIX: Final = "/fireworks"  # stands for https://api.fireworks.ai
ACCOUNT: Final = "demo-account"
USERS: Final = {"key_demo_prod": "ana@demo.example", "key_demo_batch": "ben@demo.example"}
JSON = dict[str, Any]
MAX_RANGE: Final = 31 * DAY
MAX_PAGE: Final = 1000
NANO: Final = Decimal("0.000000001")
FAULT_MESSAGES: Final = {
    "429": "rate limit exceeded",
    "500": "internal error",
    "503": "service unavailable",
    "529": "service unavailable",
}
TRUNCATED: Final = b'{"rows": [{"dimensions": {"startTime": "2026-03-02T00:00:00Z", "mod'
_COST_DIMENSIONS: Final = ("HOUR", "DAY", "MODEL", "USER", "API_KEY")
_USAGE_GROUPS: Final = ("model_name", "api_key_id", "api_key_name")


def check_headers(headers: Mapping[str, str], key: str) -> None:
    """401 unless ``Authorization: Bearer <key>``."""
    if headers.get("authorization", "") != f"Bearer {key}":
        raise ApiError(401, "unauthenticated: invalid API key")


def error_body(err: ApiError) -> JSON:
    """The gRPC gateway's error envelope."""
    return {"code": err.status, "message": err.message}


def _time(value: Any, name: str) -> int:
    if not isinstance(value, str):
        raise ApiError(400, f"{name}: required")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"{name}: invalid timestamp {value!r}") from None
    if parsed.tzinfo is None:
        raise ApiError(400, f"{name}: timestamp needs an offset")
    return int(parsed.timestamp())


def _range(start: Any, end: Any) -> tuple[int, int]:
    first, last = _time(start, "startTime"), _time(end, "endTime")
    if not first < last <= first + MAX_RANGE:
        raise ApiError(400, "endTime must be after startTime, at most 31 days")
    return first, last


def _rfc3339(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(amount: Decimal) -> JSON:
    """``google.type.Money`` of a non-negative amount, rounded to nanos; zero units left out."""
    amount = amount.quantize(NANO)
    units, nanos = int(amount), int((amount - int(amount)) / NANO)
    return {"currencyCode": "USD", **({"units": str(units)} if units else {}), "nanos": nanos}


def handle(method: str, path: str, query: Query, body: bytes, now: float, seed: int) -> JSON:
    """Answer one request below the base URL, or raise :class:`ApiError`."""
    parts = path.split("/")
    if len(parts) != 5 or parts[:3] != ["", "v1", "accounts"]:
        raise ApiError(404, f"no route for {method} {path}")
    if parts[3] != ACCOUNT:
        raise ApiError(403, "permission denied on the account")
    if parts[4] == "usageCosts:query" and method == "POST":
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "invalid JSON body") from None
        if not isinstance(request, dict):
            raise ApiError(400, "invalid JSON body")
        return _costs(request, now, seed)
    if parts[4] == "billingUsage" and method == "GET":
        return _billing_usage(query, now, seed)
    raise ApiError(404 if parts[4] in ("usageCosts:query", "billingUsage") else 501,
                   f"method not allowed: {method} {path}")


def _cost_key(u: Usage, group_by: Iterable[str]) -> tuple[tuple[str, Any], ...]:
    values = {
        "HOUR": ("startTime", _rfc3339(u.hour)),
        "DAY": ("startTime", _rfc3339(u.hour // DAY * DAY)),
        "MODEL": ("model", u.model),
        "USER": ("user", USERS[u.api_key]),
        "API_KEY": ("apiKeyId", u.api_key),
    }
    return tuple(values[g] for g in group_by)


def cost_rows(seed: int, start: int, end: int, now: float, group_by: list[str]) -> list[JSON]:
    """Every row of a ``usageCosts:query``, in order, before paging."""
    sums: dict[tuple[tuple[str, Any], ...], Decimal] = {}
    for u in usage(seed, start, end, now):
        key = _cost_key(u, group_by)
        sums[key] = sums.get(key, Decimal(0)) + u.cost
    return [
        {"dimensions": {**dict(key), "unknownModel": False}, "subtotal": money(amount)}
        for key, amount in sorted(sums.items())
    ]


def _costs(request: Mapping[str, Any], now: float, seed: int) -> JSON:
    start, end = _range(request.get("startTime"), request.get("endTime"))
    group_by = request.get("groupBy", [])
    if not isinstance(group_by, list) or any(g not in _COST_DIMENSIONS for g in group_by):
        raise ApiError(400, f"groupBy: values must be among {', '.join(_COST_DIMENSIONS)}")
    if len(group_by) > 2 or len(set(group_by)) != len(group_by) or {"HOUR", "DAY"} <= set(group_by):
        raise ApiError(400, "groupBy: at most two distinct dimensions, not both HOUR and DAY")
    if request.get("scope", "SELF") not in ("ACCOUNT", "SELF"):
        raise ApiError(400, "scope: must be ACCOUNT or SELF")
    size = request.get("pageSize", 100)
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE:
        raise ApiError(400, f"pageSize: must be between 1 and {MAX_PAGE}")
    token = request.get("pageToken", "")
    offset = 0
    if token:
        if not isinstance(token, str) or not token.startswith("p") or not token[1:].isdigit():
            raise ApiError(400, "pageToken: invalid")
        offset = int(token[1:])
    rows = cost_rows(seed, start, end, now, group_by)
    page = rows[offset : offset + size]
    total = sum((u.cost for u in usage(seed, start, end, now)), Decimal(0))
    answer: JSON = {
        "subtotal": money(total),
        "evaluationTime": _rfc3339(int(min(now, end)) // HOUR * HOUR),
        "attributionCompleteness": "COMPLETE",
    }
    if page:
        answer["rows"] = page
    if offset + size < len(rows):
        answer["nextPageToken"] = f"p{offset + size}"
    return answer


def _billing_usage(query: Query, now: float, seed: int) -> JSON:
    start, end = _range(query.one("startTime"), query.one("endTime"))
    groups = query.many("groupBy")
    if any(g not in _USAGE_GROUPS for g in groups):
        raise ApiError(400, f"groupBy: values must be among {', '.join(_USAGE_GROUPS)}")
    if (query.one("timezone") or "UTC") != "UTC":
        raise ApiError(400, "timezone: the simulator answers UTC days only")
    kind = query.one("usageType") or "USAGE_TYPE_UNSPECIFIED"
    if kind not in ("USAGE_TYPE_UNSPECIFIED", "SERVERLESS", "DEDICATED_DEPLOYMENT", "TRAINING"):
        raise ApiError(400, f"usageType: invalid value {kind!r}")
    if kind not in ("USAGE_TYPE_UNSPECIFIED", "SERVERLESS"):
        return {}
    sums: dict[tuple[int, tuple[str, ...]], list[int]] = {}
    for u in usage(seed, start, end, now):
        names = {"model_name": u.model, "api_key_id": u.api_key,
                 "api_key_name": u.api_key.removeprefix("key_demo_")}
        key = (u.hour // DAY * DAY, tuple(names[g] for g in groups))
        counts = sums.setdefault(key, [0, 0])
        counts[0] += u.prompt
        counts[1] += u.completion
    rows = [
        {
            "startTime": _rfc3339(day),
            "endTime": _rfc3339(day + DAY),
            "promptTokens": str(prompt),
            "completionTokens": str(completion),
            "usageType": "TEXT_COMPLETION_INFERENCE_USAGE",
            "group": dict(zip(groups, values, strict=True)),
        }
        for (day, values), (prompt, completion) in sorted(sums.items())
    ]
    return {"serverlessCosts": rows} if rows else {}


def expected(seed: int, start: int, end: int, now: float) -> dict[str, dict[Any, float]]:
    """What the exporter must publish for ``[start, end)`` grouped by model and API key:
    ``cost`` by model (the DAY × MODEL rows served, summed exactly) and ``tokens`` by
    (model, API key, token type)."""
    cost: dict[Any, Decimal] = {}
    for row in cost_rows(seed, start, end, now, ["DAY", "MODEL"]):
        sub = row["subtotal"]
        amount = Decimal(sub.get("units", "0")) + Decimal(sub["nanos"]) * NANO
        model = row["dimensions"]["model"]
        cost[model] = cost.get(model, Decimal(0)) + amount
    tokens: dict[Any, float] = {}
    for u in usage(seed, start, end, now):
        for token_type, n in (("input", u.prompt), ("output", u.completion)):
            key = (u.model, u.api_key, token_type)
            tokens[key] = tokens.get(key, 0) + n
    return {"cost": {k: float(v) for k, v in cost.items()}, "tokens": tokens}
