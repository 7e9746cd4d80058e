"""Mistral: an organization's usage and cost from the Admin API (Enterprise, preview).

``GET /usage?month=&year=`` answers one calendar month: per category (``completion``,
``chat``, ``ocr``, … and their Vibe and Libraries counterparts) and model, one row per day and
lane (``input``, ``output``, ``cached``) with the units used (``value``) and billed
(``value_paid``: what the plan's included usage did not cover), and the month's table of unit
``prices`` in the organization's currency. Billed cost is ``value_paid`` × the unit price of
the row's event type, metric, lane, zone and tier: Mistral reports no cost figure of its own.
Both the ``usage`` and ``cost`` datasets come from that one answer. ``GET /spend-limit`` has
the monthly limit, the usage counted against it and whether it is reached: ``limits``, read
once an hour.

The Admin API is a preview and its schema stops at the rows: their fields, that ``price`` is
per single unit and that the three lanes are disjoint follow the clients that read Mistral's
billing (UNVERIFIED), so every row is checked and a row that does not fit is left out and
counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from exporter.core.records import (
    DAY,
    Batch,
    Dataset,
    Dims,
    Family,
    FetchResult,
    SeriesKey,
    TokenType,
)
from exporter.sources.providers.base import HOUR, DatasetReader, ProviderError
from exporter.sources.providers.client import HttpProvider, JSONObject
from exporter.sources.providers.fields import (
    CurrencyRates,
    add_money,
    check_usable,
    count,
    currency_code,
    money,
    parse_date,
    plain_name,
    quote,
    skip_row,
    watermark,
)

DEFAULT_BASE_URL = "https://api.mistral.ai/v1/admin"
USAGE_PATH = "/usage"
LIMIT_PATH = "/spend-limit"
HARD = "hard"
CATEGORIES = ("completion", "chat", "ocr", "connectors", "audio", "audio_characters")
"""Top-level usage blocks; ``libraries_api`` and ``vibe_code`` hold more (see :func:`blocks`)."""
_LIBRARIES = ("pages", "tokens", "audio_seconds")
_VIBE = ("completion", "ocr", "connectors", "audio", "audio_characters")
TOKEN_EVENTS = frozenset(("api_tokens", "vibe_tokens", "deployment_tokens",
                          "api_libraries_tokens"))
"""Event types whose units are tokens (the others count pages, seconds, characters, hours)."""
LANES = {"input": TokenType.INPUT, "output": TokenType.OUTPUT,
         "cached": TokenType.INPUT_CACHE_READ}
SERVICE_TIERS = {"standard": "default", "priority": "priority"}
"""Mistral's tiers as ``service_tier`` values; any other is "other" (a bounded label)."""
_WORKSPACE = re.compile(r"[A-Za-z0-9-]{1,64}")


class MistralOptions(BaseModel):
    """``options:`` of a ``mistral`` account."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workspace_id: str | None = None
    """Only this workspace's usage; by default the whole organization's."""
    currency_rates: CurrencyRates = Field(default_factory=dict)
    """US dollars per unit of the organization's currency, e.g. ``{EUR: 1.08}``."""

    @field_validator("workspace_id")
    @classmethod
    def _check_workspace(cls, value: str | None) -> str | None:
        if value is not None and _WORKSPACE.fullmatch(value) is None:
            raise ValueError("must be a Mistral workspace id")
        return value


