"""Every metric this exporter exposes: name, type, HELP text and labels, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from exporter.records import Family

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
    """One metric family. ``name`` is the exposed name without the counter ``_total`` suffix."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...] = ()
    unit: str = ""


TOKENS = MetricDef(
    "aicost_tokens",
    "counter",
    "Tokens the provider reports, split into disjoint token types (sum is meaningful)." + _MTD,
    ("token_type", "modality", "service_tier"),
)
REQUESTS = MetricDef(
    "aicost_requests",
    "counter",
    "Model requests the provider reports." + _MTD,
    ("service_tier",),
)
BILLED_COST = MetricDef(
    "aicost_billed_cost_usd",
    "counter",
    "Cost in US dollars as reported by the provider's cost API." + _MTD,
    ("line_item",),
    unit="usd",
)
IMAGES = MetricDef(
    "aicost_images", "counter", "Images generated, as the provider reports them." + _MTD
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

CREDITS_REMAINING = MetricDef(
    "aicost_credits_remaining_usd",
    "gauge",
    "Prepaid balance left in US dollars, where the provider has one (as of the last poll).",
    unit="usd",
)

FAMILY_METRICS: dict[Family, MetricDef] = {
    Family.TOKENS: TOKENS,
    Family.REQUESTS: REQUESTS,
    Family.BILLED_COST: BILLED_COST,
    Family.IMAGES: IMAGES,
    Family.AUDIO_SPEECH_CHARACTERS: AUDIO_SPEECH_CHARACTERS,
    Family.AUDIO_TRANSCRIPTION_SECONDS: AUDIO_TRANSCRIPTION_SECONDS,
    Family.CREDITS_REMAINING: CREDITS_REMAINING,
}

DATA_WATERMARK = MetricDef(
    "aicost_data_watermark_timestamp_seconds",
    "gauge",
    "Time up to which the provider returned data for this dataset in the last successful poll.",
    ("provider", "account", "dataset"),
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
    "1 if the last poll of this account succeeded, 0 if it failed or has not completed yet.",
    ("provider", "account"),
)
COLLECTOR_LAST_SUCCESS = MetricDef(
    "aicost_collector_last_success_timestamp_seconds",
    "gauge",
    "Unix time of the last successful poll of this account.",
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
    "Failed polls of this account by reason.",
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
