"""Deterministic Codex usage of a ChatGPT workspace: per user, UTC day and model, the text
tokens and the credits they cost at OpenAI's Codex rate card, a pure function of (seed, day).

A day's row appears once the day is over. Some credits of a day (cloud tasks, code review)
are in the row's totals without a model, as the real API's totals can exceed its models.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Final

from .data import DAY, activity

USERS: Final = (
    ("user-7Qk2", "ana@demo.example"),
    ("user-9Lm4", "ben@demo.example"),
    ("user-3Xp8", "chloe@demo.example"),
)
# Credits per million uncached input, cached input and output tokens (the Codex rate card).
RATES: Final = {
    "gpt-5.5": (Decimal(125), Decimal("12.5"), Decimal(750)),
    "gpt-5.4-mini": (Decimal("18.75"), Decimal("1.875"), Decimal("112.5")),
}
MODELS: Final = tuple(RATES)


@dataclass(frozen=True, slots=True)
class ModelDay:
    """One user's use of one model on one day."""

    model: str
    tokens: tuple[int, int, int]  # uncached input, cached input, output
    credits: Decimal


@dataclass(frozen=True, slots=True)
class UserDay:
    """One user's row of one day: by model, and credits no model is named for."""

    day: int
    user_id: str
    email: str
    models: tuple[ModelDay, ...]
    unattributed: Decimal

    @property
    def credits(self) -> Decimal:
        """The row's total credits."""
        return sum((m.credits for m in self.models), self.unattributed)


@lru_cache(maxsize=1024)
def day_rows(seed: int, day: int) -> tuple[UserDay, ...]:
    """The rows of the UTC day starting at ``day``; users idle that day have none."""
    rng = random.Random(f"chatgpt:{seed}:{day}")
    level = sum(activity(day + h * 3600) for h in range(24)) / 24
    rows = []
    for user_id, email in USERS:
        if rng.random() > 0.2 + 2 * level:
            continue
        used = []
        for model in MODELS:
            if rng.random() < 0.3:
                continue
            tokens = (rng.randint(50_000, 400_000), rng.randint(200_000, 2_000_000),
                      rng.randint(5_000, 40_000))
            credits = sum((Decimal(n) * r for n, r in zip(tokens, RATES[model], strict=True)),
                          Decimal(0)) / 1_000_000
            used.append(ModelDay(model, tokens, credits.quantize(Decimal("0.0001"))))
        extra = Decimal(rng.choice((0, 0, 0, 5, 12))) / 2
        if used or extra:
            rows.append(UserDay(day, user_id, email, tuple(used), extra))
    return tuple(rows)


def rows(seed: int, start: int, end: int, now: float) -> list[UserDay]:
    """The rows of the days in ``[start, end)`` that are over by ``now``, in time order."""
    found: list[UserDay] = []
    day = start // DAY * DAY
    while day < end and day + DAY <= now:
        found.extend(day_rows(seed, day))
        day += DAY
    return found
