"""Estimated cost: per-token list prices on the day of use, overrides, discounts, unpriced."""

from __future__ import annotations

import logging
import math

import pytest

from exporter.core.pricing import Discount, PriceOverride, Pricer, PricingConfig
from exporter.core.records import (
    DAY,
    Batch,
    Dataset,
    Dims,
    Family,
    FetchResult,
    SeriesKey,
)

NOV2 = 1793577600  # 2026-11-02T00:00:00Z
SONNET = Dims("wrk_a", "claude-sonnet-4-5-20250929")
MINI = Dims("proj_a", "gpt-4.1-mini-2025-04-14")
M = 1_000_000


def tokens(
    dims: Dims, token_type: str, modality: str = "text", tier: str = "standard"
) -> SeriesKey:
    return (Family.TOKENS, dims, (token_type, modality, tier))


def priced(
    provider: str,
    series: dict[SeriesKey, float],
    *,
    day: int = NOV2,
    long_context: dict[SeriesKey, float] | None = None,
    config: PricingConfig | None = None,
    account: str = "acct",
) -> dict[SeriesKey, float]:
    batch = Batch(Dataset.USAGE, day, day + DAY)
    long_context = long_context or {}
    for key, value in series.items():
        # ``series`` counts every token; ``long_context`` those of it at the long-context tier.
        batch.add(day, key, value - long_context.get(key, 0.0))
        batch.add(day, key, long_context.get(key, 0.0), long_context=True)
    Pricer(config).annotate(provider, account, FetchResult([batch]))
    return {
        k: v
        for k, v in batch.days[day].items()
        if k[0] in (Family.ESTIMATED_COST, Family.UNPRICED_TOKENS)
    }


def cost(dims: Dims, token_type: str, tier: str) -> SeriesKey:
    return (Family.ESTIMATED_COST, dims, (token_type, tier))


def assert_costs(actual: dict[SeriesKey, float], expected: dict[SeriesKey, float]) -> None:
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        assert math.isclose(actual[key], value, rel_tol=1e-12), (key, actual[key], value)


def test_each_anthropic_token_type_has_its_own_price() -> None:
    result = priced(
        "anthropic",
        {
            tokens(SONNET, "input"): 2 * M,
            tokens(SONNET, "input_cache_read"): 10 * M,
            tokens(SONNET, "input_cache_write"): M,
            tokens(SONNET, "input_cache_write_1h"): M,
            tokens(SONNET, "output"): M // 2,
        },
    )
    assert_costs(
        result,
        {
            cost(SONNET, "input", "standard"): 6.0,  # $3 / Mtok
            cost(SONNET, "input_cache_read", "standard"): 3.0,  # $0.30
            cost(SONNET, "input_cache_write", "standard"): 3.75,  # 5-minute write $3.75
            cost(SONNET, "input_cache_write_1h", "standard"): 6.0,  # 1-hour write $6
            cost(SONNET, "output", "standard"): 7.5,  # $15
        },
    )


def test_long_context_tier_only_for_tokens_the_provider_reports_at_that_tier() -> None:
    # 1M input tokens in one day is far above 200k, yet only the 400k reported with
    # context_window 200k-1M are billed at the long-context price ($6 instead of $3).
    key = tokens(SONNET, "input")
    result = priced("anthropic", {key: M}, long_context={key: 400_000})
    assert_costs(result, {cost(SONNET, "input", "standard"): 0.6 * 3 + 0.4 * 6})
    output = tokens(SONNET, "output")  # output's long-context price: $22.50 instead of $15
    result = priced("anthropic", {output: M}, long_context={output: M})
    assert_costs(result, {cost(SONNET, "output", "standard"): 22.5})


def test_batch_tier_and_modalities_for_openai() -> None:
    realtime = Dims("proj_a", "gpt-4o-mini-realtime-preview")
    result = priced(
        "openai",
        {
            tokens(MINI, "input", tier="batch"): M,
            tokens(MINI, "output", tier="batch"): M,
            tokens(MINI, "input", tier="default"): M,
            tokens(MINI, "input_cache_read", tier="default"): M,
            tokens(MINI, "input_cache_write", tier="default"): M,  # no own price: input price
            tokens(realtime, "input", "audio", "default"): M,
            tokens(realtime, "input", "text", "default"): M,
            tokens(realtime, "input_cache_read", "audio", "default"): M,
            tokens(realtime, "output", "audio", "default"): M,
        },
    )
    assert_costs(
        result,
        {
            cost(MINI, "input", "batch"): 0.2,
            cost(MINI, "output", "batch"): 0.8,
            cost(MINI, "input", "default"): 0.4,
            cost(MINI, "input_cache_read", "default"): 0.1,
            cost(MINI, "input_cache_write", "default"): 0.4,
            cost(realtime, "input", "default"): 10.0 + 0.6,  # audio $10 + text $0.60
            cost(realtime, "input_cache_read", "default"): 0.3,
            cost(realtime, "output", "default"): 20.0,
        },
    )


