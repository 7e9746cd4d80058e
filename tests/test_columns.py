"""Usage buckets: the column-wise parse gives what the row-by-row parse gives.

OpenAI's ``CompletionsParser`` and Anthropic's ``MessagesParser`` parse a
well-formed bucket with C-level map/zip and send anything else row by row.
Whatever a bucket holds, both must end in the same per-series sums (and
long-context tokens) or in the same error.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.providers.anthropic import DIM_FIELDS as ANTHROPIC_FIELDS
from exporter.providers.anthropic import MessagesParser
from exporter.providers.base import ProviderError
from exporter.providers.fields import DimsReader
from exporter.providers.openai import (
    DIM_FIELDS,
    CompletionsParser,
    _completion_group,
    _service_tier,
    _values,
)
from exporter.records import Batch, Dataset, Dims, Family, SeriesKey

DAY0 = 1793491200  # 2026-11-01T00:00:00Z
WHERE = "GET /organization/usage/completions"
GROUP_BY = ("project", "model")
EXAMPLES = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def row_by_row(buckets: list[list[dict[str, Any]]]) -> dict[int, dict[SeriesKey, float]] | str:
    """The reference: every row through the row-wise helpers."""
    read_dims = DimsReader(GROUP_BY, DIM_FIELDS)
    batch = Batch(Dataset.USAGE, DAY0, DAY0 + 10 * 86_400)
    try:
        for day, results in enumerate(buckets):
            for row in results:
                group = _completion_group(read_dims(row, WHERE), _service_tier(row, WHERE))
                batch.add_row(DAY0 + (day // 2) * 86_400, group, _values(row, WHERE))
    except ProviderError as exc:
        return str(exc)
    return batch.sums()


def parsed(buckets: list[list[dict[str, Any]]]) -> dict[int, dict[SeriesKey, float]] | str:
    parse = CompletionsParser(DimsReader(GROUP_BY, DIM_FIELDS))
    batch = Batch(Dataset.USAGE, DAY0, DAY0 + 10 * 86_400)
    try:
        for day, results in enumerate(buckets):
            parse(batch, DAY0 + (day // 2) * 86_400, results, WHERE)  # two buckets per day
    except ProviderError as exc:
        return str(exc)
    return batch.sums()


def row(**fields: Any) -> dict[str, Any]:
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
def valid_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A row as the API sends it: consistent token counts, a few distinct labels."""
    in_audio, in_image, cached_audio, cached_image, out_audio, out_image = (
        draw(st.sampled_from([0, 0, 0, 5, 1_000])) for _ in range(6)
    )
    uncached = in_audio + in_image + draw(counts)
    cached = cached_audio + cached_image + draw(counts)
    cache_write = draw(st.sampled_from([0, 0, 64]))
    fields = {
        "input_uncached_tokens": uncached,
        "input_cached_tokens": cached,
        "input_cache_write_tokens": cache_write,
        "input_tokens": uncached + cached + cache_write,
        "output_tokens": out_audio + out_image + draw(counts),
        "num_model_requests": draw(counts),
        "input_audio_tokens": in_audio,
        "input_image_tokens": in_image,
        "input_cached_audio_tokens": cached_audio,
        "input_cached_image_tokens": cached_image,
        "output_audio_tokens": out_audio,
        "output_image_tokens": out_image,
        "project_id": draw(st.sampled_from(["proj_a", "proj_b", None])),
        "model": draw(st.sampled_from(["gpt-4o", "o3"])),
        "batch": draw(st.sampled_from([False, True, None])),
        "service_tier": draw(st.sampled_from(["default", "flex", None])),
    }
    result = row(**fields)
    for optional in draw(
        st.sets(st.sampled_from(["input_uncached_tokens", "output_image_tokens"]))
    ):
        if draw(st.booleans()):  # older responses omit newer fields, or send null
            result[optional] = None
        else:
            del result[optional]
    return result


hostile_values = st.sampled_from(
    [-1, 1.0, 2.5, True, "7", None, [1], {"a": 1}, 10**30, float("nan")]
)


