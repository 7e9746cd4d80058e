"""OpenAI provider: Usage API + Costs API pages → exact Batch contents."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from exporter.core.records import Dataset, Dims, Family, FetchResult, SeriesKey
from exporter.sources.providers.base import ProviderError, ProviderSettings
from exporter.sources.providers.openai import OpenAIProvider
from tests import fetched
from tests.fetched import batch_of

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
KEY = "sk-admin-FAKEKEY-openai-do-not-leak-42"
BASE = "https://api.openai.com/v1"
D1, D2, D3 = 1767225600, 1767312000, 1767398400  # 2026-01-01, -02, -03 00:00 UTC
END = D2 + 43_200  # poll at 2026-01-02 12:00 UTC
USAGE = ["completions", "embeddings", "moderations", "images", "audio_speeches",
         "audio_transcriptions", "vector_stores", "code_interpreter_sessions",
         "file_search_calls", "web_search_calls"]
# The endpoints that group by every dimension (the others: by project only, or no model).
ALL_DIMS = ["completions", "embeddings", "moderations", "images", "audio_speeches",
            "audio_transcriptions", "web_search_calls"]

USAGE_DATASETS = [Dataset.USAGE, Dataset.EMBEDDINGS, Dataset.MODERATIONS, Dataset.IMAGES,
                  Dataset.AUDIO_SPEECHES, Dataset.AUDIO_TRANSCRIPTIONS, Dataset.VECTOR_STORES,
                  Dataset.CODE_INTERPRETER_SESSIONS, Dataset.FILE_SEARCH_CALLS,
                  Dataset.WEB_SEARCH_CALLS]  # order of USAGE
DATASETS = [*USAGE_DATASETS, Dataset.COST, Dataset.LIMITS]

T, R, C = Family.TOKENS, Family.REQUESTS, Family.BILLED_COST
TOOL, Q = Family.TOOL_CALLS, Family.BILLED_QUANTITY
Days = dict[int, dict[SeriesKey, float]]


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def page(buckets: list[dict[str, Any]], next_page: str | None = None) -> dict[str, Any]:
    return {"object": "page", "data": buckets, "has_more": next_page is not None,
            "next_page": next_page}


def bucket(start: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "bucket", "start_time": start, "end_time": start + 86_400,
            "results": results}


class Env:
    """Mocked OpenAI admin API plus a provider wired to record observe() and sleep()."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router
        self.observed: list[tuple[str, str]] = []
        self.slept: list[float] = []
        self.now = 0.0
        self.routes: dict[str, respx.Route] = {}
        for name in USAGE:
            body = page([])
            if (FIXTURES / f"{name}.json").exists():
                body = fixture(name)
            self.set(f"/organization/usage/{name}", body)
        self.routes["completions"].mock(side_effect=[
            httpx.Response(200, json=fixture("completions_page1")),
            httpx.Response(200, json=fixture("completions_page2")),
        ])
        self.set("/organization/costs", fixture("costs"))
        self.set("/organization/projects", fixture("projects"))
        org_limit = self.set("/organization/spend_limit", fixture("spend_limit"))
        self.routes["org_spend_limit"] = org_limit
        # The active project has a limit; any other project is a 404 (no limit).
        self.set("/organization/projects/proj_8fK2aQ/spend_limit", fixture("project_spend_limit"))
        self.router.get(url__regex=r"/organization/projects/[^/]+/spend_limit$").respond(
            404, json={"error": {"message": "No spend limit", "type": "invalid_request_error",
                                 "param": None, "code": None}})

    def set(self, path: str, body: Any) -> respx.Route:
        route = self.router.get(path).mock(return_value=httpx.Response(200, json=body))
        self.routes[path.rsplit("/", 1)[1]] = route
        return route

    def provider(self, *, key: str = KEY, **settings: Any) -> OpenAIProvider:
        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)

        return OpenAIProvider(
            ProviderSettings(account="main", api_key=lambda: key, **settings),
            observe=lambda endpoint, code: self.observed.append((endpoint, code)),
            sleep=sleep, rng=lambda: 0.5, clock=lambda: self.now,
        )

    def fetch(self, provider: OpenAIProvider | None = None, *, start: int = D1,
              end: int = END) -> FetchResult:
        return asyncio.run(self._fetch(provider or self.provider(), start, end))

    @staticmethod
    async def _fetch(provider: OpenAIProvider, start: int, end: int) -> FetchResult:
        try:
            return await provider.fetch(start, end)
        finally:
            await provider.aclose()

    def fail(self, dataset: Dataset, provider: OpenAIProvider | None = None
             ) -> tuple[ProviderError, FetchResult]:
        """The error of ``dataset``, the only one that failed, and the poll's result."""
        result = self.fetch(provider)
        err = only_failure(result)
        assert list(result.failures) == [dataset]
        assert [b.dataset for b in result.batches] == [d for d in DATASETS if d is not dataset]
        return err, result

    def params(self, name: str, call: int = 0) -> list[tuple[str, str]]:
        return list(self.routes[name].calls[call].request.url.params.multi_items())


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


def only_failure(result: FetchResult) -> ProviderError:
    """The one error of the poll's failed dataset(s), never quoting the key."""
    return fetched.only_failure(result, KEY)




def usage_days(result: FetchResult) -> Days:
    """The days of every usage endpoint's batch (all but COST) summed, as the ledger sums them."""
    days: Days = {}
    for batch in result.batches:
        if batch.dataset is Dataset.COST:
            continue
        for day, series in batch.days.items():
            merged = days.setdefault(day, {})
            for key, value in series.items():
                merged[key] = merged.get(key, 0.0) + value
    return days


def without_model(days: Days, model: str) -> Days:
    """``days`` without the series of ``model`` (those of one endpoint, in these fixtures)."""
    kept = {day: {k: v for k, v in series.items() if k[1].model != model}
            for day, series in days.items()}
    return {day: series for day, series in kept.items() if series}


def mini(model: str = "gpt-4.1-mini-2025-04-14", project: str = "proj_8fK2aQ") -> Dims:
    return Dims(project, model)