def test_each_bucket_is_priced_at_its_own_date() -> None:
    o3 = Dims("p", "o3")
    before, after = 1749340800, 1749686400  # 2025-06-08 and 2025-06-12 (price cut on 06-10)
    assert_costs(
        priced("openai", {tokens(o3, "input", tier="default"): M}, day=before),
        {cost(o3, "input", "default"): 10.0},
    )
    assert_costs(
        priced("openai", {tokens(o3, "input", tier="default"): M}, day=after),
        {cost(o3, "input", "default"): 2.0},
    )


def test_unknown_model_is_unpriced_never_zero_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = Dims("p", "my-private-model")
    pricer = Pricer()
    caplog.set_level(logging.WARNING, logger="exporter.core.pricing")
    for _ in range(2):
        batch = Batch(Dataset.USAGE, NOV2, NOV2 + DAY)
        batch.add(NOV2, tokens(secret, "input", tier="default"), 500.0)
        batch.add(NOV2, tokens(secret, "output", tier="default"), 70.0)
        pricer.annotate("openai", "acct", FetchResult([batch]))
        day = batch.days[NOV2]
        assert day[(Family.UNPRICED_TOKENS, secret, ("input",))] == 500.0
        assert day[(Family.UNPRICED_TOKENS, secret, ("output",))] == 70.0
        assert not [k for k in day if k[0] is Family.ESTIMATED_COST]
    assert [r.model for r in caplog.records] == ["my-private-model"]  # type: ignore[attr-defined]


def test_tokens_without_a_model_label_are_unpriced() -> None:
    result = priced("openai", {tokens(Dims("p", ""), "input", tier="default"): 10.0})
    assert result == {(Family.UNPRICED_TOKENS, Dims("p", ""), ("input",)): 10.0}


def test_override_wins_and_discounts_apply_to_list_prices_only() -> None:
    tuned = Dims("p", "ft:gpt-4.1-mini:acme:v2")
    config = PricingConfig(
        overrides=(
            PriceOverride(
                provider="openai",
                model="ft:gpt-4.1-mini:*",
                input=0.8,
                output=3.2,
                input_cache_read=0.2,
            ),
            PriceOverride(model="gpt-4.1-mini*", input=99, output=99),
        ),
        discounts=(Discount(provider="openai", ratio=0.25), Discount(account="vip", ratio=0.5)),
    )
    series = {
        tokens(tuned, "input", tier="default"): M,
        tokens(tuned, "input_cache_read", tier="default"): M,
        tokens(tuned, "input_cache_write", tier="default"): M,  # unset: the input price
        tokens(tuned, "output", tier="default"): M,
        tokens(Dims("p", "gpt-4o-mini"), "input", tier="default"): M,
    }
    expected = {
        cost(tuned, "input", "default"): 0.8,
        cost(tuned, "input_cache_read", "default"): 0.2,
        cost(tuned, "input_cache_write", "default"): 0.8,
        cost(tuned, "output", "default"): 3.2,
        cost(Dims("p", "gpt-4o-mini"), "input", "default"): 0.15 * 0.75,  # provider discount
    }
    assert_costs(priced("openai", series, config=config), expected)
    vip = dict(expected)
    vip[cost(Dims("p", "gpt-4o-mini"), "input", "default")] = 0.15 * 0.5  # account wins
    assert_costs(priced("openai", series, config=config, account="vip"), vip)


def test_discount_needs_exactly_one_scope() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Discount(ratio=0.1)
    with pytest.raises(ValueError, match="exactly one"):
        Discount(provider="openai", account="x", ratio=0.1)


def test_free_moderation_models_cost_zero_and_are_not_unpriced() -> None:
    # "text-moderation" (no suffix) is the model of OpenAI's official moderations example.
    for model in ("omni-moderation-latest", "text-moderation", "text-moderation-007"):
        moderation = Dims("p", model)
        result = priced("openai", {tokens(moderation, "input", tier="default"): 5000.0})
        assert result == {cost(moderation, "input", "default"): 0.0}, model


def test_tool_calls_are_priced_per_call_where_the_model_has_a_price() -> None:
    def calls(dims: Dims, tool: str) -> SeriesKey:
        return (Family.TOOL_CALLS, dims, (tool,))

    no_model = Dims("proj_a")
    result = priced(
        "openai",
        {
            calls(MINI, "web_search"): 250.0,  # $10 per 1,000 (genai-prices)
            calls(MINI, "file_search"): 400.0,  # $2.50 per 1,000
            calls(MINI, "code_interpreter"): 3.0,  # no per-model price: not estimated
            calls(no_model, "file_search"): 7.0,  # no model: no price
        },
    )
    # Tool calls are no tokens: never in aicost_unpriced_tokens_total.
    assert_costs(result, {cost(MINI, "web_search", ""): 2.5, cost(MINI, "file_search", ""): 1.0})
    sonnet = priced("anthropic", {calls(SONNET, "web_search"): 1000.0})
    assert_costs(sonnet, {cost(SONNET, "web_search", ""): 10.0})