@EXAMPLES
@given(st.lists(st.lists(valid_rows(), max_size=6), max_size=4))
def test_valid_buckets_parse_to_the_same_sums_either_way(
    buckets: list[list[dict[str, Any]]],
) -> None:
    assert parsed(buckets) == row_by_row(buckets)


@EXAMPLES
@given(
    st.lists(st.lists(valid_rows(), min_size=1, max_size=5), min_size=1, max_size=3),
    st.data(),
)
def test_a_broken_field_anywhere_gives_the_same_error_or_sums_either_way(
    buckets: list[list[dict[str, Any]]], data: st.DataObject
) -> None:
    bucket = data.draw(st.integers(0, len(buckets) - 1))
    at = data.draw(st.integers(0, len(buckets[bucket]) - 1))
    field = data.draw(
        st.sampled_from(
            [
                "input_tokens",
                "output_audio_tokens",
                "num_model_requests",
                "input_audio_tokens",
                "project_id",
                "model",
                "batch",
                "service_tier",
            ]
        )  # fmt: skip
    )
    buckets[bucket][at][field] = data.draw(hostile_values)
    assert parsed(buckets) == row_by_row(buckets)


def test_batch_flag_must_be_a_boolean_even_after_true_was_seen() -> None:
    # 1 == True and hash(1) == hash(True): a memo keyed on raw labels must not accept it.
    buckets = [[row(batch=True), row(batch=1)], [row(batch=0)]]
    assert parsed(buckets) == row_by_row(buckets) == f"{WHERE}: 'batch' is not a boolean (1)"


def test_bucket_without_audio_or_image_keeps_no_slots_for_them() -> None:
    parse = CompletionsParser(DimsReader(GROUP_BY, DIM_FIELDS))
    batch = Batch(Dataset.USAGE, DAY0, DAY0 + 86_400)
    parse(batch, DAY0, [row(), row(project_id="proj_b", input_image_tokens=20)], WHERE)
    (rows,) = batch.rows.values()
    # The image column is not all zero: kept for every row; audio columns are dropped.
    assert {len(values) for values in rows.values()} == {6}
    assert (
        batch.sums()[DAY0][(Family.TOKENS, Dims("proj_b", "gpt-4o"), ("input", "image", "default"))]
        == 20
    )
    assert (
        batch.sums()[DAY0][(Family.TOKENS, Dims("proj_b", "gpt-4o"), ("input", "text", "default"))]
        == 50
    )


@pytest.mark.parametrize("value", [5.0, 5])
def test_integral_float_counts_are_accepted_as_by_the_row_wise_parse(value: float) -> None:
    buckets = [[row(num_model_requests=value)]]
    assert parsed(buckets) == row_by_row(buckets)
    assert parsed(buckets)[DAY0][(Family.REQUESTS, Dims("proj_a", "gpt-4o"), ("default",))] == 5  # type: ignore[index]


# --- Anthropic messages ----------------------------------------------------------------------

ANTHROPIC_WHERE = "GET /v1/organizations/usage_report/messages"


