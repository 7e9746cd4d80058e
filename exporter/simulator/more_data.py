"""Synthetic accounts of the simulated OpenRouter, DeepSeek and Groq APIs.

Every value is a pure function of (seed, stream, hour or 5-minute slot), so past
values never change and the oracle recomputes exactly what the servers serve.
Money is kept in integer micro-dollars (OpenRouter) or cents (DeepSeek).
"""

from __future__ import annotations

import hashlib
import math
import struct
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Final

from .data import DAY, HOUR, activity

SLOT: Final = 300  # Groq's rate window
MICRO: Final = Decimal(1_000_000)

# ------------------------------------------------------------------------------ OpenRouter


@dataclass(frozen=True, slots=True)
class RouterEndpoint:
    """One model served by one upstream provider; prices in micro-dollars per 100 tokens."""

    model: str
    permaslug: str
    provider_name: str
    endpoint_id: str
    price_in: int
    price_out: int
    reasoning: float  # share of completion tokens that are reasoning tokens


@dataclass(frozen=True, slots=True)
class RouterKey:
    """An inference key of the simulated OpenRouter account."""

    hash: str
    name: str
    label: str
    workspace_id: str
    disabled: bool
    created_at: str
    endpoints: tuple[int, ...]  # indexes into ROUTER_ENDPOINTS it calls
    rate: float  # requests per peak hour and endpoint
    member: str = ""  # the organization member who created it (its usage is theirs)


DEFAULT_WORKSPACE: Final = "4c1e2a7b-0d3f-4e5a-9b8c-1d2e3f4a5b6c"
RESEARCH_WORKSPACE: Final = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
ROUTER_WORKSPACES: Final = ((DEFAULT_WORKSPACE, "Default"), (RESEARCH_WORKSPACE, "Research"))
OWNER: Final = "user_2sImULaTeD0penR0uTer00000"
RESEARCHER: Final = "user_2sImULaTeDRes3archer0000"
ROUTER_MEMBERS: Final = (
    (OWNER, "ops@example.com", "Olivia", "Ops", "org:admin"),
    (RESEARCHER, "research@example.com", "Rahul", "Search", "org:member"),
)
ROUTER_ENDPOINTS: Final = (
    RouterEndpoint(
        "anthropic/claude-sonnet-4.5",
        "anthropic/claude-sonnet-4.5-20250929",
        "Anthropic",
        "0b9c5c6e-8a63-4a3f-9f56-2d8c7e1f4a10",
        300,
        1500,
        0.0,
    ),
    RouterEndpoint(
        "anthropic/claude-sonnet-4.5",
        "anthropic/claude-sonnet-4.5-20250929",
        "Google Vertex",
        "5d0e2a41-77c3-4b0e-8f0a-1c2b3d4e5f60",
        300,
        1500,
        0.0,
    ),
    RouterEndpoint(
        "openai/gpt-5-mini",
        "openai/gpt-5-mini-2025-08-07",
        "OpenAI",
        "9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
        25,
        200,
        0.6,
    ),
    RouterEndpoint(
        "deepseek/deepseek-chat-v3.1:free",
        "deepseek/deepseek-chat-v3.1",
        "Chutes",
        "1a2b3c4d-5e6f-4a1b-9c8d-7e6f5a4b3c2d",
        0,
        0,
        0.0,
    ),
    RouterEndpoint(
        "google/gemini-2.5-flash",
        "google/gemini-2.5-flash",
        "Google AI Studio",
        "7c6b5a49-3827-4615-a4b3-c2d1e0f9a8b7",
        30,
        250,
        0.3,
    ),
)
ROUTER_KEYS: Final = (
    RouterKey(
        "3f1b9d0c6e2a4f8b7d5c3e1a9f0b2d4c6e8a1f3b5d7c9e0a2b4d6f8a1c3e5b7d",
        "ci-bot",
        "sk-or-v1-3f1...b7d",
        DEFAULT_WORKSPACE,
        False,
        "2025-11-02T09:15:00Z",
        (2, 3),
        40.0,
        OWNER,
    ),
    RouterKey(
        "a3c1e0f9b2d84c6e9f1a7b5d3c2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e",
        "prod-backend",
        "sk-or-v1-a3c...d4e",
        DEFAULT_WORKSPACE,
        False,
        "2025-03-01T08:00:00Z",
        (0, 1, 4),
        90.0,
        OWNER,
    ),
    RouterKey(
        "5e7a9c1e3b5d7f9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e9b1d3f5a7c9e1b3d5f7a",
        "research",
        "sk-or-v1-5e7...f7a",
        RESEARCH_WORKSPACE,
        False,
        "2025-09-10T12:00:00Z",
        (0, 2),
        15.0,
        RESEARCHER,
    ),
    RouterKey(
        "0c0ffee00000000000000000000000000000000000000000000000000000dead",
        "old-prototype",
        "sk-or-v1-0c0...ead",
        DEFAULT_WORKSPACE,
        True,
        "2024-01-01T00:00:00Z",
        (),
        0.0,
        OWNER,
    ),
)
ROUTER_TOTAL_CREDITS: Final = 2_000_000_000  # micro-dollars purchased ($2,000)
ROUTER_PRIOR_USAGE: Final = 412_330_000  # micro-dollars spent before the simulated history

