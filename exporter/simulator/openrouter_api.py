"""Fake OpenRouter management API: ``/credits``, ``/keys``, ``/activity``, ``/workspaces``,
``/organization/members``.

Quirks reproduced: only a management key may call them (an inference key gets
403); ``/activity`` covers the last 30 *completed* UTC days (today never) and
rejects a ``date`` outside them, and filters by ``api_key_hash``, ``user_id`` and
``workspace_id``; ``/keys`` pages by ``offset`` (100 per page), hides disabled keys unless
``include_disabled=true`` and lists only the default workspace's keys unless
``workspace_id`` is given; the two lists page by ``offset``/``limit`` (at most 100) with a
``total_count``.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from .data import DAY, month_start
from .more_data import (
    DEFAULT_WORKSPACE,
    ROUTER_ENDPOINTS,
    ROUTER_KEYS,
    ROUTER_MEMBERS,
    ROUTER_PRIOR_USAGE,
    ROUTER_TOTAL_CREDITS,
    ROUTER_WORKSPACES,
    MoreData,
    dollars,
)
from .query import ApiError, Query

PROVIDER: Final = "openrouter"
PREFIX: Final = "/openrouter/api/v1"
INFERENCE_KEY: Final = "sk-or-v1-inference-demo"
CREATED_AT: Final = "2025-01-06T09:00:00Z"
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
    if path == "/workspaces":
        return _listing(query, [_workspace(id_, name) for id_, name in ROUTER_WORKSPACES])
    if path == "/organization/members":
        return _listing(query, [_member(*member) for member in ROUTER_MEMBERS])
    raise ApiError(404, f"Not Found (GET /api/v1{path})")


def _listing(query: Query, items: list[JSON]) -> JSON:
    offset = query.integer("offset", 0)
    limit = query.integer("limit", 50)
    assert offset is not None and limit is not None
    if offset < 0 or not 1 <= limit <= 100:
        raise ApiError(400, "offset must be >= 0 and limit between 1 and 100")
    return {"data": items[offset : offset + limit], "total_count": len(items)}


def _workspace(workspace_id: str, name: str) -> JSON:
    return {
        "id": workspace_id,
        "name": name,
        "slug": name.lower(),
        "description": None,
        "created_at": CREATED_AT,
        "updated_at": CREATED_AT,
        "created_by": ROUTER_MEMBERS[0][0],
        "default_guardrail_id": "595d5849-7e86-51fd-a7c0-705c34e4afff",  # a string, required
        "default_image_model": None,
        "default_provider_sort": None,
        "default_text_model": None,
        "include_byok_in_budgets": False,
        "io_logging_api_key_ids": None,
        "io_logging_sampling_rate": 1,
        "is_data_discount_logging_enabled": False,
        "is_observability_broadcast_enabled": False,
        "is_observability_io_logging_enabled": False,
    }


def _member(member_id: str, email: str, first: str, last: str, role: str) -> JSON:
    return {"id": member_id, "email": email, "first_name": first, "last_name": last, "role": role}


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
                "creator_user_id": key.member,  # required (string or null) by the spec
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
    rows = activity_rows(
        data,
        days,
        query.one("api_key_hash"),
        by_workspace=group_by == "workspace",
        user=query.one("user_id"),
        workspace=query.one("workspace_id"),
    )
    return {"data": rows}


def activity_rows(
    data: MoreData,
    days: range,
    key_hash: str | None,
    *,
    by_workspace: bool,
    user: str | None = None,
    workspace: str | None = None,
) -> list[JSON]:
    """Rows per (date, endpoint[, workspace]) summed over the (selected) keys."""
    rows: dict[tuple[int, int, str], list[int]] = {}
    for index, key in enumerate(ROUTER_KEYS):
        if key_hash is not None and key.hash != key_hash:
            continue
        if (user is not None and key.member != user) or (
            workspace is not None and key.workspace_id != workspace
        ):
            continue
        group = key.workspace_id if by_workspace else ""
        for endpoint in key.endpoints:
            for day in days:
                values = data.router_day(index, endpoint, day)
                if not values[0]:
                    continue
                sums = rows.setdefault((day, endpoint, group), [0, 0, 0, 0, 0])
                for i, v in enumerate(values):
                    sums[i] += v
    out = []
    for (day, endpoint, group), (requests, prompt, completion, reasoning, cost) in sorted(
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
            row["workspace_id"] = group
        out.append(row)
    return out
