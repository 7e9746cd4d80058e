"""Anthropic provider: usage_report/messages + cost_report pages → exact Batch contents."""

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

from exporter.core.records import DAY, Batch, Dataset, Dims, Family, FetchResult
from exporter.sources.providers import anthropic
from exporter.sources.providers.anthropic import AnthropicProvider
from exporter.sources.providers.base import ProviderError, ProviderSettings
from exporter.sources.providers.fields import DimsReader
from tests import fetched
from tests.fetched import batch_of

FIXTURES = Path(__file__).parent / "fixtures" / "anthropic"
KEY = "sk-ant-admin01-FAKE-not-leak"
BASE = "https://api.anthropic.com"
USAGE_PATH = "/v1/organizations/usage_report/messages"
COST_PATH = "/v1/organizations/cost_report"
NAMES_PATH = "/v1/organizations/workspaces"
D1, D2, D3 = 1772323200, 1772409600, 1772496000  # 2026-03-01, -02, -03 00:00 UTC
END = D2 + 55_800  # poll at 2026-03-02 15:30 UTC
WS = "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ"
SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"

T, C, W = Family.TOKENS, Family.BILLED_COST, Family.TOOL_CALLS
BETA = "fast-mode-2026-02-01"  # the anthropic-beta header that allows grouping by speed
DATASETS = [Dataset.USAGE, Dataset.COST]  # the order they are read in


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def iso(ts: int) -> str:
    return {D1: "2026-03-01T00:00:00Z", D2: "2026-03-02T00:00:00Z", D3: "2026-03-03T00:00:00Z"}[ts]


def page(buckets: list[dict[str, Any]], next_page: str | None = None) -> dict[str, Any]:
    return {"data": buckets, "has_more": next_page is not None, "next_page": next_page}


def bucket(start: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"starting_at": iso(start), "ending_at": iso(start + 86_400), "results": results}


def usage_row(**fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "uncached_input_tokens": 1, "cache_read_input_tokens": 2,
        "cache_creation": {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 4},
        "output_tokens": 5, "server_tool_use": {"web_search_requests": 0},
        "api_key_id": None, "workspace_id": None, "account_id": None, "service_account_id": None,
        "model": None, "service_tier": None, "context_window": None, "inference_geo": None,
    }
    row.update(fields)
    return row


class Env:
    """Mocked Anthropic Admin API plus a provider recording observe() and sleep()."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router
        self.observed: list[tuple[str, str]] = []
        self.slept: list[float] = []
        self.now = 0.0
        self.usage = router.get(USAGE_PATH).mock(side_effect=[
            httpx.Response(200, json=fixture("usage_page1")),
            httpx.Response(200, json=fixture("usage_page2")),
        ])
        self.cost = router.get(COST_PATH).mock(
            return_value=httpx.Response(200, json=fixture("cost")))
        self.names = router.get(NAMES_PATH).mock(
            return_value=httpx.Response(200, json=fixture("workspaces")))

    def provider(self, **settings: Any) -> AnthropicProvider:
        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)

        return AnthropicProvider(
            ProviderSettings(account="claude", api_key=lambda: KEY, **settings),
            observe=lambda endpoint, code: self.observed.append((endpoint, code)),
            sleep=sleep, rng=lambda: 0.5, clock=lambda: self.now,
        )

    def fetch(self, provider: AnthropicProvider | None = None, *, end: int = END) -> FetchResult:
        async def go(provider: AnthropicProvider) -> FetchResult:
            try:
                return await provider.fetch(D1, end)
            finally:
                await provider.aclose()

        return asyncio.run(go(provider or self.provider()))

    def fail(self, dataset: Dataset, provider: AnthropicProvider | None = None
             ) -> tuple[ProviderError, FetchResult]:
        """The error of ``dataset``, the only one that failed, and the poll's result."""
        result = self.fetch(provider)
        err = only_failure(result)
        assert list(result.failures) == [dataset]
        assert [b.dataset for b in result.batches] == [d for d in DATASETS if d is not dataset]
        return err, result

    @staticmethod
    def params(route: respx.Route, call: int = 0) -> list[tuple[str, str]]:
        return list(route.calls[call].request.url.params.multi_items())

    def set_usage(self, body: dict[str, Any]) -> None:
        self.usage.mock(side_effect=None, return_value=httpx.Response(200, json=body))


