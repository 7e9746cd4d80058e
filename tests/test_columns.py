"""Usage buckets: the column-wise parse gives what the row-by-row parse gives.

OpenAI's ``CompletionsParser`` and Anthropic's ``MessagesParser`` parse a
well-formed bucket with C-level map/zip and send anything else row by row.
Whatever a bucket holds, both must end in the same per-series sums (and
long-context tokens) or in the same error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.providers import anthropic, openai
from exporter.providers.base import ProviderError
from exporter.providers.fields import DimsReader
from exporter.records import Batch, Dataset, Dims, Family, SeriesKey, expand_rows

DAY0 = 1793491200  # 2026-11-01T00:00:00Z
OPENAI_WHERE = "GET /organization/usage/completions"
ANTHROPIC_WHERE = "GET /v1/organizations/usage_report/messages"
GROUP_BY = ("project", "model")
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Buckets = list[list[dict[str, Any]]]
Outcome = tuple[dict[int, dict[SeriesKey, float]], dict[int, dict[SeriesKey, float]]] | str
BucketAdder = Callable[[Batch, int, list[dict[str, Any]]], None]


def outcome(buckets: Buckets, add: BucketAdder) -> Outcome:
    """Sums of ``buckets`` (two per day), and those of the long-context tier; or the error."""
    batch = Batch(Dataset.USAGE, DAY0, DAY0 + 10 * 86_400)
    try:
        for i, results in enumerate(buckets):
            add(batch, DAY0 + (i // 2) * 86_400, results)
    except ProviderError as exc:
        return str(exc)
    long_context: dict[int, dict[SeriesKey, float]] = {}
    for day, rows in batch.rows.items():
        long_rows = {group: values for group, values in rows.items() if group.long_context}
        expand_rows(long_rows, long_context.setdefault(day, {}))
    return batch.sums(), {day: sums for day, sums in long_context.items() if sums}


def openai_columns(buckets: Buckets) -> Outcome:
    parse = openai.CompletionsParser(DimsReader(GROUP_BY, openai.DIM_FIELDS))
    return outcome(buckets, lambda batch, day, rows: parse(batch, day, rows, OPENAI_WHERE))


def openai_rows(buckets: Buckets) -> Outcome:
    """The reference: every row through the row-wise helpers."""
    read_dims = DimsReader(GROUP_BY, openai.DIM_FIELDS)

    def add(batch: Batch, day: int, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            dims = read_dims(row, OPENAI_WHERE)
            group = openai._completion_group(dims, openai._service_tier(row, OPENAI_WHERE))
            batch.add_row(day, group, openai._values(row, OPENAI_WHERE))

    return outcome(buckets, add)


def anthropic_parser() -> anthropic.MessagesParser:
    return anthropic.MessagesParser(
        DimsReader(GROUP_BY, anthropic.DIM_FIELDS, null_project="default")
    )


def anthropic_columns(buckets: Buckets) -> Outcome:
    parse = anthropic_parser()
    return outcome(buckets, lambda batch, day, rows: parse(batch, day, rows, ANTHROPIC_WHERE))


def anthropic_rows(buckets: Buckets) -> Outcome:
    """The reference: every row through the row-wise helpers."""
    parse = anthropic_parser()

    def add(batch: Batch, day: int, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            group = parse._row_group(row, anthropic.ALL_SLOTS, ANTHROPIC_WHERE)
            batch.add_row(day, group, anthropic._values(row, ANTHROPIC_WHERE))

    return outcome(buckets, add)


hostile_values = st.sampled_from(
    [-1, 1.0, 2.5, True, "7", None, [1], {"a": 1}, 10**30, float("nan")]
)


def break_a_field(buckets: Buckets, data: st.DataObject, fields: list[str]) -> None:
    """Give one field of one row a hostile value, or remove it (``a.b``: nested field)."""
    bucket = buckets[data.draw(st.integers(0, len(buckets) - 1))]
    row = bucket[data.draw(st.integers(0, len(bucket) - 1))]
    *path, field = data.draw(st.sampled_from(fields)).split(".")
    for step in path:
        row = row[step]
    if data.draw(st.booleans()):
        row[field] = data.draw(hostile_values)
    else:
        del row[field]


def some_buckets(rows: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[Buckets]:
    return st.lists(st.lists(rows, min_size=1, max_size=5), min_size=1, max_size=3)


# --- OpenAI completions ----------------------------------------------------------------------


def completion(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "object": "organization.usage.completions.result",
        "input_tokens": 100,
        "output_tokens": 40,
        "num_model_requests": 2,
        "input_cached_tokens": 30,
        "input_cache_write_tokens": 0,
        "input_uncached_tokens": 70,
        "input_audio_tokens": 0,
        "input_image_tokens": 0,
        "input_cached_audio_tokens": 0,
        "input_cached_image_tokens": 0,
        "output_audio_tokens": 0,
        "output_image_tokens": 0,
        "project_id": "proj_a",
        "model": "gpt-4o",
        "batch": False,
        "service_tier": "default",
        "user_id": None,
        "api_key_id": None,
    }
    base.update(fields)
    return base


counts = st.integers(min_value=0, max_value=10**9)


@st.composite
def completions(draw: st.DrawFn) -> dict[str, Any]:
    """A row as the API sends it: consistent token counts, a few distinct labels."""
    in_audio, in_image, cached_audio, cached_image, out_audio, out_image = (
        draw(st.sampled_from([0, 0, 0, 5, 1_000])) for _ in range(6)
    )
    uncached = in_audio + in_image + draw(counts)
    cached = cached_audio + cached_image + draw(counts)
    cache_write = draw(st.sampled_from([0, 0, 64]))
    result = completion(
        input_uncached_tokens=uncached,
        input_cached_tokens=cached,
        input_cache_write_tokens=cache_write,
        input_tokens=uncached + cached + cache_write,
        output_tokens=out_audio + out_image + draw(counts),
        num_model_requests=draw(counts),
        input_audio_tokens=in_audio,
        input_image_tokens=in_image,
        input_cached_audio_tokens=cached_audio,
        input_cached_image_tokens=cached_image,
        output_audio_tokens=out_audio,
        output_image_tokens=out_image,
        project_id=draw(st.sampled_from(["proj_a", "proj_b", None])),
        model=draw(st.sampled_from(["gpt-4o", "o3"])),
        batch=draw(st.sampled_from([False, True, None])),
        service_tier=draw(st.sampled_from(["default", "flex", None])),
    )
    newer = st.sampled_from(["input_uncached_tokens", "output_image_tokens"])
    for optional in draw(st.sets(newer)):
        if draw(st.booleans()):  # older responses omit newer fields, or send null
            result[optional] = None
        else:
            del result[optional]
    return result


@EXAMPLES
@given(st.lists(st.lists(completions(), max_size=6), max_size=4))
def test_completions_buckets_parse_to_the_same_sums_either_way(buckets: Buckets) -> None:
    assert openai_columns(buckets) == openai_rows(buckets)


@EXAMPLES
@given(some_buckets(completions()), st.data())
def test_a_broken_completions_field_gives_the_same_error_or_sums_either_way(
    buckets: Buckets, data: st.DataObject
) -> None:
    fields = ["input_tokens", "output_audio_tokens", "num_model_requests", "input_audio_tokens",
              "project_id", "model", "batch", "service_tier"]  # fmt: skip
    break_a_field(buckets, data, fields)
    assert openai_columns(buckets) == openai_rows(buckets)


def test_batch_flag_must_be_a_boolean_even_after_true_was_seen() -> None:
    # 1 == True and hash(1) == hash(True): a memo keyed on raw labels must not accept it.
    buckets = [[completion(batch=True), completion(batch=1)], [completion(batch=0)]]
    expected = f"{OPENAI_WHERE}: 'batch' is not a boolean (1)"
    assert openai_columns(buckets) == openai_rows(buckets) == expected


def test_bucket_without_audio_or_image_keeps_no_slots_for_them() -> None:
    parse = openai.CompletionsParser(DimsReader(GROUP_BY, openai.DIM_FIELDS))
    batch = Batch(Dataset.USAGE, DAY0, DAY0 + 86_400)
    rows = [completion(), completion(project_id="proj_b", input_image_tokens=20)]
    parse(batch, DAY0, rows, OPENAI_WHERE)
    (vectors,) = batch.rows.values()
    # The image column is not all zero: kept for every row; audio columns are dropped.
    assert {len(values) for values in vectors.values()} == {6}
    sums = batch.sums()[DAY0]
    assert sums[(Family.TOKENS, Dims("proj_b", "gpt-4o"), ("input", "image", "default"))] == 20
    assert sums[(Family.TOKENS, Dims("proj_b", "gpt-4o"), ("input", "text", "default"))] == 50


@pytest.mark.parametrize("value", [5.0, 5])
def test_integral_float_counts_are_accepted_as_by_the_row_wise_parse(value: float) -> None:
    buckets = [[completion(num_model_requests=value)]]
    parsed = openai_columns(buckets)
    assert parsed == openai_rows(buckets)
    assert not isinstance(parsed, str)
    assert parsed[0][DAY0][(Family.REQUESTS, Dims("proj_a", "gpt-4o"), ("default",))] == 5


# --- Anthropic messages ----------------------------------------------------------------------


def message(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "uncached_input_tokens": 10,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 5,
        "server_tool_use": {"web_search_requests": 0},
        "api_key_id": None,
        "workspace_id": None,
        "account_id": None,
        "service_account_id": None,
        "model": "claude-sonnet-4-5-20250929",
        "service_tier": "standard",
        "context_window": "0-200k",
        "inference_geo": None,
    }
    base.update(fields)
    return base


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """A messages usage row as the Admin API sends it."""
    tokens = st.sampled_from([0, 0, 1, 4096, 10**7])
    return message(
        uncached_input_tokens=draw(tokens),
        cache_read_input_tokens=draw(tokens),
        cache_creation={
            "ephemeral_5m_input_tokens": draw(tokens),
            "ephemeral_1h_input_tokens": draw(tokens),
        },
        output_tokens=draw(tokens),
        workspace_id=draw(st.sampled_from(["wrkspc_a", "wrkspc_b", None])),
        model=draw(st.sampled_from(["claude-sonnet-4-5-20250929", "claude-haiku-4-5"])),
        service_tier=draw(st.sampled_from(["standard", "batch", None])),
        context_window=draw(st.sampled_from(["0-200k", "0-200k", "200k-1M", None])),
    )


@EXAMPLES
@given(st.lists(st.lists(messages(), max_size=6), max_size=4))
def test_messages_buckets_parse_to_the_same_sums_either_way(buckets: Buckets) -> None:
    assert anthropic_columns(buckets) == anthropic_rows(buckets)


@EXAMPLES
@given(some_buckets(messages()), st.data())
def test_a_broken_messages_field_gives_the_same_error_or_sums_either_way(
    buckets: Buckets, data: st.DataObject
) -> None:
    fields = ["uncached_input_tokens", "output_tokens", "cache_creation", "workspace_id",
              "model", "service_tier", "context_window",
              "cache_creation.ephemeral_1h_input_tokens"]  # fmt: skip
    break_a_field(buckets, data, fields)
    assert anthropic_columns(buckets) == anthropic_rows(buckets)


def test_long_context_rows_are_kept_apart_for_their_price_tier() -> None:
    rows = [message(context_window="0-200k"), message(context_window="200k-1M")]
    parsed = anthropic_columns([rows])
    assert parsed == anthropic_rows([rows])
    assert not isinstance(parsed, str)
    sums, long_context = parsed
    dims = Dims("default", "claude-sonnet-4-5-20250929")
    uncached = (Family.TOKENS, dims, ("input", "text", "standard"))
    output = (Family.TOKENS, dims, ("output", "text", "standard"))
    assert (sums[DAY0][uncached], sums[DAY0][output]) == (20, 10)
    assert long_context == {DAY0: {uncached: 10, output: 5}}
