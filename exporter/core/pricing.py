"""Estimated cost: each day's tokens priced per token type at that day's list price,
server-side tool calls (web search, file search) at the model's price per call, and DALL-E
images at OpenAI's price per image.

Prices come from the ``genai-prices`` data bundled with the package (historic
prices: a bucket is priced at its own start time), unless a configured
override matches the model. Aggregated usage is priced **per token**, never by
feeding a day's summed tokens into a per-request calculation: tiered prices
(e.g. Anthropic's long-context tier above 200k input tokens per request) would
then apply to ordinary traffic. The base tier is used unless the provider
reports the tier (``Batch.long_context``).
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from exporter.core.gcpause import paused_gc
from exporter.core.price_library import ModelPrice, TieredPrices, data_snapshot, package
from exporter.core.records import DAY, Batch, Family, FetchResult, SeriesKey, TokenType

log = logging.getLogger(__name__)

TOKEN_TYPES = tuple(TokenType)
CACHE_DAYS = 40
"""Prices are cached for this many days back: a month plus the week before it."""
MILLION = 1_000_000
MAX_CONVERTED = 100_000
"""Converted library prices kept between polls, at most."""

# Price keys of genai-prices, most specific first, for each (token type, modality).
# Cache prices fall back to the input price of the same modality, as the
# library's unit hierarchy does (a cache read is a kind of input token).
_MODALITY_INPUT = {
    "text": "input_text_mtok",
    "audio": "input_audio_mtok",
    "image": "input_image_mtok",
}


def _price_keys(token_type: str, modality: str) -> tuple[str, ...]:
    m = modality if modality in _MODALITY_INPUT else "text"
    inputs = (_MODALITY_INPUT[m], "input_mtok")
    if token_type == TokenType.INPUT:
        return inputs
    if token_type == TokenType.INPUT_CACHE_READ:
        return (f"cache_{m}_read_mtok", "cache_read_mtok", *inputs)
    if token_type == TokenType.INPUT_CACHE_WRITE:
        return (
            f"cache_{m}_write_5m_mtok",
            f"cache_{m}_write_mtok",
            "cache_write_5m_mtok",
            "cache_write_mtok",
            *inputs,
        )
    if token_type == TokenType.INPUT_CACHE_WRITE_1H:
        return (
            f"cache_{m}_write_1h_mtok",
            "cache_write_1h_mtok",
            f"cache_{m}_write_mtok",
            "cache_write_mtok",
            *inputs,
        )
    return (f"output_{m}_mtok", "output_mtok")


PRICED_BY_MODEL = frozenset(("cursor", "chatgpt"))
"""Providers that resell other providers' models at their API list prices (Cursor's usage-based
pricing; ChatGPT's Codex credits, which OpenAI's rate card sets at API prices at $0.04 a credit):
genai-prices has no price list of theirs, so a model is looked up by its name alone."""


class PriceOverride(BaseModel):
    """Prices for models genai-prices does not know (fine-tuned, private), USD per Mtok."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str | None = None
    model: str = Field(min_length=1, description="glob pattern, e.g. 'ft:gpt-4.1-mini:*'")
    input: float = Field(ge=0)
    output: float = Field(ge=0)
    input_cache_read: float | None = Field(default=None, ge=0)
    input_cache_write: float | None = Field(default=None, ge=0)
    input_cache_write_1h: float | None = Field(default=None, ge=0)

    def matches(self, provider: str, model: str) -> bool:
        """True if this override applies to ``model`` of ``provider``."""
        return (self.provider in (None, provider)) and fnmatch.fnmatchcase(model, self.model)

    def per_token(self, token_type: str) -> float:
        """USD per token; unset cache prices fall back to the input price."""
        per_million = {
            TokenType.INPUT: self.input,
            TokenType.OUTPUT: self.output,
            TokenType.INPUT_CACHE_READ: self.input_cache_read,
            TokenType.INPUT_CACHE_WRITE: self.input_cache_write,
            TokenType.INPUT_CACHE_WRITE_1H: (
                self.input_cache_write_1h
                if self.input_cache_write_1h is not None
                else self.input_cache_write
            ),
        }[TokenType(token_type)]
        return (self.input if per_million is None else per_million) / MILLION


