"""Fireworks AI: rated costs and serverless tokens of one account (Bearer API key).

``POST /v1/accounts/{account_id}/usageCosts:query`` answers rated dollar subtotals grouped by
``DAY`` and one more dimension (model, API key or user: the API allows two), as Google
``Money`` objects (``units`` + ``nanos``); that is the ``cost`` dataset. ``GET
/v1/accounts/{account_id}/billingUsage`` has the serverless prompt and completion tokens per
day and model (and API key); that is ``usage``. Both take at most 31 days per request.

The ``ACCOUNT`` scope needs an account admin's key. Field names follow the generated types of
Fireworks' Gateway REST API; that ``evaluationTime`` is the time the costs are complete up
to, and that ``billingUsage``'s ``promptTokens`` include cached prompt tokens, are readings of
the names, not documented (UNVERIFIED).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote as quote_path

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
    day_start,
)
from exporter.sources.providers.base import HOUR, DatasetReader, ProviderError
from exporter.sources.providers.client import HttpProvider, JSONObject, objects
from exporter.sources.providers.fields import (
    MAX_COUNT,
    CurrencyRates,
    add_money,
    check_usable,
    currency_code,
    money,
    parse_rfc3339,
    plain_name,
    query_end,
    quote,
    rfc3339,
    skip_row,
    watermark,
)

DEFAULT_BASE_URL = "https://api.fireworks.ai"
COSTS_ENDPOINT = "/v1/accounts/{account_id}/usageCosts:query"
USAGE_ENDPOINT = "/v1/accounts/{account_id}/billingUsage"
MAX_RANGE = 31 * DAY
"""The longest time range of one request."""
PAGE_SIZE = 1000
PAGE_CAP = 50
LINE_ITEM = "usage"
MAX_CURRENCIES = 4
"""Currencies without a rate one answer may bill in (an account has one, USD)."""
# group_by dimension -> (usageCosts:query dimension, its field in a row's ``dimensions``)
_COST_DIMENSIONS = {"model": ("MODEL", "model"), "api_key": ("API_KEY", "apiKeyId"),
                    "user": ("USER", "user")}
# group_by dimension -> billingUsage ``groupBy`` name (also its key in a row's ``group``)
_USAGE_GROUPS = {"model": "model_name", "api_key": "api_key_id"}
_ACCOUNT_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_INT64 = re.compile(r"-?[0-9]{1,19}")


class FireworksOptions(BaseModel):
    """``options:`` of a ``fireworks`` account."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    account_id: str
    """The account's id: the part after ``accounts/`` in its resource name."""
    currency_rates: CurrencyRates = Field(default_factory=dict)
    """US dollars per unit of a cost currency other than USD."""

    @field_validator("account_id")
    @classmethod
    def _check_account_id(cls, value: str) -> str:
        if _ACCOUNT_ID.fullmatch(value) is None:
            raise ValueError("must be a Fireworks account id (lower-case letters, digits, '-')")
        return value


def _rows(answer: Mapping[str, Any], key: str, where: str) -> list[JSONObject]:
    """The objects of list ``key``; Google-style JSON leaves an empty list out."""
    return objects(answer, key, where) if key in answer else []


def _int64(row: Mapping[str, Any], key: str, where: str) -> int:
    """A non-negative int64 field, which Google-style JSON sends as a string; absent is 0."""
    value = row.get(key, 0)
    if isinstance(value, str) and _INT64.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
        raise ProviderError("parse", f"{where}: {key!r} is not a token count ({quote(value)})")
    return value


