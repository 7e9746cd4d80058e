"""Anthropic Admin API: messages usage report, cost report, opt-in Claude Code report."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from exporter.core.gcpause import paused_gc
from exporter.core.records import (
    Batch,
    Dataset,
    Dims,
    Family,
    FetchResult,
    SeriesKey,
    TokenType,
    day_start,
)
from exporter.sources.providers.base import HOUR, DatasetReader, ProviderError
from exporter.sources.providers.claude_code import fetch_claude_code
from exporter.sources.providers.client import HttpProvider, objects
from exporter.sources.providers.fields import (
    DimsReader,
    add_money,
    check_usable,
    count,
    grouped_fields,
    label,
    money,
    parse_rfc3339,
    project_ids,
    query_end,
    quote,
    rfc3339,
    skip_row,
    watermark,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
USAGE_PATH = "/v1/organizations/usage_report/messages"
COST_PATH = "/v1/organizations/cost_report"
WORKSPACES_PATH = "/v1/organizations/workspaces"
DIM_FIELDS = {
    "project": "workspace_id",
    "model": "model",
    "api_key": "api_key_id",
    "user": "account_id",
}
LONG_CONTEXT = "200k-1M"  # context_window value of the long-context price tier
DEFAULT_WORKSPACE = "default"  # workspace_id is null for the default workspace
CENTS = Decimal(100)
FAST_MODE_HEADERS = {"anthropic-beta": "fast-mode-2026-02-01"}
_COST_FIELDS = ("cost_type", "token_type", "service_tier", "context_window", "inference_geo")
"""The cost report's fields beside the description, kept as labels (null where not apply)."""