def only_failure(result: FetchResult) -> ProviderError:
    """The one error of the poll's failed dataset(s), never quoting the key."""
    return fetched.only_failure(result, KEY)




@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


EXPECTED_USAGE = {
    D1: {
        (T, Dims(WS, SONNET), ("input", "text", "standard")): 48210.0,
        (T, Dims(WS, SONNET), ("input_cache_read", "text", "standard")): 912400.0,
        (T, Dims(WS, SONNET), ("input_cache_write", "text", "standard")): 15300.0,
        (T, Dims(WS, SONNET), ("output", "text", "standard")): 22180.0,
        (W, Dims(WS, SONNET), ("web_search",)): 3.0,
    },
    D2: {
        (T, Dims("default", HAIKU), ("input", "text", "batch")): 1000.0,
        (T, Dims("default", HAIKU), ("input_cache_write_1h", "text", "batch")): 2500.0,
        (T, Dims("default", HAIKU), ("output", "text", "batch")): 300.0,
        (T, Dims(WS, SONNET), ("input", "text", "priority")): 10.0,
        (T, Dims(WS, SONNET), ("input_cache_read", "text", "priority")): 20.0,
        (T, Dims(WS, SONNET), ("input_cache_write", "text", "priority")): 30.0,
        (T, Dims(WS, SONNET), ("input_cache_write_1h", "text", "priority")): 40.0,
        (T, Dims(WS, SONNET), ("output", "text", "priority")): 50.0,
    },
}

SONNET_INPUT = ("Claude Sonnet 4.5 Usage - Input Tokens", "tokens", "uncached_input_tokens",
                "standard", "0-200k")  # inference_geo null: left out
WEB_SEARCH = ("Web Search Usage", "web_search")  # the rest null: left out
HAIKU_OUTPUT = ("Claude Haiku 4.5 Usage - Output Tokens", "tokens", "output_tokens", "batch",
                "0-200k")
EXPECTED_COST = {
    D1: {
        (C, Dims("default", SONNET), SONNET_INPUT): 14.57235,
        (C, Dims(WS, ""), WEB_SEARCH): 2.5,
        (C, Dims("default", HAIKU), HAIKU_OUTPUT): 0.99,
    },
}


def test_fetch_returns_exact_batches(env: Env) -> None:
    result = env.fetch()
    usage, cost = result.batches
    assert (usage.dataset, usage.start, usage.end, usage.watermark) == (
        Dataset.USAGE, D1, END, float(END))
    assert usage.days == EXPECTED_USAGE
    assert not any(key[0] is Family.REQUESTS for day in usage.days.values() for key in day)
    assert (cost.dataset, cost.start, cost.end, cost.watermark) == (
        Dataset.COST, D1, END, float(END))
    assert cost.days == EXPECTED_COST  # cents → dollars, string and number amounts
    assert result.project_names == {
        "default": "default", WS: "Research", "wrkspc_01Old": "Old experiments"}


def test_request_params_headers_and_pagination(env: Env) -> None:
    env.fetch()
    window = [("starting_at", "2026-03-01T00:00:00Z"), ("ending_at", "2026-03-03T00:00:00Z"),
              ("bucket_width", "1d"), ("limit", "31")]
    first = window + [("group_by[]", "workspace_id"), ("group_by[]", "model"),
                      ("group_by[]", "service_tier"), ("group_by[]", "context_window"),
                      ("group_by[]", "inference_geo"), ("group_by[]", "speed")]
    assert env.params(env.usage, 0) == first
    assert env.params(env.usage, 1) == first + [("page", "page_MjAyNi0wMy0wMlQwMDowMDowMFo=")]
    assert env.params(env.cost) == window + [("group_by[]", "workspace_id"),
                                             ("group_by[]", "description")]
    assert env.params(env.names) == [("limit", "100"), ("include_archived", "true")]
    calls = [*env.usage.calls, *env.cost.calls, *env.names.calls]
    for call in calls:
        headers = call.request.headers
        assert headers["x-api-key"] == KEY
        assert headers["anthropic-version"] == "2023-06-01"
        assert headers["user-agent"] == "ai-cost-exporter/0.1.0"
        assert "authorization" not in headers
    # The fast-mode beta header, needed to group by speed, goes on every usage page only.
    assert [c.request.headers.get("anthropic-beta") for c in calls] == [BETA, BETA, None, None]
    assert env.observed == [(USAGE_PATH, "200"), (USAGE_PATH, "200"), (COST_PATH, "200"),
                            (NAMES_PATH, "200")]


