"""Normalised provider data: what every source hands to the ledger.

A source (a provider module, the push store, subscriptions) never builds metric
objects. It adds values into a :class:`Batch`, keyed by UTC day and series: the
batch is already the per-day aggregate the ledger stores, and the only shape in
which data travels from a source through pricing and the ledger to the snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

DAY = 86_400


class Family(StrEnum):
    """Month-to-date counter families a provider can report (see ``web/metrics.py``)."""

    TOKENS = "tokens"  # extra labels: token_type, modality, service_tier[, speed, inference_geo]
    REQUESTS = "requests"  # extra labels: service_tier
    BILLED_COST = "billed_cost_usd"  # extra labels: line_item[, cost_type, token_type, ...]
    # What the bill takes off (a day's negative billed cost, as a positive amount: moved here by
    # Batch.credits_apart, so that no counter is negative); extra labels: those of BILLED_COST.
    BILLED_CREDIT = "billed_credit_usd"
    BILLED_QUANTITY = "billed_quantity"  # OpenAI cost rows; extra labels: line_item, unit
    IMAGES = "images"  # extra labels: size, source
    AUDIO_SPEECH_CHARACTERS = "audio_speech_characters"  # extra labels: none
    AUDIO_TRANSCRIPTION_SECONDS = "audio_transcription_seconds"  # extra labels: none
    ESTIMATED_COST = "estimated_cost_usd"  # by pricing.py; extra labels: token_type, service_tier
    UNPRICED_TOKENS = "unpriced_tokens"  # added by pricing.py; extra labels: token_type
    CREDITS_REMAINING = "credits_remaining_usd"  # a gauge (Batch.gauges); extra labels: none
    CREDITS_AVAILABLE = "credits_available"  # a gauge (DeepSeek is_available); extra: none
    PREMIUM_REQUESTS = "premium_requests"  # GitHub Copilot; extra labels: line_item
    AI_CREDITS = "ai_credits"  # GitHub Copilot; extra labels: none
    CREDITS_USED = "credits_used"  # ChatGPT plan credits (Codex); extra labels: product
    CLAUDE_CODE_TOKENS = "claude_code_tokens"  # extra labels: token_type, customer_type
    CLAUDE_CODE_ESTIMATED_COST = "claude_code_estimated_cost_usd"  # extra: customer_type
    CLAUDE_CODE_SESSIONS = "claude_code_sessions"  # extra labels: none
    CLAUDE_CODE_LINES = "claude_code_lines_of_code"  # extra labels: change
    CLAUDE_CODE_COMMITS = "claude_code_commits"  # extra labels: none
    CLAUDE_CODE_PULL_REQUESTS = "claude_code_pull_requests"  # extra labels: none
    CLAUDE_CODE_TOOL_ACTIONS = "claude_code_tool_actions"  # extra labels: tool, decision
    REASONING_TOKENS = "reasoning_tokens"  # OpenRouter; a subset of output tokens; extra: none
    BILLED_COST_TODAY = "billed_cost_today_usd"  # a gauge (OpenRouter key counters); extra: none
    TOOL_CALLS = "tool_calls"  # server-side tool calls (web search, ...); extra labels: tool
    VECTOR_STORE_BYTES = "vector_store_bytes"  # a gauge (OpenAI vector stores); extra: none
    UNCONVERTED_COST = "unconverted_cost"  # billed in a currency without a rate; extra: currency
    # Spend limits the provider enforces (gauges); extra labels: limit, period.
    PROVIDER_LIMIT = "provider_limit_usd"
    PROVIDER_LIMIT_ENFORCING = "provider_limit_enforcing"
    PROVIDER_LIMIT_SPEND = "provider_limit_spend_usd"  # where the provider reports it
    PROVIDER_LIMIT_FORECAST = "provider_limit_forecast_usd"  # by the scheduler (budgets.py)


ELSEWHERE_BILLED = frozenset(("byok",))
"""Billed-cost line items paid to another provider (OpenRouter's BYOK inference, on the user's
own upstream key): exported, but never spend of this account (budgets, recording rules)."""


class Dataset(StrEnum):
    """A provider's data set: fetched, published and failing on its own, with its own
    freshness (watermark). One that fails keeps its last good data published."""

    USAGE = "usage"
    COST = "cost"
    CLAUDE_CODE = "claude_code"  # Anthropic Claude Code analytics (own ~1 h lag)
    # Anthropic's Claude Enterprise Analytics API (an account with options.api: analytics).
    ANALYTICS_USAGE = "analytics_usage"
    ANALYTICS_COST = "analytics_cost"
    # OpenAI: one dataset per usage endpoint (completions usage is USAGE).
    EMBEDDINGS = "embeddings"
    MODERATIONS = "moderations"
    IMAGES = "images"
    AUDIO_SPEECHES = "audio_speeches"
    AUDIO_TRANSCRIPTIONS = "audio_transcriptions"
    VECTOR_STORES = "vector_stores"  # a level (gauges only)
    CODE_INTERPRETER_SESSIONS = "code_interpreter_sessions"
    FILE_SEARCH_CALLS = "file_search_calls"
    WEB_SEARCH_CALLS = "web_search_calls"
    BALANCE = "credits"  # a prepaid balance (gauges only)
    LIMITS = "limits"  # spend limits the provider enforces (gauges only)
    PREMIUM_REQUESTS = "premium_requests"  # GitHub Copilot, until 2026-05-31
    AI_CREDITS = "ai_credits"  # GitHub Copilot, from 2026-06-01
    CODEX = "codex"  # ChatGPT workspace: Codex Analytics API


class TokenType(StrEnum):
    """Disjoint token types: their sum is every token the provider counted."""

    INPUT = "input"  # uncached input
    INPUT_CACHE_READ = "input_cache_read"
    INPUT_CACHE_WRITE = "input_cache_write"  # 5-minute cache write (OpenAI: its only cache write)
    INPUT_CACHE_WRITE_1H = "input_cache_write_1h"
    OUTPUT = "output"


class Dims(NamedTuple):
    """Grouping dimensions of a series; ``""`` where not grouped or not reported."""

    project_id: str = ""
    model: str = ""
    api_key_id: str = ""
    user_id: str = ""
    provider: str = ""
    """The ``provider`` label of a series from a source that reads several providers (FOCUS
    exports: aws, azure, gcp, ...); ``""`` for the account's own provider."""


