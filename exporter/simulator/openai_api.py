"""Fake OpenAI admin API: ``/organization/usage/*``, ``/organization/costs``, projects and
their spend limits."""

from __future__ import annotations

import hmac
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .buckets import USAGE_LIMITS, WIDTHS, page_of, snap
from .catalog import (
    ARCHIVED_AT,
    OPENAI,
    OPENAI_STREAMS,
    PROJECTS,
    SPEND_LIMITS_CENTS,
    VECTOR_STORES,
    DimValue,
    vector_store_bytes,
)
from .data import DAY, SyntheticData, month_start
from .query import ApiError, Query
from .report import group_costs, group_streams

PROVIDER = OPENAI
JSON = dict[str, Any]

_COMMON_GROUPS = ("project_id", "user_id", "api_key_id", "model")
_COMMON_FILTERS = {
    "project_ids": "project_id",
    "user_ids": "user_id",
    "api_key_ids": "api_key_id",
    "models": "model",
}
_IMAGE_SOURCES = ("image.generation", "image.edit", "image.variation")
_IMAGE_SIZES = ("256x256", "512x512", "1024x1024", "1792x1792", "1024x1792")


@dataclass(frozen=True, slots=True)
class _Endpoint:
    kind: str
    groups: tuple[str, ...]
    choice_filters: Mapping[str, tuple[str, tuple[str, ...]]]  # param -> (dim, allowed values)
    result: str = ""  # the results' ``object`` name, if not derived from ``kind``

    @property
    def object(self) -> str:
        return f"organization.usage.{self.result or self.kind}.result"


_USAGE = {
    "/organization/usage/completions": _Endpoint(
        "completions", (*_COMMON_GROUPS, "batch", "service_tier"), {}
    ),
    "/organization/usage/embeddings": _Endpoint("embeddings", _COMMON_GROUPS, {}),
    "/organization/usage/moderations": _Endpoint("moderations", _COMMON_GROUPS, {}),
    "/organization/usage/images": _Endpoint(
        "images",
        (*_COMMON_GROUPS, "size", "source"),
        {"sources": ("source", _IMAGE_SOURCES), "sizes": ("size", _IMAGE_SIZES)},
    ),
    "/organization/usage/audio_speeches": _Endpoint("audio_speeches", _COMMON_GROUPS, {}),
    "/organization/usage/audio_transcriptions": _Endpoint(
        "audio_transcriptions", _COMMON_GROUPS, {}
    ),
    "/organization/usage/vector_stores": _Endpoint("vector_stores", ("project_id",), {}),
    "/organization/usage/code_interpreter_sessions": _Endpoint(
        "code_interpreter_sessions", ("project_id",), {}
    ),
    "/organization/usage/file_search_calls": _Endpoint(
        "file_search_calls",
        ("project_id", "user_id", "api_key_id", "vector_store_id"),
        {},
        result="file_searches",
    ),
    "/organization/usage/web_search_calls": _Endpoint(
        "web_search_calls",
        ("project_id", "user_id", "api_key_id", "model", "context_level"),
        {},
        result="web_searches",
    ),
}
_COST_GROUPS = ("project_id", "line_item", "api_key_id")


def check_headers(headers: Mapping[str, str], key: str) -> None:
    """401 unless ``Authorization: Bearer <key>``."""
    given = headers.get("authorization", "")
    scheme, _, token = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), key.encode()):
        # Real OpenAI echoes a redacted key; the simulator never echoes it.
        raise ApiError(401, "Incorrect API key provided.", kind="invalid_request_error")


def error_body(err: ApiError) -> JSON:
    """OpenAI's ``ErrorResponse`` envelope."""
    kind = err.kind or {
        400: "invalid_request_error",
        401: "invalid_request_error",
        404: "invalid_request_error",
        429: "requests",
    }.get(err.status, "server_error")
    code = {401: "invalid_api_key", 429: "rate_limit_exceeded"}.get(err.status)
    return {"error": {"message": err.message, "type": kind, "param": err.param, "code": code}}


def handle(path: str, query: Query, now: float, data: SyntheticData) -> JSON:
    """Answer one GET below the ``/v1`` prefix, or raise :class:`ApiError`."""
    endpoint = _USAGE.get(path)
    if endpoint is not None:
        return _usage(endpoint, query, now, data)
    if path == "/organization/costs":
        return _costs(query, now, data)
    if path == "/organization/projects":
        return _projects(query, now)
    if path == "/organization/spend_limit":
        return _spend_limit(None, now, data)
    parts = path.split("/")
    if len(parts) == 5 and parts[:3] == ["", "organization", "projects"] and (
        parts[4] == "spend_limit"
    ):
        return _spend_limit(parts[3], now, data)
    raise ApiError(404, f"Invalid URL (GET /v1{path})")