EXPECTED_USAGE = {
    D1: {
        (T, mini(), ("input", "text", "default")): 104000.0,
        (T, mini(), ("input", "image", "default")): 6000.0,
        (T, mini(), ("input_cache_read", "text", "default")): 64000.0,
        (T, mini(), ("output", "text", "default")): 41250.0,
        (T, mini(), ("input_cache_write", "text", "default")): 8000.0,
        (R, mini(), ("default",)): 312.0,
        (T, mini("gpt-4o-audio-preview-2025-06-03"), ("input", "text", "flex")): 2500.0,
        (T, mini("gpt-4o-audio-preview-2025-06-03"), ("input", "audio", "flex")): 1500.0,
        (T, mini("gpt-4o-audio-preview-2025-06-03"), ("input_cache_read", "text", "flex")): 600.0,
        (T, mini("gpt-4o-audio-preview-2025-06-03"), ("input_cache_read", "audio", "flex")): 400.0,
        (T, mini("gpt-4o-audio-preview-2025-06-03"), ("output", "text", "flex")): 1000.0,
        (T, mini("gpt-4o-audio-preview-2025-06-03"), ("output", "audio", "flex")): 2000.0,
        (R, mini("gpt-4o-audio-preview-2025-06-03"), ("flex",)): 20.0,
        (T, mini("text-embedding-3-small"), ("input", "text", "default")): 12000.0,
        (R, mini("text-embedding-3-small"), ("default",)): 40.0,
        (Family.AUDIO_SPEECH_CHARACTERS, mini("tts-1"), ()): 5200.0,
        (R, mini("tts-1"), ("default",)): 3.0,
        # Tools group by project only (web search by model too): no request counts of their own.
        (TOOL, Dims("proj_8fK2aQ"), ("code_interpreter",)): 3.0,
        (TOOL, Dims("proj_8fK2aQ"), ("file_search",)): 40.0,
    },
    D2: {
        # no input_uncached_tokens: 9000 - 2000 cached - 0 cache write
        (T, Dims("proj_Zz9", "gpt-4.1-2025-04-14"), ("input", "text", "batch")): 7000.0,
        (T, Dims("proj_Zz9", "gpt-4.1-2025-04-14"), ("input_cache_read", "text", "batch")): 2000.0,
        (T, Dims("proj_Zz9", "gpt-4.1-2025-04-14"), ("output", "text", "batch")): 700.0,
        (R, Dims("proj_Zz9", "gpt-4.1-2025-04-14"), ("batch",)): 11.0,
        (Family.IMAGES, Dims("proj_Zz9", "gpt-image-1"), ()): 4.0,
        (R, Dims("proj_Zz9", "gpt-image-1"), ("default",)): 4.0,
        (Family.AUDIO_TRANSCRIPTION_SECONDS, Dims("proj_Zz9", "whisper-1"), ()): 95.0,
        (R, Dims("proj_Zz9", "whisper-1"), ("default",)): 2.0,
        (TOOL, Dims("proj_Zz9"), ("code_interpreter",)): 1.0,
        (TOOL, Dims("proj_Zz9", "gpt-4o-mini-2024-07-18"), ("web_search",)): 15.0,
    },
}

_MINI = Dims("proj_8fK2aQ", "gpt-4.1-mini-2025-04-14")  # the model its line items name
EXPECTED_COST = {
    D1: {
        (C, _MINI, ("gpt-4.1-mini-2025-04-14, input",)): 3.4125,
        (C, _MINI, ("gpt-4.1-mini-2025-04-14, output",)): 1.02,  # string amount
        # and the quantity each line was billed for, in its unit
        (Q, _MINI, ("gpt-4.1-mini-2025-04-14, input", "tokens")): 8531250.0,
        (Q, _MINI, ("gpt-4.1-mini-2025-04-14, output", "tokens")): 637500.0,
    },
    # "0.1" + 0.2 summed exactly; a line item that names no model has none
    D2: {(C, Dims("proj_Zz9"), ("Text tokens",)): 0.3},
}


def test_fetch_returns_exact_batches(env: Env) -> None:
    result = env.fetch()
    assert [b.dataset for b in result.batches] == DATASETS  # one per endpoint, then limits
    assert result.failures == {}
    for batch in result.batches[:-1]:
        assert (batch.start, batch.end, batch.watermark) == (D1, END, float(END)), batch.dataset
        assert (batch.skipped_rows, batch.skipped_error) == (0, "")
    assert usage_days(result) == EXPECTED_USAGE
    models = {b.dataset: {key[1].model for day in b.days.values() for key in day}
              for b in result.batches}
    assert models == {
        Dataset.USAGE: {"gpt-4.1-mini-2025-04-14", "gpt-4o-audio-preview-2025-06-03",
                        "gpt-4.1-2025-04-14"},
        Dataset.EMBEDDINGS: {"text-embedding-3-small"},
        Dataset.MODERATIONS: set(),
        Dataset.IMAGES: {"gpt-image-1"},
        Dataset.AUDIO_SPEECHES: {"tts-1"},
        Dataset.AUDIO_TRANSCRIPTIONS: {"whisper-1"},
        Dataset.VECTOR_STORES: set(),  # a level: a gauge, no days
        Dataset.CODE_INTERPRETER_SESSIONS: {""},
        Dataset.FILE_SEARCH_CALLS: {""},
        Dataset.WEB_SEARCH_CALLS: {"gpt-4o-mini-2024-07-18"},
        Dataset.COST: {"", "gpt-4.1-mini-2025-04-14"},  # the model its line items name
        Dataset.LIMITS: set(),  # gauges only
    }
    # The latest day's storage, per project: bytes held, not bytes summed over days.
    assert batch_of(result, Dataset.VECTOR_STORES).gauges == {
        (Family.VECTOR_STORE_BYTES, Dims("proj_8fK2aQ"), ()): 3_221_225_472.0,
        (Family.VECTOR_STORE_BYTES, Dims("proj_Zz9"), ()): 500.0,
    }
    assert batch_of(result, Dataset.COST).days == EXPECTED_COST
    assert result.project_names == {"proj_8fK2aQ": "Search", "proj_Zz9": "Support bot"}


def test_request_params_and_pagination(env: Env) -> None:
    env.fetch()
    window = [("start_time", str(D1)), ("end_time", str(D3)), ("bucket_width", "1d"),
              ("limit", "31")]
    first = window + [("group_by[]", "project_id"), ("group_by[]", "model"),
                      ("group_by[]", "batch"), ("group_by[]", "service_tier")]
    assert env.params("completions", 0) == first
    assert env.params("completions", 1) == first + [("page", "page_AAAAAGlWxYAAAAAAaVgZAA==")]
    # Each endpoint is asked only for the dimensions it can group by (else a 400).
    for name in USAGE[1:]:
        dims = ["project_id", "model"] if name in ALL_DIMS else ["project_id"]
        if name == "images":
            dims += ["size", "source"]  # image prices depend on them
        assert env.params(name) == window + [("group_by[]", dim) for dim in dims], name
    assert env.params("costs") == window + [("group_by[]", "project_id"),
                                            ("group_by[]", "line_item")]
    assert env.params("projects") == [("limit", "100"), ("include_archived", "true")]
    request = env.routes["costs"].calls[0].request
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["user-agent"] == "ai-cost-exporter/0.1.0"
    assert env.observed == (
        [("/organization/usage/completions", "200")] * 2
        + [(f"/organization/usage/{name}", "200") for name in USAGE[1:]]
        + [("/organization/costs", "200"), ("/organization/projects", "200")]
        # The limits of the organization and of the active project (proj_Zz9 is archived).
        + [("/organization/spend_limit", "200"),
           ("/organization/projects/{project_id}/spend_limit", "200")]
    )


