"""Every metric this exporter exposes: name, type, HELP text and labels, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from exporter.core.records import Family

MetricType = Literal["counter", "gauge", "histogram"]

PREFIX = "aicost_"

SERIES_LABELS = ("provider", "account", "project_id", "project", "model", "api_key_id", "user_id")
"""Labels of usage and cost series; a label is omitted where its value is empty."""

_MTD = (
    " Month to date: the sum for the current UTC calendar month, rebuilt from the"
    " provider's own history on start; polled in the background, never on scrape."
)


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One metric family. ``name`` is the exposed name without the counter ``_total`` suffix.

    A provider may leave trailing ``labels`` out of a series key (a label it does not report,
    such as the status of a request); like empty values, they are not exposed.
    """

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""


TOKENS = MetricDef(
    "aicost_tokens",
    "counter",
    "Tokens the provider reports, split into disjoint token types (sum is meaningful)." + _MTD,
    ("token_type", "modality", "service_tier", "speed", "inference_geo"),  # the last two: Anthropic
)
REQUESTS = MetricDef(
    "aicost_requests",
    "counter",
    "Model requests the provider reports." + _MTD,
    ("service_tier", "status_code"),  # status_code only where reported (Groq)
)
BILLED_COST = MetricDef(
    "aicost_billed_cost_usd",
    "counter",
    "Cost in US dollars as reported by the provider's cost API." + _MTD,
    # cost_type ... inference_geo: the fields of Anthropic's cost report, where it has them.
    ("line_item", "cost_type", "token_type", "service_tier", "context_window", "inference_geo"),
    unit="usd",
)
BILLED_CREDIT = MetricDef(
    "aicost_billed_credit_usd",
    "counter",
    "Credits, refunds and other amounts the provider's bill takes off (a FOCUS Credit row, a"
    " negative cost line), as positive US dollars by the line item they came in: the net billed"
    " cost is aicost_billed_cost_usd_total minus this." + _MTD,
    BILLED_COST.labels,
    unit="usd",
)
BILLED_QUANTITY = MetricDef(
    "aicost_billed_quantity",
    "counter",
    "The quantity a cost line was billed for, in its unit (OpenAI's cost rows: tokens,"
    " 1000_tokens, duration_seconds, gibibyte_hours, images, characters; unit absent if none"
    " applies)." + _MTD,
    ("line_item", "unit"),
)
IMAGES = MetricDef(
    "aicost_images",
    "counter",
    "Images generated, as the provider reports them." + _MTD,
    ("size", "source"),
)
AUDIO_SPEECH_CHARACTERS = MetricDef(
    "aicost_audio_speech_characters",
    "counter",
    "Characters converted to speech, as the provider reports them." + _MTD,
)
AUDIO_TRANSCRIPTION_SECONDS = MetricDef(
    "aicost_audio_transcription_seconds",
    "counter",
    "Seconds of audio transcribed, as the provider reports them." + _MTD,
    unit="seconds",
)

ESTIMATED_COST = MetricDef(
    "aicost_estimated_cost_usd",
    "counter",
    "Cost in US dollars estimated from usage: tokens of each type times the model's list"
    " price on the day of use (genai-prices, or a configured override), less discounts; tool"
    " calls priced per call carry the tool as token_type." + _MTD,
    ("token_type", "service_tier"),
    unit="usd",
)
UNPRICED_TOKENS = MetricDef(
    "aicost_unpriced_tokens",
    "counter",
    "Tokens of models without a known price: not in the estimated cost (never $0)." + _MTD,
    ("token_type",),
)
CREDITS_REMAINING = MetricDef(
    "aicost_credits_remaining_usd",
    "gauge",
    "Prepaid balance left in US dollars, where the provider has one (as of the last poll).",
    unit="usd",
)
CREDITS_AVAILABLE = MetricDef(
    "aicost_credits_available",
    "gauge",
    "1 if the provider reports the balance sufficient for API calls, 0 if not (DeepSeek's"
    " is_available; as of the last poll).",
)