FREE_MODELS = (
    # OpenAI's moderation endpoint is free: a known price of $0, not an unknown one.
    # (The official usage example's model is plain "text-moderation", without a suffix.)
    PriceOverride(provider="openai", model="omni-moderation*", input=0, output=0),
    PriceOverride(provider="openai", model="text-moderation*", input=0, output=0),
    # OpenRouter's ":free" model variants cost nothing.
    PriceOverride(provider="openrouter", model="*:free", input=0, output=0),
)


class Discount(BaseModel):
    """A negotiated discount on list prices for a provider or one account."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str | None = None
    account: str | None = None
    ratio: float = Field(ge=0, lt=1, description="0.15 = 15% off list prices")

    @model_validator(mode="after")
    def _one_scope(self) -> Discount:
        if (self.provider is None) == (self.account is None):
            raise ValueError("set exactly one of provider or account")
        return self


class PricingConfig(BaseModel):
    """The ``pricing:`` section of the configuration."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auto_update: bool = False
    overrides: tuple[PriceOverride, ...] = ()
    discounts: tuple[Discount, ...] = ()
    inference_geo_multipliers: dict[str, float] = Field(
        default_factory=lambda: {"us": 1.1},
        description="price multiplier by Anthropic inference_geo (US-only inference: 1.1x)",
    )

    @model_validator(mode="after")
    def _check_multipliers(self) -> PricingConfig:
        for geo, multiplier in self.inference_geo_multipliers.items():
            if not 0 < multiplier < 100:
                raise ValueError(f"inference_geo_multipliers.{geo} must be between 0 and 100")
        return self


@dataclass(frozen=True, slots=True)
class _Prices:
    """USD per token by (token type, modality), base tier and long-context tier."""

    base: Mapping[tuple[str, str], float]
    long_context: Mapping[tuple[str, str], float]


_Plan = tuple[tuple[str, str, str, str], tuple[str, str], SeriesKey, SeriesKey | None]
"""((model, service tier, speed, inference geo), (token type, modality), (tool, "call") or
("images", size),
estimated cost key, unpriced key: None for a tool call, whose count is no token)."""
CALL = "call"
_TOOL_PRICES = {"web_search": "web_searches_kcount", "file_search": "storage_searches_kcount"}
"""genai-prices' per-thousand-calls price of each tool the providers report per model."""
_UNIT_PRICES = {
    # family: (the estimate's token_type, genai-prices keys in order, units per price unit)
    Family.AUDIO_SPEECH_CHARACTERS: ("speech", ("input_mchars",), 1_000_000),
    Family.AUDIO_TRANSCRIPTION_SECONDS: (
        "transcription",
        ("input_audio_hours", "audio_hours"),
        3600,
    ),
}
"""Usage counted in units other than tokens that genai-prices prices per unit (per model)."""
IMAGES = "images"
"""The estimate's token_type of images priced per image."""
IMAGE_PRICES: dict[tuple[str, str], dict[str, float]] = {
    # OpenAI's published prices per image (openai.com/api/pricing, image generation), USD by
    # size; genai-prices has none. Generations, edits and variations cost the same. The usage
    # API does not report the quality, so DALL-E 3 is at standard quality: an HD image (twice
    # the price) is estimated low. GPT Image models are billed per token, not per image.
    ("openai", "dall-e-2"): {"256x256": 0.016, "512x512": 0.018, "1024x1024": 0.02},
    ("openai", "dall-e-3"): {"1024x1024": 0.04, "1024x1792": 0.08, "1792x1024": 0.08},
}
_UNPLANNED: Any = object()