def test_all_dimensions_opt_in(env: Env) -> None:
    row = {"object": "organization.usage.completions.result", "input_tokens": 10,
           "input_uncached_tokens": 10, "output_tokens": 5, "num_model_requests": 1,
           "project_id": "proj_A", "user_id": "user_U", "api_key_id": "key_K", "model": "m",
           "batch": False, "service_tier": "priority"}
    env.routes["completions"].mock(return_value=httpx.Response(200, json=page([bucket(D2, [row])])))
    cost_row = {"object": "organization.costs.result", "amount": {"value": 2, "currency": "USD"},
                "line_item": None, "project_id": "proj_A", "api_key_id": "key_K"}
    env.set("/organization/costs", page([bucket(D2, [cost_row])]))
    for name in USAGE[1:]:
        env.set(f"/organization/usage/{name}", page([]))
    result = env.fetch(env.provider(group_by=("project", "model", "api_key", "user")))
    dims = Dims("proj_A", "m", "key_K", "user_U")
    assert usage_days(result) == batch_of(result, Dataset.USAGE).days == {D2: {
        (T, dims, ("input", "text", "priority")): 10.0,
        (T, dims, ("output", "text", "priority")): 5.0,
        (R, dims, ("priority",)): 1.0,
    }}
    assert batch_of(result, Dataset.COST).days == {
        D2: {(C, Dims("proj_A", "", "key_K", ""), ("",)): 2.0}}
    assert ("group_by[]", "api_key_id") in env.params("completions")
    assert [v for k, v in env.params("completions") if k == "group_by[]"] == [
        "project_id", "model", "api_key_id", "user_id", "batch", "service_tier"]
    assert [v for k, v in env.params("images") if k == "group_by[]"] == [
        "project_id", "model", "api_key_id", "user_id", "size", "source"]
    assert [v for k, v in env.params("costs") if k == "group_by[]"] == [
        "project_id", "line_item", "api_key_id"]


def test_no_project_grouping_skips_names_and_ignores_ungrouped_fields(env: Env) -> None:
    result = env.fetch(env.provider(group_by=("model",)))
    assert result.project_names == {}
    assert env.routes["projects"].call_count == 0
    assert [v for k, v in env.params("completions") if k == "group_by[]"] == [
        "model", "batch", "service_tier"]
    assert [v for k, v in env.params("costs") if k == "group_by[]"] == ["line_item"]
    assert usage_days(result)[D2][(R, Dims("", "gpt-image-1"), ("default",))] == 4.0
    assert batch_of(result, Dataset.COST).days[D1] == {
        (C, _MINI._replace(project_id=""), ("gpt-4.1-mini-2025-04-14, input",)): 3.4125,
        (C, _MINI._replace(project_id=""), ("gpt-4.1-mini-2025-04-14, output",)): 1.02,
        (Q, _MINI._replace(project_id=""), ("gpt-4.1-mini-2025-04-14, input", "tokens")): 8531250.0,
        (Q, _MINI._replace(project_id=""), ("gpt-4.1-mini-2025-04-14, output", "tokens")): 637500.0,
    }


def test_no_grouping_sends_no_dimension_arrays(env: Env) -> None:
    env.fetch(env.provider(group_by=()))
    assert not any(k == "group_by[]" for k, _ in env.params("embeddings"))


def test_empty_buckets_and_no_buckets(env: Env) -> None:
    for name in USAGE:
        env.set(f"/organization/usage/{name}", page([]))
    env.set("/organization/costs", page([bucket(D1, []), bucket(D2, [])]))
    result = env.fetch()
    assert [(b.dataset, b.days, b.watermark) for b in result.batches] == [
        *[(dataset, {}, None) for dataset in USAGE_DATASETS],  # no bucket: no watermark
        (Dataset.COST, {}, float(END)),
        (Dataset.LIMITS, {}, None),  # gauges only
    ]


def test_each_usage_endpoint_has_its_own_watermark(env: Env) -> None:
    env.set("/organization/usage/images", page([bucket(D1, [])]))  # images lag a day
    result = env.fetch()
    assert {b.dataset: b.watermark for b in result.batches} == {
        **dict.fromkeys(DATASETS, float(END)), Dataset.IMAGES: float(D2), Dataset.LIMITS: None}


def test_buckets_outside_the_range_are_ignored(env: Env) -> None:
    result = env.fetch(end=D2)  # poll exactly at midnight: day D2 not covered
    assert {(b.start, b.end) for b in result.batches[:-1]} == {(D1, D2)}
    assert set(usage_days(result)) == {D1}
    assert set(batch_of(result, Dataset.COST).days) == {D1}
    assert ("end_time", str(D2)) in env.params("costs")


def test_modality_and_cache_write_split_with_absent_parts(env: Env) -> None:
    row = {"input_tokens": 1000, "input_cached_tokens": 300, "input_cache_write_tokens": 200,
           "input_image_tokens": 100, "input_cached_image_tokens": 50, "output_tokens": 80,
           "output_image_tokens": 30, "num_model_requests": 2, "project_id": "p", "model": "m",
           "batch": None, "service_tier": None}
    env.routes["completions"].mock(return_value=httpx.Response(200, json=page([bucket(D1, [row])])))
    usage = batch_of(env.fetch(), Dataset.USAGE)
    got = {k: v for k, v in usage.days[D1].items() if k[1] == Dims("p", "m")}
    assert got == {
        (T, Dims("p", "m"), ("input", "text", "default")): 400.0,  # 1000-300-200 uncached, -100
        (T, Dims("p", "m"), ("input", "image", "default")): 100.0,
        (T, Dims("p", "m"), ("input_cache_read", "text", "default")): 250.0,
        (T, Dims("p", "m"), ("input_cache_read", "image", "default")): 50.0,
        (T, Dims("p", "m"), ("input_cache_write", "text", "default")): 200.0,
        (T, Dims("p", "m"), ("output", "text", "default")): 50.0,
        (T, Dims("p", "m"), ("output", "image", "default")): 30.0,
        (R, Dims("p", "m"), ("default",)): 2.0,
    }