def anthropic_reference(
    buckets: list[list[dict[str, Any]]],
) -> tuple[dict[int, dict[SeriesKey, float]], dict[tuple[int, SeriesKey], float]] | str:
    parse = MessagesParser(DimsReader(GROUP_BY, ANTHROPIC_FIELDS, null_project="default"))
    batch = Batch(Dataset.USAGE, DAY0, DAY0 + 10 * 86_400)
    try:
        for day, results in enumerate(buckets):
            for row in results:
                parse._add_row(batch, DAY0 + (day // 2) * 86_400, row, ANTHROPIC_WHERE)
    except ProviderError as exc:
        return str(exc)
    return batch.sums(), batch.long_context


def anthropic_parsed(
    buckets: list[list[dict[str, Any]]],
) -> tuple[dict[int, dict[SeriesKey, float]], dict[tuple[int, SeriesKey], float]] | str:
    parse = MessagesParser(DimsReader(GROUP_BY, ANTHROPIC_FIELDS, null_project="default"))
    batch = Batch(Dataset.USAGE, DAY0, DAY0 + 10 * 86_400)
    try:
        for day, results in enumerate(buckets):
            parse(batch, DAY0 + (day // 2) * 86_400, results, ANTHROPIC_WHERE)
    except ProviderError as exc:
        return str(exc)
    return batch.sums(), batch.long_context


@st.composite
def message_rows(draw: st.DrawFn) -> dict[str, Any]:
    """A messages usage row as the Admin API sends it."""
    tokens = st.sampled_from([0, 0, 1, 4096, 10**7])
    return {
        "uncached_input_tokens": draw(tokens),
        "cache_read_input_tokens": draw(tokens),
        "cache_creation": {
            "ephemeral_5m_input_tokens": draw(tokens),
            "ephemeral_1h_input_tokens": draw(tokens),
        },
        "output_tokens": draw(tokens),
        "server_tool_use": {"web_search_requests": 0},
        "api_key_id": None,
        "workspace_id": draw(st.sampled_from(["wrkspc_a", "wrkspc_b", None])),
        "account_id": None,
        "service_account_id": None,
        "model": draw(st.sampled_from(["claude-sonnet-4-5-20250929", "claude-haiku-4-5"])),
        "service_tier": draw(st.sampled_from(["standard", "batch", None])),
        "context_window": draw(st.sampled_from(["0-200k", "0-200k", "200k-1M", None])),
        "inference_geo": None,
    }


@EXAMPLES
@given(st.lists(st.lists(message_rows(), max_size=6), max_size=4))
def test_messages_buckets_parse_to_the_same_sums_either_way(
    buckets: list[list[dict[str, Any]]],
) -> None:
    assert anthropic_parsed(buckets) == anthropic_reference(buckets)


@EXAMPLES
@given(
    st.lists(st.lists(message_rows(), min_size=1, max_size=5), min_size=1, max_size=3),
    st.data(),
)
def test_a_broken_messages_field_gives_the_same_error_or_sums_either_way(
    buckets: list[list[dict[str, Any]]], data: st.DataObject
) -> None:
    bucket = data.draw(st.integers(0, len(buckets) - 1))
    row = buckets[bucket][data.draw(st.integers(0, len(buckets[bucket]) - 1))]
    field = data.draw(
        st.sampled_from(
            [
                "uncached_input_tokens",
                "output_tokens",
                "cache_creation",
                "workspace_id",
                "model",
                "service_tier",
                "context_window",
                "ephemeral_1h_input_tokens",
            ]
        )  # fmt: skip
    )
    value = data.draw(hostile_values)
    if field.startswith("ephemeral"):
        row["cache_creation"][field] = value
    elif data.draw(st.booleans()):
        row[field] = value
    else:
        del row[field]
    assert anthropic_parsed(buckets) == anthropic_reference(buckets)


def test_a_long_context_row_keeps_its_bucket_on_the_row_wise_path() -> None:
    def message(window: str) -> dict[str, Any]:
        return {
            "uncached_input_tokens": 10,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 5,
            "workspace_id": None,
            "model": "claude-sonnet-4-5-20250929",
            "service_tier": "standard",
            "context_window": window,
            "api_key_id": None,
            "account_id": None,
        }

    rows = [message("0-200k"), message("200k-1M")]
    parsed = anthropic_parsed([rows])
    assert parsed == anthropic_reference([rows])
    assert not isinstance(parsed, str)
    sums, long_context = parsed
    dims = Dims("default", "claude-sonnet-4-5-20250929")
    uncached = (Family.TOKENS, dims, ("input", "text", "standard"))
    output = (Family.TOKENS, dims, ("output", "text", "standard"))
    assert (sums[DAY0][uncached], sums[DAY0][output]) == (20, 10)
    assert long_context == {(DAY0, uncached): 10.0, (DAY0, output): 5.0}