def _bucket_starts(query: Query, width: int, now: float) -> range:
    start = query.integer("start_time")
    if start is None:
        raise ApiError(400, "start_time: required parameter is missing", "start_time")
    end = query.integer("end_time")
    if end is not None and end <= start:
        raise ApiError(400, "end_time: must be greater than start_time", "end_time")
    # Buckets that start at or after the snapped start, before end_time and not in the future.
    stop = now if end is None else min(end, now)
    return range(snap(start, width), max(snap(start, width), math.ceil(stop)), width)


def _filters(query: Query, endpoint: _Endpoint) -> dict[str, set[DimValue]]:
    filters: dict[str, set[DimValue]] = {}
    for param, dim in _COMMON_FILTERS.items():
        if values := query.many(param):
            filters[dim] = set(values)
    for param, (dim, allowed) in endpoint.choice_filters.items():
        if values := query.choices(param, allowed):
            filters[dim] = set(values)
    if endpoint.kind == "completions":
        batch = query.boolean("batch")
        if batch is not None:
            filters["batch"] = {batch}
    return filters


def _usage(endpoint: _Endpoint, query: Query, now: float, data: SyntheticData) -> JSON:
    width_name = query.one("bucket_width") or "1d"
    if width_name not in WIDTHS:
        raise ApiError(
            400, f"bucket_width: invalid value {width_name!r}; allowed: 1m, 1h, 1d", "bucket_width"
        )
    width = WIDTHS[width_name]
    limit = query.limit(*USAGE_LIMITS[width_name])
    requested = set(query.choices("group_by", endpoint.groups))
    group_by = [dim for dim in endpoint.groups if dim in requested]
    filters = _filters(query, endpoint)
    starts, next_page = page_of(_bucket_starts(query, width, now), query.one("page"), limit)
    buckets = []
    for start in starts:
        if endpoint.kind == "vector_stores":
            grouped = _vector_stores(start, group_by, filters)
        else:
            totals = data.totals(PROVIDER, start, min(start + width, now))
            grouped = group_streams(OPENAI_STREAMS, totals, endpoint.kind, filters, group_by)
        results = []
        for key, values in grouped:
            dims: dict[str, DimValue] = dict.fromkeys(endpoint.groups)
            dims.update(zip(group_by, key, strict=True))
            results.append(
                {"object": endpoint.object, **_value_fields(endpoint.kind, values), **dims}
            )
        buckets.append(
            {"object": "bucket", "start_time": start, "end_time": start + width, "results": results}
        )
    return {
        "object": "page",
        "data": buckets,
        "has_more": next_page is not None,
        "next_page": next_page,
    }


def _vector_stores(
    start: int, group_by: list[str], filters: Mapping[str, set[DimValue]]
) -> list[tuple[tuple[DimValue, ...], list[int]]]:
    """Bytes stored on the bucket's day, per project or in total."""
    day = start - start % DAY
    acc: dict[tuple[DimValue, ...], int] = {}
    for project in VECTOR_STORES:
        if "project_id" in filters and project not in filters["project_id"]:
            continue
        key = (project,) if group_by else ()
        acc[key] = acc.get(key, 0) + vector_store_bytes(project, day)
    return [(key, [value]) for key, value in sorted(acc.items(), key=lambda kv: str(kv[0]))]


def _value_fields(kind: str, values: list[int]) -> dict[str, int]:
    requests = values[0]
    if kind == "vector_stores":
        return {"usage_bytes": requests}
    if kind == "code_interpreter_sessions":
        return {"num_sessions": values[1]}
    if kind == "file_search_calls":
        return {"num_requests": values[1]}
    if kind == "web_search_calls":
        return {"num_model_requests": requests, "num_requests": values[1]}
    if kind != "completions":
        name = {
            "embeddings": "input_tokens",
            "moderations": "input_tokens",
            "images": "images",
            "audio_speeches": "characters",
            "audio_transcriptions": "seconds",
        }[kind]
        return {name: values[1], "num_model_requests": requests}
    _, ut, ua, ui, ct, ca, ci, cw, ot, oa, oi = values
    uncached, cached, output = ut + ua + ui, ct + ca + ci, ot + oa + oi
    return {
        "input_tokens": uncached + cached + cw,
        "output_tokens": output,
        "input_cached_tokens": cached,
        "input_cache_write_tokens": cw,
        "input_uncached_tokens": uncached,
        "input_text_tokens": ut,
        "output_text_tokens": ot,
        "input_cached_text_tokens": ct,
        "input_audio_tokens": ua,
        "input_cached_audio_tokens": ca,
        "output_audio_tokens": oa,
        "input_image_tokens": ui,
        "input_cached_image_tokens": ci,
        "output_image_tokens": oi,
        "num_model_requests": requests,
    }