def _plan(key: SeriesKey) -> _Plan | None:
    """How to price a series: None unless it counts tokens, or tool calls, units or images of a
    model."""
    unit = _UNIT_PRICES.get(key[0])
    if unit is not None:
        dims = key[1]
        if not dims.model:
            return None
        cost_key: SeriesKey = (Family.ESTIMATED_COST, dims, (unit[0], ""))
        return (dims.model, "", "", ""), (unit[0], CALL), cost_key, None
    if key[0] is Family.IMAGES:
        _, dims, labels = key
        if not dims.model or not labels:  # not grouped by size: no price applies
            return None
        cost_key = (Family.ESTIMATED_COST, dims, (IMAGES, ""))
        return (dims.model, "", "", ""), (IMAGES, labels[0]), cost_key, None
    if key[0] is Family.TOOL_CALLS:
        _, dims, (tool,) = key
        if tool not in _TOOL_PRICES or not dims.model:
            return None
        cost_key = (Family.ESTIMATED_COST, dims, (tool, ""))
        return (dims.model, "", "", ""), (tool, CALL), cost_key, None
    if key[0] is not Family.TOKENS:
        return None
    _, dims, extra = key
    token_type, modality, service_tier = extra[:3]
    speed, geo = (*extra[3:], "", "")[:2]  # Anthropic's fast mode and US-only inference
    # A provider that reports no modality (OpenRouter, Groq) reports text tokens.
    kind = (token_type, modality if modality in _MODALITY_INPUT else "text")
    return (
        (dims.model, service_tier, speed, geo),
        kind,
        (Family.ESTIMATED_COST, dims, (token_type, service_tier)),
        (Family.UNPRICED_TOKENS, dims, (token_type,)),
    )


def _price_context(service_tier: str, speed: str = "") -> dict[str, str] | None:
    context: dict[str, str] = {}
    if service_tier == "batch":
        context["processing"] = "batch"
    elif service_tier not in ("", "default", "standard"):
        context["service_tier"] = service_tier
    if speed:
        context["speed"] = speed  # genai-prices' fast-mode prices are variants on speed
    return context or None


def _library_prices(model_price: ModelPrice, factor: float) -> _Prices:
    base: dict[tuple[str, str], float] = {}
    long: dict[tuple[str, str], float] = {}
    for token_type in TOKEN_TYPES:
        for modality in ("text", "audio", "image"):
            for key in _price_keys(token_type, modality):
                value: Decimal | TieredPrices | None = getattr(model_price, key)
                if value is None:
                    continue
                if isinstance(value, TieredPrices):
                    tier = value.tiers[0].price if value.tiers else value.base
                    base[token_type, modality] = float(value.base) * factor / MILLION
                    long[token_type, modality] = float(tier) * factor / MILLION
                else:
                    base[token_type, modality] = long[token_type, modality] = (
                        float(value) * factor / MILLION
                    )
                break
    for tool, key in _TOOL_PRICES.items():
        per_thousand: Decimal | None = getattr(model_price, key, None)
        if per_thousand is not None:
            base[tool, CALL] = long[tool, CALL] = float(per_thousand) * factor / 1000
    for kind, keys, per in _UNIT_PRICES.values():
        found = [v for v in (getattr(model_price, k, None) for k in keys) if v is not None]
        if found and isinstance(found[0], Decimal):
            base[kind, CALL] = long[kind, CALL] = float(found[0]) * factor / per
    return _Prices(base, long)


