"""Deterministic Mistral organization usage: units per UTC day, model and lane, a pure
function of (seed, day), with the month's unit prices in euros.

The plan includes a monthly allowance of ``mistral-small-2603`` input tokens: its rows bill
(``value_paid``) only what exceeds it, counted from the 1st. A day's units appear in full
once the day has begun (the simulator does not split a day by hours).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Final

from .data import DAY, activity, month_start

CURRENCY: Final = "EUR"
# (category, event type, model, lane) -> euros per unit (token, page)
PRICES: Final = {
    ("completion", "api_tokens", "mistral-medium-3-5", "input"): Decimal("0.0000004"),
    ("completion", "api_tokens", "mistral-medium-3-5", "output"): Decimal("0.000002"),
    ("completion", "api_tokens", "mistral-medium-3-5", "cached"): Decimal("0.00000004"),
    ("completion", "api_tokens", "mistral-small-2603", "input"): Decimal("0.0000001"),
    ("completion", "api_tokens", "mistral-small-2603", "output"): Decimal("0.0000003"),
    ("ocr", "api_pages", "mistral-ocr-2512", "input"): Decimal("0.001"),
}
INCLUDED_TOKENS: Final = 3_000_000
"""mistral-small-2603 input tokens a month the plan includes."""
DISPLAY: Final = {
    "mistral-medium-3-5": "mistral-medium-latest",
    "mistral-small-2603": "mistral-small-latest",
    "mistral-ocr-2512": "mistral-ocr-latest",
}
SPEND_LIMIT_EUR: Final = 400


@dataclass(frozen=True, slots=True)
class Row:
    """One day of one lane."""

    day: int
    category: str
    event: str
    model: str
    lane: str
    value: int
    value_paid: int


@lru_cache(maxsize=1024)
def _used(seed: int, day: int) -> tuple[tuple[tuple[str, str, str, str], int], ...]:
    rng = random.Random(f"mistral:{seed}:{day}")
    level = sum(activity(day + h * 3600) for h in range(24)) / 24
    found = []
    for key in PRICES:
        _, event, model, lane = key
        scale = 40 if event == "api_pages" else 900_000 if lane != "output" else 200_000
        value = round(rng.uniform(0.3, 1.0) * scale * (0.2 + level * 3))
        if value:
            found.append((key, value))
    return tuple(found)


def rows(seed: int, start: int, end: int, now: float) -> list[Row]:
    """The rows of every day in ``[start, end)`` that has begun by ``now``."""
    found = []
    day = start // DAY * DAY
    while day < end and day <= now:
        # The allowance used before this day in its month.
        used_before = sum(
            value for d in range(month_start(day), day, DAY) for (k, value) in _used(seed, d)
            if k[2] == "mistral-small-2603" and k[3] == "input"
        )
        for (category, event, model, lane), value in _used(seed, day):
            paid = value
            if model == "mistral-small-2603" and lane == "input":
                paid = max(0, used_before + value - max(INCLUDED_TOKENS, used_before))
            found.append(Row(day, category, event, model, lane, value, paid))
        day += DAY
    return found


def month_cost(seed: int, now: float) -> Decimal:
    """Euros billed this month at ``now``."""
    return sum((r.value_paid * PRICES[r.category, r.event, r.model, r.lane]
                for r in rows(seed, month_start(now), int(now) + 1, now)), Decimal(0))