# Values of one (key, endpoint) in one hour: requests, prompt, completion, reasoning, cost.
RouterValues = tuple[int, int, int, int, int]

# ------------------------------------------------------------------------------ Groq

GROQ_PROJECTS: Final = ("project_01hx9k2m3nq4r5s6t7v8w9x0yz", "project_01hy2b3c4d5e6f7g8h9j0k1m2n")
GROQ_STREAMS: Final = (
    # (project_id, model, requests per peak 5 minutes, prompt/request, completion/request)
    (GROQ_PROJECTS[0], "llama-3.3-70b-versatile", 120.0, 900, 220),
    (GROQ_PROJECTS[0], "openai/gpt-oss-120b", 40.0, 2400, 700),
    (GROQ_PROJECTS[1], "llama-3.1-8b-instant", 300.0, 300, 80),
)
GROQ_STATUS_CODES: Final = ("200", "429", "500")
# Values of one stream in one slot: tokens_in, cache_hits, tokens_out, then requests per status.
GroqValues = tuple[int, ...]

# ------------------------------------------------------------------------------ DeepSeek

DEEPSEEK_TOPPED_UP_CENTS: Final = 8_000  # $80.00 at the start of every month
DEEPSEEK_GRANTED_CENTS: Final = 500


def _uniform(seed: int, *parts: object) -> tuple[float, ...]:
    """Four independent uniforms in [0, 1) from a hash of ``parts``."""
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=16).digest()
    return tuple(x / 2**32 for x in struct.unpack("<4I", digest))


