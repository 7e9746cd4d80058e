"""GitHub Copilot: billed cost and premium requests from GitHub's enhanced billing platform.

Two endpoints per organization (``/organizations/{org}/...``) or enterprise
(``/enterprises/{slug}/...``):

* ``settings/billing/usage?year=&month=``: every paid product's usage as per-day items
  (``date``) with ``netAmount`` in USD (camelCase floats). One request per month of the
  window gives the billed cost of seats, premium requests, etc. by SKU; items of other
  products (Actions, Packages, ...) are dropped.
* ``settings/billing/premium_request/usage?year=&month=&day=``: premium requests by model,
  summed over the period asked for (items carry no date), so one request per UTC day of
  the window: a first poll (the month and the 7 days before it) makes up to 38, later polls
  the settle window's days.

Neither endpoint documents pagination (UNVERIFIED; none is followed). Billing data is
re-read over the settle window on every poll, like every provider's.
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
from exporter.sources.providers.base import HOUR, ProviderError, ProviderSettings
from exporter.sources.providers.client import HttpProvider, objects
from exporter.sources.providers.fields import (
    add_money,
    label,
    money,
    quantity,
    query_end,
    quote,
    watermark,
)

DEFAULT_BASE_URL = "https://api.github.com"
# 2022-11-28 is still supported alongside 2026-03-10; the billing fields used here are
# the same in both per the published descriptions.
API_VERSION = "2022-11-28"
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
    """The report's ``timePeriod`` must be the day asked for (else it would be a month's sum).

    A missing ``month``/``day`` is tolerated (UNVERIFIED whether GitHub always echoes
    them); a different one is an error.
    """
    period = body.get("timePeriod")
    if not isinstance(period, dict):
        raise ProviderError("parse", f"{where}: 'timePeriod' is not an object")
    for key, value in expected.items():
        got = period.get(key)
        if (got is not None or key == "year") and got != value:
            message = f"{where}: timePeriod.{key} is {quote(got)}, asked {value}"
            raise ProviderError("parse", message)


class GitHubCopilotProvider(HttpProvider):
    """Client for one GitHub organization or enterprise (billing read token)."""

    name: ClassVar[str] = "github_copilot"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    # Usage items are per day and only for days with usage: a quiet weekend is not stale data.
    expected_lag: ClassVar[Mapping[Dataset, float]] = {
        Dataset.USAGE: 72 * HOUR,
        Dataset.COST: 72 * HOUR,
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
        """Billed cost and premium requests for every UTC day in ``[start, end)``."""
        days = range(day_start(start), query_end(day_start(start), end), DAY)
        cost = await self._cost(start, end, days)
        premium = await self._premium_requests(start, end, days)
        return FetchResult(batches=[premium, cost])

    def _wanted(self, item: Mapping[str, Any], where: str) -> bool:
        return (label(item, "product", where) or "").lower() in self._products

    async def _cost(self, start: int, end: int, days: range) -> Batch:
        path = f"{self._prefix}/usage"
        where = f"GET {path}"
        totals: dict[tuple[int, SeriesKey], Decimal] = {}
        seen: list[int] = []
        for (year, month), wanted_days in _months(days).items():
            body = await self._api.get_json(path, {"year": year, "month": month})
            for item in objects(body, "usageItems", where):
                day = _item_day(item.get("date"), where)
                if day not in wanted_days or not self._wanted(item, where):
                    continue
                seen.append(day + DAY)
                project = (label(item, "organizationName", where) or "") if self._by_project else ""
                model = (label(item, "model", where) or "") if self._by_model else ""
                key: SeriesKey = (
                    Family.BILLED_COST,
                    Dims(project, model),
                    (label(item, "sku", where) or "",),
                )
                amount = money(item.get("netAmount"), where)  # net: after discounts/allowance
                totals[day, key] = totals.get((day, key), Decimal(0)) + amount
        batch = Batch(Dataset.COST, start, end, watermark=watermark(end, seen))
        add_money(batch, totals)
        return batch

    async def _premium_requests(self, start: int, end: int, days: range) -> Batch:
        path = f"{self._prefix}/premium_request/usage"
        where = f"GET {path}"
        batch = Batch(Dataset.USAGE, start, end)
        seen: list[int] = []
        for day in days:
            dt = datetime.fromtimestamp(day, UTC)
            query = {"year": dt.year, "month": dt.month, "day": dt.day}
            body = await self._api.get_json(path, query)
            _check_period(body, query, where)
            for item in objects(body, "usageItems", where):
                if not self._wanted(item, where):
                    continue
                seen.append(day + DAY)
                model = (label(item, "model", where) or "") if self._by_model else ""
                sku = label(item, "sku", where) or ""
                key: SeriesKey = (Family.PREMIUM_REQUESTS, Dims(model=model), (sku,))
                batch.add(day, key, quantity(item, "grossQuantity", where))
        batch.watermark = watermark(end, seen)
        return batch
