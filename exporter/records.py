"""Normalised provider data: what a provider module hands to the ledger.

A provider never builds metric objects. It parses the provider's pages and adds
values into a :class:`Batch`, keyed by UTC day, series and family. Adding
(instead of materialising one object per value) keeps ingest fast, and the
batch is already the per-day aggregate the ledger stores.

A provider whose rows each carry many series (OpenAI's completions: token types
by modality, and requests) adds a row as one vector of a :class:`SeriesGroup`
instead: pricing and the ledger then do one vector operation per row where they
would do a dictionary update per series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from operator import add, mul
from typing import NamedTuple

DAY = 86_400


class Family(StrEnum):
    """Month-to-date counter families a provider can report (see ``metrics.py``)."""

    TOKENS = "tokens"  # extra labels: token_type, modality, service_tier
    REQUESTS = "requests"  # extra labels: service_tier
    BILLED_COST = "billed_cost_usd"  # extra labels: line_item
    IMAGES = "images"  # extra labels: none
    AUDIO_SPEECH_CHARACTERS = "audio_speech_characters"  # extra labels: none
    AUDIO_TRANSCRIPTION_SECONDS = "audio_transcription_seconds"  # extra labels: none
    ESTIMATED_COST = "estimated_cost_usd"  # by pricing.py; extra labels: token_type, service_tier
    UNPRICED_TOKENS = "unpriced_tokens"  # added by pricing.py; extra labels: token_type
    CREDITS_REMAINING = "credits_remaining_usd"  # a gauge (FetchResult.gauges); extra labels: none
    PREMIUM_REQUESTS = "premium_requests"  # GitHub Copilot; extra labels: line_item
    CLAUDE_CODE_TOKENS = "claude_code_tokens"  # extra labels: token_type, customer_type
    CLAUDE_CODE_ESTIMATED_COST = "claude_code_estimated_cost_usd"  # extra: customer_type
    CLAUDE_CODE_SESSIONS = "claude_code_sessions"  # extra labels: none
    CLAUDE_CODE_LINES = "claude_code_lines_of_code"  # extra labels: change
    CLAUDE_CODE_COMMITS = "claude_code_commits"  # extra labels: none
    CLAUDE_CODE_PULL_REQUESTS = "claude_code_pull_requests"  # extra labels: none
    CLAUDE_CODE_TOOL_ACTIONS = "claude_code_tool_actions"  # extra labels: tool, decision
    REASONING_TOKENS = "reasoning_tokens"  # OpenRouter; a subset of output tokens; extra: none
    BILLED_COST_TODAY = "billed_cost_today_usd"  # a gauge (OpenRouter key counters); extra: none


class Dataset(StrEnum):
    """A provider's data set with its own freshness (watermark)."""

    USAGE = "usage"
    COST = "cost"
    CLAUDE_CODE = "claude_code"  # Anthropic Claude Code analytics (own ~1 h lag)


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


SeriesKey = tuple[Family, Dims, tuple[str, ...]]
"""(family, dims, family-specific label values in the order of ``metrics.py``)."""


Vector = tuple[float, ...]
"""A row's values in the order of its :class:`SeriesGroup`'s keys."""


class SeriesGroup:
    """Series a provider reports together, one vector of values per row.

    ``keys`` may repeat a key (its slots add up) and may hold None (a slot that
    is not published, such as requests in a cost vector). Every key has the same
    dims. Groups compare by identity, so dictionaries keyed by them stay fast:
    intern them (one object per distinct keys). Two objects with equal keys are
    still added up correctly, only less compactly.

    A group with a ``scale`` stores its rows unscaled and multiplies them by
    ``scale`` slot by slot when they are expanded or totalled. Pricing keys a
    row's own token vector by a cost group whose scale is the price vector: no
    new vector per row, and sums of many days are multiplied once. A slot is
    published when its stored value is not zero, also if its scale is 0 (tokens
    of a model priced at $0 cost $0; they are not missing).

    ``long_context``: the rows' tokens are billed at the model's long-context tier
    (Anthropic's ``context_window`` 200k-1M). Such a group has the same keys as
    the ordinary one of its series; only pricing tells them apart.
    """

    __slots__ = ("keys", "dims", "family", "scale", "weights", "long_context")

    def __init__(
        self,
        keys: Iterable[SeriesKey | None],
        scale: Vector | None = None,
        *,
        long_context: bool = False,
    ) -> None:
        self.keys: tuple[SeriesKey | None, ...] = tuple(keys)
        present = [key for key in self.keys if key is not None]
        dims = {key[1] for key in present}
        if len(dims) != 1:
            raise ValueError("a series group needs keys of exactly one Dims")
        if scale is not None and len(scale) != len(self.keys):
            raise ValueError("a series group's scale needs one factor per key")
        self.dims: Dims = dims.pop()
        families = {key[0] for key in present}
        self.family: Family | None = families.pop() if len(families) == 1 else None
        """The family of every key, or None when the group mixes families."""
        self.scale = scale
        self.long_context = long_context
        self.weights: Vector | None = None
        """Per slot, what a row's value counts for in :meth:`total` (None: 1 each)."""
        if scale is not None or len(present) < len(self.keys):
            factors = scale if scale is not None else (1.0,) * len(self.keys)
            self.weights = tuple(
                0.0 if key is None else factor
                for key, factor in zip(self.keys, factors, strict=True)
            )

    def with_dims(self, dims: Dims) -> SeriesGroup:
        """This group for other dims: the same families, labels, scale and weights."""
        group = SeriesGroup.__new__(SeriesGroup)
        group.keys = tuple(None if key is None else (key[0], dims, key[2]) for key in self.keys)
        group.dims, group.family = dims, self.family
        group.scale, group.weights = self.scale, self.weights
        group.long_context = self.long_context
        return group

    def __repr__(self) -> str:
        scale = "" if self.scale is None else f", scale={self.scale!r}"
        long_context = ", long_context=True" if self.long_context else ""
        return f"SeriesGroup({self.keys!r}{scale}{long_context})"

    def total(self, values: Vector) -> float:
        """The sum of a row's published (scaled) values."""
        return sum(values) if self.weights is None else sum(map(mul, values, self.weights))


