"""Daily cost lines priced from usage with the simulator's own small price tables.

Each line is rounded once (OpenAI: dollars to 6 decimals, Anthropic: cents to 4), and
every served amount is an exact Decimal sum of lines, so any grouping adds up.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from .catalog import (
    ANTHROPIC_PRICES,
    ANTHROPIC_STREAMS,
    ANTHROPIC_TIER_FACTOR,
    IMAGE_PRICES,
    MODEL_DISPLAY,
    OPENAI,
    OPENAI_STREAMS,
    OPENAI_TIER_FACTOR,
    OPENAI_TOKEN_PRICES,
    SPEECH_PRICE_PER_CHAR,
    TOOL_PRICES,
    TRANSCRIPTION_PRICE_PER_SECOND,
    WEB_SEARCH_CENTS,
    DimValue,
    Stream,
)

_DOLLAR_STEP = Decimal("0.000001")
_CENT_STEP = Decimal("0.0001")
_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class CostLine:
    """One billed line of one day: OpenAI amounts in dollars, Anthropic in cents."""

    amount: Decimal
    quantity: int
    unit: str | None
    fields: Mapping[str, DimValue]


def price_streams(provider: str, totals: list[tuple[int, ...] | None]) -> tuple[CostLine, ...]:
    """Cost lines for per-stream usage totals of one day, merged by identical fields."""
    if provider == OPENAI:
        lines = _openai_lines(zip(OPENAI_STREAMS, totals, strict=True))
    else:
        lines = _anthropic_lines(zip(ANTHROPIC_STREAMS, totals, strict=True))
    merged: dict[tuple[tuple[str, DimValue], ...], CostLine] = {}
    for line in lines:
        key = tuple(line.fields.items())
        old = merged.get(key)
        if old is not None:
            amount, quantity = old.amount + line.amount, old.quantity + line.quantity
            line = CostLine(amount, quantity, line.unit, line.fields)
        merged[key] = line
    return tuple(merged.values())


def _money(quantity: int, unit_price: Decimal, step: Decimal) -> Decimal:
    return (quantity * unit_price).quantize(step, ROUND_HALF_UP)


def _openai_line(
    base: Mapping[str, DimValue],
    model: str,
    name: str,
    quantity: int,
    unit: str | None,
    price: Decimal,
) -> CostLine:
    fields = {**base, "line_item": f"{model}, {name}"}
    return CostLine(_money(quantity, price, _DOLLAR_STEP), quantity, unit, fields)


def _openai_lines(rows: Iterator[tuple[Stream, tuple[int, ...] | None]]) -> Iterator[CostLine]:
    # UNVERIFIED: OpenAI's real line_item naming ("<model>, input" etc.) is not documented;
    # one live observation showed "Text tokens". The tier suffix is this simulator's own.
    for stream, values in rows:
        if values is None:
            continue
        dims = stream.dims
        model = str(dims["model"])
        base: dict[str, DimValue] = {
            "project_id": dims["project_id"],
            "api_key_id": dims["api_key_id"],
        }

        kind = stream.kind
        if kind == "completions":
            tier = "batch" if dims["batch"] else str(dims["service_tier"])
            factor = Decimal(str(OPENAI_TIER_FACTOR[tier]))
            suffix = "" if tier == "default" else f" ({tier})"
            _, ut, ua, ui, ct, ca, ci, cw, ot, oa, oi = values
            prices = OPENAI_TOKEN_PRICES[model]
            for name, quantity, price in (
                ("input", ut + ui + cw, prices[0]),
                ("cached input", ct + ci, prices[1]),
                ("output", ot + oi, prices[2]),
                ("audio input", ua, prices[3]),
                ("cached audio input", ca, prices[4]),
                ("audio output", oa, prices[5]),
            ):
                if quantity:
                    unit_price = Decimal(str(price)) * factor / _MILLION
                    yield _openai_line(base, model, name + suffix, quantity, "tokens", unit_price)
        elif kind == "embeddings":
            unit_price = Decimal(str(OPENAI_TOKEN_PRICES[model][0])) / _MILLION
            yield _openai_line(base, model, "input", values[1], "tokens", unit_price)
        elif kind == "images":
            size = str(dims["size"])
            yield _openai_line(
                base, model, f"images {size}", values[1], "images", Decimal(str(IMAGE_PRICES[size]))
            )
        elif kind == "audio_speeches":
            unit_price = Decimal(str(SPEECH_PRICE_PER_CHAR))
            yield _openai_line(base, model, "characters", values[1], "characters", unit_price)
        elif kind == "audio_transcriptions":
            unit_price = Decimal(str(TRANSCRIPTION_PRICE_PER_SECOND))
            yield _openai_line(
                base, model, "transcription", values[1], "duration_seconds", unit_price
            )
        elif kind in TOOL_PRICES:
            # UNVERIFIED: the line_item names of tool calls are this simulator's own.
            name = {
                "code_interpreter_sessions": "code interpreter sessions",
                "file_search_calls": "file search tool calls",
                "web_search_calls": "web search tool calls",
            }[kind]
            unit_price = Decimal(str(TOOL_PRICES[kind]))
            # No unit of the spec's list applies to calls: quantity_unit is null, as documented.
            yield _openai_line(base, model, name, values[1], None, unit_price)
        # moderations are free: no cost line


_TOKEN_LINES = (
    # (value index, description suffix, token_type) -- UNVERIFIED wire spelling of token_type
    # (taken from a third-party client) and invented description strings.
    (1, "Input Tokens", "uncached_input_tokens"),
    (2, "Cache Read Tokens", "cache_read_input_tokens"),
    (3, "Cache Write (5m) Tokens", "cache_creation.ephemeral_5m_input_tokens"),
    (4, "Cache Write (1h) Tokens", "cache_creation.ephemeral_1h_input_tokens"),
    (5, "Output Tokens", "output_tokens"),
)


def _anthropic_lines(rows: Iterator[tuple[Stream, tuple[int, ...] | None]]) -> Iterator[CostLine]:
    for stream, values in rows:
        dims = stream.dims
        tier = str(dims["service_tier"])
        if values is None or tier not in ANTHROPIC_TIER_FACTOR:
            continue  # Priority Tier costs are excluded from the cost report
        model, context = str(dims["model"]), str(dims["context_window"])
        factor = Decimal(str(ANTHROPIC_TIER_FACTOR[tier]))
        prices = ANTHROPIC_PRICES[(model, context)]
        label = MODEL_DISPLAY[model]
        label += " Batch" if tier == "batch" else ""
        label += " Long Context" if context != "0-200k" else ""
        for (index, suffix, token_type), price in zip(_TOKEN_LINES, prices, strict=True):
            quantity = values[index]
            if not quantity:
                continue
            cents_per_token = Decimal(str(price)) * 100 * factor / _MILLION
            fields: dict[str, DimValue] = {
                "workspace_id": dims["workspace_id"],
                "description": f"{label} Usage - {suffix}",
                "cost_type": "tokens",
                "model": model,
                "service_tier": tier,
                "token_type": token_type,
                "context_window": context,
                "inference_geo": dims["inference_geo"],
            }
            yield CostLine(_money(quantity, cents_per_token, _CENT_STEP), quantity, None, fields)
        searches = values[6]
        if searches:
            fields = {
                "workspace_id": dims["workspace_id"],
                "description": "Web Search Usage",
                "cost_type": "web_search",
                "model": None,
                "service_tier": None,
                "token_type": None,
                "context_window": None,
                "inference_geo": None,
            }
            amount = _money(searches, Decimal(str(WEB_SEARCH_CENTS)), _CENT_STEP)
            yield CostLine(amount, searches, None, fields)