def test_all_dimensions_opt_in(env: Env) -> None:
    env.set_usage(page([bucket(D2, [usage_row(
        workspace_id=WS, model=SONNET, api_key_id="apikey_01K", account_id="user_01U",
        service_tier="flex")])]))
    usage, cost = env.fetch(env.provider(group_by=("project", "model", "api_key", "user"))).batches
    dims = Dims(WS, SONNET, "apikey_01K", "user_01U")
    assert usage.days == {D2: {
        (T, dims, ("input", "text", "flex")): 1.0,
        (T, dims, ("input_cache_read", "text", "flex")): 2.0,
        (T, dims, ("input_cache_write", "text", "flex")): 3.0,
        (T, dims, ("input_cache_write_1h", "text", "flex")): 4.0,
        (T, dims, ("output", "text", "flex")): 5.0,
    }}  # web_search_requests 0: no tool-call series
    assert [v for k, v in env.params(env.usage) if k == "group_by[]"] == [
        "workspace_id", "model", "api_key_id", "account_id", "service_tier", "context_window",
        "inference_geo", "speed"]
    assert cost.days == EXPECTED_COST  # the cost report has no key/user dimension


def test_without_project_grouping(env: Env) -> None:
    result = env.fetch(env.provider(group_by=("model",)))
    usage, cost = result.batches
    assert result.project_names == {}
    assert env.names.call_count == 0
    assert [v for k, v in env.params(env.usage) if k == "group_by[]"] == [
        "model", "service_tier", "context_window", "inference_geo", "speed"]
    assert [v for k, v in env.params(env.cost) if k == "group_by[]"] == ["description"]
    assert usage.days[D2][(T, Dims("", HAIKU), ("input", "text", "batch"))] == 1000.0
    assert usage.days[D1][(W, Dims("", SONNET), ("web_search",))] == 3.0
    assert cost.days[D1] == {
        (C, Dims("", SONNET), SONNET_INPUT): 14.57235,
        (C, Dims(), WEB_SEARCH): 2.5,
        (C, Dims("", HAIKU), HAIKU_OUTPUT): 0.99,
    }


def test_without_model_grouping_cost_has_no_model(env: Env) -> None:
    _, cost = env.fetch(env.provider(group_by=("project",))).batches
    assert cost.days[D1] == {
        (C, Dims("default"), SONNET_INPUT): 14.57235,
        (C, Dims(WS), WEB_SEARCH): 2.5,
        (C, Dims("default"), HAIKU_OUTPUT): 0.99,
    }


def test_cost_amounts_sum_exactly_in_cents(env: Env) -> None:
    rows = [{"currency": "USD", "amount": amount, "workspace_id": None, "description": "x",
             "model": None} for amount in ("10", "20", 0.5)]
    env.cost.mock(return_value=httpx.Response(200, json=page([bucket(D2, rows)])))
    _, cost = env.fetch().batches
    assert cost.days == {D2: {(C, Dims("default"), ("x",)): 0.305}}


def test_empty_buckets(env: Env) -> None:
    env.set_usage(page([bucket(D1, []), bucket(D2, [])]))
    env.cost.mock(return_value=httpx.Response(200, json=page([])))
    usage, cost = env.fetch().batches
    assert (usage.days, usage.watermark) == ({}, float(END))
    assert (cost.days, cost.watermark) == ({}, None)


def test_lagging_bucket_sets_the_watermark(env: Env) -> None:
    env.set_usage(page([bucket(D1, [usage_row()])]))
    usage, _ = env.fetch().batches
    assert usage.watermark == float(D2)


BAD_USAGE_ROWS = [
    (usage_row(cache_creation=None), "'cache_creation' is not an object"),
    (usage_row(output_tokens=None), "'output_tokens' missing"),
    (usage_row(cache_creation={"ephemeral_5m_input_tokens": 1}),
     "'ephemeral_1h_input_tokens' missing"),
    (usage_row(uncached_input_tokens=-1), "'uncached_input_tokens' not a non-negative integer"),
    (usage_row(service_tier=3), "'service_tier' is not a string"),
    (usage_row(speed=1), "'speed' is not a string (1)"),
    (usage_row(inference_geo=["us"]), "'inference_geo' is not a string (['us'])"),
    (usage_row(server_tool_use="x"), "'server_tool_use' is not an object"),
    (usage_row(server_tool_use=[]), "'server_tool_use' is not an object"),  # falsy, still wrong
    (usage_row(server_tool_use={"web_search_requests": -1}),
     "'web_search_requests' not a non-negative integer (-1)"),
    (usage_row(server_tool_use={"web_search_requests": "3"}),
     "'web_search_requests' not a non-negative integer ('3')"),
]


