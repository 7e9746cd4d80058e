"""Fake Claude Enterprise Analytics API: the usage, cost and per-user cost reports.

The simulated Anthropic organization doubles as a Claude Enterprise one: its default
workspace's Sonnet traffic is a seat user's chat, its Haiku traffic another seat user's Claude
Code, and everything else API-key traffic (no product, no user). Shapes follow the API
reference ("Get Token Usage", "Get Cost Over Time", "Get Per-User Cost") and
anthropic-sdk-python's ``BetaAnalytics*`` types.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from .anthropic_api import message_values
from .buckets import WIDTHS, decode_page, encode_page, page_of, parse_rfc3339, rfc3339, snap
from .catalog import ANTHROPIC, ANTHROPIC_STREAMS, HAIKU, SONNET, DimValue
from .costs import CostLine
from .data import DAY, SyntheticData
from .query import ApiError, Query

PREFIX: Final = "/v1/organizations/analytics/"
EARLIEST: Final = 1_767_225_600  # 2026-01-01T00:00:00Z
MAX_RANGE: Final = 31 * DAY
GROUP_CAP: Final = 100
REFRESH: Final = 4 * 3600
"""The reports are refreshed every 4 hours: ``data_refreshed_at`` and no data after it."""
ORGANIZATION_ID: Final = "org_01SimEnterprise7Hk2Lm9Pq4Rs"
CHAT_USER: Final = "user_01ChatSeat4Bn7Cq2Dr8Es5Ft"
CODE_USER: Final = "user_01CodeSeat9Gu3Hv6Jw1Kx4Ly"
USERS: Final = {
    CHAT_USER: ("ada@example.com", "Ada Lovelace"),
    CODE_USER: ("grace@example.com", "Grace Hopper"),
}
_LIMITS: Final = {"1d": (7, 31), "1h": (24, 168), "1m": (60, 256)}
_USAGE_GROUPS: Final = (
    "claude_tag_category",
    "claude_tag_user_id",
    "context_window",
    "inference_geo",
    "model",
    "product",
    "rbac_group_id",
    "slack_channel_id",
    "speed",
)
_COST_GROUPS: Final = (*_USAGE_GROUPS, "cost_type", "token_type")
JSON = dict[str, Any]


def attribution(fields: Mapping[str, DimValue]) -> tuple[str | None, str | None]:
    """(product, seat user) of a stream's or cost line's usage; (None, None) for API keys."""
    if fields.get("workspace_id") is None and fields.get("model") == SONNET:
        return "chat", CHAT_USER
    if fields.get("workspace_id") is None and fields.get("model") == HAIKU:
        return "claude_code", CODE_USER
    return None, None


def refreshed_at(now: float) -> int:
    """The moment of the export the reports are served from."""
    return int(now) - int(now) % REFRESH


def handle(path: str, query: Query, now: float, data: SyntheticData) -> JSON:
    """Answer one GET of the Analytics API, or raise :class:`ApiError`."""
    if path == PREFIX + "usage_report":
        return _usage(query, now, data)
    if path == PREFIX + "cost_report":
        return _cost(query, now, data)
    if path == PREFIX + "user_cost_report":
        return _user_cost(query, now, data)
    raise ApiError(404, f"Not found: GET {path}")


def _range(query: Query, now: float, *, end_required: bool = False) -> tuple[int, int]:
    start = parse_rfc3339(query.required("starting_at"), "starting_at")
    if start < EARLIEST or start < now - 365 * DAY:
        raise ApiError(
            400,
            "starting_at: must be within the last 365 days and no earlier than 2026-01-01",
            "starting_at",
        )
    raw_end = query.required("ending_at") if end_required else query.one("ending_at")
    end = (
        min(math.ceil(now), start + MAX_RANGE)
        if raw_end is None
        else parse_rfc3339(raw_end, "ending_at")
    )
    if end <= start:
        raise ApiError(400, "ending_at: must be after starting_at", "ending_at")
    if end - start > MAX_RANGE:
        raise ApiError(400, "ending_at: the range may span at most 31 days", "ending_at")
    return start, end


def _width(query: Query) -> str:
    name = query.one("bucket_width") or "1d"
    if name not in WIDTHS:
        raise ApiError(400, f"bucket_width: invalid value {name!r}; allowed: 1d, 1h, 1m")
    return name


def _bucket_starts(start: int, end: int, width: int, now: float) -> range:
    first = snap(start, width)
    return range(first, max(first, min(math.ceil(now), end)), width)


def _groups(query: Query, allowed: tuple[str, ...]) -> list[str]:
    requested = set(query.choices("group_by", allowed))
    return [name for name in allowed if name in requested]


def _envelope(buckets: list[JSON], next_page: str | None, now: float, start: int) -> JSON:
    refreshed = refreshed_at(now)
    return {
        "data": buckets,
        # Null when no export covers any part of the range yet.
        "data_refreshed_at": rfc3339(refreshed) if refreshed > start else None,
        "has_more": next_page is not None,
        "next_page": next_page,
        "organization_id": ORGANIZATION_ID,
    }


def _usage(query: Query, now: float, data: SyntheticData) -> JSON:
    start, end = _range(query, now)
    width_name = _width(query)
    width = WIDTHS[width_name]
    group_by = _groups(query, _USAGE_GROUPS)
    starts, next_page = page_of(
        _bucket_starts(start, end, width, now), query.one("page"), query.limit(*_LIMITS[width_name])
    )
    served_until = refreshed_at(now)
    buckets = []
    for first in starts:
        stop = min(first + width, served_until)
        totals = (
            data.totals(ANTHROPIC, first, stop) if stop > first else [None] * len(ANTHROPIC_STREAMS)
        )
        groups: dict[tuple[DimValue, ...], list[int]] = {}
        for stream, values in zip(ANTHROPIC_STREAMS, totals, strict=True):
            if values is None:
                continue
            product, _ = attribution(stream.dims)
            fields = {**stream.dims, "product": product}
            key = tuple(fields.get(name) for name in group_by)
            sums = groups.setdefault(key, [0] * len(values))
            for i, value in enumerate(values):
                sums[i] += value
        ranked = sorted(groups.items(), key=lambda item: -sum(item[1][1:6]))[:GROUP_CAP]
        results = []
        for key, sums in ranked:
            row: JSON = {
                **message_values(sums),
                "requests": sums[0],
                **dict.fromkeys(_USAGE_GROUPS),
            }
            row.update(zip(group_by, key, strict=True))
            results.append(row)
        buckets.append(
            {"starting_at": rfc3339(first), "ending_at": rfc3339(first + width), "results": results}
        )
    return _envelope(buckets, next_page, now, start)


def _day_lines(data: SyntheticData, first: int, now: float) -> tuple[CostLine, ...]:
    served_until = refreshed_at(now)
    return data.cost_lines(ANTHROPIC, first, served_until) if served_until > first else ()


def _cost_fields(line: CostLine) -> dict[str, DimValue]:
    product, _ = attribution(line.fields)
    fields = dict.fromkeys(_COST_GROUPS)
    fields.update({k: v for k, v in line.fields.items() if k in _COST_GROUPS})
    fields["product"] = product
    return fields


def _amounts(amount: Decimal) -> JSON:
    # The list price is the amount before discounts: the simulated organization has none.
    return {"amount": f"{amount:.4f}", "list_amount": f"{amount:.4f}", "currency": "USD"}


def _cost(query: Query, now: float, data: SyntheticData) -> JSON:
    start, end = _range(query, now)
    if _width(query) != "1d":
        raise ApiError(400, "bucket_width: only 1d is simulated", "bucket_width")
    group_by = _groups(query, _COST_GROUPS)
    starts, next_page = page_of(
        _bucket_starts(start, end, DAY, now), query.one("page"), query.limit(*_LIMITS["1d"])
    )
    buckets = []
    for first in starts:
        groups: dict[tuple[DimValue, ...], Decimal] = {}
        for line in _day_lines(data, first, now):
            fields = _cost_fields(line)
            key = tuple(fields[name] for name in group_by)
            groups[key] = groups.get(key, Decimal(0)) + line.amount
        ranked = sorted(groups.items(), key=lambda item: -item[1])[:GROUP_CAP]
        results = []
        per_component = "cost_type" in group_by or "token_type" in group_by
        for key, amount in ranked:
            row: JSON = {**_amounts(amount), **dict.fromkeys(_COST_GROUPS)}
            row["requests"] = None if per_component else 0  # the simulator counts no requests
            row.update(zip(group_by, key, strict=True))
            results.append(row)
        buckets.append(
            {"starting_at": rfc3339(first), "ending_at": rfc3339(first + DAY), "results": results}
        )
    return _envelope(buckets, next_page, now, start)


def _user_cost(query: Query, now: float, data: SyntheticData) -> JSON:
    bucketed = query.one("bucket_width") is not None
    start, end = _range(query, now, end_required=bucketed)
    if bucketed and _width(query) != "1d":
        raise ApiError(400, "bucket_width: only 1d is simulated", "bucket_width")
    group_by = _groups(query, _COST_GROUPS)
    limit = query.limit(20, 1000)
    groups: dict[tuple[Any, ...], Decimal] = {}
    for first in _bucket_starts(start, end, DAY, now):
        for line in _day_lines(data, first, now):
            _, user = attribution(line.fields)
            if user is None:
                continue  # API-key traffic is no seat user's
            fields = _cost_fields(line)
            key = (first if bucketed else None, user, *(fields[name] for name in group_by))
            groups[key] = groups.get(key, Decimal(0)) + line.amount
    rows = []
    for (first, user, *values), amount in sorted(groups.items(), key=lambda item: -item[1]):
        email, name = USERS[user]
        row: JSON = {
            "actor": {
                "type": "user_actor",
                "user_id": user,
                "email_address": email,
                "name": name,
                "deleted": False,
            },
            **_amounts(amount),
            **dict.fromkeys(_COST_GROUPS),
            "requests": 0,
            "starting_at": None if first is None else rfc3339(first),
            "ending_at": None if first is None else rfc3339(first + DAY),
        }
        row.update(zip(group_by, values, strict=True))
        rows.append(row)
    offset = decode_page(query.one("page") or encode_page(0))
    page = rows[offset : offset + limit]
    more = offset + limit < len(rows)
    return {
        "data": page,
        "has_more": more,
        "next_page": encode_page(offset + limit) if more else None,
    }


def expected(
    data: SyntheticData, start: int, end: int, now: float
) -> dict[str, dict[tuple[str, ...], float]]:
    """Ground truth over ``[start, end)`` as served at ``now`` (nothing after the last refresh):
    ``tokens`` by (model, token_type, speed, inference_geo), "" for standard speed and global
    inference; ``web_searches`` by (model,); ``cost`` by (product, model, cost_type);
    ``user_cost`` by (user, product, model, cost_type); "" where null (API-key traffic has no
    product and no user)."""
    served_until = min(refreshed_at(now), end)
    tokens: dict[tuple[str, ...], float] = {}
    searches: dict[tuple[str, ...], float] = {}
    names = ("input", "input_cache_read", "input_cache_write", "input_cache_write_1h", "output")
    if served_until > start:
        totals = data.totals(ANTHROPIC, start, served_until)
        for stream, values in zip(ANTHROPIC_STREAMS, totals, strict=True):
            if values is None:
                continue
            dims = stream.dims
            speed = "" if dims["speed"] in (None, "standard") else str(dims["speed"])
            geo = "" if dims["inference_geo"] in (None, "global") else str(dims["inference_geo"])
            for name, value in zip(names, values[1:6], strict=True):
                if value:
                    key = (str(dims["model"]), name, speed, geo)
                    tokens[key] = tokens.get(key, 0) + value
            if values[6]:
                by_model = (str(dims["model"]),)
                searches[by_model] = searches.get(by_model, 0) + values[6]
    cost: dict[tuple[str, ...], Decimal] = {}
    user_cost: dict[tuple[str, ...], Decimal] = {}
    for first in range(start - start % DAY, min(end, math.ceil(now)), DAY):
        for line in _day_lines(data, first, now):
            product, user = attribution(line.fields)
            model = str(line.fields.get("model") or "")
            cost_key = (product or "", model, str(line.fields.get("cost_type") or ""))
            cost[cost_key] = cost.get(cost_key, Decimal(0)) + line.amount
            if user is not None:
                user_key = (user, *cost_key)
                user_cost[user_key] = user_cost.get(user_key, Decimal(0)) + line.amount
    return {
        "tokens": tokens,
        "web_searches": searches,
        "cost": {k: float(v / 100) for k, v in cost.items()},
        "user_cost": {k: float(v / 100) for k, v in user_cost.items()},
    }