BAD_COMPLETIONS_ROWS = [
    ({"input_tokens": 100, "input_cached_tokens": 150, "output_tokens": 1,
      "num_model_requests": 1}, "inconsistent token counts for input"),
    ({"input_tokens": 100, "input_uncached_tokens": 100, "input_audio_tokens": 101,
      "output_tokens": 1, "num_model_requests": 1}, "inconsistent token counts for input"),
    ({"input_tokens": 100, "input_uncached_tokens": 100, "output_tokens": 5,
      "output_audio_tokens": 9, "num_model_requests": 1}, "inconsistent token counts for output"),
    ({"input_tokens": 100, "num_model_requests": 1}, "'output_tokens' missing"),
    ({"input_tokens": "100", "output_tokens": 1, "num_model_requests": 1},
     "'input_tokens' not a non-negative integer ('100')"),
    ({"input_tokens": 1, "output_tokens": 1, "num_model_requests": 1, "batch": "yes"},
     "'batch' is not a boolean"),
    ({"input_tokens": 1, "output_tokens": 1, "num_model_requests": 1, "batch": 1},
     "'batch' is not a boolean (1)"),  # 1 == True, and still refused
    ({"input_tokens": True, "output_tokens": 1, "num_model_requests": 1},
     "'input_tokens' not a non-negative integer (True)"),
    ({"input_tokens": 1, "output_tokens": -1, "num_model_requests": 1},
     "'output_tokens' not a non-negative integer (-1)"),
    ({"input_tokens": 1, "output_tokens": 1, "num_model_requests": 1.5},
     "'num_model_requests' not a non-negative integer (1.5)"),
    ({"input_tokens": 1, "output_tokens": 1, "num_model_requests": 1, "model": 7},
     "'model' is not a string"),
]
COMPLETIONS_MODELS = ("gpt-4.1-mini-2025-04-14", "gpt-4o-audio-preview-2025-06-03",
                      "gpt-4.1-2025-04-14")


def test_images_are_labelled_by_size_and_source(env: Env) -> None:
    rows = [{"object": "organization.usage.images.result", "images": 3, "num_model_requests": 3,
             "size": "1024x1024", "source": "image.generation", "project_id": "p", "model": "m"},
            {"object": "organization.usage.images.result", "images": 1, "num_model_requests": 1,
             "size": "1024x1536", "source": "image.edit", "project_id": "p", "model": "m"},
            {"object": "organization.usage.images.result", "images": 2, "num_model_requests": 2,
             "size": None, "source": None, "project_id": "p", "model": "m"}]
    env.set("/organization/usage/images", page([bucket(D1, rows)]))
    images = batch_of(env.fetch(), Dataset.IMAGES)
    d = Dims("p", "m")
    assert images.days == {D1: {
        (Family.IMAGES, d, ("1024x1024", "image.generation")): 3.0,
        (Family.IMAGES, d, ("1024x1536", "image.edit")): 1.0,
        (Family.IMAGES, d, ()): 2.0,  # not reported: no label
        (R, d, ("default",)): 6.0,
    }}


def test_old_shape_completions_rows_are_read_with_their_own_semantics(env: Env) -> None:
    # Before the 2026-07-15 spec input_tokens/output_tokens were text only (cached included)
    # and input_audio_tokens audio with its cached part: audio beyond the text is no error.
    old = {"object": "organization.usage.completions.result", "input_tokens": 1000,
           "input_cached_tokens": 400, "input_audio_tokens": 3000, "output_tokens": 200,
           "output_audio_tokens": 500, "num_model_requests": 4, "project_id": "p", "model": "m",
           "batch": None, "service_tier": None}
    env.routes["completions"].mock(return_value=httpx.Response(200, json=page([bucket(D1, [old])])))
    usage = batch_of(env.fetch(), Dataset.USAGE)
    d = Dims("p", "m")
    assert usage.days == {D1: {
        (T, d, ("input", "text", "default")): 600.0,
        (T, d, ("input", "audio", "default")): 3000.0,
        (T, d, ("input_cache_read", "text", "default")): 400.0,
        (T, d, ("output", "text", "default")): 200.0,
        (T, d, ("output", "audio", "default")): 500.0,
        (R, d, ("default",)): 4.0,
    }}
    assert usage.skipped_rows == 0


def test_a_cost_in_another_currency_is_counted_apart_unless_a_rate_is_configured(
    env: Env,
) -> None:
    rows = [{"object": "organization.costs.result", "amount": {"value": 2.5, "currency": "eur"},
             "line_item": "Text tokens", "project_id": "proj_Zz9", "api_key_id": None},
            {"object": "organization.costs.result", "amount": {"value": 1.0, "currency": "usd"},
             "line_item": "Text tokens", "project_id": "proj_Zz9", "api_key_id": None}]
    env.set("/organization/costs", page([bucket(D2, rows)]))
    empty = httpx.Response(200, json=page([]))
    env.routes["completions"].mock(side_effect=None, return_value=empty)
    cost = batch_of(env.fetch(), Dataset.COST)
    assert cost.skipped_rows == 0  # counted, never a failed poll
    assert cost.days == {D2: {(C, Dims("proj_Zz9"), ("Text tokens",)): 1.0,
                              (Family.UNCONVERTED_COST, Dims("proj_Zz9"), ("eur",)): 2.5}}
    converted = batch_of(env.fetch(env.provider(options={"currency_rates": {"EUR": 1.1}})),
                         Dataset.COST)
    assert converted.days == {D2: {(C, Dims("proj_Zz9"), ("Text tokens",)): 1.0 + 2.75}}


@pytest.mark.parametrize("row, message", BAD_COMPLETIONS_ROWS)
def test_bad_completions_rows_are_parse_errors(env: Env, row: dict[str, Any], message: str) -> None:
    env.routes["completions"].mock(return_value=httpx.Response(200, json=page([bucket(D1, [row])])))
    err, result = env.fail(Dataset.USAGE)  # its only row is malformed: the dataset fails
    assert err.reason == "parse"
    assert message in str(err)
    assert str(err).startswith("every row is malformed (GET /organization/usage/completions: ")
    # The other endpoints' datasets are read all the same.
    expected = EXPECTED_USAGE
    for model in COMPLETIONS_MODELS:
        expected = without_model(expected, model)
    assert usage_days(result) == expected
    assert batch_of(result, Dataset.COST).days == EXPECTED_COST