def google_money(value: Any, where: str) -> tuple[Decimal, str]:
    """A ``google.type.Money`` object as (amount, upper-case currency code)."""
    if not isinstance(value, dict):
        raise ProviderError("parse", f"{where}: 'subtotal' is not a Money object")
    currency = currency_code(value.get("currencyCode"), where)
    units, nanos = value.get("units", "0"), value.get("nanos", 0)
    if isinstance(units, str) and _INT64.fullmatch(units):
        units = int(units)
    if isinstance(units, bool) or not isinstance(units, int):
        raise ProviderError("parse", f"{where}: Money 'units' {quote(units)} is not an integer")
    if isinstance(nanos, bool) or not isinstance(nanos, int) or abs(nanos) >= 10**9:
        raise ProviderError("parse", f"{where}: Money 'nanos' {quote(nanos)} is out of range")
    if units * nanos < 0:
        raise ProviderError("parse", f"{where}: Money 'units' and 'nanos' differ in sign")
    amount = money(str(Decimal(units) + Decimal(nanos) / 10**9), where)  # bounds the size
    return amount, currency


class FireworksProvider(HttpProvider):
    """Client for one Fireworks account (an account admin's API key)."""

    name: ClassVar[str] = "fireworks"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    # The billing APIs cache their answers for minutes: polling faster reads the same figures.
    default_poll_interval: ClassVar[str] = "15m"
    # Costs and usage come in daily buckets that can lag a day.
    expected_lag: ClassVar[Mapping[Dataset, float]] = {
        Dataset.COST: 48 * HOUR,
        Dataset.USAGE: 48 * HOUR,
    }
    Options: ClassVar[type[FireworksOptions]] = FireworksOptions
    options: FireworksOptions

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """Bearer API key."""
        return {"Authorization": f"Bearer {key}"}

    def _path(self, template: str) -> str:
        return template.format(account_id=quote_path(self.options.account_id, safe=""))

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Costs and serverless tokens of every UTC day in ``[start, end)``."""
        reader = DatasetReader()
        await reader.read_one(Dataset.COST, lambda: self._costs(start, end))
        await reader.read_one(Dataset.USAGE, lambda: self._usage(start, end))
        return reader.result()

    @staticmethod
    def _windows(start: int, end: int) -> list[tuple[int, int]]:
        """``[start, end)`` with today's whole day, cut into ranges the API accepts."""
        stop = query_end(start, end)
        return [(a, min(a + MAX_RANGE, stop)) for a in range(start, stop, MAX_RANGE)]

    async def _cost_pages(self, body: Mapping[str, Any]) -> AsyncIterator[JSONObject]:
        """Every page of one query, each read once the previous one is parsed."""
        path, where = self._path(COSTS_ENDPOINT), f"POST {COSTS_ENDPOINT}"
        token, seen = "", set()
        for _ in range(PAGE_CAP):
            request = {**body, "pageToken": token} if token else body
            answer = await self._api.post_json(path, request, endpoint=COSTS_ENDPOINT)
            token = answer.get("nextPageToken") or ""
            if not isinstance(token, str) or token in seen:
                raise ProviderError("parse", f"{where}: bad or repeated 'nextPageToken'")
            yield answer
            if not token:
                return
            seen.add(token)
        raise ProviderError("parse", f"{where}: still more pages after {PAGE_CAP}")

    async def _costs(self, start: int, end: int) -> Batch:
        where = f"POST {COSTS_ENDPOINT}"
        grouped = next((_COST_DIMENSIONS[d] for d in ("model", "api_key", "user")
                        if d in self._group_by), None)
        batch = Batch(Dataset.COST, start, end)
        totals: dict[tuple[int, SeriesKey], Decimal] = {}
        rows, days, complete_to = 0, set(), []
        currencies: set[str] = set()
        for first, last in self._windows(start, end):
            body = {
                "startTime": rfc3339(first),
                "endTime": rfc3339(last),
                "scope": "ACCOUNT",
                "groupBy": ["DAY", grouped[0]] if grouped else ["DAY"],
                "pageSize": PAGE_SIZE,
            }
            async for answer in self._cost_pages(body):
                evaluated = answer.get("evaluationTime")
                if evaluated is not None:
                    complete_to.append(parse_rfc3339(evaluated, where))
                for row in _rows(answer, "rows", where):
                    rows += 1
                    try:
                        found = self._cost_row(row, grouped, where)
                    except ProviderError as err:
                        skip_row(batch, err)
                        continue
                    day, key, amount = found
                    if key[0] is Family.UNCONVERTED_COST:
                        currencies.add(key[2][0])
                        if len(currencies) > MAX_CURRENCIES:  # (each is a label value)
                            currencies.discard(key[2][0])
                            problem = f"{where}: more than {MAX_CURRENCIES} currencies"
                            skip_row(batch, ProviderError("parse", problem))
                            continue
                    # A row outside its own request's range is another request's.
                    if first <= day < last and start <= day < end:
                        totals[day, key] = totals.get((day, key), Decimal(0)) + amount
                        days.add(day)
        add_money(batch, totals)
        batch.watermark = watermark(end, complete_to or [day + DAY for day in days])
        return check_usable(batch, rows)

    def _cost_row(
        self, row: Mapping[str, Any], grouped: tuple[str, str] | None, where: str
    ) -> tuple[int, SeriesKey, Decimal]:
        dimensions = row.get("dimensions")
        if not isinstance(dimensions, dict):
            raise ProviderError("parse", f"{where}: row without 'dimensions'")
        day = day_start(parse_rfc3339(dimensions.get("startTime"), where))
        value = ""
        # A cost Fireworks could not attribute to a model is the account's, without a model.
        if grouped and not (grouped[0] == "MODEL" and dimensions.get("unknownModel") is True):
            value = plain_name(dimensions, grouped[1], where) or ""
        field = {"MODEL": "model", "API_KEY": "api_key_id", "USER": "user_id"}
        dims = Dims(**({field[grouped[0]]: value} if grouped else {}))
        amount, currency = google_money(row.get("subtotal"), where)
        if amount < 0:
            raise ProviderError("parse", f"{where}: negative subtotal ({quote(str(amount))})")
        rates = self.options.currency_rates
        if currency != "USD" and currency not in rates:
            return day, (Family.UNCONVERTED_COST, dims, (currency.lower(),)), amount
        if currency != "USD":
            amount *= Decimal(str(rates[currency]))
        return day, (Family.BILLED_COST, dims, (LINE_ITEM,)), amount

    async def _usage(self, start: int, end: int) -> Batch:
        where = f"GET {USAGE_ENDPOINT}"
        groups = [(dim, _USAGE_GROUPS[dim]) for dim in ("model", "api_key")
                  if dim in self._group_by]
        batch = Batch(Dataset.USAGE, start, end)
        rows, ends = 0, []
        for first, last in self._windows(start, end):
            query: list[tuple[str, str | int | float | bool | None]] = [
                ("startTime", rfc3339(first)),
                ("endTime", rfc3339(last)),
                ("usageType", "SERVERLESS"),
                ("timezone", "UTC"),
                *(("groupBy", group) for _, group in groups),
            ]
            answer = await self._api.get_json(
                self._path(USAGE_ENDPOINT), query, endpoint=USAGE_ENDPOINT
            )
            for row in _rows(answer, "serverlessCosts", where):
                rows += 1
                try:
                    day, dims, counts = self._usage_row(row, groups, where)
                except ProviderError as err:
                    skip_row(batch, err)
                    continue
                if first <= day < last and start <= day < end:
                    keys = [(Family.TOKENS, dims, (t, "text", "default"))
                            for t in (TokenType.INPUT, TokenType.OUTPUT)]
                    batch.add_all(day, keys, counts)
                    ends.append(day + DAY)
        batch.watermark = watermark(end, ends)
        return check_usable(batch, rows)

    @staticmethod
    def _usage_row(
        row: Mapping[str, Any], groups: Sequence[tuple[str, str]], where: str
    ) -> tuple[int, Dims, tuple[int, int]]:
        day = day_start(parse_rfc3339(row.get("startTime"), where))
        group = row.get("group", {})
        if not isinstance(group, dict):
            raise ProviderError("parse", f"{where}: 'group' is not an object")
        values = {dim: plain_name(group, key, where) or "" for dim, key in groups}
        dims = Dims(model=values.get("model", ""), api_key_id=values.get("api_key", ""))
        counts = (_int64(row, "promptTokens", where), _int64(row, "completionTokens", where))
        return day, dims, counts