def blocks(answer: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """(line item, usage block) of every category of a ``/usage`` answer."""
    for name in CATEGORIES:
        yield name, answer.get(name)
    for parent, names in (("libraries_api", _LIBRARIES), ("vibe_code", _VIBE)):
        group = answer.get(parent)
        if isinstance(group, dict):
            for name in names:
                yield f"{parent}.{name}", group.get(name)


PriceKey = tuple[str | None, str | None, str | None, str | None, str | None]
"""(event type, billing metric, lane, zone, tier) of a unit price."""


def price_table(answer: Mapping[str, Any], where: str) -> dict[PriceKey, Decimal]:
    """The month's unit prices; an entry that does not parse is left out (its rows are then
    unpriced, and counted)."""
    prices = answer.get("prices") or []
    if not isinstance(prices, list):
        raise ProviderError("parse", f"{where}: 'prices' is not a list")
    table: dict[PriceKey, Decimal] = {}
    for entry in prices:
        if not isinstance(entry, dict):
            continue
        try:
            event, metric, lane, zone, tier = (
                plain_name(entry, k, where)
                for k in ("event_type", "billing_metric", "billing_group", "api_zone",
                          "service_tier")
            )
            price = money(entry.get("price"), where)
        except ProviderError:
            continue
        if price >= 0:
            table[event, metric, lane, zone, tier] = price
    return table


def _amount(value: Any, where: str) -> Decimal:
    """A non-negative amount of the spend limit."""
    amount = money(value, where)
    if amount < 0:
        raise ProviderError("parse", f"{where}: negative amount {quote(value)}")
    return amount


def _unit_price(table: Mapping[PriceKey, Decimal], key: PriceKey) -> Decimal | None:
    """The price of exactly ``key``, else of its metric and lane without zone and tier (older
    tables have neither)."""
    found = table.get(key)
    return found if found is not None else table.get((*key[:3], None, None))


def _months(start: int, end: int) -> list[tuple[int, int]]:
    """(year, month) of every calendar month that ``[start, end)`` touches."""
    first = datetime.fromtimestamp(start, UTC)
    last = datetime.fromtimestamp(max(start, end - 1), UTC)
    months, year, month = [], first.year, first.month
    while (year, month) <= (last.year, last.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


class MistralProvider(HttpProvider):
    """Client for one Mistral organization (Admin API key)."""

    name: ClassVar[str] = "mistral"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    # Daily rows of a monthly report: nothing changes faster than this is worth polling.
    default_poll_interval: ClassVar[str] = "15m"
    expected_lag: ClassVar[Mapping[Dataset, float]] = {
        Dataset.USAGE: 48 * HOUR,
        Dataset.COST: 48 * HOUR,
    }
    Options: ClassVar[type[MistralOptions]] = MistralOptions
    options: MistralOptions

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """The guide sends ``x-api-key``, the API reference a Bearer token: both, to one host."""
        return {"x-api-key": key, "Authorization": f"Bearer {key}"}

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Usage and cost of every UTC day in ``[start, end)``, and the spend limit."""
        reader = DatasetReader()
        await reader.read((Dataset.USAGE, Dataset.COST), lambda: self._usage(start, end))
        await reader.read_one(Dataset.LIMITS, lambda: self.hourly(self._spend_limit))
        return reader.result()

    def _dollars(self, currency: str) -> Decimal | None:
        """US dollars per unit of ``currency``; None without a configured rate."""
        if currency == "USD":
            return Decimal(1)
        rate = self.options.currency_rates.get(currency)
        return None if rate is None else Decimal(str(rate))

    @staticmethod
    def _currency(value: Any, where: str) -> str:
        """The organization's currency code; "XXX" (no currency) when Mistral sends none."""
        return "XXX" if value is None else currency_code(value, where)

    async def _usage(self, start: int, end: int) -> tuple[Batch, Batch]:
        usage, cost = Batch(Dataset.USAGE, start, end), Batch(Dataset.COST, start, end)
        rows, priced, ends = 0, 0, list[int]()
        for year, month in _months(start, end):
            params: dict[str, str | int] = {"month": month, "year": year}
            if self.options.workspace_id:
                params["workspace_id"] = self.options.workspace_id
            answer = await self._api.get_json(USAGE_PATH, params)
            # Only the rows of the month asked for: a day is read from its own month's answer.
            first = int(datetime(year, month, 1, tzinfo=UTC).timestamp())
            after = int(datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC).timestamp())
            window = (max(start, first), min(end, after))
            month_rows, month_priced, totals = self._month(answer, usage, cost, window, ends)
            rows, priced = rows + month_rows, priced + month_priced
            currency = self._currency(answer.get("currency"), f"GET {USAGE_PATH}")
            rate = self._dollars(currency)
            if rate is None:  # no rate: the cost stays in its currency, never called dollars
                unconverted: dict[tuple[int, SeriesKey], Decimal] = {}
                for (day, (_, dims, _)), value in totals.items():
                    key = (day, (Family.UNCONVERTED_COST, dims, (currency.lower(),)))
                    unconverted[key] = unconverted.get(key, Decimal(0)) + value
                totals = unconverted
            add_money(cost, {key: v * (rate or 1) for key, v in totals.items()})
        usage.watermark = cost.watermark = watermark(end, ends)
        return check_usable(usage, rows), check_usable(cost, priced)

    def _month(
        self, answer: Mapping[str, Any], usage: Batch, cost: Batch, window: tuple[int, int],
        ends: list[int],
    ) -> tuple[int, int, dict[tuple[int, SeriesKey], Decimal]]:
        """Adds the tokens of one month's answer in ``window`` to ``usage``; its rows (and
        misshapen blocks), priced rows and cost totals in the organization's currency."""
        where = f"GET {USAGE_PATH}"
        start, end = window
        table = price_table(answer, where)
        totals: dict[tuple[int, SeriesKey], Decimal] = {}
        rows = priced = 0
        for line_item, block in blocks(answer):
            for row in self._rows(block, where):
                rows += 1
                try:
                    if isinstance(row, ProviderError):
                        raise row
                    day, tokens, cost_key, (paid, price_key) = self._row(row, line_item, where)
                except ProviderError as err:
                    skip_row(usage, err)
                    continue
                if not start <= day < end:
                    continue
                ends.append(day + DAY)
                if tokens is not None:
                    usage.add(day, *tokens)
                if not paid:
                    continue
                priced += 1
                price = _unit_price(table, price_key)
                if price is None:
                    # (names checked by plain_name: short and plain)
                    key = "/".join(str(part) for part in price_key)
                    skip_row(cost, ProviderError("parse", f"{where}: no unit price for '{key}'"))
                    continue
                totals[day, cost_key] = totals.get((day, cost_key), Decimal(0)) + paid * price
        return rows, priced, totals

    @staticmethod
    def _rows(block: Any, where: str) -> Iterator[Mapping[str, Any] | ProviderError]:
        """Every row of a usage block (``{"models": {model: {lane: [row, …]}}}``), and an
        error in place of each part of another shape (a malformed row); an empty or absent
        block has none."""
        if not block:
            return
        models = block.get("models") if isinstance(block, dict) else None
        if not isinstance(models, dict):
            yield ProviderError("parse", f"{where}: a usage block without 'models'")
            return
        for lanes in models.values():
            if not isinstance(lanes, dict):
                yield ProviderError("parse", f"{where}: a model without lanes")
                continue
            for lane_rows in lanes.values():
                if not isinstance(lane_rows, list):
                    yield ProviderError("parse", f"{where}: a lane is not a list")
                    continue
                for row in lane_rows:
                    yield row if isinstance(row, dict) else ProviderError(
                        "parse", f"{where}: a row is not an object")

    def _row(
        self, row: Mapping[str, Any], line_item: str, where: str
    ) -> tuple[int, tuple[SeriesKey, int] | None, SeriesKey, tuple[int, PriceKey]]:
        """(day, token series and count or None, cost series, (units billed, price key))."""
        day = parse_date(row.get("timestamp"), "timestamp", where)
        event = plain_name(row, "event_type", where)
        metric = plain_name(row, "billing_metric", where)
        lane = plain_name(row, "billing_group", where)
        zone, tier = plain_name(row, "api_zone", where), plain_name(row, "service_tier", where)
        used, paid = count(row, "value", where), count(row, "value_paid", where)
        if metric is None or lane is None:
            raise ProviderError("parse", f"{where}: row without 'billing_metric' or lane")
        model = metric if "model" in self._group_by else ""
        dims = Dims(model=model)
        tokens: tuple[SeriesKey, int] | None = None
        if event in TOKEN_EVENTS and lane in LANES:
            service_tier = SERVICE_TIERS.get(tier or "standard", "other")
            tokens = ((Family.TOKENS, dims, (LANES[lane], "text", service_tier)), used)
        cost_key: SeriesKey = (Family.BILLED_COST, dims, (line_item,))
        return day, tokens, cost_key, (paid, (event, metric, lane, zone, tier))

    async def _spend_limit(self) -> Batch:
        """The monthly spend limit, the usage counted against it and whether it is reached,
        in dollars; none without a limit or a rate for its currency."""
        where = f"GET {LIMIT_PATH}"
        answer: JSONObject = await self._api.get_json(LIMIT_PATH, {})
        limits = answer.get("limits")
        if not isinstance(limits, dict):
            limits = {}
        completion = limits.get("completion")
        if not isinstance(completion, dict):
            raise ProviderError("parse", f"{where}: no 'limits.completion' object")
        reached = completion.get("monthly_limit_reached")
        if not isinstance(reached, bool):
            raise ProviderError("parse", f"{where}: 'monthly_limit_reached' is not a boolean")
        batch = Batch(Dataset.LIMITS, 0, 0)
        amount = completion.get("usage_limit")
        if completion.get("no_monthly_limit") is not True and amount is not None:
            rate = self._dollars(self._currency(limits.get("currency"), where))
            if rate is not None:
                labels = (HARD, "month")
                batch.gauges[Family.PROVIDER_LIMIT, Dims(), labels] = float(
                    _amount(amount, where) * rate
                )
                spent = completion.get("total_usage", completion.get("usage"))
                if spent is not None:
                    batch.gauges[Family.PROVIDER_LIMIT_SPEND, Dims(), labels] = float(
                        _amount(spent, where) * rate
                    )
                batch.gauges[Family.PROVIDER_LIMIT_ENFORCING, Dims(), labels] = float(reached)
        return batch
