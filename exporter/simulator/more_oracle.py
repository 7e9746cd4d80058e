"""Ground truth for the OpenRouter, DeepSeek and Groq simulators (from the data, not the HTTP)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from . import deepseek_api, openrouter_api
from .data import DAY
from .more_data import (
    GROQ_STATUS_CODES,
    GROQ_STREAMS,
    MICRO,
    ROUTER_ENDPOINTS,
    ROUTER_KEYS,
    ROUTER_TOTAL_CREDITS,
    ROUTER_WORKSPACES,
    SLOT,
    MoreData,
)

Expected = dict[str, Any]


def expected_openrouter(data: MoreData, start: int, end: int, now: float) -> Expected:
    """Activity of the completed days in ``[start, end)``, credits and today's key spend.

    Keys: ``tokens`` (workspace, model, token_type), ``requests``/``reasoning``/``cost``
    (workspace, model); ``credits`` and ``today`` (every workspace's keys) in dollars;
    ``workspace_names`` by id.
    """
    days = [d for d in openrouter_api.completed_days(now) if start <= d < end]
    counts: defaultdict[str, defaultdict[tuple[str, ...], int]] = defaultdict(
        lambda: defaultdict(int)
    )
    micro: defaultdict[tuple[str, ...], int] = defaultdict(int)
    for index, key in enumerate(ROUTER_KEYS):
        for endpoint in key.endpoints:
            model = ROUTER_ENDPOINTS[endpoint].model
            where = (key.workspace_id, model)
            for day in days:
                requests, prompt, completion, reasoning, cost = data.router_day(
                    index, endpoint, day
                )
                counts["requests"][where] += requests
                counts["tokens"][(*where, "input")] += prompt
                counts["tokens"][(*where, "output")] += completion
                counts["reasoning"][where] += reasoning
                micro[where] += cost
    out: Expected = {
        name: {k: float(v) for k, v in values.items() if v} for name, values in counts.items()
    }
    out["cost"] = {k: float(Decimal(v) / MICRO) for k, v in micro.items() if v}
    spent = openrouter_api.total_usage(data, now)
    out["credits"] = float(Decimal(ROUTER_TOTAL_CREDITS - spent) / MICRO)
    today = int(now) // DAY * DAY
    # Every key of every workspace (the exporter lists each workspace's keys).
    every = range(len(ROUTER_KEYS))
    out["today"] = float(sum(Decimal(data.router_spend(i, today, now)) for i in every) / MICRO)
    out["workspace_names"] = dict(ROUTER_WORKSPACES)
    return out


def expected_groq(data: MoreData, start: int, end: int, now: float) -> Expected:
    """Tokens (project, model, token_type), requests (project, model, status code) in
    ``(start, end]``."""
    tokens: defaultdict[tuple[str, ...], float] = defaultdict(float)
    requests: defaultdict[tuple[str, ...], float] = defaultdict(float)
    last = int(min(end, now)) // SLOT * SLOT
    for stream, (project, model, *_) in enumerate(GROQ_STREAMS):
        for slot_end in range(start + SLOT, last + 1, SLOT):
            values = data.groq_slot(stream, slot_end)
            tokens_in, hits, out = values[:3]
            tokens[(project, model, "input")] += tokens_in - hits
            tokens[(project, model, "input_cache_read")] += hits
            tokens[(project, model, "output")] += out
            for i, code in enumerate(GROQ_STATUS_CODES):
                requests[(project, model, code)] += values[3 + i]
    return {
        "tokens": {k: v for k, v in tokens.items() if v},
        "requests": {k: v for k, v in requests.items() if v},
    }


def expected_deepseek(data: MoreData, now: float) -> float | None:
    """The balance in dollars, or None when it is not in USD (nothing may be exported)."""
    currency, granted, topped_up = deepseek_api.balance(data, now)
    return (granted + topped_up) / 100 if currency == "USD" else None