PREMIUM_REQUESTS = MetricDef(
    "aicost_premium_requests",
    "counter",
    "Premium requests used (GitHub Copilot: gross quantity after model multipliers, including"
    " those covered by the plan's allowance; what was billed is in aicost_billed_cost_usd)." + _MTD,
    ("line_item",),
)
AI_CREDITS = MetricDef(
    "aicost_ai_credits",
    "counter",
    "AI credits used (GitHub Copilot since 2026-06-01, 1 credit = $0.01: gross quantity,"
    " including those covered by the plan; what was billed is in aicost_billed_cost_usd)." + _MTD,
)
CREDITS_USED = MetricDef(
    "aicost_credits_used",
    "counter",
    "Credits of a ChatGPT plan used (Codex in a ChatGPT workspace), by product and model. In"
    " dollars only with a configured rate per credit, as aicost_billed_cost_usd{line_item="
    '"credits"}.' + _MTD,
    ("product",),
)
# Claude Code analytics. Its tokens are deliberately NOT in aicost_tokens_total: for
# customer_type="api" the same tokens are already in the messages usage report.
CLAUDE_CODE_TOKENS = MetricDef(
    "aicost_claude_code_tokens",
    "counter",
    "Tokens used by Claude Code, by disjoint token type. A subset of aicost_tokens_total for"
    ' customer_type="api" (never add the two); subscription usage is not in it.' + _MTD,
    ("token_type", "customer_type"),
)
CLAUDE_CODE_ESTIMATED_COST = MetricDef(
    "aicost_claude_code_estimated_cost_usd",
    "counter",
    "Claude Code cost in US dollars as estimated by Anthropic's Claude Code analytics"
    " (not a bill; API usage is billed in aicost_billed_cost_usd)." + _MTD,
    ("customer_type",),
    unit="usd",
)
CLAUDE_CODE_SESSIONS = MetricDef(
    "aicost_claude_code_sessions", "counter", "Claude Code sessions started." + _MTD
)
CLAUDE_CODE_LINES = MetricDef(
    "aicost_claude_code_lines_of_code",
    "counter",
    "Lines of code added or removed by Claude Code." + _MTD,
    ("change",),
)
CLAUDE_CODE_COMMITS = MetricDef(
    "aicost_claude_code_commits", "counter", "Commits created by Claude Code." + _MTD
)
CLAUDE_CODE_PULL_REQUESTS = MetricDef(
    "aicost_claude_code_pull_requests", "counter", "Pull requests created by Claude Code." + _MTD
)
CLAUDE_CODE_TOOL_ACTIONS = MetricDef(
    "aicost_claude_code_tool_actions",
    "counter",
    "Claude Code edit/write tool proposals the user accepted or rejected." + _MTD,
    ("tool", "decision"),
)

REASONING_TOKENS = MetricDef(
    "aicost_reasoning_tokens",
    "counter",
    "Reasoning tokens, where the provider reports them separately (OpenRouter). A subset of"
    ' aicost_tokens_total{token_type="output"}: never add the two.' + _MTD,
)
BILLED_COST_TODAY = MetricDef(
    "aicost_billed_cost_today_usd",
    "gauge",
    "Spend in US dollars so far in the current UTC day that the provider reports only as a"
    " running counter, not yet in aicost_billed_cost_usd_total (OpenRouter: the keys' daily"
    " usage; its activity report has completed days only). As of the last poll.",
    unit="usd",
)

TOOL_CALLS = MetricDef(
    "aicost_tool_calls",
    "counter",
    "Server-side tool calls the provider reports and bills per call (web_search, file_search,"
    " code_interpreter sessions)." + _MTD,
    ("tool",),
)
VECTOR_STORE_BYTES = MetricDef(
    "aicost_vector_store_bytes",
    "gauge",
    "Bytes held in the provider's vector stores (OpenAI: the latest day reported), billed per"
    " GB-day.",
    unit="bytes",
)
UNCONVERTED_COST = MetricDef(
    "aicost_unconverted_cost",
    "counter",
    "Billed cost reported in a currency other than US dollars and without a configured rate"
    " (options.currency_rates), in that currency: not in aicost_billed_cost_usd_total." + _MTD,
    ("currency",),
)

