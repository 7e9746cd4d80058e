"""Ingest throughput: OpenAI usage result rows per second through HTTP decode, parse and ledger."""

from __future__ import annotations

import asyncio
import gc
import json
import time

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


async def ingest(page: bytes, pricer: Pricer | None = None) -> float:
    """Seconds for a first poll of the month, done as the scheduler does it."""
    provider = provider_for(page, ("project", "model"))
    provider._names.resolve = _no_names  # type: ignore[method-assign]
    gc.collect()  # start each run from the same heap
    started = time.perf_counter()
    result = await provider.fetch(MONTH, int(NOW))
    if pricer is not None:
        pricer.annotate("openai", "bench", result)
    Ledger().apply(result, NOW, settled_before=day_start(NOW - DEFAULT_SETTLE_WINDOW))
    elapsed = time.perf_counter() - started
    await provider.aclose()
    return elapsed


async def _no_names(seen: object) -> dict[str, str]:
    return {}


def main() -> None:
    days, rows_per_day = 30, 2000
    page = completions_page(days, rows_per_day)
    rows = days * rows_per_day
    best = min(asyncio.run(ingest(page)) for _ in range(RUNS))
    decode = min(_timed(lambda: json.loads(page)) for _ in range(RUNS))
    # A new process's first poll: no price looked up yet, no series seen.
    priced = min(asyncio.run(ingest(page, Pricer())) for _ in range(RUNS))
    warm = Pricer()
    asyncio.run(ingest(page, warm))
    # A pricer that has seen these series (a later month, or a restart of the ledger only).
    steady = min(asyncio.run(ingest(page, warm)) for _ in range(RUNS))
    print(
        f"ingest: {rows} completions rows ({len(page) / 1e6:.1f} MB page) in {best:.3f} s: "
        f"{rows / best:,.0f} rows/s end to end; JSON decoding alone {decode:.3f} s; "
        f"parse + aggregate {rows / (best - decode):,.0f} rows/s (target >= 200,000)"
    )
    print(
        f"ingest with pricing, new process: {priced:.3f} s: {rows / priced:,.0f} rows/s "
        f"end to end; parse + price + aggregate {rows / (priced - decode):,.0f} rows/s "
        f"(target >= 200,000)"
    )
    print(
        f"ingest with pricing, prices cached: {steady:.3f} s: {rows / steady:,.0f} rows/s "
        f"end to end; parse + price + aggregate {rows / (steady - decode):,.0f} rows/s"
    )


def _timed(fn: object) -> float:
    assert callable(fn)
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