def _buckets_by_day(
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
_TOKEN_FIELDS = (
    ("uncached_input_tokens", False, TokenType.INPUT),
    ("cache_read_input_tokens", False, TokenType.INPUT_CACHE_READ),
    ("ephemeral_5m_input_tokens", True, TokenType.INPUT_CACHE_WRITE),
    ("ephemeral_1h_input_tokens", True, TokenType.INPUT_CACHE_WRITE_1H),
    ("output_tokens", False, TokenType.OUTPUT),
)


@functools.lru_cache(maxsize=65_536)
def _message_keys(dims: Dims, tier: str, speed: str, geo: str) -> tuple[SeriesKey, ...]:
    """The series of a messages row, in the order of :data:`_TOKEN_FIELDS`, then its web
    searches. ``speed``/``geo`` are "" for standard speed and global inference (no label)."""
    extra: tuple[str, ...] = (tier, speed, geo) if geo else (tier, speed) if speed else (tier,)
    tokens = tuple(
        (Family.TOKENS, dims, (token_type, "text", *extra)) for *_, token_type in _TOKEN_FIELDS
    )
    return (*tokens, (Family.TOOL_CALLS, dims, ("web_search",)))


def _values(row: Mapping[str, Any], where: str) -> tuple[int, ...]:
    """A messages row's token counts in the order of :data:`_TOKEN_FIELDS`, then its web
    searches (``server_tool_use``, absent in older rows)."""
    cache = row.get("cache_creation")
    if not isinstance(cache, dict):
        raise ProviderError("parse", f"{where}: 'cache_creation' is not an object")
    tools = row.get("server_tool_use")
    if tools is None:  # older rows have none
        tools = {}
    if not isinstance(tools, dict):
        raise ProviderError("parse", f"{where}: 'server_tool_use' is not an object")
    tokens = (count(cache if nested else row, field, where) for field, nested, _ in _TOKEN_FIELDS)
    return (*tokens, count(tools, "web_search_requests", where, required=False))


def add_message_row(batch: Batch, day: int, dims: Dims, row: Mapping[str, Any], where: str) -> None:
    """Add one messages usage row on UTC ``day``.

    Tokens of a row at the long-context tier (``context_window`` 200k-1M) are
    marked so pricing uses that tier for them; fast mode (``speed``) and US-only inference
    (``inference_geo``) are labels of their own, priced at their rates.
    """
    tier = label(row, "service_tier", where) or "standard"
    long_context = label(row, "context_window", where) == LONG_CONTEXT
    speed = label(row, "speed", where) or ""
    geo = label(row, "inference_geo", where) or ""
    keys = _message_keys(
        dims, tier, "" if speed == "standard" else speed, "" if geo == "global" else geo
    )
    batch.add_all(day, keys, _values(row, where), long_context=long_context)


def _cost_row(
    row: Mapping[str, Any], read_dims: DimsReader, where: str
) -> tuple[SeriesKey, Decimal]:
    currency = row.get("currency")
    if not isinstance(currency, str) or currency.upper() != "USD":
        raise ProviderError("parse", f"{where}: unsupported currency {quote(currency)}")
    dollars = money(row.get("amount"), where) / CENTS  # amounts are in cents
    labels = [label(row, field, where) or "" for field in ("description", *_COST_FIELDS)]
    while len(labels) > 1 and not labels[-1]:  # trailing empty labels are left out
        labels.pop()
    return (Family.BILLED_COST, read_dims(row, where), tuple(labels)), dollars


class AnthropicProvider(HttpProvider):
    """Client for one Anthropic organization (Admin API key)."""

    name: ClassVar[str] = "anthropic"

    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    # The cost report has daily buckets only, the current day's may be missing: a day and a half.
    expected_lag: ClassVar[Mapping[Dataset, float]] = {Dataset.COST: 36 * HOUR}

    class Options(BaseModel):
        """``options:`` of an Anthropic account."""

        model_config = ConfigDict(frozen=True, extra="forbid")

        claude_code: bool = False
        """Also read the Claude Code Analytics report (one request per UTC day)."""

    options: Options

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """Admin API key and API version."""
        return {"x-api-key": key, "anthropic-version": API_VERSION}

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Token usage and billed cost for every UTC day in ``[start, end)``."""
        window: dict[str, str | int] = {
            "starting_at": rfc3339(start),
            "ending_at": rfc3339(query_end(start, end)),
            "bucket_width": "1d",
            "limit": 31,
        }
        reader = DatasetReader()
        await reader.read_one(Dataset.USAGE, lambda: self._usage(start, end, window))
        await reader.read_one(Dataset.COST, lambda: self._cost(start, end, window))
        if self.options.claude_code:  # separate families: see claude_code.py on double counting
            await reader.read_one(
                Dataset.CLAUDE_CODE,
                lambda: fetch_claude_code(self._api, start, end, self._group_by),
            )
        names: dict[str, str] = {}
        if "project" in self._group_by and not reader.stopped:
            seen = project_ids(reader.batches) - {DEFAULT_WORKSPACE}
            names = {DEFAULT_WORKSPACE: DEFAULT_WORKSPACE, **await self._names.resolve(seen)}
        return reader.result(names)

    async def _usage(self, start: int, end: int, window: Mapping[str, str | int]) -> Batch:
        # context_window: tokens of requests over 200k input are billed at the long-context
        # tier; pricing needs to know which (Batch.long_context).
        # speed (fast mode) and inference_geo (US-only inference) are priced above the standard
        # rates; grouping by speed needs the fast-mode beta header.
        group_by = (
            *grouped_fields(self._group_by, DIM_FIELDS),
            "service_tier",
            "context_window",
            "inference_geo",
            "speed",
        )
        buckets = await self._api.paginate_buckets(
            USAGE_PATH, {**window, "group_by": group_by}, headers=FAST_MODE_HEADERS
        )
        days, mark = _buckets_by_day(buckets, start, end, USAGE_PATH)
        batch = Batch(Dataset.USAGE, start, end, watermark=mark)
        where = f"GET {USAGE_PATH}"
        read_dims = DimsReader(self._group_by, DIM_FIELDS, null_project=DEFAULT_WORKSPACE)
        rows = 0
        with paused_gc():
            for day, results in days:
                rows += len(results)
                for row in results:
                    try:
                        add_message_row(batch, day, read_dims(row, where), row, where)
                    except ProviderError as err:
                        skip_row(batch, err)
        return check_usable(batch, rows)

    async def _cost(self, start: int, end: int, window: Mapping[str, str | int]) -> Batch:
        group_by: tuple[str, ...] = ("description",)
        if "project" in self._group_by:
            group_by = ("workspace_id", *group_by)
        buckets = await self._api.paginate_buckets(COST_PATH, {**window, "group_by": group_by})
        days, mark = _buckets_by_day(buckets, start, end, COST_PATH)
        where = f"GET {COST_PATH}"
        read_dims = DimsReader(
            [d for d in self._group_by if d in ("project", "model")],
            DIM_FIELDS,
            null_project=DEFAULT_WORKSPACE,
        )
        totals: dict[tuple[int, SeriesKey], Decimal] = {}
        batch = Batch(Dataset.COST, start, end, watermark=mark)
        rows = 0
        for day, results in days:
            rows += len(results)
            for row in results:
                try:
                    key, dollars = _cost_row(row, read_dims, where)
                except ProviderError as err:
                    skip_row(batch, err)
                    continue
                totals[day, key] = totals.get((day, key), Decimal(0)) + dollars
        add_money(batch, totals)
        return check_usable(batch, rows)

    async def load_names(self) -> dict[str, str]:
        """Workspace display names by id."""
        workspaces = await self._api.paginate_list(
            WORKSPACES_PATH, {"limit": 100, "include_archived": True}, cursor="after_id"
        )
        names = {DEFAULT_WORKSPACE: DEFAULT_WORKSPACE}
        for workspace in workspaces:
            workspace_id = label(workspace, "id", f"GET {WORKSPACES_PATH}")
            name = label(workspace, "name", f"GET {WORKSPACES_PATH}")
            if workspace_id and name:
                names[workspace_id] = name
        return names
