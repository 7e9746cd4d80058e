"""Fake OpenRouter management API: ``/credits``, ``/keys``, ``/activity``.

Quirks reproduced: only a management key may call them (an inference key gets
403); ``/activity`` covers the last 30 *completed* UTC days (today never) and
rejects a ``date`` outside them; ``/keys`` pages by ``offset`` (100 per page),
hides disabled keys unless ``include_disabled=true`` and lists only the default
workspace's keys unless ``workspace_id`` is given.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from .data import DAY
from .more_data import (
    DEFAULT_WORKSPACE,
    ROUTER_ENDPOINTS,
    ROUTER_KEYS,
    ROUTER_PRIOR_USAGE,
    ROUTER_TOTAL_CREDITS,
    MoreData,
    dollars,
)
from .query import ApiError, Query

PROVIDER: Final = "openrouter"
PREFIX: Final = "/openrouter/api/v1"
INFERENCE_KEY: Final = "sk-or-v1-inference-demo"
CREATOR_USER_ID: Final = "user_2sImULaTeD0penR0uTer00000"
"""Who created the keys: a personal account, whose keys are all its own user's."""
PAGE_SIZE: Final = 100
WINDOW_DAYS: Final = 30
JSON = dict[str, Any]
FAULT_MESSAGES: Final = {
    "429": "Rate limit exceeded",
    "500": "Internal Server Error",
    "503": "Service Unavailable",
    "529": "Provider overloaded",
}
TRUNCATED: Final = b'{"data": [{"date": "2026-03-02", "model": "anthropic/claude-son'
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def check_headers(headers: Mapping[str, str], key: str) -> None:
    """401 without a known key, 403 for an inference key (management endpoints only)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "Missing Authentication header")
    if hmac.compare_digest(token.encode(), key.encode()):
        return
    if hmac.compare_digest(token.encode(), INFERENCE_KEY.encode()):
        raise ApiError(403, "Only management keys can perform this operation")
    raise ApiError(401, "User not found.")


def error_body(err: ApiError) -> JSON:
    """OpenRouter's error envelope."""
    return {
        "error": {"code": err.status, "message": err.message, "metadata": None},
        "user_id": None,
    }


def handle(path: str, query: Query, now: float, data: MoreData) -> JSON:
    """Answer one GET below ``/api/v1``, or raise :class:`ApiError`."""
    if path == "/credits":
        return {
            "data": {
                "total_credits": dollars(ROUTER_TOTAL_CREDITS),
                "total_usage": dollars(total_usage(data, now)),
            }
        }
    if path == "/keys":
        return _keys(query, now, data)
    if path == "/activity":
        return _activity(query, now, data)
    raise ApiError(404, f"Not Found (GET /api/v1{path})")


def month_start(now: float) -> int:
    """Start of the UTC month of ``now``."""
    dt = datetime.fromtimestamp(now, UTC)
    return int(datetime(dt.year, dt.month, 1, tzinfo=UTC).timestamp())


def total_usage(data: MoreData, now: float) -> int:
    """Micro-dollars ever spent: a fixed history plus this month so far."""
    month = month_start(now)
    return ROUTER_PRIOR_USAGE + sum(
        data.router_spend(k, month, now) for k in range(len(ROUTER_KEYS))
    )


def _keys(query: Query, now: float, data: MoreData) -> JSON:
    offset = query.integer("offset", 0)
    assert offset is not None
    if offset < 0:
        raise ApiError(400, "offset must be a non-negative integer")
    include_disabled = query.one("include_disabled") == "true"
    workspace = query.one("workspace_id") or DEFAULT_WORKSPACE
    today = int(now) // DAY * DAY
    week = today - (today // DAY + 3) % 7 * DAY  # Monday (1970-01-01 was a Thursday)
    month = month_start(now)
    items = []
    for index, key in enumerate(ROUTER_KEYS):
        if key.workspace_id != workspace or (key.disabled and not include_disabled):
            continue
        monthly = data.router_spend(index, month, now)
        items.append(
            {
                "hash": key.hash,
                "name": key.name,
                "label": key.label,
                "disabled": key.disabled,
                "limit": None,
                "limit_remaining": None,
                "limit_reset": None,
                "include_byok_in_limit": False,
                "usage": dollars(monthly + 1_000_000 * (index + 1)),
                "usage_daily": dollars(data.router_spend(index, today, now)),
                "usage_weekly": dollars(data.router_spend(index, week, now)),
                "usage_monthly": dollars(monthly),
                "byok_usage": 0,
                "byok_usage_daily": 0,
                "byok_usage_weekly": 0,
                "byok_usage_monthly": 0,
                "created_at": key.created_at,
                "updated_at": key.created_at,
                "creator_user_id": CREATOR_USER_ID,  # required (string or null) by the spec
                "expires_at": None,  # no key of the account expires
                "workspace_id": key.workspace_id,
            }
        )
    return {"data": items[offset : offset + PAGE_SIZE]}


def completed_days(now: float) -> range:
    """The last 30 completed UTC days."""
    today = int(now) // DAY * DAY
    return range(today - WINDOW_DAYS * DAY, today, DAY)


def _activity(query: Query, now: float, data: MoreData) -> JSON:
    days = completed_days(now)
    date = query.one("date")
    if date is not None:
        if not _DATE.fullmatch(date):
            raise ApiError(400, "Invalid date format. Use YYYY-MM-DD")
        day = int(datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
        if day not in days:
            raise ApiError(400, "Date must be within the last 30 (completed) UTC days")
        days = range(day, day + DAY, DAY)
    group_by = query.one("group_by")
    if group_by not in (None, "workspace"):
        raise ApiError(400, "group_by must be 'workspace'")
    key_hash = query.one("api_key_hash")
    return {"data": activity_rows(data, days, key_hash, by_workspace=group_by == "workspace")}


def activity_rows(
    data: MoreData, days: range, key_hash: str | None, *, by_workspace: bool
) -> list[JSON]:
    """Rows per (date, endpoint[, workspace]) summed over the (selected) keys."""
    rows: dict[tuple[int, int, str], list[int]] = {}
    for index, key in enumerate(ROUTER_KEYS):
        if key_hash is not None and key.hash != key_hash:
            continue
        workspace = key.workspace_id if by_workspace else ""
        for endpoint in key.endpoints:
            for day in days:
                values = data.router_day(index, endpoint, day)
                if not values[0]:
                    continue
                sums = rows.setdefault((day, endpoint, workspace), [0, 0, 0, 0, 0])
                for i, v in enumerate(values):
                    sums[i] += v
    out = []
    for (day, endpoint, workspace), (requests, prompt, completion, reasoning, cost) in sorted(
        rows.items()
    ):
        ep = ROUTER_ENDPOINTS[endpoint]
        row: JSON = {
            "date": datetime.fromtimestamp(day, UTC).strftime("%Y-%m-%d"),
            "model": ep.model,
            "model_permaslug": ep.permaslug,
            "endpoint_id": ep.endpoint_id,
            "provider_name": ep.provider_name,
            "usage": dollars(cost),
            "byok_usage_inference": 0,
            "requests": requests,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "reasoning_tokens": reasoning,
        }
        if by_workspace:
            row["workspace_id"] = workspace
        out.append(row)
    return out