@pytest.mark.parametrize("row, message", BAD_COMPLETIONS_ROWS)
def test_a_bad_completions_row_among_good_ones_is_skipped_and_counted(
    env: Env, row: dict[str, Any], message: str
) -> None:
    good = {"input_tokens": 10, "input_uncached_tokens": 10, "output_tokens": 5,
            "num_model_requests": 1, "project_id": "p", "model": "m"}
    body = page([bucket(D1, [good, row, good]), bucket(D2, [good])])
    env.routes["completions"].mock(return_value=httpx.Response(200, json=body))
    result = env.fetch()
    assert result.failures == {}
    usage = batch_of(result, Dataset.USAGE)
    assert usage.skipped_rows == 1
    assert usage.skipped_error.startswith("GET /organization/usage/completions: ")
    assert message in usage.skipped_error
    d = Dims("p", "m")
    assert usage.days == {  # nothing of the skipped row, even its valid fields
        D1: {(T, d, ("input", "text", "default")): 20.0,
             (T, d, ("output", "text", "default")): 10.0,
             (R, d, ("default",)): 2.0},
        D2: {(T, d, ("input", "text", "default")): 10.0,
             (T, d, ("output", "text", "default")): 5.0,
             (R, d, ("default",)): 1.0},
    }
    assert usage.watermark == float(END)
    others = result.batches[1:]
    assert [(b.skipped_rows, b.skipped_error) for b in others] == [(0, "")] * (len(DATASETS) - 1)


@pytest.mark.parametrize("body, message", [
    (page([{"object": "bucket", "start_time": "x", "end_time": D2, "results": []}]),
     "GET /organization/usage/images: bucket without integer start_time/end_time"),
    (page([{"object": "bucket", "start_time": D1, "end_time": D2, "result": []}]),
     "GET /organization/usage/images: 'results' is not a list of objects"),
    (page([bucket(D1, [{"images": 1}])]),  # num_model_requests missing, in the only row
     "every row is malformed (GET /organization/usage/images: 'num_model_requests' missing)"),
    ({"object": "page", "data": [], "has_more": True, "next_page": None},
     "GET /organization/usage/images: has_more without a next_page"),
])
def test_wrong_shapes_are_parse_errors(env: Env, body: dict[str, Any], message: str) -> None:
    env.set("/organization/usage/images", body)
    err, result = env.fail(Dataset.IMAGES)
    assert (err.reason, str(err)) == ("parse", message)
    assert usage_days(result) == without_model(EXPECTED_USAGE, "gpt-image-1")
    assert batch_of(result, Dataset.COST).days == EXPECTED_COST


def test_a_400_on_one_usage_endpoint_leaves_the_other_datasets(env: Env) -> None:
    env.routes["images"].mock(return_value=httpx.Response(400, json={"error": {
        "message": "Invalid value for 'group_by'", "type": "invalid_request_error"}}))
    err, result = env.fail(Dataset.IMAGES)
    assert (err.reason, err.status, str(err)) == (
        "http_4xx", 400, "GET /organization/usage/images: HTTP 400: Invalid value for 'group_by'")
    assert env.observed.count(("/organization/usage/images", "400")) == 1  # not retried
    assert env.slept == []
    assert usage_days(result) == without_model(EXPECTED_USAGE, "gpt-image-1")
    assert batch_of(result, Dataset.AUDIO_SPEECHES).days == {
        D1: {(Family.AUDIO_SPEECH_CHARACTERS, mini("tts-1"), ()): 5200.0,
             (R, mini("tts-1"), ("default",)): 3.0}}
    assert batch_of(result, Dataset.COST).days == EXPECTED_COST
    assert {b.watermark for b in result.batches[:-1]} == {float(END)}
    assert result.project_names == {"proj_8fK2aQ": "Search", "proj_Zz9": "Support bot"}


BAD_AMOUNTS = [
    ({"value": 1.0, "currency": "euro"}, "unsupported currency 'euro'"),
    ({"value": 1.0}, "unsupported currency None"),
    ({"value": None, "currency": "usd"}, "amount None is not a number"),
    ({"value": "1,5", "currency": "usd"}, "amount '1,5' is not a number"),
    ({"value": True, "currency": "usd"}, "amount True is not a number"),
    (3.0, "'amount' is not an object"),
]


@pytest.mark.parametrize("amount, message", BAD_AMOUNTS)
def test_bad_cost_amounts_are_parse_errors(env: Env, amount: Any, message: str) -> None:
    row = {"object": "organization.costs.result", "amount": amount, "line_item": "x",
           "project_id": None, "api_key_id": None}
    env.set("/organization/costs", page([bucket(D1, [row])]))
    err, result = env.fail(Dataset.COST)
    assert (err.reason, str(err)) == (
        "parse", f"every row is malformed (GET /organization/costs: {message})")
    assert usage_days(result) == EXPECTED_USAGE


@pytest.mark.parametrize("amount, message", BAD_AMOUNTS)
def test_a_bad_cost_row_among_good_ones_is_skipped_and_counted(
    env: Env, amount: Any, message: str
) -> None:
    costs = fixture("costs")
    bad = {"object": "organization.costs.result", "amount": amount, "line_item": "Text tokens",
           "project_id": "proj_Zz9", "api_key_id": None}
    costs["data"][1]["results"].insert(1, bad)
    env.set("/organization/costs", costs)
    result = env.fetch()
    assert result.failures == {}
    cost = batch_of(result, Dataset.COST)
    assert cost.days == EXPECTED_COST  # the good rows, summed exactly as before
    assert (cost.skipped_rows, cost.skipped_error) == (1, f"GET /organization/costs: {message}")
    assert usage_days(result) == EXPECTED_USAGE


def test_unauthorized_is_auth_and_ends_the_poll(env: Env) -> None:
    env.routes["completions"].mock(return_value=httpx.Response(401, json={"error": {
        "message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error",
        "param": None, "code": "invalid_api_key"}}))
    result = env.fetch()
    err = only_failure(result)
    assert err.reason == "auth"
    assert str(err) == ("GET /organization/usage/completions: HTTP 401: "
                        "Incorrect API key provided: [redacted]")
    # A 401 says the key is valid nowhere: every dataset fails, no other request is sent.
    assert len(result.failures) == len(DATASETS) and result.batches == []
    assert env.observed == [("/organization/usage/completions", "401")]


