"""Estimated cost: each day's tokens priced per token type at that day's list price.

Prices come from the ``genai-prices`` data bundled with the package (historic
prices: a bucket is priced at its own start time), unless a configured
override matches the model. Aggregated usage is priced **per token**, never by
feeding a day's summed tokens into a per-request calculation: tiered prices
(e.g. Anthropic's long-context tier above 200k input tokens per request) would
then apply to ordinary traffic. The base tier is used unless the provider
reports the tier (a :class:`SeriesGroup` with ``long_context``).
"""

from __future__ import annotations

import fnmatch
import itertools
import logging
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, cast

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


def _slot(key: SeriesKey) -> tuple[tuple[str, str], tuple[str, str]] | None:
    """((model, service tier), (token type, modality)) of a token series, else None."""
    if key[0] is not Family.TOKENS:
        return None
    _, dims, (token_type, modality, service_tier) = key
    # A provider that reports no modality (OpenRouter, Groq) reports text tokens.
    modality = modality if modality in _MODALITY_INPUT else "text"
    return (dims.model, service_tier), (token_type, modality)


def _cost_key(key: SeriesKey) -> SeriesKey:
    """The estimated-cost series of a token series."""
    _, dims, (token_type, _, service_tier) = key
    return (Family.ESTIMATED_COST, dims, (token_type, service_tier))


def _unpriced_key(key: SeriesKey) -> SeriesKey:
    """The unpriced-tokens series of a token series."""
    _, dims, (token_type, _, _) = key
    return (Family.UNPRICED_TOKENS, dims, (token_type,))


def _plan(key: SeriesKey) -> _Plan | None:
    slot = _slot(key)
    return None if slot is None else (*slot, _cost_key(key), _unpriced_key(key))


_Slots = tuple[tuple[tuple[str, str], tuple[str, str]] | None, ...]
"""Per slot of a group: ((model, service tier), (token type, modality)), None if not tokens."""
_Layout = tuple[bool, _Slots]
"""(long-context tier, slots): what a group's price vector depends on."""


_ScaleSet = tuple[tuple[bool, int, int], ...]
"""Where the rows of one layout go on one day: (unpriced, price vector id, unpriced mask id)
for the cost group (if some token slot has a price) and the unpriced-token group (if some
has none); -1 for no vector. Interned, so a plan can tell a known set by identity."""


@dataclass(slots=True, eq=False)
class _RowPlan:
    """How to price the rows of one :class:`SeriesGroup`."""

    signature: int
    """The index of the group's :data:`_Layout`: groups with one layout share prices."""
    group: SeriesGroup
    scaled: dict[tuple[bool, int, int], SeriesGroup] = field(default_factory=dict)
    """The cost and unpriced-token groups of each entry of a :data:`_ScaleSet`."""
    scales: _ScaleSet | None = None
    targets: tuple[SeriesGroup, ...] = ()
    """The groups of ``scales``: where a row of ``group`` goes."""

    def bind(
        self,
        scales: _ScaleSet,
        vectors: list[Vector],
        prototypes: dict[tuple[int, tuple[bool, int, int]], SeriesGroup],
    ) -> None:
        """Make ``targets`` the groups of ``scales`` (``vectors``: vectors by id).

        A cost group keys the priced token slots, scaled by the price vector; an
        unpriced-token group keys the other token slots, unscaled. Groups of one
        layout differ only in their dims: the first is the prototype of the rest.
        """
        targets = []
        for entry in scales:
            target = self.scaled.get(entry)
            if target is None:
                prototype = prototypes.get((self.signature, entry))
                if prototype is None:
                    target = prototypes[self.signature, entry] = self._derive(entry, vectors)
                else:
                    target = prototype.with_dims(self.group.dims)
                self.scaled[entry] = target
            targets.append(target)
        self.scales, self.targets = scales, tuple(targets)

    def _derive(self, entry: tuple[bool, int, int], vectors: list[Vector]) -> SeriesGroup:
        unpriced, price_id, mask_id = entry
        mask = vectors[mask_id] if mask_id >= 0 else (0.0,) * len(self.group.keys)
        keys = [
            None
            if key is None or key[0] is not Family.TOKENS or bool(missing) != unpriced
            else _unpriced_key(key)
            if unpriced
            else _cost_key(key)
            for key, missing in zip(self.group.keys, mask, strict=True)
        ]
        return SeriesGroup(keys, None if unpriced else vectors[price_id])


