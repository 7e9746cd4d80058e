"""Fake Codex Analytics API of a ChatGPT workspace: ``GET …/codex/workspaces/{id}/usage``.

Per-user daily rows (or ``group=workspace`` rows), in time order, in OpenAI's page envelope
(``object``, ``data``, ``has_more``, ``next_page``), with ``totals`` and ``models`` as the
transcriptions of OpenAI's admin API reference have them. ``start_time`` (inclusive) and
``end_time`` (exclusive) are Unix seconds, at most 90 days back; ``limit`` is 1 to 30000.
Validation errors answer 422 with a ``detail`` list, as the reference documents.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from .chatgpt_data import UserDay, rows
from .data import DAY
from .query import ApiError, Query

PROVIDER: Final = "chatgpt"
PREFIX: Final = "/chatgpt"  # stands for https://api.chatgpt.com
WORKSPACE: Final = "ws-4f1d2c9a-demo"
JSON = dict[str, Any]
LOOKBACK: Final = 90 * DAY
MAX_LIMIT: Final = 30_000
FAULT_MESSAGES: Final = {
    "429": "Too many requests",
    "500": "Internal server error",
    "503": "Service unavailable",
    "529": "Service unavailable",
}
TRUNCATED: Final = b'{"object": "page", "data": [{"object": "codex.usage", "start_time": 17'


def check_headers(headers: Mapping[str, str], key: str) -> None:
    """401 unless ``Authorization: Bearer <key>``."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme != "Bearer" or not hmac.compare_digest(token.encode(), key.encode()):
        raise ApiError(401, "Invalid authorization")


def error_body(err: ApiError) -> JSON:
    """FastAPI-style errors: a ``detail`` list for validation, a string otherwise."""
    if err.status == 422:
        return {"detail": [{"loc": ["query", err.param or ""], "msg": err.message,
                            "type": "value_error"}]}
    return {"detail": err.message}


def _tokens(values: tuple[int, int, int]) -> JSON:
    uncached, cached, output = values
    return {"uncached_text_input_tokens": uncached, "cached_text_input_tokens": cached,
            "text_output_tokens": output, "text_total_tokens": uncached + cached + output}


def _row(day: int, rows_of_day: list[UserDay], per_user: bool) -> JSON:
    tokens = [sum(m.tokens[i] for r in rows_of_day for m in r.models) for i in range(3)]
    by_model: dict[str, list[Any]] = {}
    for r in rows_of_day:
        for m in r.models:
            acc = by_model.setdefault(m.model, [0, 0, 0, Decimal(0)])
            for i in range(3):
                acc[i] += m.tokens[i]
            acc[3] += m.credits
    credits = sum((r.credits for r in rows_of_day), Decimal(0))
    first = rows_of_day[0]
    return {
        "object": "codex.usage",
        "start_time": day,
        "end_time": day + DAY,
        "user_id": first.user_id if per_user else None,
        "actor": {"type": "user", "user_id": first.user_id, "email": first.email}
        if per_user else None,
        "totals": {"threads": 2 + len(by_model), "turns": 9 * (1 + len(by_model)),
                   "credits": float(credits), **_tokens((tokens[0], tokens[1], tokens[2]))},
        "clients": [{"client_id": "CODEX_CLI", "threads": 1, "turns": 5,
                     "credits": float(credits)}],
        "models": [
            {"model": model, "speed": "standard", "credits": float(acc[3]),
             **_tokens((acc[0], acc[1], acc[2]))}
            for model, acc in sorted(by_model.items())
        ],
    }


def handle(method: str, path: str, query: Query, body: bytes, now: float, seed: int) -> JSON:
    """Answer one request below the base URL, or raise :class:`ApiError`."""
    prefix = "/v1/analytics/codex/workspaces/"
    if method != "GET" or not path.startswith(prefix) or not path.endswith("/usage"):
        raise ApiError(404, "Not Found")
    if path[len(prefix):-len("/usage")] != WORKSPACE:
        raise ApiError(403, "The key has no access to this workspace")
    end = query.integer("end_time", int(now) // DAY * DAY + DAY)
    start = query.integer("start_time", (end or 0) - 30 * DAY)
    assert start is not None and end is not None
    if start < now - LOOKBACK - DAY:
        raise ApiError(422, "start_time: at most 90 days back", "start_time")
    if end < start:
        raise ApiError(422, "end_time: must not be before start_time", "end_time")
    limit = query.integer("limit", 1000)
    assert limit is not None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(422, f"limit: between 1 and {MAX_LIMIT}", "limit")
    group = query.one("group")
    if group not in (None, "workspace"):
        raise ApiError(422, "group: only 'workspace'", "group")
    page = query.one("page") or "p0"
    if not page.startswith("p") or not page[1:].isdigit():
        raise ApiError(422, "page: invalid", "page")
    found = rows(seed, start, end, now)
    listed: list[JSON] = []
    if group == "workspace":
        for day in sorted({r.day for r in found}):
            listed.append(_row(day, [r for r in found if r.day == day], False))
    else:
        listed = [_row(r.day, [r], True) for r in found]
    offset = int(page[1:])
    more = offset + limit < len(listed)
    return {"object": "page", "data": listed[offset : offset + limit], "has_more": more,
            "next_page": f"p{offset + limit}" if more else None}


def expected(seed: int, start: int, end: int, now: float, rate: float | None) -> dict[str, Any]:
    """What the exporter must publish for ``[start, end)`` by (model, user): ``credits``,
    ``tokens`` (also by token type) and, with ``rate`` dollars a credit, ``cost``. Credits no
    model is named for have model ""."""
    credits: dict[Any, float] = {}
    tokens: dict[Any, float] = {}
    types = ("input", "input_cache_read", "output")
    for r in rows(seed, start, end, now):
        for m in r.models:
            credits[m.model, r.email] = credits.get((m.model, r.email), 0) + float(m.credits)
            for token_type, n in zip(types, m.tokens, strict=True):
                key = (m.model, r.email, token_type)
                tokens[key] = tokens.get(key, 0) + n
        if r.unattributed:
            credits["", r.email] = credits.get(("", r.email), 0) + float(r.unattributed)
    cost = {k: v * rate for k, v in credits.items()} if rate else {}
    return {"credits": credits, "tokens": tokens, "cost": cost}
