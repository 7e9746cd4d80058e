"""The simulated organisations: projects, workspaces, usage streams and price tables.

A *stream* is one combination of grouping dimensions that produces usage (e.g. one
project's API key calling one model on one service tier). Every value the simulator
serves is a sum over streams, so any ``group_by`` is a re-aggregation of the same
numbers and grouped sums always equal ungrouped ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

DimValue = str | bool | None

# Usage of archived projects/workspaces stops here (2026-10-15T00:00:00Z). A fixed
# instant keeps every value a pure function of (seed, hour); the listing endpoints show
# the entity as archived only once the simulated clock has passed it.
ARCHIVED_AT: Final = 1_792_022_400


@dataclass(frozen=True, slots=True)
class Entity:
    """An OpenAI project or an Anthropic workspace as the listing endpoints show it."""

    id: str
    name: str
    created_at: int
    archived: bool = False
    display_color: str = "#6C5BB9"


@dataclass(frozen=True, slots=True)
class Stream:
    """One usage stream: fixed dimensions, peak-hour request rate, per-request mix.

    ``mix`` holds the average amount per request of each value component after the
    request count (see ``COMPONENTS``); ``until`` ends usage (archived owner).
    """

    kind: str
    dims: Mapping[str, DimValue]
    rate: float
    mix: tuple[float, ...]
    until: int | None = None


OPENAI: Final = "openai"
ANTHROPIC: Final = "anthropic"

# Value components per kind; index 0 is always the request count.
# Value components per kind; index 0 is always the request count (Anthropic reports
# none: there it only drives the other values). A stream's ``mix`` covers the rest.
# fmt: off
COMPONENTS: Final[dict[str, tuple[str, ...]]] = {
    "completions": ("requests", "uncached_text", "uncached_audio", "uncached_image",
                    "cached_text", "cached_audio", "cached_image", "cache_write",
                    "output_text", "output_audio", "output_image"),
    "embeddings": ("requests", "input_tokens"),
    "moderations": ("requests", "input_tokens"),
    "images": ("requests", "images"),
    "audio_speeches": ("requests", "characters"),
    "audio_transcriptions": ("requests", "seconds"),
    # Tool calls: index 0 drives the others (model requests for web search).
    "code_interpreter_sessions": ("requests", "sessions"),
    "file_search_calls": ("requests", "calls"),
    "web_search_calls": ("requests", "calls"),
    "messages": ("requests", "uncached_input_tokens", "cache_read_input_tokens",
                 "ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens", "output_tokens",
                 "web_search_requests"),
}
# fmt: on

# --------------------------------------------------------------------------- OpenAI

PROJECTS: Final = (
    Entity("proj_Wq3kR8sLmN2vXc7bTz4pYa1d", "Customer Support Bot", 1_709_251_200),
    Entity("proj_H5tGf9JkL2mNb8VcX3zQw6Er", "Internal Search", 1_713_312_000),
    Entity("proj_Ab7Cd2Ef9Gh4Ij1Kl6Mn3Op8", "Data Pipeline", 1_722_470_400),
    Entity("proj_Zx1Yw2Vu3Ts4Rq5Po6Nm7Lk8", "Legacy Prototype", 1_704_067_200, archived=True),
)
_SUPPORT, _SEARCH, _PIPELINE, _LEGACY = (p.id for p in PROJECTS)

SPEND_LIMITS_CENTS: Final[Mapping[str | None, int]] = {
    None: 500_000,  # the organization: $5,000 a month, far above its spend
    _SEARCH: 60_000,  # $600 a month: forecast above it from the first days, reached late
    _PIPELINE: 100_000,  # $1,000 a month: never reached
}
"""Hard spend limits (cents a month) by project id, None for the organization; the others have
none (a 404). A limit is enforcing once the month's cost in its scope reaches it."""