class Pricer:
    """Adds estimated cost and unpriced tokens to the usage batches of a fetch."""

    def __init__(self, config: PricingConfig | None = None) -> None:
        self.config = config or PricingConfig()
        self._cache: dict[tuple[str, str, str, str, int, str, float], _Prices | None] = {}
        self._newest_day = 0
        self._unknown_logged: set[tuple[str, str]] = set()
        self._converted: dict[tuple[int, float], tuple[ModelPrice, _Prices]] = {}

    def discount(self, provider: str, account: str) -> float:
        """The ratio off list prices: the account's discount, else the provider's, else 0."""
        for scope in ("account", "provider"):
            for discount in self.config.discounts:
                if getattr(discount, scope) == (account if scope == "account" else provider):
                    return discount.ratio
        return 0.0

    def annotate(self, provider: str, account: str, result: FetchResult) -> None:
        """Add ``ESTIMATED_COST`` and ``UNPRICED_TOKENS`` for the tokens of every batch of
        ``result`` (whichever dataset reports them)."""
        factor = 1.0 - self.discount(provider, account)
        with paused_gc():
            for batch in result.batches:
                self._annotate(provider, account, factor, batch)

    def _annotate(self, provider: str, account: str, factor: float, batch: Batch) -> None:
        # The same series recur on every day: parse each key once (plans), and look prices
        # up once per (model, service tier) and day (prices).
        plans: dict[SeriesKey, _Plan | None] = {}
        for day, series in batch.days.items():
            long_context = batch.long_context.get(day, {})
            prices: dict[tuple[str, str, str, str], _Prices | None] = {}
            added: dict[SeriesKey, float] = {}
            for key, value in series.items():
                plan = plans.get(key, _UNPLANNED)
                if plan is _UNPLANNED:
                    plan = plans[key] = _plan(key)
                if plan is None:
                    continue
                model_tier, kind, cost_key, unpriced_key = plan
                table = prices.get(model_tier, _UNPLANNED)
                if table is _UNPLANNED:
                    model, tier, speed, geo = model_tier
                    table = prices[model_tier] = self.prices(
                        provider,
                        account,
                        model,
                        tier,
                        day,
                        factor * self.config.inference_geo_multipliers.get(geo, 1.0),
                        speed=speed,
                    )
                if table is None or kind not in table.base:  # unknown model or kind of token
                    if unpriced_key is not None:
                        added[unpriced_key] = added.get(unpriced_key, 0.0) + value
                    continue
                price = table.base[kind]
                usd = price * value
                if long_context and key in long_context:
                    usd += (table.long_context[kind] - price) * long_context[key]
                added[cost_key] = added.get(cost_key, 0.0) + usd
            series.update(added)  # new keys: tokens and their cost are different series

    def prices(
        self,
        provider: str,
        account: str,
        model: str,
        service_tier: str,
        day: int,
        factor: float = 1.0,
        *,
        speed: str = "",
    ) -> _Prices | None:
        """Per-token prices of ``model`` on ``day`` times ``factor`` (None: no price known)."""
        cache_key = (provider, account, model, service_tier, day, speed, factor)
        if day > self._newest_day:
            self._newest_day = day
            # A daemon runs for months: keep the days a poll can still ask for, no more.
            oldest = day - CACHE_DAYS * DAY
            self._cache = {k: v for k, v in self._cache.items() if k[4] >= oldest}
        if cache_key in self._cache:
            return self._cache[cache_key]
        prices = self._lookup(provider, model, service_tier, day, factor, speed)
        self._cache[cache_key] = prices
        if prices is None and (provider, model) not in self._unknown_logged:
            self._unknown_logged.add((provider, model))
            log.warning(
                "no price known for model: its tokens are counted as unpriced",
                extra={"provider": provider, "model": model or "(not grouped by model)"},
            )
        return prices

    def _lookup(
        self, provider: str, model: str, service_tier: str, day: int, factor: float, speed: str
    ) -> _Prices | None:
        if not model:
            return None
        for override in (*self.config.overrides, *FREE_MODELS):
            if override.matches(provider, model):
                table: dict[tuple[str, str], float] = {
                    (t, m): override.per_token(t)
                    for t in TOKEN_TYPES
                    for m in ("text", "audio", "image")
                }
                return _Prices(table, table)
        per_image = IMAGE_PRICES.get((provider, model))
        if per_image is not None:
            images = {(IMAGES, size): usd * factor for size, usd in per_image.items()}
            return _Prices(images, images)
        try:
            # Looked up each time: an opt-in auto-update replaces the snapshot.
            _, info = data_snapshot.get_snapshot().find_provider_model(
                model, None, None if provider in PRICED_BY_MODEL else provider, None
            )
        except LookupError:
            return None
        when = datetime.fromtimestamp(day, UTC)
        model_price = info.get_prices(when, _price_context(service_tier, speed))
        # The library returns the same price object for every day a price holds: convert it
        # once (about 0.1 ms each), not once per model and day of a first poll.
        cached = self._converted.get((id(model_price), factor))
        if cached is None or cached[0] is not model_price:
            if len(self._converted) > MAX_CONVERTED:
                self._converted.clear()
            cached = self._converted[id(model_price), factor] = (
                model_price,
                _library_prices(model_price, factor),
            )
        prices = cached[1]
        return prices if prices.base else None

    def start_auto_update(self) -> Any:
        """Start genai-prices' background price download (opt-in: ``pricing.auto_update``)."""
        updater = package().UpdatePrices()
        updater.start()
        return updater