@pytest.mark.parametrize("row, message", BAD_USAGE_ROWS)
def test_bad_usage_rows_are_parse_errors(env: Env, row: dict[str, Any], message: str) -> None:
    env.set_usage(page([bucket(D1, [row])]))
    err, result = env.fail(Dataset.USAGE)  # its only row is malformed: the dataset fails
    assert err.reason == "parse"
    assert str(err).startswith(f"every row is malformed (GET {USAGE_PATH}: ")
    assert message in str(err)
    assert batch_of(result, Dataset.COST).days == EXPECTED_COST


@pytest.mark.parametrize("row, message", BAD_USAGE_ROWS)
def test_a_bad_usage_row_among_good_ones_is_skipped_and_counted(
    env: Env, row: dict[str, Any], message: str
) -> None:
    first = fixture("usage_page1")
    first["data"][0]["results"].insert(0, {**row, "workspace_id": WS, "model": SONNET})
    env.usage.mock(side_effect=[httpx.Response(200, json=first),
                                httpx.Response(200, json=fixture("usage_page2"))])
    result = env.fetch()
    assert result.failures == {}
    usage = batch_of(result, Dataset.USAGE)
    assert usage.days == EXPECTED_USAGE  # nothing of the skipped row, even its valid fields
    assert usage.skipped_rows == 1
    assert usage.skipped_error.startswith(f"GET {USAGE_PATH}: ")
    assert message in usage.skipped_error
    assert usage.watermark == float(END)
    assert batch_of(result, Dataset.COST).days == EXPECTED_COST


@pytest.mark.parametrize("body, message", [
    (page([{"starting_at": "yesterday", "ending_at": iso(D2), "results": []}]),
     f"GET {USAGE_PATH}: bad timestamp 'yesterday'"),
    (page([{"starting_at": "2026-03-01T00:00:00", "ending_at": iso(D2), "results": []}]),
     f"GET {USAGE_PATH}: timestamp '2026-03-01T00:00:00' has no UTC offset"),
    (page([{"starting_at": iso(D1), "ending_at": iso(D2)}]),
     f"GET {USAGE_PATH}: 'results' is not a list of objects"),
    ({"data": [], "has_more": True, "next_page": None},
     f"GET {USAGE_PATH}: has_more without a next_page"),
    ({"data": "nope", "has_more": False}, f"{USAGE_PATH}: 'data' is not a list of objects"),
])
def test_wrong_shapes_are_parse_errors(env: Env, body: dict[str, Any], message: str) -> None:
    env.set_usage(body)
    err, result = env.fail(Dataset.USAGE)
    assert err.reason == "parse"
    assert str(err).endswith(message)
    assert batch_of(result, Dataset.COST).days == EXPECTED_COST


BAD_COST_ROWS = [
    ({"currency": "EUR", "amount": "100", "workspace_id": None, "description": "x"},
     "unsupported currency 'EUR'"),
    ({"amount": "100", "workspace_id": None, "description": "x"}, "unsupported currency None"),
    ({"currency": "USD", "amount": "12,5", "workspace_id": None, "description": "x"},
     "amount '12,5' is not a number"),
    ({"currency": "USD", "amount": None, "workspace_id": None, "description": "x"},
     "amount None is not a number"),
    ({"currency": "USD", "amount": "NaN", "workspace_id": None, "description": "x"},
     "amount 'NaN' is not finite"),
    ({"currency": "USD", "amount": "1", "workspace_id": None, "description": "x",
      "cost_type": 7}, "'cost_type' is not a string (7)"),
    ({"currency": "USD", "amount": "1", "workspace_id": None, "description": "x",
      "cost_type": "tokens", "inference_geo": {"geo": "us"}},
     "'inference_geo' is not a string ({'geo': 'us'})"),
]