def _costs(query: Query, now: float, data: SyntheticData) -> JSON:
    width_name = query.one("bucket_width") or "1d"
    if width_name != "1d":
        raise ApiError(
            400,
            f"bucket_width: invalid value {width_name!r}; costs support only 1d",
            "bucket_width",
        )
    limit = query.limit(7, 180)
    requested = set(query.choices("group_by", _COST_GROUPS))
    group_by = [dim for dim in _COST_GROUPS if dim in requested]
    filters: dict[str, set[DimValue]] = {}
    for param, dim in (("project_ids", "project_id"), ("api_key_ids", "api_key_id")):
        if values := query.many(param):
            filters[dim] = set(values)
    width = WIDTHS["1d"]
    starts, next_page = page_of(_bucket_starts(query, width, now), query.one("page"), limit)
    with_quantity = "line_item" in group_by
    buckets = []
    for start in starts:
        lines = data.cost_lines(PROVIDER, start, now)
        results = []
        for index, (key, amount, quantity, sample) in enumerate(
            group_costs(lines, filters, group_by)
        ):
            dims: dict[str, DimValue] = dict.fromkeys(_COST_GROUPS)
            dims.update(zip(group_by, key, strict=True))
            # Live responses were observed with the amount as a string: serve every third so.
            value: float | str = str(amount) if index % 3 == 2 else float(amount)
            results.append(
                {
                    "object": "organization.costs.result",
                    "amount": {"value": value, "currency": "usd"},
                    **dims,
                    "quantity": quantity if with_quantity else None,
                    "quantity_unit": sample.unit if with_quantity else None,
                }
            )
        buckets.append(
            {"object": "bucket", "start_time": start, "end_time": start + width, "results": results}
        )
    return {
        "object": "page",
        "data": buckets,
        "has_more": next_page is not None,
        "next_page": next_page,
    }


def _spend_limit(project_id: str | None, now: float, data: SyntheticData) -> JSON:
    """``OrganizationSpendLimitResource`` / ``ProjectSpendLimitResource``; 404 without a limit."""
    if project_id is not None and project_id not in {p.id for p in PROJECTS}:
        raise ApiError(404, f"No such project: {project_id}")
    cents = SPEND_LIMITS_CENTS.get(project_id)
    if cents is None:
        scope = "organization" if project_id is None else f"project {project_id}"
        raise ApiError(404, f"No spend limit is set for the {scope}.")
    month = month_start(now)
    spent = sum(
        line.amount
        for day in range(month, int(now), DAY)
        for line in data.cost_lines(PROVIDER, day, now)
        if project_id is None or line.fields.get("project_id") == project_id
    )
    return {
        "object": "organization.spend_limit" if project_id is None else "project.spend_limit",
        "threshold_amount": cents,
        "currency": "USD",
        "interval": "month",
        "enforcement": {"status": "enforcing" if spent * 100 >= cents else "inactive"},
    }


def project_archived(archived: bool, now: float) -> bool:
    """Whether a project flagged archived is archived yet at simulated ``now``."""
    return archived and now >= ARCHIVED_AT


def _projects(query: Query, now: float) -> JSON:
    limit = query.limit(20, 100)
    include_archived = bool(query.boolean("include_archived"))
    projects = [p for p in PROJECTS if include_archived or not project_archived(p.archived, now)]
    after = query.one("after")
    if after is not None:
        ids = [p.id for p in projects]
        if after not in ids:
            raise ApiError(400, f"after: unknown project id {after!r}", "after")
        projects = projects[ids.index(after) + 1 :]
    page = projects[:limit]
    data = []
    for project in page:
        archived = project_archived(project.archived, now)
        data.append(
            {
                "id": project.id,
                "object": "organization.project",
                "name": project.name,
                "created_at": project.created_at,
                "archived_at": ARCHIVED_AT if archived else None,
                "status": "archived" if archived else "active",
            }
        )
    return {
        "object": "list",
        "data": data,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
        "has_more": len(projects) > limit,
    }
