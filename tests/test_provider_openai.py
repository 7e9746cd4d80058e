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

from exporter.core.records import Dataset, Dims, Family, FetchResult
from exporter.sources.providers.base import ProviderError, ProviderSettings
from exporter.sources.providers.openai import OpenAIProvider

FIXTURES = Path(__file__).parent / "fixtures" / "openai"
KEY = "sk-admin-FAKEKEY-openai-do-not-leak-42"
BASE = "https://api.openai.com/v1"
D1, D2, D3 = 1767225600, 1767312000, 1767398400  # 2026-01-01, -02, -03 00:00 UTC
END = D2 + 43_200  # poll at 2026-01-02 12:00 UTC
USAGE = ["completions", "embeddings", "moderations", "images", "audio_speeches",
         "audio_transcriptions"]

T, R, C = Family.TOKENS, Family.REQUESTS, Family.BILLED_COST


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

    def set(self, path: str, body: Any) -> respx.Route:
        route = self.router.get(path).mock(return_value=httpx.Response(200, json=body))
        self.routes[path.rsplit("/", 1)[1]] = route
        return route

    def provider(self, **settings: Any) -> OpenAIProvider:
        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)

        return OpenAIProvider(
            ProviderSettings(account="main", api_key=lambda: KEY, **settings),
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

    def fail(self, provider: OpenAIProvider | None = None) -> ProviderError:
        with pytest.raises(ProviderError) as info:
            self.fetch(provider)
        assert KEY not in str(info.value)
        return info.value

    def params(self, name: str, call: int = 0) -> list[tuple[str, str]]:
        return list(self.routes[name].calls[call].request.url.params.multi_items())


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


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
    },
}

EXPECTED_COST = {
    D1: {
        (C, Dims("proj_8fK2aQ"), ("gpt-4.1-mini-2025-04-14, input",)): 3.4125,
        (C, Dims("proj_8fK2aQ"), ("gpt-4.1-mini-2025-04-14, output",)): 1.02,  # string amount
    },
    D2: {(C, Dims("proj_Zz9"), ("Text tokens",)): 0.3},  # "0.1" + 0.2 summed exactly
}


def test_fetch_returns_exact_batches(env: Env) -> None:
    result = env.fetch()
    usage, cost = result.batches
    assert (usage.dataset, usage.start, usage.end, usage.watermark) == (
        Dataset.USAGE, D1, END, float(END))
    assert usage.days == EXPECTED_USAGE
    assert (cost.dataset, cost.start, cost.end, cost.watermark) == (
        Dataset.COST, D1, END, float(END))
    assert cost.days == EXPECTED_COST
    assert result.project_names == {"proj_8fK2aQ": "Search", "proj_Zz9": "Support bot"}


def test_request_params_and_pagination(env: Env) -> None:
    env.fetch()
    window = [("start_time", str(D1)), ("end_time", str(D3)), ("bucket_width", "1d"),
              ("limit", "31")]
    first = window + [("group_by[]", "project_id"), ("group_by[]", "model"),
                      ("group_by[]", "batch"), ("group_by[]", "service_tier")]
    assert env.params("completions", 0) == first
    assert env.params("completions", 1) == first + [("page", "page_AAAAAGlWxYAAAAAAaVgZAA==")]
    for name in USAGE[1:]:
        assert env.params(name) == window + [("group_by[]", "project_id"), ("group_by[]", "model")]
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
    usage, cost = env.fetch(env.provider(group_by=("project", "model", "api_key", "user"))).batches
    dims = Dims("proj_A", "m", "key_K", "user_U")
    assert usage.days == {D2: {
        (T, dims, ("input", "text", "priority")): 10.0,
        (T, dims, ("output", "text", "priority")): 5.0,
        (R, dims, ("priority",)): 1.0,
    }}
    assert cost.days == {D2: {(C, Dims("proj_A", "", "key_K", ""), ("",)): 2.0}}
    assert ("group_by[]", "api_key_id") in env.params("completions")
    assert [v for k, v in env.params("completions") if k == "group_by[]"] == [
        "project_id", "model", "api_key_id", "user_id", "batch", "service_tier"]
    assert [v for k, v in env.params("images") if k == "group_by[]"] == [
        "project_id", "model", "api_key_id", "user_id"]
    assert [v for k, v in env.params("costs") if k == "group_by[]"] == [
        "project_id", "line_item", "api_key_id"]