def test_forbidden_on_one_endpoint_fails_only_its_dataset(env: Env) -> None:
    # A 403 may be one endpoint's permission (a restricted admin key): the rest is read.
    env.routes["costs"].mock(return_value=httpx.Response(403, json={"error": {
        "message": "Missing scope api.usage.read", "type": "invalid_request_error",
        "param": None, "code": None}}))
    err, result = env.fail(Dataset.COST)
    assert (err.reason, err.status) == ("auth", 403)
    assert usage_days(result) == EXPECTED_USAGE


def test_a_late_failure_keeps_the_datasets_read_before_it(env: Env) -> None:
    env.routes["costs"].mock(return_value=httpx.Response(500))
    err, result = env.fail(Dataset.COST)
    assert (err.reason, str(err)) == ("http_5xx", "GET /organization/costs: HTTP 500")
    assert env.observed[-7:-2] == [("/organization/costs", "500")] * 4 + [
        ("/organization/projects", "200")]
    assert env.slept == [0.5, 1.0, 2.0]
    assert usage_days(result) == EXPECTED_USAGE
    assert result.project_names == {"proj_8fK2aQ": "Search", "proj_Zz9": "Support bot"}


def test_rate_limit_then_success(env: Env) -> None:
    env.routes["costs"].mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(200, json=fixture("costs")),
    ])
    result = env.fetch()
    assert result.failures == {}
    assert batch_of(result, Dataset.COST).days == EXPECTED_COST
    assert env.slept == [2.0]


DATASET_PATHS = {f"/organization/usage/{name}" for name in USAGE} | {"/organization/costs"}


def dataset_requests(env: Env) -> list[tuple[str, str]]:
    return [(path, code) for path, code in env.observed if path in DATASET_PATHS]


def test_long_rate_limit_fails_every_dataset_and_is_handed_to_the_scheduler(env: Env) -> None:
    limited = httpx.Response(429, headers={"Retry-After": "3600"})
    env.routes["completions"].mock(return_value=limited)
    result = env.fetch()
    assert result.batches == []
    assert list(result.failures) == DATASETS  # the first one's error, for every dataset
    err = only_failure(result)
    assert (err.reason, err.retry_after, str(err)) == (
        "rate_limited", 3600.0, "GET /organization/usage/completions: HTTP 429")
    assert env.slept == []
    assert dataset_requests(env) == [("/organization/usage/completions", "429")]


def test_an_account_wide_failure_sends_no_further_request(env: Env) -> None:
    limited = httpx.Response(429, headers={"Retry-After": "3600"})
    env.routes["completions"].mock(return_value=limited)
    env.fetch()
    assert env.observed == [("/organization/usage/completions", "429")]


def test_a_connection_failure_fails_the_datasets_not_read_yet(env: Env) -> None:
    env.routes["embeddings"].mock(side_effect=httpx.ConnectError("connection refused"))
    result = env.fetch()
    assert [b.dataset for b in result.batches] == [Dataset.USAGE]
    assert list(result.failures) == DATASETS[1:]
    err = only_failure(result)
    assert (err.reason, str(err)) == (
        "connection", "GET /organization/usage/embeddings: ConnectError: connection refused")
    assert dataset_requests(env) == [("/organization/usage/completions", "200")] * 2 + [
        ("/organization/usage/embeddings", "connection_error")] * 4
    expected = EXPECTED_USAGE
    for model in ("text-embedding-3-small", "gpt-image-1", "tts-1", "whisper-1"):
        expected = without_model(expected, model)
    expected = {day: {k: v for k, v in series.items() if k[0] is not TOOL}
                for day, series in expected.items()}  # no tool endpoint read either
    assert usage_days(result) == batch_of(result, Dataset.USAGE).days == expected


def test_an_unreadable_key_fails_every_dataset_without_a_request(env: Env) -> None:
    result = env.fetch(env.provider(key=""))
    assert result.batches == []
    assert list(result.failures) == DATASETS
    assert (only_failure(result).reason, str(only_failure(result))) == (
        "secret", "the API key is empty")
    assert env.observed == []
    assert result.project_names == {}


def test_timeout_is_timeout_and_fails_only_its_dataset(env: Env) -> None:
    env.routes["embeddings"].mock(side_effect=httpx.ConnectTimeout("timed out"))
    err, result = env.fail(Dataset.EMBEDDINGS)
    assert (err.reason, str(err)) == (
        "timeout", "GET /organization/usage/embeddings: no response within 30 s")
    assert env.observed[2:6] == [("/organization/usage/embeddings", "timeout")] * 4
    assert usage_days(result) == without_model(EXPECTED_USAGE, "text-embedding-3-small")
    assert batch_of(result, Dataset.COST).days == EXPECTED_COST


def test_malformed_json_is_parse(env: Env) -> None:
    env.routes["costs"].mock(return_value=httpx.Response(200, text="<html>oops</html>"))
    err, result = env.fail(Dataset.COST)
    assert (err.reason, str(err)) == (
        "parse", "GET /organization/costs: response is not valid JSON")
    assert usage_days(result) == EXPECTED_USAGE


def test_project_names_are_cached(env: Env) -> None:
    provider = env.provider()

    async def polls() -> list[FetchResult]:
        results = []
        results.append(await provider.fetch(D1, END))
        env.now += 600
        results.append(await provider.fetch(D1, END))  # cached
        row = {"images": 1, "num_model_requests": 1, "project_id": "proj_New", "model": "m"}
        env.set("/organization/usage/images", page([bucket(D2, [row])]))
        env.routes["projects"].mock(return_value=httpx.Response(200, json={
            "object": "list", "has_more": False, "first_id": "proj_New", "last_id": "proj_New",
            "data": [{"id": "proj_New", "object": "organization.project", "name": "New",
                      "created_at": 1, "archived_at": None, "status": "active"}]}))
        results.append(await provider.fetch(D1, END))  # unseen id → reload
        env.now += 3600
        results.append(await provider.fetch(D1, END))  # older than 1 h → reload
        await provider.aclose()
        return results

    for name in ("completions", "embeddings", "audio_speeches", "audio_transcriptions", "costs"):
        env.set(f"/organization/{'usage/' if name != 'costs' else ''}{name}", page([]))
    results = asyncio.run(polls())
    assert env.routes["projects"].call_count == 3
    assert results[0].project_names == {"proj_8fK2aQ": "Search", "proj_Zz9": "Support bot"}
    assert results[1].project_names == results[0].project_names
    assert results[2].project_names == {"proj_New": "New"}