class MoreData:
    """Values of the OpenRouter, DeepSeek and Groq accounts for one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.deepseek_currency = "USD"  # "CNY" shows the unconvertible-balance path
        self._router_hour = lru_cache(maxsize=16_384)(self._make_router_hour)
        self._router_day = lru_cache(maxsize=2_048)(self._make_router_day)
        self._groq_day = lru_cache(maxsize=256)(self._make_groq_day)

    # --------------------------------------------------------------- OpenRouter
    def _make_router_hour(self, key: int, endpoint: int, hour: int) -> RouterValues:
        spec, ep = ROUTER_KEYS[key], ROUTER_ENDPOINTS[endpoint]
        u_idle, u_volume, u_prompt, u_completion = _uniform(self.seed, "or", key, endpoint, hour)
        level = activity(hour)
        if u_idle < 0.5 - 0.45 * level:
            return (0, 0, 0, 0, 0)
        requests = int(spec.rate * level * (0.5 + u_volume))
        prompt = requests * int(1200 * (0.5 + u_prompt))
        completion = requests * int(400 * (0.5 + u_completion))
        reasoning = int(completion * ep.reasoning)
        cost = (prompt * ep.price_in + completion * ep.price_out) // 100
        return (requests, prompt, completion, reasoning, cost)

    def router_hour(self, key: int, endpoint: int, hour: int, until: float) -> RouterValues:
        """One hour's values, prorated when the hour is not over at ``until``."""
        full = self._router_hour(key, endpoint, hour)
        if hour + HOUR <= until:
            return full
        if until <= hour:
            return (0, 0, 0, 0, 0)
        fraction = (until - hour) / HOUR
        return tuple(math.floor(v * fraction) for v in full)  # type: ignore[return-value]

    def _make_router_day(self, key: int, endpoint: int, day: int) -> RouterValues:
        sums = [0, 0, 0, 0, 0]
        for hour in range(day, day + DAY, HOUR):
            for i, v in enumerate(self._router_hour(key, endpoint, hour)):
                sums[i] += v
        return tuple(sums)  # type: ignore[return-value]

    def router_day(self, key: int, endpoint: int, day: int) -> RouterValues:
        """A complete UTC day of one key on one endpoint."""
        return self._router_day(key, endpoint, day)

    def router_spend(self, key: int, start: int, until: float) -> int:
        """Micro-dollars key ``key`` spent in ``[start, until)`` (``start`` a UTC midnight)."""
        total = 0
        for endpoint in ROUTER_KEYS[key].endpoints:
            day = start
            while day + DAY <= until:
                total += self.router_day(key, endpoint, day)[4]
                day += DAY
            for hour in range(day, math.ceil(until / HOUR) * HOUR, HOUR):
                total += self.router_hour(key, endpoint, hour, until)[4]
        return total

    # ---------------------------------------------------------------------- Groq
    def _make_groq_day(self, stream: int, day: int) -> tuple[GroqValues, ...]:
        _, _, rate, prompt_mean, completion_mean = GROQ_STREAMS[stream]
        slots = []
        for slot_end in range(day + SLOT, day + DAY + SLOT, SLOT):
            u_idle, u_volume, u_cache, u_fail = _uniform(self.seed, "groq", stream, slot_end)
            level = activity(slot_end - SLOT)
            requests = 0 if u_idle < 0.4 - 0.38 * level else int(rate * level * (0.5 + u_volume))
            if requests == 0:
                slots.append((0, 0, 0, 0, 0, 0))
                continue
            tokens_in = requests * prompt_mean
            cache_hits = int(tokens_in * 0.6 * u_cache)
            tokens_out = requests * completion_mean
            limited = int(requests * 0.08 * u_fail)
            errors = 1 if u_fail > 0.97 else 0
            slots.append(
                (tokens_in, cache_hits, tokens_out, requests - limited - errors, limited, errors)
            )
        return tuple(slots)

    def groq_slot(self, stream: int, slot_end: int) -> GroqValues:
        """Values of the 5 minutes ``(slot_end - 300, slot_end]`` of one stream."""
        day = (slot_end - SLOT) // DAY * DAY
        return self._groq_day(stream, day)[(slot_end - day) // SLOT - 1]

    # ------------------------------------------------------------------ DeepSeek
    def deepseek_cents(self, month: int, now: float) -> tuple[int, int]:
        """(granted, topped-up) balance in cents at ``now``; spend is billed hourly."""
        spent = 0
        for hour in range(month, int(now) // HOUR * HOUR, HOUR):
            u = _uniform(self.seed, "deepseek", hour)[0]
            spent += int(40 * activity(hour) * u)
        granted = max(0, DEEPSEEK_GRANTED_CENTS - spent)
        topped_up = DEEPSEEK_TOPPED_UP_CENTS - max(0, spent - DEEPSEEK_GRANTED_CENTS)
        return granted, topped_up


def dollars(micro: int) -> float:
    """Micro-dollars as the float the API serves (shortest repr of the exact decimal)."""
    return float(Decimal(micro) / MICRO)