_LIMIT = ("limit", "period")
_LIMIT_SCOPE = (
    " The scope is the account, or the project or user its labels name; limit is the kind"
    ' ("hard": the provider refuses requests beyond it), period its interval ("month": the UTC'
    " calendar month). As of the last poll."
)
PROVIDER_LIMIT = MetricDef(
    "aicost_provider_limit_usd",
    "gauge",
    "A spend limit configured at the provider, in US dollars." + _LIMIT_SCOPE,
    _LIMIT,
    unit="usd",
)
PROVIDER_LIMIT_ENFORCING = MetricDef(
    "aicost_provider_limit_enforcing",
    "gauge",
    "1 if the provider reports the limit as enforcing (requests in its scope are refused), 0 if"
    " not." + _LIMIT_SCOPE,
    _LIMIT,
)
PROVIDER_LIMIT_SPEND = MetricDef(
    "aicost_provider_limit_spend_usd",
    "gauge",
    "Spend in the limit's current period as the provider counts it against the limit, in US"
    " dollars (only where the provider reports it)." + _LIMIT_SCOPE,
    _LIMIT,
    unit="usd",
)
PROVIDER_LIMIT_FORECAST = MetricDef(
    "aicost_provider_limit_forecast_usd",
    "gauge",
    "Spend in the limit's scope expected by the end of its period: the spend so far (the"
    " provider's figure where it reports one, else billed cost for settled days and the estimate"
    " for the rest) plus the trailing 7-day spend rate times the time left, in US dollars."
    + _LIMIT_SCOPE,
    _LIMIT,
    unit="usd",
)

FAMILY_METRICS: dict[Family, MetricDef] = {
    Family.PREMIUM_REQUESTS: PREMIUM_REQUESTS,
    Family.AI_CREDITS: AI_CREDITS,
    Family.CREDITS_USED: CREDITS_USED,
    Family.CLAUDE_CODE_TOKENS: CLAUDE_CODE_TOKENS,
    Family.CLAUDE_CODE_ESTIMATED_COST: CLAUDE_CODE_ESTIMATED_COST,
    Family.CLAUDE_CODE_SESSIONS: CLAUDE_CODE_SESSIONS,
    Family.CLAUDE_CODE_LINES: CLAUDE_CODE_LINES,
    Family.CLAUDE_CODE_COMMITS: CLAUDE_CODE_COMMITS,
    Family.CLAUDE_CODE_PULL_REQUESTS: CLAUDE_CODE_PULL_REQUESTS,
    Family.CLAUDE_CODE_TOOL_ACTIONS: CLAUDE_CODE_TOOL_ACTIONS,
    Family.TOKENS: TOKENS,
    Family.REQUESTS: REQUESTS,
    Family.BILLED_COST: BILLED_COST,
    Family.BILLED_CREDIT: BILLED_CREDIT,
    Family.BILLED_QUANTITY: BILLED_QUANTITY,
    Family.IMAGES: IMAGES,
    Family.AUDIO_SPEECH_CHARACTERS: AUDIO_SPEECH_CHARACTERS,
    Family.AUDIO_TRANSCRIPTION_SECONDS: AUDIO_TRANSCRIPTION_SECONDS,
    Family.CREDITS_REMAINING: CREDITS_REMAINING,
    Family.CREDITS_AVAILABLE: CREDITS_AVAILABLE,
    Family.ESTIMATED_COST: ESTIMATED_COST,
    Family.UNPRICED_TOKENS: UNPRICED_TOKENS,
    Family.REASONING_TOKENS: REASONING_TOKENS,
    Family.BILLED_COST_TODAY: BILLED_COST_TODAY,
    Family.TOOL_CALLS: TOOL_CALLS,
    Family.VECTOR_STORE_BYTES: VECTOR_STORE_BYTES,
    Family.UNCONVERTED_COST: UNCONVERTED_COST,
    Family.PROVIDER_LIMIT: PROVIDER_LIMIT,
    Family.PROVIDER_LIMIT_ENFORCING: PROVIDER_LIMIT_ENFORCING,
    Family.PROVIDER_LIMIT_SPEND: PROVIDER_LIMIT_SPEND,
    Family.PROVIDER_LIMIT_FORECAST: PROVIDER_LIMIT_FORECAST,
}

