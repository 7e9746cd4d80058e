"""Ingest throughput: usage result rows per second through a first poll of the month.

For OpenAI's completions and Anthropic's messages usage reports: a page of
30 days x 2,000 project x model rows is fetched (over a mock transport),
priced, and applied to a new ledger, as the scheduler does. Each run times
the JSON decoding on its own, so the figures without it are the
exporter's own work (parse, price, aggregate).
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from exporter.config.schema import DEFAULT_SETTLE_WINDOW
from exporter.core.ledger import Ledger
from exporter.core.pricing import Pricer
from exporter.core.records import DAY, day_start
from exporter.sources.providers import client
from exporter.sources.providers.anthropic import AnthropicProvider
from exporter.sources.providers.base import ProviderSettings
from exporter.sources.providers.client import HttpProvider
from exporter.sources.providers.fields import rfc3339
from exporter.sources.providers.openai import OpenAIProvider

MONTH = 1793491200  # 2026-11-01T00:00:00Z
NOW = MONTH + 30 * DAY - 3600
DAYS, ROWS_PER_DAY = 30, 2000
RUNS = 5
FLOOR = 60_000
"""Rows per second end to end (JSON decoding included) that a first poll must not go under."""
OPENAI_MODELS = ("gpt-4.1-mini-2025-04-14", "gpt-4.1-2025-04-14", "o4-mini-2025-04-16", "gpt-4o")
ANTHROPIC_MODELS = (
    "claude-sonnet-4-5-20250929",
    "claude-opus-4-1-20250805",
    "claude-haiku-4-5-20251001",
    "claude-3-5-haiku-20241022",
)


def completions_page(days: int, rows_per_day: int) -> bytes:
    """One page of 1d buckets, ``rows_per_day`` project x model results per bucket."""
    buckets = []
    for d in range(days):
        start = MONTH + d * DAY
        results = [
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
                "project_id": f"proj_{i // len(OPENAI_MODELS):05d}",
                "user_id": None,
                "api_key_id": None,
                "model": OPENAI_MODELS[i % len(OPENAI_MODELS)],
                "batch": False,
                "service_tier": "default",
            }
            for i in range(rows_per_day)
        ]
        buckets.append(
            {"object": "bucket", "start_time": start, "end_time": start + DAY, "results": results}
        )
    page = {"object": "page", "data": buckets, "has_more": False, "next_page": None}
    return json.dumps(page).encode()


def messages_page(days: int, rows_per_day: int) -> bytes:
    """One page of Anthropic 1d buckets, ``rows_per_day`` workspace x model results each."""
    buckets = []
    for d in range(days):
        start = MONTH + d * DAY
        results = [
            {
                "uncached_input_tokens": 48210 + i,
                "cache_read_input_tokens": 912400,
                "cache_creation": {
                    "ephemeral_5m_input_tokens": 15300,
                    "ephemeral_1h_input_tokens": 2100,
                },
                "output_tokens": 22180,
                "server_tool_use": {"web_search_requests": 3},
                "api_key_id": None,
                "workspace_id": f"wrkspc_{i // len(ANTHROPIC_MODELS):05d}",
                "account_id": None,
                "service_account_id": None,
                "model": ANTHROPIC_MODELS[i % len(ANTHROPIC_MODELS)],
                "service_tier": "standard",
                "context_window": "0-200k",
                "inference_geo": None,
            }
            for i in range(rows_per_day)
        ]
        buckets.append(
            {"starting_at": rfc3339(start), "ending_at": rfc3339(start + DAY), "results": results}
        )
    return json.dumps({"data": buckets, "has_more": False, "next_page": None}).encode()


@dataclass(frozen=True)
class Case:
    """One provider's usage report: its page and the provider that reads it."""

    provider: type[HttpProvider]
    usage_path: str
    page: Callable[[int, int], bytes]


CASES = (
    Case(OpenAIProvider, "/organization/usage/completions", completions_page),
    Case(AnthropicProvider, "/v1/organizations/usage_report/messages", messages_page),
)
EMPTY = json.dumps({"object": "page", "data": [], "has_more": False, "next_page": None}).encode()


