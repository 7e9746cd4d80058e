"""Estimated cost: each day's tokens priced per token type at that day's list price.

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
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from genai_prices import data_snapshot
from genai_prices.types import ModelPrice, TieredPrices
from pydantic import BaseModel, ConfigDict, Field, model_validator

from exporter.gcpause import paused_gc
from exporter.records import (
    DAY,
    Batch,
    Dataset,
    Family,
    FetchResult,
    SeriesGroup,
    SeriesKey,
    TokenType,
    Vector,
    add_vector,
)

log = logging.getLogger(__name__)

TOKEN_TYPES = tuple(TokenType)
CACHE_DAYS = 40
"""Prices are cached for this many days back: a month plus the week before it."""
MILLION = 1_000_000
MAX_ROW_PLANS = 100_000
"""Row plans kept between polls (one per series group seen), at most."""

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
    PriceOverride(provider="openai", model="omni-moderation-*", input=0, output=0),
    PriceOverride(provider="openai", model="text-moderation-*", input=0, output=0),
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


@dataclass(frozen=True, slots=True)
class _Prices:
    """USD per token by (token type, modality), base tier and long-context tier."""

    base: Mapping[tuple[str, str], float]
    long_context: Mapping[tuple[str, str], float]


_Plan = tuple[tuple[str, str], tuple[str, str], SeriesKey, SeriesKey]
"""((model, service tier), (token type, modality), estimated cost key, unpriced key)."""
_UNPLANNED: Any = object()


def _plan(key: SeriesKey) -> _Plan | None:
    family, dims, extra = key
    if family is not Family.TOKENS:
        return None
    token_type, modality, service_tier = extra
    return (
        (dims.model, service_tier),
        # A provider that reports no modality (OpenRouter, Groq) reports text tokens.
        (token_type, modality if modality in _MODALITY_INPUT else "text"),
        (Family.ESTIMATED_COST, dims, (token_type, service_tier)),
        (Family.UNPRICED_TOKENS, dims, (token_type,)),
    )


@dataclass(frozen=True, slots=True)
class _RowPlan:
    """How to price the rows of one :class:`SeriesGroup`."""

    slots: tuple[tuple[tuple[str, str], tuple[str, str]] | None, ...]
    """Per slot: ((model, service tier), (token type, modality)), None if not tokens."""
    signature: int
    """Equal for groups with equal ``slots``: their price vectors are shared."""
    cost: SeriesGroup
    unpriced: SeriesGroup


def _price_context(service_tier: str) -> dict[str, str] | None:
    if service_tier == "batch":
        return {"processing": "batch"}
    if service_tier in ("", "default", "standard"):
        return None
    return {"service_tier": service_tier}


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
    return _Prices(base, long)


class Pricer:
    """Adds estimated cost and unpriced tokens to the usage batches of a fetch."""

    def __init__(self, config: PricingConfig | None = None) -> None:
        self.config = config or PricingConfig()
        self._cache: dict[tuple[str, str, str, str, int], _Prices | None] = {}
        self._newest_day = 0
        self._unknown_logged: set[tuple[str, str]] = set()
        self._row_plans: dict[SeriesGroup, _RowPlan | None] = {}
        self._signatures: dict[tuple[object, ...], int] = {}

    def discount(self, provider: str, account: str) -> float:
        """The ratio off list prices: the account's discount, else the provider's, else 0."""
        for scope in ("account", "provider"):
            for discount in self.config.discounts:
                if getattr(discount, scope) == (account if scope == "account" else provider):
                    return discount.ratio
        return 0.0

    def annotate(self, provider: str, account: str, result: FetchResult) -> None:
        """Add ``ESTIMATED_COST`` and ``UNPRICED_TOKENS`` to every usage batch of ``result``."""
        factor = 1.0 - self.discount(provider, account)
        if len(self._row_plans) > MAX_ROW_PLANS:
            self._row_plans.clear()
        with paused_gc():
            for batch in result.batches:
                if batch.dataset is Dataset.USAGE:
                    self._annotate_batch(provider, account, factor, batch)
                    self._annotate_rows(provider, account, factor, batch)

    def _annotate_batch(self, provider: str, account: str, factor: float, batch: Batch) -> None:
        # The same series recur on every day: parse each key once (plans), and look prices
        # up once per (model, service tier) and day (prices).
        plans: dict[SeriesKey, _Plan | None] = {}
        long_context = batch.long_context
        for day, series in batch.days.items():
            prices: dict[tuple[str, str], _Prices | None] = {}
            added: dict[SeriesKey, float] = {}
            for key, value in series.items():
                plan = plans.get(key, _UNPLANNED)
                if plan is _UNPLANNED:
                    plan = plans[key] = _plan(key)
                if plan is None:
                    continue
                model_tier, slot, cost_key, unpriced_key = plan
                table = prices.get(model_tier, _UNPLANNED)
                if table is _UNPLANNED:
                    table = prices[model_tier] = self.prices(
                        provider, account, model_tier[0], model_tier[1], day, factor
                    )
                price = None if table is None else table.base.get(slot)
                if price is None:  # unknown model, or no price for this kind of token
                    added[unpriced_key] = added.get(unpriced_key, 0.0) + value
                    continue
                long = long_context.get((day, key), 0.0) if long_context else 0.0
                usd = price * (value - long)
                if long:
                    usd += table.long_context[slot] * long
                added[cost_key] = added.get(cost_key, 0.0) + usd
            for key, value in added.items():
                series[key] = series.get(key, 0.0) + value

    def _annotate_rows(self, provider: str, account: str, factor: float, batch: Batch) -> None:
        # One vector product per row: a cost vector (and an unpriced-token vector for slots
        # without a price) in the row's slot order. Price vectors are built once per day for
        # each distinct slot layout (signature), not per row.
        for day, rows in batch.rows.items():
            vectors: dict[int, tuple[Vector, Vector | None]] = {}
            added: dict[SeriesGroup, Vector] = {}
            for group, values in rows.items():
                plan = self._row_plans.get(group, _UNPLANNED)
                if plan is _UNPLANNED:
                    plan = self._row_plans[group] = self._row_plan(group)
                if plan is None:
                    continue
                prices = vectors.get(plan.signature)
                if prices is None:
                    prices = vectors[plan.signature] = self._price_vector(
                        provider, account, plan, day, factor
                    )
                price, unpriced = prices
                # A plan's groups belong to one token group: no two rows of a day share them.
                added[plan.cost] = tuple(map(operator.mul, values, price))
                if unpriced is not None:
                    added[plan.unpriced] = tuple(map(operator.mul, values, unpriced))
            if added.keys() & rows.keys():
                for group, values in added.items():
                    add_vector(rows, group, values)
            else:
                rows.update(added)

    def _row_plan(self, group: SeriesGroup) -> _RowPlan | None:
        plans = [None if key is None else _plan(key) for key in group.keys]
        if not any(plans):
            return None
        slots = tuple(None if plan is None else plan[:2] for plan in plans)
        signature = self._signatures.setdefault(slots, len(self._signatures))
        return _RowPlan(
            slots=slots,
            signature=signature,
            cost=SeriesGroup(None if plan is None else plan[2] for plan in plans),
            unpriced=SeriesGroup(None if plan is None else plan[3] for plan in plans),
        )

    def _price_vector(
        self, provider: str, account: str, plan: _RowPlan, day: int, factor: float
    ) -> tuple[Vector, Vector | None]:
        """USD per token per slot (0 where unpriced), and 1.0 per unpriced token slot."""
        price: list[float] = []
        unpriced: list[float] = []
        for slot in plan.slots:
            usd = None
            if slot is not None:
                (model, tier), kind = slot
                table = self.prices(provider, account, model, tier, day, factor)
                usd = None if table is None else table.base.get(kind)
            price.append(usd or 0.0)
            unpriced.append(1.0 if slot is not None and usd is None else 0.0)
        return tuple(price), (tuple(unpriced) if any(unpriced) else None)

    def prices(
        self,
        provider: str,
        account: str,
        model: str,
        service_tier: str,
        day: int,
        factor: float = 1.0,
    ) -> _Prices | None:
        """Per-token prices of ``model`` on ``day`` (None: no price known)."""
        cache_key = (provider, account, model, service_tier, day)
        if day > self._newest_day:
            self._newest_day = day
            # A daemon runs for months: keep the days a poll can still ask for, no more.
            oldest = day - CACHE_DAYS * DAY
            self._cache = {k: v for k, v in self._cache.items() if k[4] >= oldest}
        if cache_key in self._cache:
            return self._cache[cache_key]
        prices = self._lookup(provider, model, service_tier, day, factor)
        self._cache[cache_key] = prices
        if prices is None and (provider, model) not in self._unknown_logged:
            self._unknown_logged.add((provider, model))
            log.warning(
                "no price known for model: its tokens are counted as unpriced",
                extra={"provider": provider, "model": model or "(not grouped by model)"},
            )
        return prices

    def _lookup(
        self, provider: str, model: str, service_tier: str, day: int, factor: float
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
        try:
            # Looked up each time: an opt-in auto-update replaces the snapshot.
            _, info = data_snapshot.get_snapshot().find_provider_model(model, None, provider, None)
        except LookupError:
            return None
        when = datetime.fromtimestamp(day, UTC)
        model_price = info.get_prices(when, _price_context(service_tier))
        prices = _library_prices(model_price, factor)
        return prices if prices.base else None

    def start_auto_update(self) -> Any:
        """Start genai-prices' background price download (opt-in: ``pricing.auto_update``)."""
        from genai_prices import UpdatePrices

        updater = UpdatePrices()
        updater.start()
        return updater
