"""Fake Anthropic Admin API: messages usage report, cost report, workspaces."""

from __future__ import annotations

import hmac
import math
import uuid
from collections.abc import Mapping
from typing import Any

from .buckets import USAGE_LIMITS, WIDTHS, page_of, parse_rfc3339, rfc3339, snap
from .catalog import ANTHROPIC, ANTHROPIC_STREAMS, ARCHIVED_AT, WORKSPACES, DimValue
from .data import SyntheticData
from .query import ApiError, Query
from .report import group_costs, group_streams

PROVIDER = ANTHROPIC
JSON = dict[str, Any]
VERSIONS = ("2023-06-01", "2023-01-01")
FAST_MODE_BETA = "fast-mode-2026-02-01"

_DIMS = (
    "api_key_id",
    "workspace_id",
    "account_id",
    "service_account_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
)
_FILTERS = {
    "api_key_ids": "api_key_id",
    "workspace_ids": "workspace_id",
    "account_ids": "account_id",
    "service_account_ids": "service_account_id",
    "models": "model",
}
_CHOICE_FILTERS = {
    "service_tiers": (
        "service_tier",
        ("standard", "batch", "priority", "priority_on_demand", "flex", "flex_discount"),
    ),
    "context_window": ("context_window", ("0-200k", "200k-1M")),
    "inference_geos": ("inference_geo", ("global", "us", "not_available")),
    "speeds": ("speed", ("standard", "fast")),
}
_COST_GROUPS = ("workspace_id", "description")
_DESCRIPTION_FIELDS = (
    "cost_type",
    "context_window",
    "model",
    "service_tier",
    "token_type",
    "inference_geo",
)
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    504: "gateway_timeout_error",
    529: "overloaded_error",
}


def check_headers(headers: Mapping[str, str], key: str) -> None:
    """401 for a wrong/missing ``x-api-key``, 400 for a missing ``anthropic-version``."""
    given = headers.get("x-api-key", "")
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise ApiError(401, "invalid x-api-key")
    version = headers.get("anthropic-version")
    if version is None:
        raise ApiError(400, "anthropic-version: header is required")
    if version not in VERSIONS:
        raise ApiError(400, f"anthropic-version: invalid version {version!r}")


def error_body(err: ApiError) -> JSON:
    """Anthropic's error envelope."""
    kind = err.kind or _ERROR_TYPES.get(err.status, "api_error")
    return {
        "type": "error",
        "error": {"type": kind, "message": err.message},
        "request_id": new_request_id(),
    }


def new_request_id() -> str:
    """A fresh ``req_…`` id (also sent as the ``request-id`` header)."""
    return "req_011" + uuid.uuid4().hex[:21]


def handle(
    path: str, query: Query, now: float, data: SyntheticData, headers: Mapping[str, str]
) -> JSON:
    """Answer one GET below the ``/anthropic`` prefix, or raise :class:`ApiError`."""
    if path == "/v1/organizations/usage_report/messages":
        return _usage(query, now, data, FAST_MODE_BETA in headers.get("anthropic-beta", ""))
    if path == "/v1/organizations/cost_report":
        return _costs(query, now, data)
    if path == "/v1/organizations/workspaces":
        return _workspaces(query, now)
    raise ApiError(404, f"Not found: GET {path}")


def message_values(sums: list[int]) -> JSON:
    """The token and tool fields of a messages row (both APIs' usage reports) from summed
    stream values: requests, uncached, cache read, 5m and 1h cache writes, output, searches."""
    _, uncached, cache_read, write_5m, write_1h, output, searches = sums
    return {
        "uncached_input_tokens": uncached,
        "cache_creation": {
            "ephemeral_1h_input_tokens": write_1h,
            "ephemeral_5m_input_tokens": write_5m,
        },
        "cache_read_input_tokens": cache_read,
        "output_tokens": output,
        "server_tool_use": {"web_search_requests": searches},
    }


def _bucket_starts(query: Query, width: int, now: float) -> range:
    start = parse_rfc3339(query.required("starting_at"), "starting_at")
    raw_end = query.one("ending_at")
    end = None if raw_end is None else parse_rfc3339(raw_end, "ending_at")
    if end is not None and end <= start:
        raise ApiError(400, "ending_at: must be after starting_at", "ending_at")
    first = snap(start, width)
    # Buckets not in the future whose end is at or before ending_at.
    stop = math.ceil(now) if end is None else min(math.ceil(now), end - width + 1)
    return range(first, max(first, stop), width)