def test_no_project_grouping_skips_names_and_ignores_ungrouped_fields(env: Env) -> None:
    result = env.fetch(env.provider(group_by=("model",)))
    assert result.project_names == {}
    assert env.routes["projects"].call_count == 0
    assert [v for k, v in env.params("completions") if k == "group_by[]"] == [
        "model", "batch", "service_tier"]
    assert [v for k, v in env.params("costs") if k == "group_by[]"] == ["line_item"]
    usage, cost = result.batches
    assert usage.days[D2][(R, Dims("", "gpt-image-1"), ("default",))] == 4.0
    assert cost.days[D1] == {
        (C, Dims(), ("gpt-4.1-mini-2025-04-14, input",)): 3.4125,
        (C, Dims(), ("gpt-4.1-mini-2025-04-14, output",)): 1.02,
    }


def test_no_grouping_sends_no_dimension_arrays(env: Env) -> None:
    env.fetch(env.provider(group_by=()))
    assert not any(k == "group_by[]" for k, _ in env.params("embeddings"))


def test_empty_buckets_and_no_buckets(env: Env) -> None:
    for name in USAGE:
        env.set(f"/organization/usage/{name}", page([]))
    env.set("/organization/costs", page([bucket(D1, []), bucket(D2, [])]))
    usage, cost = env.fetch().batches
    assert (usage.days, usage.watermark) == ({}, None)
    assert (cost.days, cost.watermark) == ({}, float(END))


def test_usage_watermark_is_the_stalest_endpoint(env: Env) -> None:
    env.set("/organization/usage/images", page([bucket(D1, [])]))  # images lag a day
    usage, _ = env.fetch().batches
    assert usage.watermark == float(D2)


def test_buckets_outside_the_range_are_ignored(env: Env) -> None:
    usage, cost = env.fetch(end=D2).batches  # poll exactly at midnight: day D2 not covered
    assert (usage.start, usage.end) == (D1, D2)
    assert set(usage.days) == {D1}
    assert set(cost.days) == {D1}
    assert ("end_time", str(D2)) in env.params("costs")


def test_modality_and_cache_write_split_with_absent_parts(env: Env) -> None:
    row = {"input_tokens": 1000, "input_cached_tokens": 300, "input_cache_write_tokens": 200,
           "input_image_tokens": 100, "input_cached_image_tokens": 50, "output_tokens": 80,
           "output_image_tokens": 30, "num_model_requests": 2, "project_id": "p", "model": "m",
           "batch": None, "service_tier": None}
    env.routes["completions"].mock(return_value=httpx.Response(200, json=page([bucket(D1, [row])])))
    usage, _ = env.fetch().batches
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


@pytest.mark.parametrize("row, message", [
    ({"input_tokens": 100, "input_cached_tokens": 150, "output_tokens": 1,
      "num_model_requests": 1}, "inconsistent token counts for input"),
    ({"input_tokens": 100, "input_uncached_tokens": 100, "input_audio_tokens": 101,
      "output_tokens": 1, "num_model_requests": 1}, "inconsistent token counts for input"),
    ({"input_tokens": 100, "output_tokens": 5, "output_audio_tokens": 9,
      "num_model_requests": 1}, "inconsistent token counts for output"),
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
])
def test_bad_completions_rows_are_parse_errors(env: Env, row: dict[str, Any], message: str) -> None:
    env.routes["completions"].mock(return_value=httpx.Response(200, json=page([bucket(D1, [row])])))
    err = env.fail()
    assert err.reason == "parse"
    assert message in str(err)
    assert str(err).startswith("GET /organization/usage/completions: ")


@pytest.mark.parametrize("body", [
    page([{"object": "bucket", "start_time": "x", "end_time": D2, "results": []}]),
    page([{"object": "bucket", "start_time": D1, "end_time": D2, "result": []}]),
    page([bucket(D1, [{"images": 1}])]),  # num_model_requests missing
    {"object": "page", "data": [], "has_more": True, "next_page": None},
])
def test_wrong_shapes_are_parse_errors(env: Env, body: dict[str, Any]) -> None:
    env.set("/organization/usage/images", body)
    assert env.fail().reason == "parse"


