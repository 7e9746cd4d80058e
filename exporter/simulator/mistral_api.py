"""Fake Mistral Admin API: ``GET /usage`` (a calendar month) and ``GET /spend-limit``.

``/usage`` answers the shape of Mistral's spec (``UsageOUTJSON``: every category block, the
period, the currency and the ``prices`` table), with rows as the clients of Mistral's billing
read them (one per day and lane: ``value``, ``value_paid``, event type, metric, zone, tier)
and prices as decimal strings, some in scientific notation. The key goes in ``x-api-key``.
"""

from __future__ import annotations

import calendar
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from .mistral_data import CURRENCY, DISPLAY, PRICES, SPEND_LIMIT_EUR, month_cost, rows
from .query import ApiError, Query

PROVIDER: Final = "mistral"
PREFIX: Final = "/mistral"  # stands for https://api.mistral.ai/v1/admin
WORKSPACE: Final = "2f6b1c9e-demo-workspace"
JSON = dict[str, Any]
FAULT_MESSAGES: Final = {
    "429": "Requests rate limit exceeded",
    "500": "Internal server error",
    "503": "Service unavailable",
    "529": "Service unavailable",
}
TRUNCATED: Final = b'{"completion": {"models": {"mistral-medium-latest::mistral-medium-3-5": {"in'
_CATEGORIES: Final = ("chat", "completion", "ocr", "connectors", "audio", "audio_characters")


def check_headers(headers: Mapping[str, str], key: str) -> None:
    """401 unless ``x-api-key: <admin key>``."""
    if not hmac.compare_digest(headers.get("x-api-key", "").encode(), key.encode()):
        raise ApiError(401, "Unauthorized")


def error_body(err: ApiError) -> JSON:
    """Mistral's error envelope."""
    return {"object": "error", "message": err.message, "type": "invalid_request_error",
            "code": str(err.status)}


def _price_text(price: Decimal) -> str:
    # Mistral writes some prices in scientific notation ("8.50E-8").
    return f"{price:.2E}" if price < Decimal("0.000001") else f"{price:.10f}"


def _empty() -> JSON:
    return {"models": {}}


def handle(method: str, path: str, query: Query, body: bytes, now: float, seed: int) -> JSON:
    """Answer one request below the base URL, or raise :class:`ApiError`."""
    if method != "GET":
        raise ApiError(405, f"Method {method} not allowed")
    if path == "/spend-limit":
        spent = float(month_cost(seed, now).quantize(Decimal("0.01")))
        return {"limits": {
            "completion": {"monthly_limit_reached": spent >= SPEND_LIMIT_EUR,
                           "no_monthly_limit": False, "usage": spent, "vibe_usage": 0.0,
                           "total_usage": spent, "usage_limit": SPEND_LIMIT_EUR},
            "last_payment_failure": False, "last_payment_failure_protection": None,
            "currency": CURRENCY}}
    if path != "/usage":
        raise ApiError(404, f"Not found: {path}")
    today = datetime.fromtimestamp(now, UTC)
    try:
        month = int(query.one("month") or today.month)
        year = int(query.one("year") or today.year)
        first = datetime(year, month, 1, tzinfo=UTC)
    except ValueError:
        raise ApiError(400, "month and year must be whole numbers of a calendar month") from None
    days = calendar.monthrange(year, month)[1]
    start = int(first.timestamp())
    end = start + days * 86_400
    workspace = query.one("workspace_id")
    found = rows(seed, start, end, now) if workspace in (None, WORKSPACE) else []
    answer: JSON = {name: _empty() for name in _CATEGORIES}
    for r in found:
        model_key = f"{DISPLAY[r.model]}::{r.model}"
        lanes = answer[r.category]["models"].setdefault(model_key, {})
        lanes.setdefault(r.lane, []).append({
            "usage_type": "usage", "event_type": r.event, "billing_metric": r.model,
            "billing_display_name": DISPLAY[r.model], "billing_group": r.lane,
            "timestamp": datetime.fromtimestamp(r.day, UTC).strftime("%Y-%m-%d"),
            "value": r.value, "value_paid": r.value_paid, "api_zone": "global",
            "service_tier": "standard",
        })
    prev_year, prev_month = (year - 1, 12) if month == 1 else (year, month - 1)
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    answer.update({
        "libraries_api": {"pages": _empty(), "tokens": _empty(), "audio_seconds": _empty()},
        "fine_tuning": {"training": {}, "storage": {}},
        "vibe_code": {name: _empty() for name in
                      ("completion", "ocr", "connectors", "audio", "audio_characters")},
        "vibe_usage": 0.0,
        "date": first.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "previous_month": f"{prev_year}-{prev_month:02d}",
        "next_month": f"{next_year}-{next_month:02d}",
        "start_date": first.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end_date": datetime.fromtimestamp(end - 1, UTC).strftime("%Y-%m-%dT%H:%M:%S.999Z"),
        "currency": CURRENCY,
        "currency_symbol": "\u20ac",
        "prices": [
            {"event_type": event, "billing_metric": model, "billing_group": lane,
             "api_zone": "global", "service_tier": "standard", "price": _price_text(price)}
            for (_, event, model, lane), price in PRICES.items()
        ],
    })
    return answer


def expected(seed: int, start: int, end: int, now: float, eur_usd: float) -> dict[str, Any]:
    """What the exporter must publish for ``[start, end)`` at ``eur_usd`` dollars a euro:
    ``tokens`` by (model, token type), ``cost`` by (model, line item), and the ``limit``,
    its ``spend`` and whether it is ``reached`` (in dollars)."""
    lanes = {"input": "input", "output": "output", "cached": "input_cache_read"}
    tokens: dict[Any, float] = {}
    cost: dict[Any, Decimal] = {}
    for r in rows(seed, start, end, now):
        if r.event == "api_tokens":
            key = (r.model, lanes[r.lane])
            tokens[key] = tokens.get(key, 0) + r.value
        if r.value_paid:
            # Priced as the answer's table is written (its text, then parsed back).
            price = Decimal(_price_text(PRICES[r.category, r.event, r.model, r.lane]))
            cost[r.model, r.category] = cost.get((r.model, r.category), Decimal(0)) + (
                r.value_paid * price)
    spent = float(month_cost(seed, now).quantize(Decimal("0.01")))
    rate = Decimal(str(eur_usd))
    return {
        "tokens": tokens,
        "cost": {k: float(v * rate) for k, v in cost.items()},
        "limit": float(SPEND_LIMIT_EUR * rate),
        "spend": float(Decimal(str(spent)) * rate),
        "reached": spent >= SPEND_LIMIT_EUR,
    }
