"""Synthetic GitHub Copilot billing: seats and premium requests per organization and UTC day.

Values are a pure function of (seed, org, day); the current day grows with the clock.
Premium requests are covered by the organization's monthly allowance (seats x
per-seat quota) until it runs out; only the rest is billed (``net``), so the billed
cost of a month's first days is seats only.
"""

from __future__ import annotations

import calendar
import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Final

DAY = 86_400
CENT4 = Decimal("0.0001")
PREMIUM_PRICE = Decimal("0.04")
PREMIUM_SKU = "Copilot Premium Request"
PRODUCT = "Copilot"
AI_CREDITS_START = int(datetime(2026, 6, 1, tzinfo=UTC).timestamp())
"""GitHub bills Copilot in AI credits from this day on; premium requests before it."""
AI_CREDIT_PRICE = Decimal("0.01")
AI_CREDIT_SKU = "Copilot AI Credits"
CREDITS_PER_REQUEST = 4  # the simulated models' credits per premium request's worth of tokens


@dataclass(frozen=True, slots=True)
class Unit:
    """What Copilot usage of a day is billed in: premium requests, or AI credits."""

    sku: str
    unit_type: str
    price: Decimal
    per_request: int  # units per premium request's worth of use


PREMIUM_REQUESTS: Final = Unit(PREMIUM_SKU, "requests", PREMIUM_PRICE, 1)
AI_CREDITS: Final = Unit(AI_CREDIT_SKU, "credits", AI_CREDIT_PRICE, CREDITS_PER_REQUEST)


def unit_of(day: int) -> Unit:
    """The billing unit of a UTC day."""
    return AI_CREDITS if day >= AI_CREDITS_START else PREMIUM_REQUESTS


@dataclass(frozen=True, slots=True)
class Org:
    """An organization with Copilot seats of one plan."""

    name: str
    seats: int
    seat_sku: str
    seat_price: Decimal  # per user-month
    quota: int  # premium requests per seat per month


@dataclass(frozen=True, slots=True)
class Model:
    """A model used through Copilot: its premium-request multiplier and peak daily use."""

    name: str
    multiplier: Decimal
    daily: int


ORGS: Final = (
    Org("octo-demo", 12, "Copilot Business", Decimal(19), 300),
    Org("octo-labs", 5, "Copilot Enterprise", Decimal(39), 1000),
)
ENTERPRISE: Final = "octo-ent"  # owns every organization above
MODELS: Final = (
    Model("Claude Sonnet 4.5", Decimal(1), 160),
    Model("GPT-5", Decimal(1), 120),
    Model("Claude Haiku 4.5", Decimal("0.33"), 90),  # fractional premium requests
    Model("Claude Opus 4.1", Decimal(10), 4),
)
ACTIONS = ("Actions", "Actions Linux", "minutes", Decimal("0.008"))  # a non-Copilot product


@dataclass(frozen=True, slots=True)
class PremiumLine:
    """One model's premium requests of one org and day, split into included and billed."""

    model: Model
    gross: Decimal
    discount: Decimal

    @property
    def net(self) -> Decimal:
        """Requests beyond the allowance."""
        return self.gross - self.discount


def month_of(day: int) -> int:
    """Start of the UTC month containing ``day``."""
    dt = datetime.fromtimestamp(day, UTC)
    return int(datetime(dt.year, dt.month, 1, tzinfo=UTC).timestamp())


def days_in_month(day: int) -> int:
    """Number of days of the month containing ``day``."""
    dt = datetime.fromtimestamp(day, UTC)
    return calendar.monthrange(dt.year, dt.month)[1]


def money(value: Decimal) -> Decimal:
    """Rounded as the billing API's amounts are (4 decimals)."""
    return value.quantize(CENT4)


class GitHubData:
    """Copilot billing values of every simulated organization for one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._full = lru_cache(maxsize=4_096)(self._full_day_requests)

    def _full_day_requests(self, org: str, day: int) -> tuple[int, ...]:
        """Whole-day request counts per model (before multipliers)."""
        weekday = (day // DAY + 3) % 7
        level = 0.25 if weekday >= 5 else 1.0
        out = []
        for model in MODELS:
            rng = random.Random(f"{self.seed}:github:{org}:{day}:{model.name}")
            out.append(int(model.daily * level * (0.5 + rng.random())))
        return tuple(out)

    def requests(self, org: str, day: int, now: float) -> tuple[int, ...]:
        """Request counts per model of ``day`` as of ``now`` (the current day is prorated)."""
        full = self._full(org, day)
        if day + DAY <= now:
            return full
        if now <= day:
            return (0,) * len(full)
        fraction = (now - day) / DAY
        return tuple(math.floor(n * fraction) for n in full)

    def premium(self, org: Org, day: int, now: float) -> list[PremiumLine]:
        """Billed lines of ``day`` in its unit (premium requests, or AI credits from
        2026-06-01); earlier days of the month used the allowance first."""
        per_request = unit_of(day).per_request
        remaining = Decimal(org.seats * org.quota * per_request)
        for earlier in range(month_of(day), day, DAY):
            for model, n in zip(MODELS, self.requests(org.name, earlier, now), strict=True):
                remaining -= n * model.multiplier * per_request
        lines = []
        for model, n in zip(MODELS, self.requests(org.name, day, now), strict=True):
            gross = n * model.multiplier * per_request
            discount = min(gross, max(remaining, Decimal(0)))
            remaining -= gross
            if gross:
                lines.append(PremiumLine(model, gross, discount))
        return lines

    @staticmethod
    def seat_quantity(org: Org, day: int) -> Decimal:
        """User-months billed per day: seats prorated over the month's days."""
        return money(Decimal(org.seats) / days_in_month(day))

    def actions_minutes(self, org: str, day: int, now: float) -> int:
        """GitHub Actions minutes: a non-Copilot product the exporter must ignore."""
        return 100 + sum(self.requests(org, day, now)) % 50 if day < now else 0