_U1, _U2, _U3, _U4 = (
    "user-Fh2Kd8Ls0Qw3Er5Ty7Ui9Op1",
    "user-Mn4Bv6Cx8Za1Sd3Fg5Hj7Kl9",
    "user-Qa2Ws4Ed6Rf8Tg0Yh1Uj3Ik5",
    "user-Pl9Ok8Ij7Uh6Yg5Tf4Rd3Es2",
)
_KA1, _KA2, _KB1, _KB2, _KC1, _KD1 = (
    "key_A1b2C3d4E5f6G7h8",
    "key_I9j0K1l2M3n4O5p6",
    "key_Q7r8S9t0U1v2W3x4",
    "key_Y5z6A7b8C9d0E1f2",
    "key_G3h4I5j6K7l8M9n0",
    "key_O1p2Q3r4S5t6U7v8",
)

MINI = "gpt-4.1-mini-2025-04-14"
GPT41 = "gpt-4.1-2025-04-14"
O4MINI = "o4-mini-2025-04-16"
REALTIME = "gpt-realtime-2025-08-28"  # the model with audio and image tokens


def _completion(
    project: str,
    user: str,
    key: str,
    model: str,
    tier: str,
    batch: bool,
    rate: float,
    mix: tuple[float, ...],
    until: int | None = None,
) -> Stream:
    dims: dict[str, DimValue] = {
        "project_id": project,
        "user_id": user,
        "api_key_id": key,
        "model": model,
        "batch": batch,
        "service_tier": tier,
    }
    return Stream("completions", dims, rate, mix, until)


def _simple(
    kind: str,
    project: str,
    user: str,
    key: str,
    model: str,
    rate: float,
    per_request: float,
    **extra: str,
) -> Stream:
    dims: dict[str, DimValue] = {
        "project_id": project,
        "user_id": user,
        "api_key_id": key,
        "model": model,
        **extra,
    }
    return Stream(kind, dims, rate, (per_request,))


# fmt: off
# mix: uncached text/audio/image, cached text/audio/image, cache write, output text/audio/image
OPENAI_STREAMS: Final = (
    _completion(_SUPPORT, _U1, _KA1, MINI, "default", False, 400,
                (2500, 0, 0, 1500, 0, 0, 200, 350, 0, 0)),
    _completion(_SUPPORT, _U1, _KA1, O4MINI, "flex", False, 40,
                (1800, 0, 0, 600, 0, 0, 0, 2600, 0, 0)),
    _completion(_SUPPORT, _U2, _KA2, REALTIME, "default", False, 8,
                (800, 3000, 200, 400, 1500, 50, 0, 200, 2000, 0)),
    _completion(_SEARCH, _U3, _KB1, GPT41, "default", False, 150,
                (3000, 0, 500, 1000, 0, 120, 150, 400, 0, 0)),
    _completion(_SEARCH, _U3, _KB1, MINI, "default", False, 120,
                (1200, 0, 0, 300, 0, 0, 0, 250, 0, 0)),
    _completion(_SEARCH, _U1, _KB2, O4MINI, "default", False, 60,
                (2000, 0, 0, 400, 0, 0, 0, 3000, 0, 0)),
    _completion(_PIPELINE, _U4, _KC1, MINI, "default", True, 1000,
                (1500, 0, 0, 0, 0, 0, 0, 100, 0, 0)),
    _completion(_PIPELINE, _U4, _KC1, GPT41, "default", True, 200,
                (2200, 0, 0, 0, 0, 0, 0, 300, 0, 0)),
    _completion(_PIPELINE, _U4, _KC1, O4MINI, "flex", False, 50,
                (1500, 0, 0, 200, 0, 0, 0, 1800, 0, 0)),
    _completion(_LEGACY, _U2, _KD1, MINI, "default", False, 60,
                (900, 0, 0, 100, 0, 0, 0, 200, 0, 0), until=ARCHIVED_AT),
    _simple("embeddings", _SEARCH, _U3, _KB1, "text-embedding-3-small", 800, 600),
    _simple("embeddings", _PIPELINE, _U4, _KC1, "text-embedding-3-small", 2000, 400),
    _simple("moderations", _SUPPORT, _U1, _KA1, "omni-moderation-latest", 300, 150),
    _simple("images", _SUPPORT, _U2, _KA2, "gpt-image-1", 12, 1.5,
            size="1024x1024", source="image.generation"),
    _simple("images", _SEARCH, _U3, _KB1, "gpt-image-1", 4, 1.0,
            size="1024x1792", source="image.edit"),
    _simple("audio_speeches", _SUPPORT, _U2, _KA2, "tts-1", 30, 400),
    _simple("audio_transcriptions", _SUPPORT, _U2, _KA2, "whisper-1", 25, 45),
    # Built-in tools of the Responses API, billed per call or session.
    _simple("code_interpreter_sessions", _SUPPORT, _U1, _KA1, MINI, 40, 0.25),
    _simple("file_search_calls", _SEARCH, _U3, _KB1, MINI, 60, 1.5,
            vector_store_id="vs_Kp4Tz8Qm2Lx6Rw9N"),
    _simple("web_search_calls", _SEARCH, _U3, _KB1, MINI, 40, 1.2, context_level="medium"),
)
# fmt: on