def provider_for(case: Case, page: bytes) -> HttpProvider:
    """``case``'s provider, answering its usage report with ``page`` and nothing elsewhere."""

    def handler(request: httpx.Request) -> httpx.Response:
        body = page if request.url.path.endswith(case.usage_path) else EMPTY
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    settings = ProviderSettings(
        account="bench", api_key=lambda: "sk-admin-bench", group_by=("project", "model")
    )
    provider = case.provider(
        settings, observe=lambda endpoint, code: None, transport=httpx.MockTransport(handler)
    )
    provider._names.resolve = _no_names  # type: ignore[method-assign]
    return provider


class DecodeClock:
    """Seconds spent decoding JSON bodies, so a run can report the rest on its own."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._decode = client.decode_json

    def __enter__(self) -> DecodeClock:
        clock, decode = self, self._decode

        def timed(content: bytes) -> Any:
            started = time.perf_counter()
            try:
                return decode(content)
            finally:
                clock.seconds += time.perf_counter() - started

        client.decode_json = timed
        return self

    def __exit__(self, *exc: object) -> None:
        client.decode_json = self._decode


async def ingest(case: Case, page: bytes, pricer: Pricer | None = None) -> tuple[float, float]:
    """(seconds end to end, seconds without JSON decoding) of a first poll of the month,
    done as the scheduler does it."""
    provider = provider_for(case, page)
    gc.collect()  # start each run from the same heap
    with DecodeClock() as decoding:
        started = time.perf_counter()
        result = await provider.fetch(MONTH, int(NOW))
        for batch in result.batches:
            batch.credits_apart()
        if pricer is not None:
            pricer.annotate(provider.name, "bench", result)
        Ledger().apply(result, NOW, settled_before=day_start(NOW - DEFAULT_SETTLE_WINDOW))
        elapsed = time.perf_counter() - started
    await provider.aclose()
    return elapsed, elapsed - decoding.seconds


async def _no_names(seen: object) -> dict[str, str]:
    return {}


def first_poll_peak(name: str, page_file: str) -> None:
    """In this (fresh) interpreter: one first poll of ``name``'s page, then print peak RSS."""
    from bench.memory import rss_mb

    case = next(case for case in CASES if case.provider.name == name)
    page = Path(page_file).read_bytes()
    before = rss_mb("VmHWM")
    asyncio.run(ingest(case, page, Pricer()))
    print(f"{rss_mb('VmHWM'):.0f} {before:.0f}")


def peak_line(case: Case, page: bytes) -> str:
    """The first-poll peak RSS of ``case`` for ``page``, measured in a fresh interpreter."""
    with tempfile.NamedTemporaryFile(suffix=".json") as file:
        file.write(page)
        file.flush()
        out = subprocess.run(
            [sys.executable, "-m", "bench.ingest", "--peak", case.provider.name, file.name],
            cwd=Path(__file__).resolve().parent.parent,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
    return f"  first poll in a new process: peak RSS {out[0]} MB (before the poll {out[1]} MB)"


def main() -> None:
    if sys.argv[1:2] == ["--peak"]:
        first_poll_peak(sys.argv[2], sys.argv[3])
        return
    rows = DAYS * ROWS_PER_DAY
    for case in CASES:
        page = case.page(DAYS, ROWS_PER_DAY)
        warm = Pricer()
        asyncio.run(ingest(case, page, warm))
        runs: dict[str, list[tuple[float, float]]] = {"plain": [], "new": [], "cached": []}
        # Interleaved, best of RUNS each: the host's speed drifts, and every kind should see
        # the same drift.
        for _ in range(RUNS):
            runs["plain"].append(asyncio.run(ingest(case, page)))
            # A new process's first poll: no price looked up yet, no series seen.
            runs["new"].append(asyncio.run(ingest(case, page, Pricer())))
            # A pricer that has seen these series (a later month, or a restart of the ledger).
            runs["cached"].append(asyncio.run(ingest(case, page, warm)))
        size = len(page) / 1e6
        print(
            f"ingest {case.provider.name}: {rows} usage rows ({size:.1f} MB page), "
            f"first poll, best of {RUNS}"
        )
        for kind, label in (
            ("plain", "parse + aggregate"),
            ("new", "parse + price + aggregate, new pricer"),
            ("cached", "parse + price + aggregate, prices cached"),
        ):
            total = min(t for t, _ in runs[kind])
            work = min(w for _, w in runs[kind])
            print(
                f"  {label}: {rows / total:,.0f} rows/s end to end (floor {FLOOR:,}; "
                f"{total:.3f} s), {rows / work:,.0f} rows/s without JSON decoding"
            )
        print(peak_line(case, page))


if __name__ == "__main__":
    main()