_SIGNATURE = operator.attrgetter("signature")


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
        self._signatures: dict[_Layout, int] = {}
        self._layouts: list[_Layout] = []
        self._vector_ids: dict[Vector, int] = {}
        self._scale_sets: dict[_ScaleSet, _ScaleSet] = {}
        self._prototypes: dict[tuple[int, tuple[bool, int, int]], SeriesGroup] = {}
        self._converted: dict[tuple[int, float], tuple[ModelPrice, _Prices]] = {}
        self._vectors: list[Vector] = []

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
            self._vector_ids.clear()
            self._vectors.clear()
            self._scale_sets.clear()
            self._prototypes.clear()
        with paused_gc():
            for batch in result.batches:
                if batch.dataset is Dataset.USAGE:
                    self._annotate_batch(provider, account, factor, batch)
                    self._annotate_rows(provider, account, factor, batch)

    def _annotate_batch(self, provider: str, account: str, factor: float, batch: Batch) -> None:
        # The same series recur on every day: parse each key once (plans), and look prices
        # up once per (model, service tier) and day (prices).
        plans: dict[SeriesKey, _Plan | None] = {}
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
                added[cost_key] = added.get(cost_key, 0.0) + price * value
            for key, value in added.items():
                series[key] = series.get(key, 0.0) + value

    def _annotate_rows(self, provider: str, account: str, factor: float, batch: Batch) -> None:
        # A row's cost is its own token vector under a cost group scaled by the price vector
        # of its slot layout on that day (see SeriesGroup.scale): no arithmetic per row, and
        # the ledger multiplies a month of summed tokens once.
        known = self._row_plans
        for day, rows in batch.rows.items():
            for group in rows.keys() - known.keys():
                known[group] = self._row_plan(group)
            groups = list(rows)
            found = list(map(known.__getitem__, groups))
            if None in found:  # groups without tokens
                kept = list(map(operator.is_not, found, itertools.repeat(None)))
                groups = list(itertools.compress(groups, kept))
                found = list(itertools.compress(found, kept))
            plans = cast(list[_RowPlan], found)
            signatures = list(map(_SIGNATURE, plans))
            scales = {
                signature: self._scales(provider, account, self._layouts[signature], day, factor)
                for signature in set(signatures)
            }
            added: dict[SeriesGroup, Vector] = {}
            for group, plan, signature in zip(groups, plans, signatures, strict=True):
                scale_set = scales[signature]
                if plan.scales is not scale_set:
                    plan.bind(scale_set, self._vectors, self._prototypes)
                for target in plan.targets:
                    added[target] = rows[group]
            if added.keys() & rows.keys():
                for group, values in added.items():
                    add_vector(rows, group, values)
            else:
                rows.update(added)

    def _row_plan(self, group: SeriesGroup) -> _RowPlan | None:
        slots = tuple(None if key is None else _slot(key) for key in group.keys)
        if not any(slots):
            return None
        layout = (group.long_context, slots)
        signature = self._signatures.get(layout)
        if signature is None:
            signature = self._signatures[layout] = len(self._layouts)
            self._layouts.append(layout)
        return _RowPlan(signature=signature, group=group)

    def _scales(
        self, provider: str, account: str, layout: _Layout, day: int, factor: float
    ) -> _ScaleSet:
        """Where rows of ``layout`` go on ``day``: see :data:`_ScaleSet`."""
        price, unpriced = self._price_vector(provider, account, layout, day, factor)
        mask_id = -1 if unpriced is None else self._vector_id(unpriced)
        tokens = sum(slot is not None for slot in layout[1])
        scales = []
        if unpriced is None or sum(unpriced) < tokens:  # some token slot has a price
            scales.append((False, self._vector_id(price), mask_id))
        if unpriced is not None:
            scales.append((True, -1, mask_id))
        found = tuple(scales)
        return self._scale_sets.setdefault(found, found)

    def _vector_id(self, vector: Vector) -> int:
        """Equal vectors share an id (and object): a price that did not change between days
        keeps one cost group, so the ledger sums those days before multiplying."""
        vector_id = self._vector_ids.get(vector)
        if vector_id is None:
            vector_id = self._vector_ids[vector] = len(self._vectors)
            self._vectors.append(vector)
        return vector_id

    def _price_vector(
        self, provider: str, account: str, layout: _Layout, day: int, factor: float
    ) -> tuple[Vector, Vector | None]:
        """USD per token per slot (0 where unpriced), and 1.0 per unpriced token slot."""
        long_context, slots = layout
        price: list[float] = []
        unpriced: list[float] = []
        for slot in slots:
            usd = None
            if slot is not None:
                (model, tier), kind = slot
                table = self.prices(provider, account, model, tier, day, factor)
                if table is not None:
                    usd = (table.long_context if long_context else table.base).get(kind)
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
        # The library returns the same price object for every day a price holds: convert it
        # once (about 0.1 ms each), not once per model and day of a first poll.
        cached = self._converted.get((id(model_price), factor))
        if cached is None or cached[0] is not model_price:
            if len(self._converted) > MAX_ROW_PLANS:
                self._converted.clear()
            cached = self._converted[id(model_price), factor] = (
                model_price,
                _library_prices(model_price, factor),
            )
        prices = cached[1]
        return prices if prices.base else None

    def start_auto_update(self) -> Any:
        """Start genai-prices' background price download (opt-in: ``pricing.auto_update``)."""
        from genai_prices import UpdatePrices

        updater = UpdatePrices()
        updater.start()
        return updater
