"""Fake Groq Prometheus metrics API (Enterprise): ``/api/v1/query_range`` and ``/query``.

Serves the documented recording rules (``…:rate5m``: per-second rates over the
5 minutes before each evaluation) for ``metric``, ``sum(metric)`` and
``sum by (labels) (metric)``. Quirks reproduced: values are strings, idle
steps have no sample, more than 11,000 points per series is refused (as
Prometheus does), and a key of a non-Enterprise organization gets 404.
"""

from __future__ import annotations

import hmac
import math
import re
from collections.abc import Mapping
from typing import Any, Final

from .buckets import parse_rfc3339
from .more_data import GROQ_STATUS_CODES, GROQ_STREAMS, SLOT, MoreData
from .query import ApiError, Query

PROVIDER: Final = "groq"
PREFIX: Final = "/groq"  # stands for https://api.groq.com/v1/metrics/prometheus
FREE_KEY: Final = "gsk_free_demo"  # a valid key of a non-Enterprise organization
MAX_POINTS: Final = 11_000
JSON = dict[str, Any]
FAULT_MESSAGES: Final = {
    "429": "Rate limit reached for metrics queries. Please try again later.",
    "500": "Internal Server Error",
    "503": "Service Unavailable",
    "529": "Service Unavailable",
}
TRUNCATED: Final = b'{"status": "success", "data": {"resultType": "matrix", "result": [{"met'

# metric name -> (index into the slot values, or None for requests by status)
METRICS: Final[dict[str, int | None]] = {
    "model_project_id:tokens_in:rate5m": 0,
    "model_project_id:prompt_cache_hits:rate5m": 1,
    "model_project_id:tokens_out:rate5m": 2,
    "model_project_id_status_code:requests:rate5m": None,
}
_QUERY = re.compile(
    r"\s*(?:sum\s*(?:by\s*\(\s*(?P<by>[\w\s,]*)\))?\s*\(\s*(?P<agg>[\w:]+)\s*\)|(?P<bare>[\w:]+))\s*"
)
_PROM_ERRORS = {400: "bad_data", 422: "execution", 503: "unavailable"}


def check_headers(headers: Mapping[str, str], key: str) -> None:
    """401 for an unknown key; 404 for a key whose organization is not on Enterprise."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), key.encode()):
        return
    if scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), FREE_KEY.encode()):
        raise ApiError(
            404,
            "Unknown request URL: GET /v1/metrics/prometheus/api/v1/query_range. Please check "
            "the URL for typos, or see the docs at https://console.groq.com/docs/",
            kind="unknown_url",
        )
    raise ApiError(401, "Invalid API Key", kind="invalid_api_key")


def error_body(err: ApiError) -> JSON:
    """Groq's API envelope for auth/routing errors, Prometheus' for query errors."""
    if err.kind == "prometheus":
        return {
            "status": "error",
            "errorType": _PROM_ERRORS.get(err.status, "internal"),
            "error": err.message,
        }
    return {"error": {"message": err.message, "type": "invalid_request_error", "code": err.kind}}


def _bad(message: str) -> ApiError:
    return ApiError(400, message, kind="prometheus")


def _time(query: Query, name: str, default: float | None = None) -> float:
    value = query.one(name)
    if value is None:
        if default is None:
            raise _bad(f'invalid parameter "{name}": missing')
        return default
    try:
        return float(value)
    except ValueError:
        return float(parse_rfc3339(value, name))


def _step(query: Query) -> float:
    raw = query.one("step")
    if raw is None:
        raise _bad('invalid parameter "step": missing')
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        step = float(raw[:-1]) * units[raw[-1]] if raw[-1] in units else float(raw)
    except ValueError:
        raise _bad(f'invalid parameter "step": cannot parse "{raw}"') from None
    if not step > 0:
        raise _bad("zero or negative query resolution step widths are not accepted")
    return step


def _parse(promql: str) -> tuple[str, list[str] | None]:
    """(metric, labels to keep): None keeps every label (a bare selector)."""
    match = _QUERY.fullmatch(promql)
    if match is None:
        raise _bad(f"1:1: parse error: unsupported query {promql!r} (simulator)")
    if match["bare"]:
        return match["bare"], None
    by = [label.strip() for label in (match["by"] or "").split(",") if label.strip()]
    return match["agg"], by


def _series_at(
    data: MoreData, metric: str, keep: list[str] | None, ts: float, now: float
) -> dict[tuple[tuple[str, str], ...], float]:
    """Per-second rates at ``ts`` of every output series (the last window ending by ``ts``)."""
    slot_end = math.floor(min(ts, now) / SLOT) * SLOT
    index = METRICS.get(metric, -1)
    out: dict[tuple[tuple[str, str], ...], float] = {}
    if index == -1 or slot_end <= 0:
        return out
    for stream, (project_id, model, *_) in enumerate(GROQ_STREAMS):
        values = data.groq_slot(stream, slot_end)
        if index is None:
            parts = [
                ({"status_code": code}, values[3 + i]) for i, code in enumerate(GROQ_STATUS_CODES)
            ]
        else:
            parts = [({}, values[index])]
        for extra, value in parts:
            if not value:
                continue
            labels = {"model": model, "project_id": project_id, **extra}
            if keep is None:
                labels = {"__name__": metric, **labels}
            else:
                labels = {k: v for k, v in labels.items() if k in keep}
            key = tuple(sorted(labels.items()))
            out[key] = out.get(key, 0.0) + value / SLOT
    return out


def handle(path: str, query: Query, now: float, data: MoreData) -> JSON:
    """Answer one GET below the Prometheus API root, or raise :class:`ApiError`."""
    promql = query.one("query")
    if path not in ("/api/v1/query_range", "/api/v1/query"):
        raise ApiError(
            404, f"Unknown request URL: GET /v1/metrics/prometheus{path}", kind="unknown_url"
        )
    if not promql:
        raise _bad('invalid parameter "query": missing')
    metric, keep = _parse(promql)
    if path == "/api/v1/query":
        ts = _time(query, "time", now)
        vector = [
            {"metric": dict(k), "value": [ts, repr(v)]}
            for k, v in _series_at(data, metric, keep, ts, now).items()
        ]
        return {"status": "success", "data": {"resultType": "vector", "result": vector}}
    start, end, step = _time(query, "start"), _time(query, "end"), _step(query)
    if end < start:
        raise _bad('invalid parameter "end": end timestamp must not be before start time')
    if (end - start) / step + 1 > MAX_POINTS:
        raise _bad(
            "exceeded maximum resolution of 11,000 points per timeseries. "
            "Try decreasing the query resolution (?step=XX)"
        )
    series: dict[tuple[tuple[str, str], ...], list[list[Any]]] = {}
    for i in range(int((end - start) // step) + 1):
        ts = start + i * step
        if ts > now:
            break
        for key, value in _series_at(data, metric, keep, ts, now).items():
            stamp: float | int = int(ts) if float(ts).is_integer() else ts
            series.setdefault(key, []).append([stamp, repr(value)])
    result = [{"metric": dict(k), "values": v} for k, v in sorted(series.items())]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}