# Vector store storage by project: (bytes on 2026-01-01, bytes added per day). A level, not a
# sum over hours: every bucket of a day reports the same bytes.
VECTOR_STORES: Final = {
    _SEARCH: (3_400_000_000, 12_000_000),
    _SUPPORT: (650_000_000, 1_500_000),
}
_VECTOR_EPOCH = 1_767_225_600  # 2026-01-01T00:00:00Z


def vector_store_bytes(project: str, day: int) -> int:
    """Bytes the project's vector stores hold on the UTC day starting at ``day``."""
    base, growth = VECTOR_STORES[project]
    return max(0, base + growth * ((day - _VECTOR_EPOCH) // 86_400))

# Dollars per million tokens:
# (input, cached input, output, audio input, cached audio input, audio output).
OPENAI_TOKEN_PRICES: Final[dict[str, tuple[float, ...]]] = {
    MINI: (0.40, 0.10, 1.60, 0, 0, 0),
    GPT41: (2.00, 0.50, 8.00, 0, 0, 0),
    O4MINI: (1.10, 0.275, 4.40, 0, 0, 0),
    REALTIME: (4.00, 0.40, 16.00, 32.00, 0.40, 64.00),
    "text-embedding-3-small": (0.02, 0, 0, 0, 0, 0),
}
OPENAI_TIER_FACTOR: Final = {"batch": 0.5, "flex": 0.5, "default": 1.0}
# Dollars per unit for the non-token endpoints, by (kind, size).
IMAGE_PRICES: Final = {"1024x1024": 0.042, "1024x1792": 0.063}
SPEECH_PRICE_PER_CHAR: Final = 15.0 / 1_000_000
TRANSCRIPTION_PRICE_PER_SECOND: Final = 0.006 / 60
# Dollars per tool call or session (OpenAI's price list: file search $2.50 and web search
# $10 per 1,000 calls, code interpreter $0.03 per session).
TOOL_PRICES: Final = {
    "code_interpreter_sessions": 0.03,
    "file_search_calls": 0.0025,
    "web_search_calls": 0.01,
}

# ------------------------------------------------------------------------ Anthropic

WORKSPACES: Final = (
    Entity("wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ", "Production", 1_717_200_000, display_color="#3B82F6"),
    Entity("wrkspc_01KpRtsy8sYMB6BHy4JLgGVK", "Research", 1_720_000_000, display_color="#10B981"),
    Entity(
        "wrkspc_01LqSuty9tZNC7CIz5KMhHWL",
        "Old Experiments",
        1_705_000_000,
        archived=True,
        display_color="#F59E0B",
    ),
)
_PROD, _RESEARCH, _OLD = (w.id for w in WORKSPACES)
_AK0, _AK1, _AK2, _AK3 = (
    "apikey_01Rj9N8Ck3LmVq5yTz2XbWd4",
    "apikey_01Sk0P9Dl4MnWr6zUa3YcXe5",
    "apikey_01Tl1Q0Em5NoXs7aVb4ZdYf6",
    "apikey_01Um2R1Fn6OpYt8bWc5AeZg7",
)

SONNET = "claude-sonnet-4-5-20250929"
HAIKU = "claude-haiku-4-5-20251001"
OPUS = "claude-opus-4-1-20250805"


def _message(
    workspace: str | None,
    key: str | None,
    model: str,
    tier: str,
    rate: float,
    mix: tuple[float, ...],
    context: str = "0-200k",
    geo: str = "global",
    until: int | None = None,
) -> Stream:
    dims: dict[str, DimValue] = {
        "api_key_id": key,
        "workspace_id": workspace,
        "account_id": None,
        "service_account_id": None,
        "model": model,
        "service_tier": tier,
        "context_window": context,
        "inference_geo": geo,
        "speed": "standard",
    }
    return Stream("messages", dims, rate, mix, until)


# fmt: off
# mix: uncached input, cache read, 5m cache write, 1h cache write, output, web searches.
# A workspace_id of None is the default workspace; an api_key_id of None is Console/Workbench use.
ANTHROPIC_STREAMS: Final = (
    _message(None, None, SONNET, "standard", 10, (2500, 4000, 800, 0, 700, 0)),
    _message(None, _AK0, HAIKU, "standard", 80, (1500, 3000, 300, 0, 250, 0)),
    _message(_PROD, _AK1, SONNET, "standard", 200, (3000, 20000, 2000, 500, 600, 0.02)),
    _message(_PROD, _AK1, SONNET, "priority", 40, (2500, 15000, 1500, 0, 500, 0)),
    _message(_PROD, _AK1, SONNET, "standard", 6, (60000, 150000, 10000, 0, 1200, 0),
             context="200k-1M"),
    _message(_PROD, _AK1, HAIKU, "standard", 300, (1200, 6000, 400, 0, 200, 0)),
    _message(_RESEARCH, _AK2, OPUS, "standard", 20, (4000, 25000, 3000, 1000, 1500, 0.05),
             geo="us"),
    _message(_RESEARCH, _AK2, SONNET, "batch", 150, (5000, 0, 0, 0, 800, 0)),
    _message(_RESEARCH, _AK2, HAIKU, "batch", 250, (2000, 0, 0, 0, 300, 0)),
    _message(_OLD, _AK3, HAIKU, "standard", 40, (1000, 2000, 200, 0, 200, 0), until=ARCHIVED_AT),
)
# fmt: on

MODEL_DISPLAY: Final = {
    SONNET: "Claude Sonnet 4.5",
    HAIKU: "Claude Haiku 4.5",
    OPUS: "Claude Opus 4.1",
}
# Dollars per million tokens: (input, cache read, 5m cache write, 1h cache write, output).
ANTHROPIC_PRICES: Final[dict[tuple[str, str], tuple[float, ...]]] = {
    (SONNET, "0-200k"): (3.00, 0.30, 3.75, 6.00, 15.00),
    (SONNET, "200k-1M"): (6.00, 0.60, 7.50, 12.00, 22.50),
    (HAIKU, "0-200k"): (1.00, 0.10, 1.25, 2.00, 5.00),
    (OPUS, "0-200k"): (15.00, 1.50, 18.75, 30.00, 75.00),
}
ANTHROPIC_TIER_FACTOR: Final = {"standard": 1.0, "batch": 0.5}
WEB_SEARCH_CENTS: Final = 1.0  # $10 per 1,000 searches

STREAMS: Final = {OPENAI: OPENAI_STREAMS, ANTHROPIC: ANTHROPIC_STREAMS}