DATA_WATERMARK = MetricDef(
    "aicost_data_watermark_timestamp_seconds",
    "gauge",
    "Time up to which the provider returned data for this dataset in the last successful poll.",
    ("provider", "account", "dataset"),
)
DATA_EXPECTED_LAG = MetricDef(
    "aicost_data_expected_lag_seconds",
    "gauge",
    "How far behind the clock this dataset's watermark may be while the provider is healthy;"
    " AICostDataStale fires beyond it.",
    ("provider", "account", "dataset"),
)
SERIES_OVERFLOW = MetricDef(
    "aicost_series_overflow",
    "counter",
    "Label sets of this month beyond the account's max_label_sets, counted under the value"
    " (other) in every grouped label instead of series of their own.",
    ("provider", "account"),
)
DATA_REVISIONS = MetricDef(
    "aicost_data_revisions",
    "counter",
    "Times the provider revised a month-to-date value downward;"
    " the exported counter keeps the higher value.",
    ("provider", "account"),
)
COLLECTOR_UP = MetricDef(
    "aicost_collector_up",
    "gauge",
    "1 if every dataset of the last poll of this account succeeded, 0 if one failed or no poll"
    " has completed yet.",
    ("provider", "account"),
)
DATASET_UP = MetricDef(
    "aicost_dataset_up",
    "gauge",
    "1 if the last poll read this dataset of the account, 0 if it failed (its last good data"
    " stays published).",
    ("provider", "account", "dataset"),
)
DATASET_LAST_SUCCESS = MetricDef(
    "aicost_dataset_last_success_timestamp_seconds",
    "gauge",
    "Unix time of the last poll that read this dataset of the account.",
    ("provider", "account", "dataset"),
)
COLLECTOR_LAST_SUCCESS = MetricDef(
    "aicost_collector_last_success_timestamp_seconds",
    "gauge",
    "Unix time of the last poll of this account in which every dataset succeeded.",
    ("provider", "account"),
)
COLLECTOR_DURATION = MetricDef(
    "aicost_collector_duration_seconds",
    "histogram",
    "Duration of polls of this account, successful or not.",
    ("provider", "account"),
    unit="seconds",
)
COLLECTOR_ERRORS = MetricDef(
    "aicost_collector_errors",
    "counter",
    "Failed dataset reads of this account by reason (a poll in which two datasets fail counts"
    " two), and malformed rows left out (reason parse).",
    ("provider", "account", "reason"),
)
API_REQUESTS = MetricDef(
    "aicost_api_requests",
    "counter",
    "HTTP requests made to the provider's API, by endpoint and status code"
    " (timeout or connection_error when there was no response).",
    ("provider", "account", "endpoint", "code"),
)
BUILD_INFO = MetricDef(
    "aicost_build_info",
    "gauge",
    "Always 1; the labels carry the exporter's version.",
    ("version",),
)

DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

COST_RECONCILIATION = MetricDef(
    "aicost_cost_reconciliation_ratio",
    "gauge",
    "Estimated cost divided by billed cost over the settled days of this month and the 7 days"
    " before it (absent unless both are positive).",
    ("provider", "account"),
)

_BUDGET = ("budget", "period")
BUDGET_LIMIT = MetricDef("aicost_budget_limit_usd", "gauge",
                         "The budget's limit for its period, in US dollars.", _BUDGET, unit="usd")
BUDGET_SPEND = MetricDef("aicost_budget_spend_usd", "gauge",
                         "Spend matching the budget in its current period, in US dollars.", _BUDGET,
                         unit="usd")
BUDGET_FORECAST = MetricDef(
    "aicost_budget_forecast_usd", "gauge",
    "Spend expected by the end of the period: spend so far plus the trailing 7-day spend rate"
    " times the time left.", _BUDGET, unit="usd")
BUDGET_UTILIZATION = MetricDef("aicost_budget_utilization_ratio", "gauge",
                               "Spend divided by the limit (1 = budget used up).", _BUDGET)
BUDGET_WARNING = MetricDef("aicost_budget_warning_ratio", "gauge",
                           "The utilization at which this budget warns (from the configuration).",
                           _BUDGET)
BUDGET_PERIOD_END = MetricDef("aicost_budget_period_end_timestamp_seconds", "gauge",
                              "Unix time at which the budget's current period ends.", _BUDGET)

CONFIG_RELOAD_SUCCESSFUL = MetricDef(
    "aicost_config_last_reload_successful",
    "gauge",
    "1 if the last configuration (re)load succeeded, 0 if the new configuration was refused.",
)
CONFIG_RELOAD_SUCCESS_TIME = MetricDef(
    "aicost_config_last_reload_success_timestamp_seconds",
    "gauge",
    "Unix time of the last successful configuration load (start-up or reload).",
)
