"""The report shapes both Anthropic APIs share: daily buckets of ``results``, and messages
token rows (the Admin API's usage report and the Enterprise Analytics API's usage report)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from exporter.core.records import Batch, Dims, Family, SeriesKey, TokenType, day_start
from exporter.sources.providers.base import ProviderError
from exporter.sources.providers.client import objects
from exporter.sources.providers.fields import count, label, parse_rfc3339, watermark

LONG_CONTEXT = "200k-1M"  # context_window value of the long-context price tier
CENTS = Decimal(100)
"""Cost amounts are in cents (fractional cents as decimal strings)."""


def buckets_by_day(
    buckets: list[dict[str, Any]], start: int, end: int, path: str
) -> tuple[list[tuple[int, list[dict[str, Any]]]], float | None]:
    """(day, results) for buckets inside ``[start, end)``, and the watermark."""
    where = f"GET {path}"
    days: list[tuple[int, list[dict[str, Any]]]] = []
    ends: list[int] = []
    for bucket in buckets:
        b_start = parse_rfc3339(bucket.get("starting_at"), where)
        ends.append(parse_rfc3339(bucket.get("ending_at"), where))
        results = objects(bucket, "results", where)
        day = day_start(b_start)
        if start <= day < end:
            days.append((day, results))
    return days, watermark(end, ends)


# Token fields of a messages row: (field, in cache_creation, token type).
TOKEN_FIELDS = (
    ("uncached_input_tokens", False, TokenType.INPUT),
    ("cache_read_input_tokens", False, TokenType.INPUT_CACHE_READ),
    ("ephemeral_5m_input_tokens", True, TokenType.INPUT_CACHE_WRITE),
    ("ephemeral_1h_input_tokens", True, TokenType.INPUT_CACHE_WRITE_1H),
    ("output_tokens", False, TokenType.OUTPUT),
)


@functools.lru_cache(maxsize=65_536)
def message_keys(dims: Dims, tier: str, speed: str, geo: str) -> tuple[SeriesKey, ...]:
    """The series of a messages row, in the order of :data:`TOKEN_FIELDS`, then its web
    searches. ``speed``/``geo`` are "" for standard speed and global inference (no label)."""
    extra: tuple[str, ...] = (tier, speed, geo) if geo else (tier, speed) if speed else (tier,)
    tokens = tuple(
        (Family.TOKENS, dims, (token_type, "text", *extra)) for *_, token_type in TOKEN_FIELDS
    )
    return (*tokens, (Family.TOOL_CALLS, dims, ("web_search",)))


def message_values(row: Mapping[str, Any], where: str) -> tuple[int, ...]:
    """A messages row's token counts in the order of :data:`TOKEN_FIELDS`, then its web
    searches (``server_tool_use``, absent in older rows)."""
    cache = row.get("cache_creation")
    if not isinstance(cache, dict):
        raise ProviderError("parse", f"{where}: 'cache_creation' is not an object")
    tools = row.get("server_tool_use")
    if tools is None:  # older rows have none
        tools = {}
    if not isinstance(tools, dict):
        raise ProviderError("parse", f"{where}: 'server_tool_use' is not an object")
    tokens = (count(cache if nested else row, field, where) for field, nested, _ in TOKEN_FIELDS)
    return (*tokens, count(tools, "web_search_requests", where, required=False))


def message_labels(row: Mapping[str, Any], where: str) -> tuple[str, str, str, bool]:
    """(service tier, speed, inference geo, long context) of a messages row; speed and geo are
    "" at standard speed and global inference, which carry no label."""
    tier = label(row, "service_tier", where) or "standard"
    long_context = label(row, "context_window", where) == LONG_CONTEXT
    speed = label(row, "speed", where) or ""
    geo = label(row, "inference_geo", where) or ""
    return tier, "" if speed == "standard" else speed, "" if geo == "global" else geo, long_context


def add_message_row(batch: Batch, day: int, dims: Dims, row: Mapping[str, Any], where: str) -> None:
    """Add one messages usage row on UTC ``day``.

    Tokens of a row at the long-context tier (``context_window`` 200k-1M) are
    marked so pricing uses that tier for them; fast mode (``speed``) and US-only inference
    (``inference_geo``) are labels of their own, priced at their rates.
    """
    tier, speed, geo, long_context = message_labels(row, where)
    keys = message_keys(dims, tier, speed, geo)
    batch.add_all(day, keys, message_values(row, where), long_context=long_context)
