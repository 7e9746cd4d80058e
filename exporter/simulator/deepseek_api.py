"""Fake DeepSeek ``/user/balance``: the balance as decimal strings, nothing else."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any, Final

from .data import month_start
from .more_data import MoreData
from .query import ApiError, Query

PROVIDER: Final = "deepseek"
PREFIX: Final = "/deepseek"
JSON = dict[str, Any]
FAULT_MESSAGES: Final = {
    "429": "Rate Limit Reached",
    "500": "Server Error",
    "503": "Server Overloaded",
    "529": "Server Overloaded",
}
TRUNCATED: Final = b'{"is_available": true, "balance_infos": [{"currency": "USD", "total_bal'


def check_headers(headers: Mapping[str, str], key: str) -> None:
    """401 unless ``Authorization: Bearer <key>``."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        raise ApiError(
            401, "Authentication Fails, Your api key is invalid", kind="authentication_error"
        )


def error_body(err: ApiError) -> JSON:
    """DeepSeek's OpenAI-style error envelope."""
    kind = err.kind or ("rate_limit_error" if err.status == 429 else "invalid_request_error")
    return {"error": {"message": err.message, "type": kind, "param": None, "code": None}}


def _amount(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}" if cents >= 0 else f"-{_amount(-cents)}"


def balance(data: MoreData, now: float) -> tuple[str, int, int]:
    """(currency, granted cents, topped-up cents) of the simulated account at ``now``."""
    granted, topped_up = data.deepseek_cents(month_start(now), now)
    return data.deepseek_currency, granted, topped_up


def handle(path: str, query: Query, now: float, data: MoreData) -> JSON:
    """Answer one GET, or raise :class:`ApiError`."""
    if path != "/user/balance":
        raise ApiError(404, f"Not Found (GET {path})")
    currency, granted, topped_up = balance(data, now)
    return {
        "is_available": granted + topped_up > 0,
        "balance_infos": [
            {
                "currency": currency,
                "total_balance": _amount(granted + topped_up),
                "granted_balance": _amount(granted),
                "topped_up_balance": _amount(topped_up),
            }
        ],
    }
