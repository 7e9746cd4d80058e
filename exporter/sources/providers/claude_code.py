"""Anthropic Claude Code Analytics: ``/v1/organizations/usage_report/claude_code``.

Opt-in per Anthropic account (``options: {claude_code: true}``). The report answers one
UTC day per request, one record per actor, so a window of N days costs N request
series (a first poll, the month and the 7 days before it, up to 38); steady-state polls re-read
only the settle window.

Double counting: for ``customer_type == "api"`` Claude Code calls the Claude API with the
organization's keys, so its tokens are already in the messages usage report that
``anthropic.py`` exports as ``aicost_tokens_total`` (and its cost in the cost report).
Everything read here therefore goes to separate ``claude_code_*`` families, never to
``Family.TOKENS`` or ``Family.BILLED_COST``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from exporter.core.records import (
    DAY,
    Batch,
    Dataset,
    Dims,
    Family,
    SeriesKey,
    TokenType,
    day_start,
)
from exporter.sources.providers.base import ProviderError
from exporter.sources.providers.client import ApiClient, objects
from exporter.sources.providers.fields import (
    add_money,
    check_usable,
    count,
    label,
    money,
    parse_rfc3339,
    query_end,
    quote,
    skip_row,
)

CLAUDE_CODE_PATH = "/v1/organizations/usage_report/claude_code"
PAGE_LIMIT = 1000  # the documented maximum records per page
DATA_LAG = 3600  # the report only returns data older than about one hour
CENTS = Decimal(100)
WHERE = f"GET {CLAUDE_CODE_PATH}"

_TOKENS = (
    ("input", TokenType.INPUT),
    ("cache_read", TokenType.INPUT_CACHE_READ),
    ("cache_creation", TokenType.INPUT_CACHE_WRITE),
    ("output", TokenType.OUTPUT),
)
_TOOLS = (
    ("edit_tool", "edit"),
    ("multi_edit_tool", "multi_edit"),
    ("write_tool", "write"),
    ("notebook_edit_tool", "notebook_edit"),
)
_CORE = (
    ("num_sessions", Family.CLAUDE_CODE_SESSIONS),
    ("commits_by_claude_code", Family.CLAUDE_CODE_COMMITS),
    ("pull_requests_by_claude_code", Family.CLAUDE_CODE_PULL_REQUESTS),
)


def report_days(start: int, end: int) -> range:
    """UTC day starts to ask for: every day of ``[start, end)``, today included."""
    first = day_start(start)
    return range(first, query_end(first, end), DAY)


def _date(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d")


def _record_day(value: Any) -> int:
    """The UTC day of a record's ``date`` (RFC 3339; a bare ``YYYY-MM-DD`` is accepted too)."""
    if isinstance(value, str) and len(value) == 10:
        value += "T00:00:00Z"
    return day_start(parse_rfc3339(value, WHERE))


def _object(row: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = row.get(key)
    if not isinstance(value, dict):
        raise ProviderError("parse", f"{where}: {key!r} is not an object")
    return value


def _actor(record: Mapping[str, Any]) -> str:
    """The user label: the actor's email address, or the API key's name."""
    actor = _object(record, "actor", WHERE)
    kind = actor.get("type")
    field = {"user_actor": "email_address", "api_actor": "api_key_name"}.get(str(kind))
    if field is None:
        raise ProviderError("parse", f"{WHERE}: unknown actor type {quote(kind)}")
    name = label(actor, field, WHERE)
    if not name:
        raise ProviderError("parse", f"{WHERE}: actor {field!r} missing")
    return name


class ClaudeCodeReader:
    """Adds Claude Code report records of one day to a batch."""

    def __init__(self, batch: Batch, group_by: Iterable[str]) -> None:
        wanted = set(group_by)
        self._batch = batch
        self._by_user = "user" in wanted
        self._by_model = "model" in wanted
        self._cost: dict[tuple[int, SeriesKey], Decimal] = {}

    def add(self, day: int, record: Mapping[str, Any]) -> None:
        """One actor's day: read in full, then added (a malformed record adds nothing)."""
        if _record_day(record.get("date")) != day:
            raise ProviderError("parse", f"{WHERE}: record dated {quote(record.get('date'))}")
        user = _actor(record) if self._by_user else ""
        customer = label(record, "customer_type", WHERE) or ""
        actor_dims = Dims(user_id=user)
        values: list[tuple[SeriesKey, int]] = []
        core = _object(record, "core_metrics", WHERE)
        for field, family in _CORE:
            values.append(((family, actor_dims, ()), count(core, field, WHERE)))
        lines = _object(core, "lines_of_code", WHERE)
        for change in ("added", "removed"):
            key: SeriesKey = (Family.CLAUDE_CODE_LINES, actor_dims, (change,))
            values.append((key, count(lines, change, WHERE)))
        actions = _object(record, "tool_actions", WHERE)
        for field, tool in _TOOLS:
            tool_actions = actions.get(field)
            if tool_actions is None:  # a tool the report does not list yet
                continue
            if not isinstance(tool_actions, dict):
                raise ProviderError("parse", f"{WHERE}: {field!r} is not an object")
            for decision in ("accepted", "rejected"):
                key = (Family.CLAUDE_CODE_TOOL_ACTIONS, actor_dims, (tool, decision))
                values.append((key, count(tool_actions, decision, WHERE)))
        costs: list[tuple[SeriesKey, Decimal]] = []
        for entry in objects(record, "model_breakdown", WHERE):
            model = (label(entry, "model", WHERE) or "") if self._by_model else ""
            dims = Dims(model=model, user_id=user)
            tokens = _object(entry, "tokens", WHERE)
            for field, token_type in _TOKENS:
                key = (Family.CLAUDE_CODE_TOKENS, dims, (token_type, customer))
                values.append((key, count(tokens, field, WHERE)))
            cost = _object(entry, "estimated_cost", WHERE)
            currency = cost.get("currency")
            if not isinstance(currency, str) or currency.upper() != "USD":
                raise ProviderError("parse", f"{WHERE}: unsupported currency {quote(currency)}")
            dollars = money(cost.get("amount"), WHERE) / CENTS  # the amount is in cents
            costs.append(((Family.CLAUDE_CODE_ESTIMATED_COST, dims, (customer,)), dollars))
        for key, value in values:
            self._batch.add(day, key, value)
        for key, dollars in costs:
            self._cost[day, key] = self._cost.get((day, key), Decimal(0)) + dollars

    def finish(self) -> Batch:
        """The batch with the exact cent sums added as dollars."""
        add_money(self._batch, self._cost)
        return self._batch


async def fetch_claude_code(api: ApiClient, start: int, end: int, group_by: Iterable[str]) -> Batch:
    """Every UTC day of ``[start, end)`` of the Claude Code report, one request series per day."""
    batch = Batch(Dataset.CLAUDE_CODE, start, end)
    reader = ClaudeCodeReader(batch, group_by)
    records = 0
    for day in report_days(start, end):
        params: dict[str, str | int] = {"starting_at": _date(day), "limit": PAGE_LIMIT}
        for record in await api.paginate_buckets(CLAUDE_CODE_PATH, params):
            records += 1
            try:
                reader.add(day, record)
            except ProviderError as err:
                skip_row(batch, err)
    # Complete answers up to now minus the documented lag (stable pagination).
    batch.watermark = float(max(start, end - DATA_LAG))
    return check_usable(reader.finish(), records)