def test_project_names_failure_does_not_fail_the_poll(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.routes["projects"].mock(return_value=httpx.Response(503))
    with caplog.at_level(logging.WARNING):
        result = env.fetch()
    assert result.project_names == {}
    assert result.failures == {}
    assert usage_days(result) == EXPECTED_USAGE
    # Without the project list only the organization's spend limit is read.
    assert env.observed[-5:] == [("/organization/projects", "503")] * 4 + [
        ("/organization/spend_limit", "200")]
    assert "account main: could not load project names (http_5xx" in caplog.text
    assert KEY not in caplog.text


def test_loopback_base_url_over_http() -> None:
    with respx.mock(base_url="http://127.0.0.1:8099/v1", assert_all_called=False) as router:
        for name in USAGE:
            router.get(f"/organization/usage/{name}").mock(
                return_value=httpx.Response(200, json=page([])))
        router.get("/organization/costs").mock(return_value=httpx.Response(200, json=page([])))
        router.get("/organization/spend_limit").respond(404)
        provider = OpenAIProvider(
            ProviderSettings(account="sim", api_key=lambda: KEY, base_url="http://127.0.0.1:8099/v1",
                             group_by=()),
            observe=lambda e, c: None,
        )
        result = asyncio.run(Env._fetch(provider, D1, END))
        assert router.calls.call_count == len(DATASETS)
        assert str(router.calls[0].request.url).startswith(
            "http://127.0.0.1:8099/v1/organization/usage/completions?")
    assert [(b.dataset, b.days) for b in result.batches] == [(d, {}) for d in DATASETS]


def test_integral_float_counts_and_omitted_optional_counts_are_read(env: Env) -> None:
    row = {"input_tokens": 7.0, "output_tokens": 3, "num_model_requests": 2.0,
           "project_id": "p", "model": "m"}  # fmt: skip
    env.routes["completions"].mock(return_value=httpx.Response(200, json=page([bucket(D1, [row])])))
    usage = batch_of(env.fetch(), Dataset.USAGE)
    assert {k: v for k, v in usage.days[D1].items() if k[1] == Dims("p", "m")} == {
        (T, Dims("p", "m"), ("input", "text", "default")): 7.0,
        (T, Dims("p", "m"), ("output", "text", "default")): 3.0,
        (R, Dims("p", "m"), ("default",)): 2.0,
    }  # fmt: skip


def test_cost_rows_keep_their_quantity_and_unit(env: Env) -> None:
    rows = [{"object": "organization.costs.result", "amount": {"value": 0.06, "currency": "usd"},
             "line_item": "gpt-4.1-mini, input", "project_id": "proj_Zz9", "api_key_id": None,
             "quantity": 150000, "quantity_unit": "tokens"},
            {"object": "organization.costs.result", "amount": {"value": 0.5, "currency": "usd"},
             "line_item": "vector storage", "project_id": "proj_Zz9", "api_key_id": None,
             "quantity": 12.5, "quantity_unit": "gibibyte_hours"},
            {"object": "organization.costs.result", "amount": {"value": 0.2, "currency": "usd"},
             "line_item": "web search tool calls", "project_id": "proj_Zz9", "api_key_id": None,
             "quantity": 20, "quantity_unit": None},
            {"object": "organization.costs.result", "amount": {"value": 0.1, "currency": "usd"},
             "line_item": "other", "project_id": "proj_Zz9", "api_key_id": None}]
    env.set("/organization/costs", page([bucket(D2, rows)]))
    cost = batch_of(env.fetch(), Dataset.COST)
    q, p = Family.BILLED_QUANTITY, Dims("proj_Zz9")
    assert {k: v for k, v in cost.days[D2].items() if k[0] is q} == {
        (q, p._replace(model="gpt-4.1-mini"), ("gpt-4.1-mini, input", "tokens")): 150000.0,
        (q, p, ("vector storage", "gibibyte_hours")): 12.5,
        (q, p, ("web search tool calls", "")): 20.0,  # no unit applies: no unit label
    }
    assert cost.days[D2][(C, p._replace(model="gpt-4.1-mini"), ("gpt-4.1-mini, input",))] == 0.06


@pytest.mark.parametrize("row, message", [
    ({"input_tokens": 10**400, "output_tokens": 1, "num_model_requests": 1},
     "'input_tokens' is implausibly large"),
    ({"input_tokens": 1, "input_uncached_tokens": 1, "output_tokens": 2**70,
      "num_model_requests": 1}, "'output_tokens' is implausibly large"),
])
def test_a_count_beyond_any_usage_is_a_skipped_row_not_a_crash(
    env: Env, row: dict[str, Any], message: str
) -> None:
    good = {"input_tokens": 10, "input_uncached_tokens": 10, "output_tokens": 5,
            "num_model_requests": 1, "project_id": "p", "model": "m"}
    env.routes["completions"].mock(
        return_value=httpx.Response(200, json=page([bucket(D1, [good, row])])))
    result = env.fetch()
    usage = batch_of(result, Dataset.USAGE)
    assert (usage.skipped_rows, message in usage.skipped_error) == (1, True)
    assert usage.days[D1][(T, Dims("p", "m"), ("input", "text", "default"))] == 10.0
    assert result.failures == {}


def test_an_amount_or_time_beyond_any_bill_fails_only_its_row_or_dataset(env: Env) -> None:
    rows = [{"object": "organization.costs.result", "amount": {"value": "1e9999999999",
                                                               "currency": "usd"},
             "line_item": "x", "project_id": "p", "api_key_id": None},
            {"object": "organization.costs.result", "amount": {"value": 1.5, "currency": "usd"},
             "line_item": "x", "project_id": "p", "api_key_id": None}]
    env.set("/organization/costs", page([bucket(D1, rows)]))
    env.set("/organization/usage/images", page([{"object": "bucket", "start_time": D1,
                                                 "end_time": -10**400, "results": []}]))
    result = env.fetch()
    cost = batch_of(result, Dataset.COST)
    assert cost.skipped_rows == 1 and "implausibly large" in cost.skipped_error
    assert cost.days[D1] == {(C, Dims("p"), ("x",)): 1.5}
    err = result.failures[Dataset.IMAGES]
    assert isinstance(err, ProviderError) and "bucket time out of range" in str(err)
    assert list(result.failures) == [Dataset.IMAGES]


def test_two_datasets_timing_out_in_a_row_end_the_poll(env: Env) -> None:
    for name in ("completions", "embeddings"):
        env.routes[name].mock(side_effect=httpx.ReadTimeout("timed out"))
    result = env.fetch()
    assert result.batches == [] and len(result.failures) == len(DATASETS)
    requested = {path for path, _ in env.observed}
    # Two datasets' retries, then no more: a provider that hangs costs minutes, not the poll
    # of every endpoint at four attempts each.
    assert requested == {"/organization/usage/completions", "/organization/usage/embeddings"}


def test_an_unforeseen_error_fails_its_dataset_only(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    import exporter.sources.providers.openai as openai_module

    def broken(*args: Any) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(openai_module, "_latest_level", broken)
    result = env.fetch()
    assert isinstance(result.failures[Dataset.VECTOR_STORES], ZeroDivisionError)
    assert list(result.failures) == [Dataset.VECTOR_STORES]
    assert usage_days(result) and batch_of(result, Dataset.COST).days == EXPECTED_COST


def test_a_bad_quantity_keeps_the_rows_dollars(env: Env) -> None:
    row = {"object": "organization.costs.result", "amount": {"value": 0.5, "currency": "usd"},
           "line_item": "x", "project_id": "p", "api_key_id": None, "quantity": -3,
           "quantity_unit": "tokens"}
    env.set("/organization/costs", page([bucket(D1, [row])]))
    cost = batch_of(env.fetch(), Dataset.COST)
    assert cost.days == {D1: {(C, Dims("p"), ("x",)): 0.5}} and cost.skipped_rows == 0


# --- hard spend limits

LIMIT, ENFORCING = Family.PROVIDER_LIMIT, Family.PROVIDER_LIMIT_ENFORCING
MONTHLY_HARD = ("hard", "month")


def test_spend_limits_of_the_organization_and_each_active_project(env: Env) -> None:
    limits = batch_of(env.fetch(), Dataset.LIMITS)
    assert (limits.days, limits.watermark) == ({}, None)
    assert limits.gauges == {
        (LIMIT, Dims(), MONTHLY_HARD): 100.0,  # 10000 cents
        (ENFORCING, Dims(), MONTHLY_HARD): 0.0,
        (LIMIT, Dims("proj_8fK2aQ"), MONTHLY_HARD): 25.5,
        (ENFORCING, Dims("proj_8fK2aQ"), MONTHLY_HARD): 1.0,
    }
    # The archived project's limit is not asked for.
    assert [call.request.url.path for call in env.routes["spend_limit"].calls] == [
        "/v1/organization/projects/proj_8fK2aQ/spend_limit"]


def test_spend_limits_are_read_once_an_hour(env: Env) -> None:
    provider = env.provider()

    async def polls() -> list[FetchResult]:
        results = []
        for now in (0.0, 3599.0, 3600.0):
            env.now = now
            env.routes["completions"].mock(return_value=httpx.Response(200, json=page([])))
            results.append(await provider.fetch(D1, END))
        await provider.aclose()
        return results

    results = asyncio.run(polls())
    org_reads = [e for e in env.observed if e[0] == "/organization/spend_limit"]
    assert len(org_reads) == 2  # at 0 and 3600, not at 3599
    # In between, the limits last read stay the dataset's (read, not failed).
    assert [batch_of(r, Dataset.LIMITS).gauges for r in results] == [
        batch_of(results[0], Dataset.LIMITS).gauges] * 3


def test_without_project_grouping_only_the_organization_limit_is_read(env: Env) -> None:
    limits = batch_of(env.fetch(env.provider(group_by=("model",))), Dataset.LIMITS)
    assert set(limits.gauges) == {(LIMIT, Dims(), MONTHLY_HARD), (ENFORCING, Dims(), MONTHLY_HARD)}
    assert env.routes["org_spend_limit"].call_count == 1
    assert env.routes["spend_limit"].call_count == 0


def test_a_scope_without_a_limit_is_a_404(env: Env) -> None:
    env.routes["org_spend_limit"].mock(return_value=httpx.Response(404, json={"error": {
        "message": "No spend limit", "type": "invalid_request_error", "param": None,
        "code": None}}))
    env.routes["spend_limit"].mock(return_value=httpx.Response(404))
    result = env.fetch()
    assert result.failures == {}
    assert batch_of(result, Dataset.LIMITS).gauges == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"currency": "EUR"}, "unsupported currency 'EUR'"),
        ({"threshold_amount": "10000"}, "'threshold_amount' not a non-negative integer ('10000')"),
        ({"interval": "Month; drop"}, "'interval' is not a period name ('Month; drop')"),
        ({"enforcement": None}, "'enforcement.status' is not a string"),
    ],
)
def test_a_malformed_limit_fails_only_the_limits(
    env: Env, change: dict[str, Any], message: str
) -> None:
    env.set("/organization/spend_limit", {**fixture("spend_limit"), **change})
    err, result = env.fail(Dataset.LIMITS)
    assert (err.reason, str(err)) == ("parse", f"GET /organization/spend_limit: {message}")
    assert batch_of(result, Dataset.COST).days == EXPECTED_COST