def _width(query: Query, allowed: tuple[str, ...]) -> str:
    width_name = query.one("bucket_width") or "1d"
    if width_name not in allowed:
        raise ApiError(
            400,
            f"bucket_width: invalid value {width_name!r}; allowed: " + ", ".join(allowed),
            "bucket_width",
        )
    return width_name


def _usage(query: Query, now: float, data: SyntheticData, fast_mode: bool) -> JSON:
    width_name = _width(query, ("1m", "1h", "1d"))
    width = WIDTHS[width_name]
    limit = query.limit(*USAGE_LIMITS[width_name])
    groups = (*_DIMS, "speed") if fast_mode else _DIMS
    requested = set(query.choices("group_by", groups))
    group_by = [dim for dim in groups if dim in requested]
    filters: dict[str, set[DimValue]] = {}
    for param, dim in _FILTERS.items():
        if values := query.many(param):
            filters[dim] = set(values)
    for param, (dim, allowed) in _CHOICE_FILTERS.items():
        if dim == "speed" and query.many(param) and not fast_mode:
            raise ApiError(
                400, f"{param}: requires the anthropic-beta header {FAST_MODE_BETA}", param
            )
        if values := query.choices(param, allowed):
            filters[dim] = set(values)
    starts, next_page = page_of(_bucket_starts(query, width, now), query.one("page"), limit)
    buckets = []
    for start in starts:
        totals = data.totals(PROVIDER, start, min(start + width, now))
        results = []
        grouped = group_streams(ANTHROPIC_STREAMS, totals, "messages", filters, group_by)
        for key, sums in grouped:
            if not any(sums[1:]):
                continue
            dims: dict[str, DimValue] = dict.fromkeys(_DIMS)
            dims.update(zip(group_by, key, strict=True))
            results.append({**message_values(sums), **dims})  # values first, then dims
        buckets.append(
            {"starting_at": rfc3339(start), "ending_at": rfc3339(start + width), "results": results}
        )
    return {"data": buckets, "has_more": next_page is not None, "next_page": next_page}


def _costs(query: Query, now: float, data: SyntheticData) -> JSON:
    _width(query, ("1d",))
    width = WIDTHS["1d"]
    limit = query.limit(7, 31)
    requested = set(query.choices("group_by", _COST_GROUPS))
    group_by = [dim for dim in _COST_GROUPS if dim in requested]
    starts, next_page = page_of(_bucket_starts(query, width, now), query.one("page"), limit)
    by_description = "description" in group_by
    buckets = []
    for start in starts:
        results = []
        for key, amount, _, sample in group_costs(
            data.cost_lines(PROVIDER, start, now), {}, group_by
        ):
            grouped = dict(zip(group_by, key, strict=True))
            item: JSON = {
                "currency": "USD",
                "amount": f"{amount:.4f}",
                "workspace_id": grouped.get("workspace_id"),
                "description": grouped.get("description"),
            }
            for name in _DESCRIPTION_FIELDS:
                item[name] = sample.fields[name] if by_description else None
            results.append(item)
        buckets.append(
            {"starting_at": rfc3339(start), "ending_at": rfc3339(start + width), "results": results}
        )
    return {"data": buckets, "has_more": next_page is not None, "next_page": next_page}


def workspace_archived(archived: bool, now: float) -> bool:
    """Whether a workspace flagged archived is archived yet at simulated ``now``."""
    return archived and now >= ARCHIVED_AT


def _workspaces(query: Query, now: float) -> JSON:
    limit = query.limit(20, 1000)
    include_archived = bool(query.boolean("include_archived"))
    found = [w for w in WORKSPACES if include_archived or not workspace_archived(w.archived, now)]
    after = query.one("after_id")
    if after is not None:
        ids = [w.id for w in found]
        if after not in ids:
            raise ApiError(400, f"after_id: unknown workspace id {after!r}", "after_id")
        found = found[ids.index(after) + 1 :]
    page = found[:limit]
    data = []
    for workspace in page:
        archived = workspace_archived(workspace.archived, now)
        data.append(
            {
                "id": workspace.id,
                "type": "workspace",
                "name": workspace.name,
                "created_at": rfc3339(workspace.created_at),
                "archived_at": rfc3339(ARCHIVED_AT) if archived else None,
                "display_color": workspace.display_color,
            }
        )
    return {
        "data": data,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
        "has_more": len(found) > limit,
    }
