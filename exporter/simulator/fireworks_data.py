"""Deterministic Fireworks account usage: serverless tokens and rated cost per hour, model
and API key, as a pure function of (seed, hour).

An hour's figures appear once it has ended (Fireworks aggregates; the current hour is not
reported yet). Cost is rated at the simulator's per-model list prices, exactly, in dollars.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Final

from .data import HOUR, activity

# Dollars per million prompt and completion tokens (Fireworks' serverless list prices).
RATES: Final = {
    "accounts/fireworks/models/deepseek-v3p2": (Decimal("0.56"), Decimal("1.68")),
    "accounts/fireworks/models/kimi-k2p6": (Decimal("0.95"), Decimal(4)),
    "accounts/fireworks/models/gpt-oss-120b": (Decimal("0.15"), Decimal("0.6")),
}
MODELS: Final = tuple(RATES)
API_KEYS: Final = ("key_demo_prod", "key_demo_batch")


@dataclass(frozen=True, slots=True)
class Usage:
    """One (hour, model, API key) aggregate."""

    hour: int
    model: str
    api_key: str
    prompt: int
    completion: int
    cost: Decimal  # dollars, exact


@lru_cache(maxsize=4096)
def hour_usage(seed: int, hour: int) -> tuple[Usage, ...]:
    """The aggregates of the hour starting at ``hour`` (Unix seconds)."""
    rng = random.Random(f"fireworks:{seed}:{hour}")
    found = []
    for model in MODELS:
        for key in API_KEYS:
            if rng.random() > 0.3 + 0.7 * activity(hour):
                continue
            scale = 40_000 if key == API_KEYS[0] else 150_000
            prompt = rng.randint(scale // 4, scale)
            completion = rng.randint(scale // 40, scale // 8)
            rate_in, rate_out = RATES[model]
            cost = (prompt * rate_in + completion * rate_out) / 1_000_000
            found.append(Usage(hour, model, key, prompt, completion, cost))
    return tuple(found)


def usage(seed: int, start: int, end: int, now: float) -> list[Usage]:
    """Every aggregate of an hour in ``[start, end)`` that has ended by ``now``."""
    found: list[Usage] = []
    hour = start // HOUR * HOUR
    while hour < end and hour + HOUR <= now:
        if hour >= start:
            found.extend(hour_usage(seed, hour))
        hour += HOUR
    return found