@pytest.mark.parametrize("row, message", BAD_COST_ROWS)
def test_bad_cost_rows_are_parse_errors(env: Env, row: dict[str, Any], message: str) -> None:
    env.cost.mock(return_value=httpx.Response(200, json=page([bucket(D1, [row])])))
    err, result = env.fail(Dataset.COST)
    assert (err.reason, str(err)) == (
        "parse", f"every row is malformed (GET {COST_PATH}: {message})")
    assert batch_of(result, Dataset.USAGE).days == EXPECTED_USAGE


@pytest.mark.parametrize("row, message", BAD_COST_ROWS)
def test_a_bad_cost_row_among_good_ones_is_skipped_and_counted(
    env: Env, row: dict[str, Any], message: str
) -> None:
    cost_page = fixture("cost")
    cost_page["data"][0]["results"].insert(1, row)
    env.cost.mock(return_value=httpx.Response(200, json=cost_page))
    result = env.fetch()
    assert result.failures == {}
    cost = batch_of(result, Dataset.COST)
    assert cost.days == EXPECTED_COST
    assert (cost.skipped_rows, cost.skipped_error) == (1, f"GET {COST_PATH}: {message}")
    assert (batch_of(result, Dataset.USAGE).skipped_rows, cost.watermark) == (0, float(END))


def test_an_invalid_date_range_on_the_cost_report_leaves_the_usage(env: Env) -> None:
    # Seen in the wild: the cost report refuses a window the messages report accepts.
    env.cost.mock(return_value=httpx.Response(400, json={
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "Invalid date range"}}))
    err, result = env.fail(Dataset.COST)
    assert (err.reason, err.status, str(err)) == (
        "http_4xx", 400, f"GET {COST_PATH}: HTTP 400: Invalid date range")
    assert env.cost.call_count == 1  # not retried
    usage = batch_of(result, Dataset.USAGE)
    assert (usage.days, usage.watermark) == (EXPECTED_USAGE, float(END))
    assert result.project_names == {
        "default": "default", WS: "Research", "wrkspc_01Old": "Old experiments"}


def test_unauthorized_is_auth_and_ends_the_poll(env: Env) -> None:
    env.usage.mock(side_effect=None, return_value=httpx.Response(401, json={
        "type": "error", "error": {"type": "authentication_error",
                                   "message": f"invalid x-api-key {KEY}"},
        "request_id": "req_011"}))
    result = env.fetch()
    err = only_failure(result)
    assert (err.reason, str(err)) == (
        "auth", f"GET {USAGE_PATH}: HTTP 401: invalid x-api-key [redacted]")
    # A 401 says the key is valid nowhere: the cost report is not asked.
    assert set(result.failures) == {Dataset.USAGE, Dataset.COST} and result.batches == []
    assert env.cost.call_count == 0


def test_forbidden_cost_report_fails_only_its_dataset(env: Env) -> None:
    env.cost.mock(side_effect=None, return_value=httpx.Response(403, json={
        "type": "error", "error": {"type": "permission_error", "message": "not allowed"}}))
    err, result = env.fail(Dataset.COST)
    assert (err.reason, err.status) == ("auth", 403)
    assert batch_of(result, Dataset.USAGE).days == EXPECTED_USAGE