SeriesKey = tuple[Family, Dims, tuple[str, ...]]
"""(family, dims, family-specific label values in the order of ``web/metrics.py``)."""


def day_start(ts: float) -> int:
    """Start of the UTC day containing ``ts`` (Unix seconds)."""
    return int(ts) // DAY * DAY


@dataclass(slots=True)
class Batch:
    """Per-day sums of everything one fetch returned for one dataset.

    ``[start, end)`` is the time range the fetch asked for and got complete
    answers for: the ledger replaces exactly those days.

    ``gauges`` are point-in-time values of the dataset (a prepaid balance) that replace
    the previous poll's; ``skipped_rows`` counts the malformed rows left out (the first
    one's error in ``skipped_error``).

    ``long_context`` holds, of the token series in ``days``, the part a provider
    reports at the model's long-context price tier (Anthropic's ``context_window``
    200k-1M): only pricing tells those tokens apart, every count includes them.
    """

    dataset: Dataset
    start: int
    end: int
    days: dict[int, dict[SeriesKey, float]] = field(default_factory=dict, repr=False)
    watermark: float | None = None
    long_context: dict[int, dict[SeriesKey, float]] = field(default_factory=dict, repr=False)
    gauges: dict[SeriesKey, float] = field(default_factory=dict)
    skipped_rows: int = 0
    skipped_error: str = ""

    def credits_apart(self) -> None:
        """Move each day's negative billed cost (a credit, a refund) to ``BILLED_CREDIT`` as a
        positive amount, and leave out any other negative day sum (a correction of tokens, of
        an unconverted currency), counted as a malformed row: every series of ``days`` becomes
        a counter, and a counter is never below zero."""
        dropped: list[Family] = []
        for day, series in self.days.items():
            for key in [key for key, value in series.items() if value < 0]:
                value = series.pop(key)
                if key[0] is Family.BILLED_COST:
                    credit = (Family.BILLED_CREDIT, key[1], key[2])
                    series[credit] = series.get(credit, 0.0) - value
                else:
                    dropped.append(key[0])
                    self.long_context.get(day, {}).pop(key, None)
        if dropped:
            self.skipped_rows += len(dropped)
            self.skipped_error = self.skipped_error or f"a day's {dropped[0]} below zero"

    def add(self, day: int, key: SeriesKey, value: float, *, long_context: bool = False) -> None:
        """Add ``value`` to ``key`` on UTC ``day`` (ignoring zeros)."""
        self.add_all(day, (key,), (value,), long_context=long_context)

    def add_all(
        self,
        day: int,
        keys: Sequence[SeriesKey],
        values: Sequence[float],
        *,
        long_context: bool = False,
    ) -> None:
        """Add each of ``values`` to the key at its position in ``keys`` on UTC ``day``
        (ignoring zeros): the series of one result row."""
        series = self.days.get(day)
        if series is None:
            series = self.days[day] = {}
        tier = self.long_context.setdefault(day, {}) if long_context else None
        for key, value in zip(keys, values, strict=True):
            if value:
                series[key] = series.get(key, 0.0) + value
                if tier is not None:
                    tier[key] = tier.get(key, 0.0) + value
        if not series:  # only zeros: no day without data
            del self.days[day]


@dataclass(slots=True)
class FetchResult:
    """Everything one poll of one account learned.

    ``batches`` hold the datasets read in full; ``failures`` the datasets that could not be
    read, with the (classified) error: their last good data stays as it was.
    """

    batches: list[Batch]
    project_names: dict[str, str] = field(default_factory=dict)
    failures: dict[Dataset, Exception] = field(default_factory=dict)
    folded_label_sets: int = 0
    """Label sets of this month the source itself folded into the ledger's overflow value
    (the push store does, at insert, so that what it hands over stays bounded)."""