def expand_rows(rows: Mapping[SeriesGroup, Vector], into: dict[SeriesKey, float]) -> None:
    """Add every row's published slots (stored value not zero) into ``into`` by series key."""
    get = into.get
    for group, values in rows.items():
        scale = group.scale
        if scale is None:
            for key, value in zip(group.keys, values, strict=True):
                if value and key is not None:
                    into[key] = get(key, 0.0) + value
        else:
            for key, value, factor in zip(group.keys, values, scale, strict=True):
                if value and key is not None:
                    into[key] = get(key, 0.0) + value * factor


def sum_rows(parts: Iterable[Mapping[SeriesGroup, Vector]]) -> dict[SeriesGroup, Vector]:
    """The row-wise sum of ``parts`` (e.g. many days' rows into one month's)."""
    parts = [part for part in parts if part]
    if not parts:
        return {}
    # Days of one report usually list the same groups in the same order: then each group's
    # vectors come out of one zip, with no per-row Python code at all.
    first = list(parts[0])
    if all(len(part) == len(first) and list(part) == first for part in parts[1:]):
        per_group: Iterable[Sequence[Vector]] = zip(*(part.values() for part in parts), strict=True)
    else:
        gathered: dict[SeriesGroup, list[Vector]] = {}
        get = gathered.get
        for rows in parts:
            for group, values in rows.items():
                found = get(group)
                if found is None:
                    gathered[group] = [values]
                else:
                    found.append(values)
        first, per_group = list(gathered), gathered.values()
    # A cost group's rows are its token group's own tuples (see SeriesGroup.scale): the
    # same vectors have one sum, computed once. Found by the ids of the first and last
    # vector (cheap), confirmed by comparing the sequences (identical items compare fast).
    sums: dict[tuple[int, int, int], tuple[Sequence[Vector], Vector]] = {}
    out: dict[SeriesGroup, Vector] = {}
    for group, vectors in zip(first, per_group, strict=True):
        if len(vectors) == 1:
            out[group] = vectors[0]
            continue
        same = (id(vectors[0]), id(vectors[-1]), len(vectors))
        known = sums.get(same)
        if known is not None and known[0] == vectors:
            out[group] = known[1]
        else:
            total = tuple(map(sum, zip(*vectors, strict=True)))
            sums[same] = (vectors, total)
            out[group] = total
    return out


def add_vector(rows: dict[SeriesGroup, Vector], group: SeriesGroup, values: Vector) -> None:
    """Add ``values`` to ``group``'s row in ``rows``."""
    old = rows.get(group)
    rows[group] = values if old is None else tuple(map(add, old, values))


def day_start(ts: float) -> int:
    """Start of the UTC day containing ``ts`` (Unix seconds)."""
    return int(ts) // DAY * DAY


@dataclass(slots=True)
class Batch:
    """Per-day sums of everything one fetch returned for one dataset.

    ``covered`` is the half-open time range ``[start, end)`` the fetch asked for
    and got complete answers for: the ledger replaces exactly those days.
    """

    dataset: Dataset
    start: int
    end: int
    days: dict[int, dict[SeriesKey, float]] = field(default_factory=dict, repr=False)
    watermark: float | None = None
    rows: dict[int, dict[SeriesGroup, Vector]] = field(default_factory=dict, repr=False)
    """Per-day sums added as vectors (:meth:`add_row`), next to the scalar ``days``."""

    def series(self, day: int) -> dict[SeriesKey, float]:
        """The mutable sums of UTC ``day`` (for parsers adding many values per row)."""
        series = self.days.get(day)
        if series is None:
            series = self.days[day] = {}
        return series

    def add(self, day: int, key: SeriesKey, value: float) -> None:
        """Add ``value`` to ``key`` on UTC ``day`` (ignoring zeros)."""
        if value:
            series = self.series(day)
            series[key] = series.get(key, 0.0) + value

    def add_row(self, day: int, group: SeriesGroup, values: Vector) -> None:
        """Add one row of ``group``'s series on UTC ``day``."""
        rows = self.rows.get(day)
        if rows is None:
            rows = self.rows[day] = {}
        add_vector(rows, group, values)

    def sums(self) -> dict[int, dict[SeriesKey, float]]:
        """Every day's published value per series, scalar and row-wise additions together."""
        out = {day: dict(series) for day, series in self.days.items()}
        for day, rows in self.rows.items():
            expand_rows(rows, out.setdefault(day, {}))
        return {day: series for day, series in out.items() if series}


@dataclass(slots=True)
class FetchResult:
    """Everything one poll of one account learned.

    ``batches`` feed the month-to-date counters; ``gauges`` are point-in-time
    values (a prepaid balance) that replace the previous poll's.
    """

    batches: list[Batch]
    project_names: dict[str, str] = field(default_factory=dict)
    gauges: dict[SeriesKey, float] = field(default_factory=dict)
