"""Fake xAI Management API: the key's team, the usage explorer's daily spend, and the
postpaid spending limit.

``POST /v1/billing/teams/{id}/usage`` checks the request as the clients of the real API
send it (``analyticsRequest`` with ``YYYY-MM-DD HH:MM:SS`` times in ``Etc/GMT`` or ``UTC``,
``endTime`` inclusive, ``TIME_UNIT_DAY``, one ``usd`` sum, ``groupBy`` of ``description``
or nothing) and answers dense daily series in dollars, with ``limitReached`` when more
series than :data:`MAX_SERIES` would be listed.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from .data import DAY
from .query import ApiError, Query
from .xai_data import DESCRIPTIONS, SPENDING_LIMIT_CENTS, TEAM, spend

PROVIDER: Final = "xai"
PREFIX: Final = "/xai"  # stands for https://management-api.x.ai
JSON = dict[str, Any]
MAX_SERIES: Final = 50
MAX_RANGE: Final = 400 * DAY
FAULT_MESSAGES: Final = {
    "429": "Too many requests",
    "500": "Internal server error",
    "503": "Service unavailable",
    "529": "Service unavailable",
}
TRUNCATED: Final = b'{"timeSeries": [{"group": ["Chat grok-4-0709"], "groupLabels": ["Ch'
_ZONES: Final = ("Etc/GMT", "UTC")


def check_headers(headers: Mapping[str, str], key: str) -> None:
    """401 unless ``Authorization: Bearer <management key>``."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme != "Bearer" or not hmac.compare_digest(token.encode(), key.encode()):
        raise ApiError(401, "Invalid management key")


def error_body(err: ApiError) -> JSON:
    """xAI's error envelope (``code`` and ``error``, as its inference API answers)."""
    return {"code": str(err.status), "error": err.message}


def _time(value: Any, name: str) -> int:
    try:
        parsed = datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError):
        raise ApiError(400, f"timeRange.{name}: expected YYYY-MM-DD HH:MM:SS") from None
    return int(parsed.replace(tzinfo=UTC).timestamp())


def handle(method: str, path: str, query: Query, body: bytes, now: float, seed: int) -> JSON:
    """Answer one request below the base URL, or raise :class:`ApiError`."""
    if path == "/auth/management-keys/validation" and method == "GET":
        return {"apiKeyId": "mk-demo-0001", "teamId": TEAM, "scope": "SCOPE_TEAM",
                "scopeId": TEAM, "name": "ai-cost-exporter demo"}
    prefix = f"/v1/billing/teams/{TEAM}/"
    if not path.startswith(prefix):
        other_team = path.startswith("/v1/billing/teams/")
        raise ApiError(403 if other_team else 404, f"Not allowed or not found: {path}")
    rest = path[len(prefix):]
    if rest == "usage" and method == "POST":
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "Invalid JSON body") from None
        return _usage(request, now, seed)
    if rest == "postpaid/spending-limits" and method == "GET":
        cents = {"val": str(SPENDING_LIMIT_CENTS)}
        return {"spendingLimits": {
            "softSl": cents, "effectiveSl": cents, "hardSlAuto": {"val": "100000"},
            "effectiveHardSl": {"val": "100000"}, "nextBpDesiredSoftSl": cents,
        }}
    raise ApiError(404, f"Not found: {method} {path}")


def _usage(request: Any, now: float, seed: int) -> JSON:
    analytics = request.get("analyticsRequest") if isinstance(request, dict) else None
    if not isinstance(analytics, dict):
        raise ApiError(400, "analyticsRequest: required")
    window = analytics.get("timeRange")
    if not isinstance(window, dict) or window.get("timezone") not in _ZONES:
        raise ApiError(400, "timeRange.timezone: the simulator answers Etc/GMT or UTC")
    start, last = _time(window.get("startTime"), "startTime"), _time(window.get("endTime"),
                                                                     "endTime")
    if not start <= last < start + MAX_RANGE:
        raise ApiError(400, "timeRange: endTime must not be before startTime")
    if analytics.get("timeUnit") != "TIME_UNIT_DAY":
        raise ApiError(400, "timeUnit: the simulator answers TIME_UNIT_DAY")
    if analytics.get("values") != [{"name": "usd", "aggregation": "AGGREGATION_SUM"}]:
        raise ApiError(400, "values: the simulator answers one usd AGGREGATION_SUM")
    group_by = analytics.get("groupBy", [])
    if group_by not in ([], ["description"]):
        raise ApiError(400, "groupBy: the simulator groups by description or nothing")
    if analytics.get("filters", []) != []:
        raise ApiError(400, "filters: not supported by the simulator")
    found = spend(seed, start, last + 1, now)
    days = range(start // DAY * DAY, min(last + 1, int(now)), DAY)
    groups = list(DESCRIPTIONS) if group_by else [""]

    def amount(day: int, group: str) -> Decimal:
        if group:
            return found.get((day, group), Decimal(0))
        return sum((v for (d, _), v in found.items() if d == day), Decimal(0))

    series = [
        {
            "group": [group] if group else [],
            "groupLabels": [group] if group else [],
            "dataPoints": [
                {"timestamp": datetime.fromtimestamp(day, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "values": [float(amount(day, group))]}
                for day in days
            ],
        }
        for group in groups
    ]
    return {"timeSeries": series[:MAX_SERIES], "limitReached": len(series) > MAX_SERIES}


def expected(seed: int, start: int, end: int, now: float) -> dict[str, Any]:
    """What the exporter must publish for ``[start, end)``: ``cost`` by model (each day's
    amount as served, a float, summed) and the ``limit`` in dollars."""
    cost: dict[str, float] = {}
    for (_, description), usd in spend(seed, start, end, now).items():
        model = description.split(" ", 1)[1]
        cost[model] = cost.get(model, 0.0) + float(usd)
    return {"cost": cost, "limit": SPENDING_LIMIT_CENTS / 100}