def test_tokens_without_modality_or_tier_are_priced_as_text() -> None:
    # OpenRouter and Groq report neither a modality nor a service tier.
    llama = Dims("p", "llama-3.3-70b-versatile")
    result = priced(
        "groq",
        {
            (Family.TOKENS, llama, ("input", "", "")): M,
            (Family.TOKENS, llama, ("output", "", "")): M,
        },
    )
    assert_costs(result, {cost(llama, "input", ""): 0.59, cost(llama, "output", ""): 0.79})


def test_price_cache_keeps_only_recent_days() -> None:
    pricer = Pricer()
    for day in range(120):
        pricer.prices("openai", "acct", "gpt-4.1-mini-2025-04-14", "default", NOV2 + day * DAY)
    assert len(pricer._cache) == 41  # days NOV2+79 .. NOV2+119


def test_fast_mode_and_us_only_inference_are_priced_at_their_rates() -> None:
    opus = Dims("wrk_a", "claude-opus-4-8")
    standard = (Family.TOKENS, opus, ("input", "text", "standard"))
    fast = (Family.TOKENS, opus, ("input", "text", "standard", "fast"))
    us_only = (Family.TOKENS, opus, ("output", "text", "standard", "", "us"))
    fast_us = (Family.TOKENS, opus, ("output", "text", "standard", "fast", "us"))
    result = priced("anthropic", {standard: M, fast: M, us_only: M, fast_us: M})
    # Opus 4.8: $5/$25 per Mtok, fast mode $10/$50 (genai-prices' variant on speed); US-only
    # inference 1.1x by default. The estimate sums them by token type and tier.
    assert_costs(result, {
        cost(opus, "input", "standard"): 5.0 + 10.0,
        cost(opus, "output", "standard"): 25.0 * 1.1 + 50.0 * 1.1,
    })


def test_the_inference_geo_multiplier_is_configurable() -> None:
    opus = Dims("wrk_a", "claude-opus-4-8")
    us_only = (Family.TOKENS, opus, ("input", "text", "standard", "", "us"))
    config = PricingConfig(inference_geo_multipliers={"us": 1.25})
    assert_costs(priced("anthropic", {us_only: M}, config=config),
                 {cost(opus, "input", "standard"): 5.0 * 1.25})
    with pytest.raises(ValueError, match="between 0 and 100"):
        PricingConfig(inference_geo_multipliers={"us": 0})


def test_speech_and_transcription_are_priced_per_character_and_second() -> None:
    tts, whisper, image = Dims("p", "tts-1"), Dims("p", "whisper-1"), Dims("p", "gpt-image-1")
    result = priced(
        "openai",
        {
            (Family.AUDIO_SPEECH_CHARACTERS, tts, ()): 200_000.0,  # $15 per million characters
            (Family.AUDIO_TRANSCRIPTION_SECONDS, whisper, ()): 1800.0,  # $0.36 an hour
            (Family.IMAGES, image, ()): 4.0,  # genai-prices has no per-image price
        },
    )
    assert_costs(result, {cost(tts, "speech", ""): 3.0, cost(whisper, "transcription", ""): 0.18})


def test_dall_e_images_are_priced_per_image_by_size() -> None:
    dalle3, dalle2 = Dims("p", "dall-e-3"), Dims("p", "dall-e-2")
    gpt_image = Dims("p", "gpt-image-1")
    usage = {
        (Family.IMAGES, dalle3, ("1024x1024", "image.generation")): 5.0,  # $0.04 each
        (Family.IMAGES, dalle3, ("1792x1024", "image.generation")): 2.0,  # $0.08 each
        (Family.IMAGES, dalle2, ("512x512", "image.variation")): 10.0,  # $0.018 each
        (Family.IMAGES, dalle3, ("256x256", "image.generation")): 3.0,  # no such size: no price
        (Family.IMAGES, dalle2, ()): 4.0,  # not grouped by size: no price
        (Family.IMAGES, gpt_image, ("1024x1024", "image.generation")): 4.0,  # priced per token
    }
    assert_costs(priced("openai", usage), {cost(dalle3, "images", ""): 0.36,
                                           cost(dalle2, "images", ""): 0.18})
    discounted = priced("openai", usage, config=PricingConfig(
        discounts=(Discount(provider="openai", ratio=0.25),)))
    assert_costs(discounted, {cost(dalle3, "images", ""): 0.27, cost(dalle2, "images", ""): 0.135})
    # The table is OpenAI's: the same model name elsewhere is not priced by it.
    assert_costs(priced("openrouter", {(Family.IMAGES, dalle3, ("1024x1024",)): 1.0}), {})
