"""Synthetic Claude Code analytics: one record per actor and UTC day, as of a point in time.

Values are a pure function of (seed, actor, day). The report only shows data older
than one hour, so a day's values are prorated up to ``now - LAG`` and only grow.
These numbers are independent of the simulated messages usage report.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Final

DAY = 86_400
LAG = 3_600


@dataclass(frozen=True, slots=True)
class Actor:
    """A Claude Code user (email) or API key (name)."""

    kind: str  # user_actor | api_actor
    name: str
    customer_type: str  # api | subscription
    terminal_type: str
    models: tuple[str, ...]
    activity: float


ACTORS: Final = (
    Actor("user_actor", "ada@example.com", "api", "vscode", ("claude-sonnet-4-5-20250929",), 1.0),
    Actor(
        "user_actor",
        "grace@example.com",
        "api",
        "iTerm.app",
        ("claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"),
        0.7,
    ),
    Actor("user_actor", "linus@example.com", "subscription", "ghostty", ("claude-opus-4-1",), 0.5),
    Actor(
        "api_actor", "ci-review-bot", "api", "non-interactive", ("claude-haiku-4-5-20251001",), 0.4
    ),
)
# USD per million tokens: input, output, cache read, cache write.
PRICES: Final = {
    "claude-sonnet-4-5-20250929": (Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75")),
    "claude-haiku-4-5-20251001": (Decimal(1), Decimal(5), Decimal("0.1"), Decimal("1.25")),
    "claude-opus-4-1": (Decimal(15), Decimal(75), Decimal("1.5"), Decimal("18.75")),
}
TOOLS: Final = ("edit_tool", "multi_edit_tool", "write_tool", "notebook_edit_tool")


@dataclass(frozen=True, slots=True)
class DayValues:
    """One actor's counters of one day (tokens per model: input, output, cache_read, creation)."""

    sessions: int
    added: int
    removed: int
    commits: int
    pull_requests: int
    tools: tuple[tuple[int, int], ...]  # (accepted, rejected) per TOOLS entry
    tokens: tuple[tuple[int, int, int, int], ...]  # per actor model

    def cents(self, model_index: int, model: str) -> Decimal:
        """Estimated cost in cents of one model's tokens (2 decimals, as a number)."""
        prices = PRICES[model]
        tokens = self.tokens[model_index]
        dollars = sum((Decimal(n) * p for n, p in zip(tokens, prices, strict=True)), Decimal(0))
        return (dollars / 10_000).quantize(Decimal("0.01"))  # per-million USD -> cents


class ClaudeCodeData:
    """Claude Code report values for one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._full = lru_cache(maxsize=4_096)(self._full_day)

    def _full_day(self, actor: Actor, day: int) -> tuple[int, ...] | None:
        rng = random.Random(f"{self.seed}:claude_code:{actor.name}:{day}")
        weekend = (day // DAY + 3) % 7 >= 5
        if rng.random() > actor.activity * (0.3 if weekend else 0.95):
            return None
        scale = actor.activity * (0.5 + rng.random())
        values = [
            max(1, int(6 * scale)),  # sessions
            int(900 * scale),  # lines added
            int(260 * scale),  # lines removed
            int(5 * scale),  # commits
            int(1.6 * scale),  # pull requests
        ]
        for _ in TOOLS:
            values += [int(25 * scale * rng.random()), int(4 * scale * rng.random())]
        for _ in actor.models:
            share = 0.4 + rng.random()
            values += [
                int(60_000 * scale * share),
                int(20_000 * scale * share),
                int(700_000 * scale * share),
                int(25_000 * scale * share),
            ]
        return tuple(values)

    def values(self, actor: Actor, day: int, now: float) -> DayValues | None:
        """The actor's day as the report shows it at ``now`` (None: no record)."""
        full = self._full(actor, day)
        cutoff = now - LAG
        if full is None or cutoff <= day:
            return None
        if cutoff < day + DAY:
            fraction = (cutoff - day) / DAY
            full = tuple(math.floor(v * fraction) for v in full)
            if not any(full):
                return None
        tools = tuple((full[5 + 2 * i], full[6 + 2 * i]) for i in range(len(TOOLS)))
        base = 5 + 2 * len(TOOLS)
        tokens = tuple(
            (full[i], full[i + 1], full[i + 2], full[i + 3])
            for i in range(base, base + 4 * len(actor.models), 4)
        )
        sessions, added, removed, commits, pull_requests = full[:5]
        return DayValues(sessions, added, removed, commits, pull_requests, tools, tokens)