@pytest.mark.parametrize("amount", [
    {"value": 1.0, "currency": "eur"}, {"value": 1.0}, {"value": None, "currency": "usd"},
    {"value": "1,5", "currency": "usd"}, {"value": True, "currency": "usd"}, 3.0,
])
def test_bad_cost_amounts_are_parse_errors(env: Env, amount: Any) -> None:
    row = {"object": "organization.costs.result", "amount": amount, "line_item": "x",
           "project_id": None, "api_key_id": None}
    env.set("/organization/costs", page([bucket(D1, [row])]))
    assert env.fail().reason == "parse"


def test_unauthorized_is_auth_and_stops_the_poll(env: Env) -> None:
    env.routes["completions"].mock(return_value=httpx.Response(401, json={"error": {
        "message": f"Incorrect API key provided: {KEY}", "type": "invalid_request_error",
        "param": None, "code": "invalid_api_key"}}))
    err = env.fail()
    assert err.reason == "auth"
    assert str(err) == ("GET /organization/usage/completions: HTTP 401: "
                        "Incorrect API key provided: [redacted]")
    assert env.observed == [("/organization/usage/completions", "401")]
    assert env.routes["costs"].call_count == 0


def test_a_late_failure_returns_nothing(env: Env) -> None:
    env.routes["costs"].mock(return_value=httpx.Response(500))
    err = env.fail()
    assert err.reason == "http_5xx"
    assert env.observed[-4:] == [("/organization/costs", "500")] * 4
    assert env.slept == [0.5, 1.0, 2.0]


def test_rate_limit_then_success(env: Env) -> None:
    env.routes["costs"].mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "2"}),
        httpx.Response(200, json=fixture("costs")),
    ])
    _, cost = env.fetch().batches
    assert cost.days == EXPECTED_COST
    assert env.slept == [2.0]


def test_long_rate_limit_is_handed_to_the_scheduler(env: Env) -> None:
    limited = httpx.Response(429, headers={"Retry-After": "3600"})
    env.routes["completions"].mock(return_value=limited)
    err = env.fail()
    assert (err.reason, err.retry_after) == ("rate_limited", 3600.0)
    assert env.slept == []


def test_timeout_is_timeout(env: Env) -> None:
    env.routes["embeddings"].mock(side_effect=httpx.ConnectTimeout("timed out"))
    err = env.fail()
    assert err.reason == "timeout"
    assert env.observed[-4:] == [("/organization/usage/embeddings", "timeout")] * 4


def test_malformed_json_is_parse(env: Env) -> None:
    env.routes["costs"].mock(return_value=httpx.Response(200, text="<html>oops</html>"))
    assert env.fail().reason == "parse"


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
    assert result.batches[0].days == EXPECTED_USAGE
    assert env.observed[-4:] == [("/organization/projects", "503")] * 4
    assert "account main: could not load project names (http_5xx" in caplog.text
    assert KEY not in caplog.text


def test_loopback_base_url_over_http() -> None:
    with respx.mock(base_url="http://127.0.0.1:8099/v1", assert_all_called=False) as router:
        for name in USAGE:
            router.get(f"/organization/usage/{name}").mock(
                return_value=httpx.Response(200, json=page([])))
        router.get("/organization/costs").mock(return_value=httpx.Response(200, json=page([])))
        provider = OpenAIProvider(
            ProviderSettings(account="sim", api_key=lambda: KEY, base_url="http://127.0.0.1:8099/v1",
                             group_by=()),
            observe=lambda e, c: None,
        )
        result = asyncio.run(Env._fetch(provider, D1, END))
        assert router.calls.call_count == 7
        assert str(router.calls[0].request.url).startswith(
            "http://127.0.0.1:8099/v1/organization/usage/completions?")
    assert [b.days for b in result.batches] == [{}, {}]


def test_integral_float_counts_and_omitted_optional_counts_are_read(env: Env) -> None:
    row = {"input_tokens": 7.0, "output_tokens": 3, "num_model_requests": 2.0,
           "project_id": "p", "model": "m"}  # fmt: skip
    env.routes["completions"].mock(return_value=httpx.Response(200, json=page([bucket(D1, [row])])))
    usage = env.fetch().batches[0]
    assert {k: v for k, v in usage.days[D1].items() if k[1] == Dims("p", "m")} == {
        (T, Dims("p", "m"), ("input", "text", "default")): 7.0,
        (T, Dims("p", "m"), ("output", "text", "default")): 3.0,
        (R, Dims("p", "m"), ("default",)): 2.0,
    }  # fmt: skip
