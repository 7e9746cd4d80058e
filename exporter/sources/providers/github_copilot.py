"""GitHub Copilot: billed cost, AI credits and premium requests from GitHub's billing platform.

Three endpoints per organization (``/organizations/{org}/...``) or enterprise
(``/enterprises/{slug}/...``), each its own dataset:

* ``settings/billing/usage?year=&month=`` (``cost``): every paid product's usage as per-day
  items (``date``) with ``netAmount`` in USD (camelCase floats). One request per month of the
  window gives the billed cost of seats etc. by SKU; items of other products (Actions,
  Packages, ...) are dropped.
* ``settings/billing/ai_credit/usage?year=&month=&day=`` (``ai_credits``): Copilot has been
  billed in AI credits (1 credit = $0.01, metered on tokens per model) since 2026-06-01. The
  credits and their net amount by model, summed over the period asked for (items carry no
  date), so one request per UTC day of the window. The billed cost of AI credits is taken
  from here, where it has a model, and the same SKU's items of ``/usage`` are left out: no
  dollar is counted twice.
* ``settings/billing/premium_request/usage?year=&month=&day=`` (``premium_requests``): premium
  requests by model, the unit billed before AI credits; read for the days before 2026-06-01
  only, when they exist.

An organization's budgets that stop Copilot usage are its ``limits``, read hourly (see
``github_budgets``).

A per-day report must echo the day it was asked for in ``timePeriod``: a reply without it
could be the month's sum, booked as one day (up to 31 times too much), so it fails the
dataset. None of the endpoints documents pagination; a ``Link: rel="next"`` header, which
large enterprises have been seen to get, is followed. Billing data is re-read over the
settle window on every poll, like every provider's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from exporter.core.records import (
    DAY,
    Batch,
    Dataset,
    Dims,
    Family,
    FetchResult,
    SeriesKey,
    day_start,
)
from exporter.sources.providers.base import HOUR, DatasetReader, ProviderError, ProviderSettings
from exporter.sources.providers.client import HttpProvider, JSONObject, objects
from exporter.sources.providers.fields import (
    add_money,
    check_usable,
    label,
    money,
    quantity,
    query_end,
    quote,
    skip_row,
    watermark,
)
from exporter.sources.providers.github_budgets import read_budgets

DEFAULT_BASE_URL = "https://api.github.com"
# 2022-11-28 is still supported alongside 2026-03-10; the billing fields used here are
# the same in both per the published descriptions.
API_VERSION = "2022-11-28"
AI_CREDITS_START = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
"""The first day billed in AI credits; premium requests end the day before."""
_SLUG = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,98}[A-Za-z0-9_])?")


class GitHubCopilotOptions(BaseModel):
    """``options:`` of a ``github_copilot`` account: exactly one of organization/enterprise."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    organization: str | None = None
    enterprise: str | None = None
    products: tuple[str, ...] = ("Copilot",)
    """Billing products to export (case-insensitive); other products' items are dropped."""

    @field_validator("organization", "enterprise")
    @classmethod
    def _check_slug(cls, value: str | None) -> str | None:
        if value is not None and _SLUG.fullmatch(value) is None:
            raise ValueError("must be a GitHub organization name or enterprise slug")
        return value

    @field_validator("products")
    @classmethod
    def _check_products(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or not all(p.strip() for p in value):
            raise ValueError("must list at least one non-empty product name")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> GitHubCopilotOptions:
        if (self.organization is None) == (self.enterprise is None):
            raise ValueError("set exactly one of 'organization' or 'enterprise'")
        return self

    @property
    def prefix(self) -> str:
        """The billing endpoints' path prefix."""
        if self.organization is not None:
            return f"/organizations/{self.organization}/settings/billing"
        return f"/enterprises/{self.enterprise}/settings/billing"


def _months(days: range) -> dict[tuple[int, int], set[int]]:
    """The window's days by (year, month)."""
    months: dict[tuple[int, int], set[int]] = {}
    for day in days:
        dt = datetime.fromtimestamp(day, UTC)
        months.setdefault((dt.year, dt.month), set()).add(day)
    return months


def _item_day(value: Any, where: str) -> int:
    """The UTC day of a usage item's ``date`` (``YYYY-MM-DD``, or an RFC 3339 timestamp)."""
    if not isinstance(value, str):
        raise ProviderError("parse", f"{where}: 'date' {quote(value)} is not a string")
    try:
        parsed = datetime.fromisoformat(value if len(value) != 10 else value + "T00:00:00+00:00")
    except ValueError:
        raise ProviderError("parse", f"{where}: bad date {quote(value)}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return day_start(parsed.timestamp())


def _check_period(body: Mapping[str, Any], expected: Mapping[str, int], where: str) -> None:
    """The report's ``timePeriod`` must be the day asked for: a reply without the day (the
    schema requires only ``year``) could be the month's sum, and must not be booked as a day."""
    period = body.get("timePeriod")
    if not isinstance(period, dict):
        raise ProviderError("parse", f"{where}: 'timePeriod' is not an object")
    for key, value in expected.items():
        got = period.get(key)
        if type(got) is not int or got != value:  # (a JSON true would equal 1)
            message = f"{where}: timePeriod.{key} is {quote(got)}, asked {value}"
            raise ProviderError("parse", message)


def _is_ai_credits(sku: str) -> bool:
    return "ai credit" in sku.lower()


class GitHubCopilotProvider(HttpProvider):
    """Client for one GitHub organization or enterprise (billing read token)."""

    name: ClassVar[str] = "github_copilot"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    # Usage items are per day and only for days with usage: a quiet weekend is not stale data.
    expected_lag: ClassVar[Mapping[Dataset, float]] = {
        Dataset.COST: 72 * HOUR,
        Dataset.AI_CREDITS: 72 * HOUR,
        Dataset.PREMIUM_REQUESTS: 72 * HOUR,
    }
    Options: ClassVar[type[GitHubCopilotOptions]] = GitHubCopilotOptions

    options: GitHubCopilotOptions

    def __init__(self, settings: ProviderSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._prefix = self.options.prefix
        self._products = {p.strip().lower() for p in self.options.products}
        self._by_model = "model" in self._group_by
        self._by_project = "project" in self._group_by

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """Bearer token, GitHub's media type and REST API version."""
        return {
            "Authorization": f"Bearer {key}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
        }

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Billed cost, AI credits and premium requests for every UTC day in ``[start, end)``."""
        days = range(day_start(start), query_end(day_start(start), end), DAY)
        credit_days = range(
            max(days.start, AI_CREDITS_START), max(days.stop, AI_CREDITS_START), DAY
        )
        premium_days = range(days.start, min(days.stop, AI_CREDITS_START), DAY)
        reader = DatasetReader()
        await reader.read_one(Dataset.COST, lambda: self._cost(start, end, days))
        if credit_days:
            await reader.read_one(
                Dataset.AI_CREDITS,
                lambda: self._daily_report(Dataset.AI_CREDITS, start, end, credit_days),
            )
        if premium_days:
            await reader.read_one(
                Dataset.PREMIUM_REQUESTS,
                lambda: self._daily_report(Dataset.PREMIUM_REQUESTS, start, end, premium_days),
            )
        if self.options.organization is not None:  # the budgets API is an organization's
            await reader.read_one(Dataset.LIMITS, lambda: self.hourly(self._budgets))
        return reader.result()

    async def _budgets(self) -> Batch:
        """The budgets that stop Copilot usage."""
        return await read_budgets(self._api, self._prefix, by_user="user" in self._group_by)

    def _wanted(self, item: Mapping[str, Any], where: str) -> bool:
        return (label(item, "product", where) or "").lower() in self._products

    async def _items(self, path: str, query: Mapping[str, int]) -> list[JSONObject]:
        """The usage items of every page of one report, each page checked against ``query``
        when it names a day."""
        where = f"GET {path}"
        items: list[JSONObject] = []
        for body in await self._api.get_linked(path, query):
            if "day" in query:
                _check_period(body, query, where)
            items.extend(objects(body, "usageItems", where))
        return items

    async def _cost(self, start: int, end: int, days: range) -> Batch:
        path = f"{self._prefix}/usage"
        where = f"GET {path}"
        totals: dict[tuple[int, SeriesKey], Decimal] = {}
        seen: list[int] = []
        batch = Batch(Dataset.COST, start, end)
        rows = 0
        for (year, month), wanted_days in _months(days).items():
            for item in await self._items(path, {"year": year, "month": month}):
                rows += 1
                try:
                    if not self._wanted(item, where):
                        continue  # another product's item: not ours to judge
                    day = _item_day(item.get("date"), where)
                    if day not in wanted_days:
                        continue
                    sku = label(item, "sku", where) or ""
                    if day >= AI_CREDITS_START and _is_ai_credits(sku):
                        continue  # billed by model in the ai_credits dataset
                    project = (
                        (label(item, "organizationName", where) or "") if self._by_project else ""
                    )
                    key: SeriesKey = (Family.BILLED_COST, Dims(project), (sku,))
                    amount = money(item.get("netAmount"), where)  # net: after discounts/allowance
                except ProviderError as err:
                    skip_row(batch, err)
                    continue
                seen.append(day + DAY)
                totals[day, key] = totals.get((day, key), Decimal(0)) + amount
        batch.watermark = watermark(end, seen)
        add_money(batch, totals)
        return check_usable(batch, rows)

    async def _daily_report(self, dataset: Dataset, start: int, end: int, days: range) -> Batch:
        """AI credits or premium requests: one request per day, the quantity by model (and for
        AI credits their net amount, the billed cost)."""
        report = "ai_credit" if dataset is Dataset.AI_CREDITS else "premium_request"
        family = Family.AI_CREDITS if dataset is Dataset.AI_CREDITS else Family.PREMIUM_REQUESTS
        path = f"{self._prefix}/{report}/usage"
        where = f"GET {path}"
        batch = Batch(dataset, start, end)
        totals: dict[tuple[int, SeriesKey], Decimal] = {}
        seen: list[int] = []
        rows = 0
        for day in days:
            dt = datetime.fromtimestamp(day, UTC)
            query = {"year": dt.year, "month": dt.month, "day": dt.day}
            for item in await self._items(path, query):
                rows += 1
                try:
                    if not self._wanted(item, where):
                        continue
                    model = (label(item, "model", where) or "") if self._by_model else ""
                    sku = label(item, "sku", where) or ""
                    used = quantity(item, "grossQuantity", where)
                    amount = (
                        money(item.get("netAmount"), where) if family is Family.AI_CREDITS else None
                    )
                except ProviderError as err:
                    skip_row(batch, err)
                    continue
                seen.append(day + DAY)
                if family is Family.AI_CREDITS:
                    batch.add(day, (family, Dims(model=model), ()), used)
                    key: SeriesKey = (Family.BILLED_COST, Dims(model=model), (sku,))
                    totals[day, key] = totals.get((day, key), Decimal(0)) + (amount or Decimal(0))
                else:
                    batch.add(day, (family, Dims(model=model), (sku,)), used)
        add_money(batch, totals)
        batch.watermark = watermark(end, seen)
        return check_usable(batch, rows)
