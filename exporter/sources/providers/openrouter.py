"""OpenRouter: credits, daily activity per model, today's spend from the keys' counters.

Needs a management key. ``/activity`` has only *completed* UTC days, so the
month-to-date counters end at the last midnight; what was spent since then is
published as the ``BILLED_COST_TODAY`` gauge (the keys' ``usage_daily``), never
added to a counter: at midnight that amount moves into the per-model activity
rows, and a counter that held it would have to decrease.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

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
from exporter.sources.providers.client import HttpProvider, JSONObject, objects
from exporter.sources.providers.fields import add_money, count, label, money, quote, skip_row

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
CREDITS_PATH = "/credits"
ACTIVITY_PATH = "/activity"
KEYS_PATH = "/keys"
KEYS_PAGE_SIZE = 100  # fixed by the API: a shorter page is the last one
KEYS_PAGE_CAP = 50
LINE_ITEM = "inference"
_COUNTS = ("requests", "prompt_tokens", "completion_tokens", "reasoning_tokens")


@dataclass(slots=True)
class _Totals:
    """One (day, workspace, model[, key]) cell of the activity report."""

    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # order of _COUNTS
    usage: Decimal = Decimal(0)

    def add(self, other: _Totals, sign: int = 1) -> None:
        self.counts = [a + sign * b for a, b in zip(self.counts, other.counts, strict=True)]
        self.usage += sign * other.usage


Cell = tuple[int, str, str]  # (day, workspace id, model)


def _day(value: Any, where: str) -> int:
    if not isinstance(value, str):
        raise ProviderError("parse", f"{where}: 'date' {quote(value)} is not a string")
    try:
        parsed = datetime.strptime(value[:10], "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise ProviderError("parse", f"{where}: bad date {quote(value)}") from None
    return int(parsed.timestamp())


def _key_ids(keys: Iterable[Mapping[str, Any]], where: str) -> list[tuple[str, str]]:
    """(hash, api_key_id) per key: the name, else the label; a hash prefix disambiguates."""
    found: list[tuple[str, str]] = []
    for key in keys:
        key_hash = label(key, "hash", where)
        if not key_hash:
            raise ProviderError("parse", f"{where}: key without a 'hash'")
        name = label(key, "name", where) or label(key, "label", where) or key_hash[:12]
        found.append((key_hash, name))
    names = [name for _, name in found]
    return [
        (key_hash, name if names.count(name) == 1 else f"{name} ({key_hash[:8]})")
        for key_hash, name in found
    ]


class OpenRouterProvider(HttpProvider):
    """Client for one OpenRouter account (management key)."""

    name: ClassVar[str] = "openrouter"

    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    # /activity reports completed UTC days only: its data always ends at the last midnight, and
    # yesterday's may take a few hours to appear.
    expected_lag: ClassVar[Mapping[Dataset, float]] = {
        Dataset.USAGE: 30 * HOUR,
        Dataset.COST: 30 * HOUR,
    }

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """Bearer management key."""
        return {"Authorization": f"Bearer {key}"}

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Activity of the completed UTC days in ``[start, end)``, credits, today's spend."""
        reader = DatasetReader()
        await reader.read_one(Dataset.BALANCE, self._balance)
        await reader.read((Dataset.USAGE, Dataset.COST), lambda: self._usage_and_cost(start, end))
        return reader.result()

    async def _balance(self) -> Batch:
        remaining = await self._credits()
        balance = Batch(Dataset.BALANCE, 0, 0)
        balance.gauges[Family.CREDITS_REMAINING, Dims(), ()] = float(remaining)
        return balance

    async def _usage_and_cost(self, start: int, end: int) -> tuple[Batch, Batch]:
        """Both come from the same report (and today's spend from the keys)."""
        keys = await self._keys()
        by_key = "api_key" in self._group_by
        today: dict[str, Decimal] = {}
        for _, key_id, usage_daily in keys:
            dim = key_id if by_key else ""
            today[dim] = today.get(dim, Decimal(0)) + usage_daily

        usage = Batch(Dataset.USAGE, start, end)
        cells = await self._activity({}, usage)
        attributed: dict[tuple[Cell, str], _Totals] = {}
        if by_key:
            # /activity has no key dimension, only a key filter: one report per key, and
            # what no listed key explains (deleted keys, other workspaces) stays unattributed.
            for key_hash, key_id, _ in keys:
                # The same rows again, by key: a malformed one was counted in the full report.
                scratch = Batch(Dataset.USAGE, start, end)
                report = await self._activity({"api_key_hash": key_hash}, scratch, check=False)
                for cell, totals in report.items():
                    attributed[cell, key_id] = totals
                    rest = cells.setdefault(cell, _Totals())
                    rest.add(totals, -1)
        for cell, totals in cells.items():
            totals.counts = [max(0, c) for c in totals.counts]
            totals.usage = max(Decimal(0), totals.usage)
            attributed[cell, ""] = totals

        cost = Batch(Dataset.COST, start, end)
        for dim, amount in today.items():
            cost.gauges[Family.BILLED_COST_TODAY, Dims(api_key_id=dim), ()] = float(amount)
        money_totals: dict[tuple[int, SeriesKey], Decimal] = {}
        for ((day, workspace, model), key_id), totals in attributed.items():
            if not start <= day < end:
                continue  # before the window (or the month): the ledger must not see it
            dims = self._dims(workspace, model, key_id)
            requests, prompt, completion, reasoning = totals.counts
            usage.add(day, (Family.TOKENS, dims, (TokenType.INPUT, "", "")), prompt)
            usage.add(day, (Family.TOKENS, dims, (TokenType.OUTPUT, "", "")), completion)
            usage.add(day, (Family.REASONING_TOKENS, dims, ()), reasoning)
            usage.add(day, (Family.REQUESTS, dims, ("",)), requests)
            if totals.usage:
                key: SeriesKey = (Family.BILLED_COST, dims, (LINE_ITEM,))
                money_totals[day, key] = money_totals.get((day, key), Decimal(0)) + totals.usage
        add_money(cost, money_totals)
        cost.skipped_rows, cost.skipped_error = usage.skipped_rows, usage.skipped_error
        usage.skipped_rows, usage.skipped_error = 0, ""  # the rows of both: counted once
        # The report claims every completed day: data is complete up to the last midnight.
        usage.watermark = cost.watermark = float(max(start, min(end, day_start(end))))
        return usage, cost

    def _dims(self, workspace: str, model: str, key_id: str) -> Dims:
        group_by = self._group_by
        return Dims(
            workspace if "project" in group_by else "",
            model if "model" in group_by else "",
            key_id if "api_key" in group_by else "",
        )

    async def _credits(self) -> Decimal:
        body = await self._api.get_json(CREDITS_PATH, {})
        where = f"GET {CREDITS_PATH}"
        data = body.get("data")
        if not isinstance(data, dict):
            raise ProviderError("parse", f"{where}: 'data' is not an object")
        return money(data.get("total_credits"), where) - money(data.get("total_usage"), where)

    async def _keys(self) -> list[tuple[str, str, Decimal]]:
        """(hash, api_key_id, usage_daily) of every key, disabled ones included."""
        where = f"GET {KEYS_PATH}"
        listed: list[JSONObject] = []
        for page in range(KEYS_PAGE_CAP):
            params: dict[str, str | int] = {
                "include_disabled": "true",
                "offset": page * KEYS_PAGE_SIZE,
            }
            items = objects(await self._api.get_json(KEYS_PATH, params), "data", where)
            listed.extend(items)
            if len(items) < KEYS_PAGE_SIZE:
                break
        else:
            raise ProviderError("parse", f"{where}: still more keys after {KEYS_PAGE_CAP} pages")
        ids = _key_ids(listed, where)
        return [
            (key_hash, key_id, money(item.get("usage_daily", 0), where))
            for (key_hash, key_id), item in zip(ids, listed, strict=True)
        ]

    async def _activity(
        self, params: Mapping[str, str], batch: Batch, *, check: bool = True
    ) -> dict[Cell, _Totals]:
        """The whole report (last 30 completed days; no pagination) summed per cell; malformed
        rows are counted in ``batch`` (and, if ``check``, fail it when they are all there is)."""
        query = dict(params)
        if "project" in self._group_by:
            query["group_by"] = "workspace"  # adds workspace_id to every row
        body = await self._api.get_json(ACTIVITY_PATH, query)
        where = f"GET {ACTIVITY_PATH}"
        cells: dict[Cell, _Totals] = {}
        rows = objects(body, "data", where)
        skipped = batch.skipped_rows
        for row in rows:
            try:
                cell = (
                    _day(row.get("date"), where),
                    label(row, "workspace_id", where) or "",
                    label(row, "model", where) or "",
                )
                counts = [
                    count(row, name, where, required=name != "reasoning_tokens") for name in _COUNTS
                ]
                usage = money(row.get("usage"), where)
            except ProviderError as err:
                skip_row(batch, err)
                continue
            totals = cells.setdefault(cell, _Totals())
            totals.add(_Totals(counts, usage))
        if check and rows and batch.skipped_rows - skipped >= len(rows):
            raise ProviderError("parse", f"every row is malformed ({batch.skipped_error})")
        return cells
