"""Deterministic Cursor team usage: request events as a pure function of (seed, hour).

A small team of four: two members whose requests are included in the Business plan and two
on usage-based pricing, charged at the simulator's own per-model rates. Events of a past hour
never change; the hour containing ``now`` shows the events whose time has come.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Final

from .data import HOUR, activity

MEMBERS: Final = (
    # (user id, email, name, role, usage-based?, hard limit override in dollars)
    (5001, "ana@demo.example", "Ana", "owner", False, None),
    (5002, "ben@demo.example", "Ben", "member", False, None),
    (5003, "chloe@demo.example", "Chloe", "member", True, 40),
    (5004, "dev@demo.example", "Dev", "member", True, None),
)
TEAM_PER_USER_LIMIT: Final = 12
"""Dollars a month a usage-based member may spend unless overridden (Dev: forecast above it)."""
# Dollars per million tokens: input, output, cache read, cache write.
RATES: Final = {
    "claude-4-sonnet-thinking": (Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75")),
    "gpt-5": (Decimal("1.25"), Decimal(10), Decimal("0.125"), Decimal(0)),
    "gemini-2.5-pro": (Decimal("1.25"), Decimal(10), Decimal("0.31"), Decimal(0)),
}
MODELS: Final = tuple(RATES)
INCLUDED, USAGE_BASED = "Included in Business", "Usage-based"


@dataclass(frozen=True, slots=True)
class Event:
    """One request, as ``/teams/filtered-usage-events`` lists it."""

    ms: int
    email: str
    model: str
    kind: str
    tokens: tuple[int, int, int, int]  # input, output, cache read, cache write (disjoint)
    total_cents: Decimal  # what the tokens cost at the model's rates
    charged_cents: Decimal  # what was billed: the total for usage-based requests, else 0
    max_mode: bool


@lru_cache(maxsize=4096)
def hour_events(seed: int, hour: int) -> tuple[Event, ...]:
    """The events of the hour starting at ``hour`` (Unix seconds)."""
    rng = random.Random(f"cursor:{seed}:{hour}")
    events = []
    for index, (_, email, _, _, usage_based, _) in enumerate(MEMBERS):
        # Up to two requests a working hour per member, fewer at night and at weekends.
        for _ in range(rng.randint(0, round(2 * activity(hour)))):
            model = MODELS[(index + rng.randint(0, 2)) % len(MODELS)]
            tokens = (
                rng.randint(500, 20_000),
                rng.randint(100, 4_000),
                rng.randint(0, 60_000),
                rng.randint(0, 8_000) if model == MODELS[0] else 0,
            )
            total = sum(
                (Decimal(n) * rate for n, rate in zip(tokens, RATES[model], strict=True)),
                Decimal(0),
            ) / 10_000  # dollars per million tokens -> cents per token
            events.append(
                Event(
                    ms=hour * 1000 + rng.randint(0, HOUR * 1000 - 1),
                    email=email,
                    model=model,
                    kind=USAGE_BASED if usage_based else INCLUDED,
                    tokens=tokens,
                    total_cents=total,
                    charged_cents=total if usage_based else Decimal(0),
                    max_mode=rng.random() < 0.1,
                )
            )
    return tuple(sorted(events, key=lambda e: e.ms))


def events(seed: int, start_ms: int, end_ms: int, now: float) -> list[Event]:
    """Every event with ``start_ms <= ms <= end_ms`` (inclusive, as Cursor's endDate) that
    has happened by ``now``."""
    now_ms = int(now * 1000)
    last = min(end_ms, now_ms - 1)
    found: list[Event] = []
    hour = start_ms // 1000 // HOUR * HOUR
    while hour * 1000 <= last:
        found.extend(e for e in hour_events(seed, hour) if start_ms <= e.ms <= last)
        hour += HOUR
    return found
