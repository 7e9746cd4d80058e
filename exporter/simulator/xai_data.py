"""Deterministic xAI team spend: dollars per hour and billing line, a pure function of
(seed, hour). An hour's spend is booked once it has ended."""

from __future__ import annotations

import random
from decimal import Decimal
from functools import lru_cache
from typing import Final

from .data import HOUR, activity, month_start

DESCRIPTIONS: Final = ("Chat grok-4-0709", "Chat grok-code-fast-1", "Image grok-2-image-1212")
TEAM: Final = "7d3a5a8e-0b7c-4c55-9a0b-5e1f3c2d9a10"
SPENDING_LIMIT_CENTS: Final = 30_000
"""The team's monthly postpaid spending limit ($300): the forecast of a busy month is above it."""


@lru_cache(maxsize=4096)
def hour_spend(seed: int, hour: int) -> tuple[tuple[str, Decimal], ...]:
    """(description, dollars) of the hour starting at ``hour``; lines without spend left out."""
    rng = random.Random(f"xai:{seed}:{hour}")
    found = []
    for index, description in enumerate(DESCRIPTIONS):
        if rng.random() > 0.2 + 0.8 * activity(hour):
            continue
        # Up to about $1.20 an hour for chat, a few images.
        cents = rng.randint(1, 120) if index < 2 else 7 * rng.randint(0, 3)
        if cents:
            found.append((description, Decimal(cents) / 100 * Decimal("0.83")))
    return tuple(found)


def spend(seed: int, start: int, end: int, now: float) -> dict[tuple[int, str], Decimal]:
    """Dollars by (UTC day, description) of the hours in ``[start, end)`` ended by ``now``."""
    found: dict[tuple[int, str], Decimal] = {}
    hour = -(-start // HOUR) * HOUR
    while hour < end and hour + HOUR <= now:
        day = hour // 86_400 * 86_400
        for description, usd in hour_spend(seed, hour):
            found[day, description] = found.get((day, description), Decimal(0)) + usd
        hour += HOUR
    return found


def month_spend(seed: int, now: float) -> Decimal:
    """The team's spend this calendar month at ``now``."""
    return sum(spend(seed, month_start(now), int(now), now).values(), Decimal(0))