def test_a_failed_limits_read_is_retried_on_the_next_poll(env: Env) -> None:
    provider = env.provider()
    env.routes["org_spend_limit"].mock(side_effect=[
        httpx.Response(403, json={"error": {"message": "Missing scope", "type": "x",
                                            "param": None, "code": None}}),
        httpx.Response(200, json=fixture("project_spend_limit")),
    ])

    async def polls() -> list[FetchResult]:
        first = await provider.fetch(D1, END)
        env.routes["completions"].mock(return_value=httpx.Response(200, json=page([])))
        second = await provider.fetch(D1, END)
        await provider.aclose()
        return [first, second]

    first, second = asyncio.run(polls())
    assert list(first.failures) == [Dataset.LIMITS]
    assert second.failures == {}
    assert batch_of(second, Dataset.LIMITS).gauges[LIMIT, Dims("proj_8fK2aQ"), MONTHLY_HARD] == 25.5


def test_a_project_id_is_escaped_in_the_limit_path(env: Env) -> None:
    projects = fixture("projects")
    projects["data"][0]["id"] = "proj/../../x?y"
    env.set("/organization/projects", projects)
    env.fetch()
    (call,) = [c for c in env.router.calls if "spend_limit" in c.request.url.raw_path.decode()
               and "projects" in c.request.url.raw_path.decode()]
    escaped = b"proj%2F..%2F..%2Fx%3Fy"
    assert call.request.url.raw_path == b"/v1/organization/projects/" + escaped + b"/spend_limit"
