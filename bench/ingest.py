"""Ingest throughput: OpenAI usage result rows per second through HTTP decode, parse and ledger."""

from __future__ import annotations

import asyncio
import gc
import json
import time
from typing import Any

import httpx

from exporter.config import DEFAULT_SETTLE_WINDOW
from exporter.ledger import Ledger
from exporter.pricing import Pricer
from exporter.providers.base import ProviderSettings
from exporter.providers.openai import OpenAIProvider
from exporter.records import DAY, day_start

MONTH = 1793491200  # 2026-11-01T00:00:00Z
NOW = MONTH + 30 * DAY - 3600


def completions_page(days: int, rows_per_day: int) -> bytes:
    """One page of 1d buckets, ``rows_per_day`` project x model results per bucket."""
    buckets = []
    for d in range(days):
        start = MONTH + d * DAY
        results = []
        for i in range(rows_per_day):
            results.append(
                {
                    "object": "organization.usage.completions.result",
                    "input_tokens": 182000 + i,
                    "input_cached_tokens": 64000,
                    "input_cache_write_tokens": 8000,
                    "input_uncached_tokens": 110000 + i,
                    "output_tokens": 41250,
                    "input_text_tokens": 104000 + i,
                    "output_text_tokens": 41250,
                    "input_cached_text_tokens": 64000,
                    "input_audio_tokens": 0,
                    "input_cached_audio_tokens": 0,
                    "output_audio_tokens": 0,
                    "input_image_tokens": 6000,
                    "input_cached_image_tokens": 0,
                    "output_image_tokens": 0,
                    "num_model_requests": 312,
                    "project_id": f"proj_{i // len(MODELS):05d}",
                    "user_id": None,
                    "api_key_id": None,
                    "model": MODELS[i % len(MODELS)],
                    "batch": False,
                    "service_tier": "default",
                }
            )
        buckets.append(
            {"object": "bucket", "start_time": start, "end_time": start + DAY, "results": results}
        )
    return json.dumps(
        {"object": "page", "data": buckets, "has_more": False, "next_page": None}
    ).encode()


RUNS = 5
MODELS = ("gpt-4.1-mini-2025-04-14", "gpt-4.1-2025-04-14", "o4-mini-2025-04-16", "gpt-4o")

EMPTY = json.dumps({"object": "page", "data": [], "has_more": False, "next_page": None}).encode()


def provider_for(page: bytes, group_by: tuple[str, ...] = ("model",)) -> OpenAIProvider:
    def handler(request: httpx.Request) -> httpx.Response:
        body = page if request.url.path.endswith("/completions") else EMPTY
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    settings = ProviderSettings(
        account="bench", api_key=lambda: "sk-admin-bench", group_by=group_by
    )
    return OpenAIProvider(
        settings, observe=lambda endpoint, code: None, transport=httpx.MockTransport(handler)
    )


class DecodeClock:
    """Seconds spent in httpx's JSON decoding, so a run can report the rest on its own."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._json = httpx.Response.json

    def __enter__(self) -> DecodeClock:
        clock, decode = self, self._json

        def timed_json(response: httpx.Response, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return decode(response, **kwargs)
            finally:
                clock.seconds += time.perf_counter() - started

        httpx.Response.json = timed_json  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        httpx.Response.json = self._json  # type: ignore[method-assign]


async def ingest(page: bytes, pricer: Pricer | None = None) -> tuple[float, float]:
    """(seconds end to end, seconds without JSON decoding) of a first poll of the month,
    done as the scheduler does it."""
    provider = provider_for(page, ("project", "model"))
    provider._names.resolve = _no_names  # type: ignore[method-assign]
    gc.collect()  # start each run from the same heap
    with DecodeClock() as decoding:
        started = time.perf_counter()
        result = await provider.fetch(MONTH, int(NOW))
        if pricer is not None:
            pricer.annotate("openai", "bench", result)
        Ledger().apply(result, NOW, settled_before=day_start(NOW - DEFAULT_SETTLE_WINDOW))
        elapsed = time.perf_counter() - started
    await provider.aclose()
    return elapsed, elapsed - decoding.seconds


async def _no_names(seen: object) -> dict[str, str]:
    return {}


def main() -> None:
    days, rows_per_day = 30, 2000
    page = completions_page(days, rows_per_day)
    rows = days * rows_per_day
    warm = Pricer()
    asyncio.run(ingest(page, warm))
    runs: dict[str, list[tuple[float, float]]] = {"plain": [], "new": [], "cached": []}
    # Interleaved, best of RUNS each: the host's speed drifts, and every kind should see
    # the same drift.
    for _ in range(RUNS):
        runs["plain"].append(asyncio.run(ingest(page)))
        # A new process's first poll: no price looked up yet, no series seen.
        runs["new"].append(asyncio.run(ingest(page, Pricer())))
        # A pricer that has seen these series (a later month, or a restart of the ledger).
        runs["cached"].append(asyncio.run(ingest(page, warm)))
    size = len(page) / 1e6
    print(f"ingest: {rows} completions rows ({size:.1f} MB page), first poll, best of {RUNS}")
    for kind, label in (
        ("plain", "parse + aggregate"),
        ("new", "parse + price + aggregate, new pricer"),
        ("cached", "parse + price + aggregate, prices cached"),
    ):
        total = min(t for t, _ in runs[kind])
        work = min(w for _, w in runs[kind])
        print(
            f"  {label}: {rows / work:,.0f} rows/s without JSON decoding (target >= 200,000); "
            f"{rows / total:,.0f} rows/s end to end ({total:.3f} s)"
        )


if __name__ == "__main__":
    main()