def test_overloaded_529_is_retried_then_http_5xx(env: Env) -> None:
    env.cost.mock(return_value=httpx.Response(529, json={
        "type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
    err, result = env.fail(Dataset.COST)
    assert (err.reason, str(err)) == ("http_5xx", f"GET {COST_PATH}: HTTP 529: Overloaded")
    assert env.observed[2:6] == [(COST_PATH, "529")] * 4
    assert env.slept == [0.5, 1.0, 2.0]
    assert batch_of(result, Dataset.USAGE).days == EXPECTED_USAGE


def test_rate_limited_then_success(env: Env) -> None:
    env.cost.mock(side_effect=[
        httpx.Response(429, headers={"retry-after": "30"}, json={
            "type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}),
        httpx.Response(200, json=fixture("cost")),
    ])
    result = env.fetch()
    assert result.failures == {}
    assert batch_of(result, Dataset.COST).days == EXPECTED_COST
    assert env.slept == [30.0]
    assert env.observed[2:4] == [(COST_PATH, "429"), (COST_PATH, "200")]


def test_long_rate_limit_fails_every_dataset_and_is_handed_to_the_scheduler(env: Env) -> None:
    limited = httpx.Response(429, headers={"retry-after": "61"})
    env.usage.mock(side_effect=None, return_value=limited)
    result = env.fetch()
    assert result.batches == []
    assert list(result.failures) == DATASETS  # the first one's error, for both
    err = only_failure(result)
    assert (err.reason, err.retry_after, str(err)) == (
        "rate_limited", 61.0, f"GET {USAGE_PATH}: HTTP 429")
    assert env.slept == []
    assert (env.usage.call_count, env.cost.call_count) == (1, 0)


def test_timeout_fails_only_its_dataset(env: Env) -> None:
    env.usage.mock(side_effect=httpx.ReadTimeout("slow"))
    err, result = env.fail(Dataset.USAGE)
    assert (err.reason, str(err)) == ("timeout", f"GET {USAGE_PATH}: no response within 30 s")
    assert env.observed[:5] == [(USAGE_PATH, "timeout")] * 4 + [(COST_PATH, "200")]
    assert batch_of(result, Dataset.COST).days == EXPECTED_COST


def test_connection_error(env: Env) -> None:
    env.cost.mock(side_effect=httpx.ConnectError("connection refused"))
    err, result = env.fail(Dataset.COST)
    assert (err.reason, str(err)) == (
        "connection", f"GET {COST_PATH}: ConnectError: connection refused")
    assert env.observed[2:6] == [(COST_PATH, "connection_error")] * 4
    assert batch_of(result, Dataset.USAGE).days == EXPECTED_USAGE


def test_malformed_json_is_parse(env: Env) -> None:
    env.usage.mock(side_effect=None, return_value=httpx.Response(200, text='{"data": ['))
    err, result = env.fail(Dataset.USAGE)
    assert (err.reason, str(err)) == ("parse", f"GET {USAGE_PATH}: response is not valid JSON")
    assert batch_of(result, Dataset.COST).days == EXPECTED_COST


def test_workspace_names_failure_keeps_default(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env.names.mock(return_value=httpx.Response(403, json={
        "type": "error", "error": {"type": "permission_error", "message": "no"}}))
    with caplog.at_level(logging.WARNING):
        result = env.fetch()
    assert result.project_names == {"default": "default"}
    assert result.batches[0].days == EXPECTED_USAGE
    assert "account claude: could not load project names (auth" in caplog.text


def test_workspace_names_are_cached(env: Env) -> None:
    provider = env.provider()

    async def polls() -> list[FetchResult]:
        results = []
        for advance in (0, 600, 3000):  # the last poll is 1 h after the first
            env.now += advance
            env.set_usage(fixture("usage_page2"))
            results.append(await provider.fetch(D1, END))
        await provider.aclose()
        return results

    results = asyncio.run(polls())
    assert env.names.call_count == 2
    assert all(r.project_names == results[0].project_names for r in results)
    assert results[0].project_names["default"] == "default"


def test_tokens_at_the_long_context_tier_are_counted_and_marked_for_pricing() -> None:
    def message(context_window: str) -> dict[str, Any]:
        return {
            "uncached_input_tokens": 10,
            "cache_read_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": 5,
            "workspace_id": None,
            "model": SONNET,
            "service_tier": "standard",
            "context_window": context_window,
        }

    batch = Batch(Dataset.USAGE, D1, D1 + DAY)
    read_dims = DimsReader(("project", "model"), anthropic.DIM_FIELDS, null_project="default")
    for row in (message("0-200k"), message("200k-1M")):
        anthropic.add_message_row(batch, D1, read_dims(row, "here"), row, "here")
    dims = Dims("default", SONNET)
    uncached = (T, dims, ("input", "text", "standard"))
    output = (T, dims, ("output", "text", "standard"))
    assert batch.days == {D1: {uncached: 20, output: 10}}  # every token counted
    assert batch.long_context == {D1: {uncached: 10, output: 5}}  # priced at the long tier


def tokens(dims: Dims, extra: tuple[str, ...], scale: float = 1.0) -> dict[Any, float]:
    """The five token series of a :func:`usage_row` (1..5 tokens, times ``scale``)."""
    types = ("input", "input_cache_read", "input_cache_write", "input_cache_write_1h", "output")
    return {(T, dims, (t, "text", *extra)): (i + 1) * scale for i, t in enumerate(types)}


def test_fast_mode_and_us_only_inference_are_series_of_their_own(env: Env) -> None:
    ws = {"workspace_id": WS, "model": SONNET}
    env.set_usage(page([bucket(D2, [
        usage_row(**ws, service_tier="standard", speed="standard", inference_geo="global"),
        usage_row(**ws, speed="fast"),
        usage_row(**ws, speed="fast", inference_geo="global"),  # same series as the one above
        usage_row(**ws, inference_geo="us"),
        usage_row(**ws, speed="standard", inference_geo="us"),  # same series as the one above
        usage_row(**ws, speed="fast", inference_geo="us"),
        usage_row(**ws, service_tier="priority", inference_geo="not_available"),
    ])]))
    usage, _ = env.fetch().batches
    dims = Dims(WS, SONNET)
    assert usage.days == {D2: {
        **tokens(dims, ("standard",)),  # standard speed, global inference: no extra labels
        **tokens(dims, ("standard", "fast"), 2),
        **tokens(dims, ("standard", "", "us"), 2),
        **tokens(dims, ("standard", "fast", "us")),
        **tokens(dims, ("priority", "", "not_available")),
    }}
    assert usage.skipped_rows == 0
    group_by = [v for k, v in env.params(env.usage) if k == "group_by[]"]
    assert group_by == [
        "workspace_id", "model", "service_tier", "context_window", "inference_geo", "speed"]
    assert env.usage.calls[0].request.headers["anthropic-beta"] == BETA
    assert "anthropic-beta" not in env.cost.calls[0].request.headers
    assert "anthropic-beta" not in env.names.calls[0].request.headers


def test_long_context_fast_mode_tokens_are_marked_under_their_own_series() -> None:
    row = usage_row(model=SONNET, speed="fast", context_window="200k-1M",
                    server_tool_use=None)
    batch = Batch(Dataset.USAGE, D1, D1 + DAY)
    read_dims = DimsReader(("project", "model"), anthropic.DIM_FIELDS, null_project="default")
    anthropic.add_message_row(batch, D1, read_dims(row, "here"), row, "here")
    expected = tokens(Dims("default", SONNET), ("standard", "fast"))
    assert batch.days == {D1: expected}
    assert batch.long_context == {D1: expected}


def test_web_searches_are_tool_calls_of_the_rows_dims(env: Env) -> None:
    # Shaped like the documented example row.
    row = {
        "api_key_id": "apikey_01Rj2N8SVvo6BePZj99NhmiT",
        "workspace_id": WS,
        "model": SONNET,
        "service_tier": "standard",
        "context_window": "0-200k",
        "inference_geo": "global",
        "speed": "standard",
        "account_id": None,
        "service_account_id": None,
        "uncached_input_tokens": 1500,
        "cache_creation": {"ephemeral_1h_input_tokens": 1000, "ephemeral_5m_input_tokens": 500},
        "cache_read_input_tokens": 200,
        "output_tokens": 500,
        "server_tool_use": {"web_search_requests": 3},
    }
    env.set_usage(page([bucket(D1, [row]), bucket(D2, [{**row, "speed": "fast"}])]))
    usage, _ = env.fetch(env.provider(group_by=("project", "model", "api_key"))).batches
    dims = Dims(WS, SONNET, "apikey_01Rj2N8SVvo6BePZj99NhmiT")
    assert usage.days[D1] == {
        (T, dims, ("input", "text", "standard")): 1500.0,
        (T, dims, ("input_cache_read", "text", "standard")): 200.0,
        (T, dims, ("input_cache_write", "text", "standard")): 500.0,
        (T, dims, ("input_cache_write_1h", "text", "standard")): 1000.0,
        (T, dims, ("output", "text", "standard")): 500.0,
        (W, dims, ("web_search",)): 3.0,
    }
    # The tool-call series has no tier, speed or geo label: fast-mode searches count there too.
    assert usage.days[D2][(W, dims, ("web_search",))] == 3.0
    assert (T, dims, ("output", "text", "standard", "fast")) in usage.days[D2]


def test_web_searches_of_rows_of_one_day_add_up(env: Env) -> None:
    env.set_usage(page([bucket(D1, [
        usage_row(model=SONNET, server_tool_use={"web_search_requests": 3}),
        usage_row(model=SONNET, service_tier="batch", server_tool_use={"web_search_requests": 4}),
        usage_row(model=HAIKU, server_tool_use={"web_search_requests": 1}),
    ])]))
    usage, _ = env.fetch().batches
    day = usage.days[D1]
    assert {k: v for k, v in day.items() if k[0] is W} == {
        (W, Dims("default", SONNET), ("web_search",)): 7.0,
        (W, Dims("default", HAIKU), ("web_search",)): 1.0,
    }


@pytest.mark.parametrize("fields", [
    {"server_tool_use": None},
    {"server_tool_use": {}},
    {"server_tool_use": {"web_search_requests": None}},
    {"server_tool_use": {"web_search_requests": 0}},
])
def test_no_web_searches_add_no_tool_call_series(env: Env, fields: dict[str, Any]) -> None:
    row = usage_row(model=SONNET, **fields)
    absent = {k: v for k, v in usage_row(model=SONNET).items() if k != "server_tool_use"}
    env.set_usage(page([bucket(D1, [row]), bucket(D2, [absent])]))  # older rows: absent
    usage, _ = env.fetch().batches
    dims = Dims("default", SONNET)
    assert usage.days == {D1: tokens(dims, ("standard",)), D2: tokens(dims, ("standard",))}
    assert usage.skipped_rows == 0


def test_a_row_whose_server_tool_use_is_not_an_object_is_skipped_and_counted(env: Env) -> None:
    env.set_usage(page([bucket(D1, [
        usage_row(model=SONNET, server_tool_use={"web_search_requests": 2}),
        usage_row(model=HAIKU, server_tool_use="x"),
    ])]))
    result = env.fetch()
    assert result.failures == {}
    usage = batch_of(result, Dataset.USAGE)
    dims = Dims("default", SONNET)
    assert usage.days == {D1: {**tokens(dims, ("standard",)), (W, dims, ("web_search",)): 2.0}}
    assert (usage.skipped_rows, usage.skipped_error) == (
        1, f"GET {USAGE_PATH}: 'server_tool_use' is not an object")


def cost_row(amount: str, description: str | None, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "currency": "USD", "amount": amount, "workspace_id": None, "description": description,
        "model": None, "cost_type": None, "token_type": None, "service_tier": None,
        "context_window": None, "inference_geo": None,
    }
    row.update(fields)
    return row


def test_cost_rows_keep_their_cost_type_token_type_tier_context_and_geo(env: Env) -> None:
    sonnet = "Claude Sonnet 4.5 Usage - Input Tokens"
    env.cost.mock(return_value=httpx.Response(200, json=page([bucket(D1, [
        cost_row("100", sonnet, model=SONNET, cost_type="tokens",
                 token_type="uncached_input_tokens", service_tier="standard",
                 context_window="200k-1M", inference_geo="us"),
        cost_row("50", sonnet, model=SONNET, cost_type="tokens",
                 token_type="uncached_input_tokens", service_tier="standard",
                 context_window="200k-1M", inference_geo="us"),  # same labels: summed
        cost_row("40", sonnet, model=SONNET, cost_type="tokens",
                 token_type="uncached_input_tokens", service_tier="standard",
                 context_window="200k-1M", inference_geo="global"),
        cost_row("30", sonnet, model=SONNET, cost_type="tokens",
                 token_type="uncached_input_tokens", service_tier="standard",
                 context_window="0-200k"),
        cost_row("20", "Fast", model=SONNET, cost_type="tokens", service_tier="priority",
                 inference_geo="us"),  # nulls between values stay as ""
        cost_row("10", None, cost_type="web_search"),
        cost_row("5", "Code Execution Usage", cost_type="code_execution"),
        cost_row("3", "Other"),
        cost_row("1", None),
    ])])))
    _, cost = env.fetch().batches
    dims = Dims("default", SONNET)
    tokens_in = (sonnet, "tokens", "uncached_input_tokens", "standard")
    assert cost.days == {D1: {
        (C, dims, (*tokens_in, "200k-1M", "us")): 1.5,
        (C, dims, (*tokens_in, "200k-1M", "global")): 0.4,
        (C, dims, (*tokens_in, "0-200k")): 0.3,
        (C, dims, ("Fast", "tokens", "", "priority", "", "us")): 0.2,
        (C, Dims("default"), ("", "web_search")): 0.1,
        (C, Dims("default"), ("Code Execution Usage", "code_execution")): 0.05,
        (C, Dims("default"), ("Other",)): 0.03,
        (C, Dims("default"), ("",)): 0.01,
    }}
    assert cost.skipped_rows == 0
