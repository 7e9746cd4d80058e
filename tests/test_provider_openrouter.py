"""OpenRouter provider: credits, activity and keys → exact Batch contents and gauges."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from exporter.core.records import Dataset, Dims, Family, FetchResult
from exporter.sources.providers.base import ProviderError, ProviderSettings
from exporter.sources.providers.openrouter import OpenRouterProvider
from tests import fetched
from tests.fetched import batch_of

FIXTURES = Path(__file__).parent / "fixtures" / "openrouter"
KEY = "sk-or-v1-FAKEKEY-management-do-not-leak-42"
BASE = "https://openrouter.ai/api/v1"
D1, D2, D3 = 1767225600, 1767312000, 1767398400  # 2026-01-01, -02, -03 00:00 UTC
END = D3 + 43_200  # poll at 2026-01-03 12:00 UTC

T, R, C, RT = Family.TOKENS, Family.REQUESTS, Family.BILLED_COST, Family.REASONING_TOKENS
CREDITS, TODAY = Family.CREDITS_REMAINING, Family.BILLED_COST_TODAY
DATASETS = [Dataset.BALANCE, Dataset.USAGE, Dataset.COST]  # /credits, then /keys + /activity
SONNET, MINI = "anthropic/claude-sonnet-4.5", "openai/gpt-5-mini"
FREE = "deepseek/deepseek-chat-v3.1:free"
CI_BOT, PROD = (
    "f01d52606dc8f0a8303a7b5cc3fa07109c2e346cec7c0a16b40de462992ce943",
    "a3c1e0f9b2d84c6e9f1a7b5d3c2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e",
)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def rows(*indexes: int) -> dict[str, Any]:
    data = fixture("activity")["data"]
    return {"data": [data[i] for i in indexes]}


class Env:
    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router
        self.observed: list[tuple[str, str]] = []
        self.slept: list[float] = []
        self.credits = router.get("/credits").mock(
            return_value=httpx.Response(200, json=fixture("credits"))
        )
        self.keys = router.get("/keys").mock(return_value=httpx.Response(200, json=fixture("keys")))
        self.activity = router.get("/activity").mock(side_effect=self._activity)
        self.by_key: dict[str, dict[str, Any]] = {}
        self.by_user: dict[str, dict[str, Any]] = {}
        # No workspace besides the default one, no member: tests that need them set them.
        self.workspaces = router.get("/workspaces").mock(
            return_value=httpx.Response(200, json={"data": [], "total_count": 0})
        )
        self.members = router.get("/organization/members").mock(
            return_value=httpx.Response(200, json={"data": [], "total_count": 0})
        )

    def _activity(self, request: httpx.Request) -> httpx.Response:
        key_hash = request.url.params.get("api_key_hash")
        user = request.url.params.get("user_id")
        if user is not None:
            return httpx.Response(200, json=self.by_user.get(user, {"data": []}))
        if key_hash is None:
            return httpx.Response(200, json=fixture("activity"))
        return httpx.Response(200, json=self.by_key.get(key_hash, {"data": []}))

    def provider(self, **settings: Any) -> OpenRouterProvider:
        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)

        return OpenRouterProvider(
            ProviderSettings(account="or", api_key=lambda: KEY, **settings),
            observe=lambda endpoint, code: self.observed.append((endpoint, code)),
            sleep=sleep,
            rng=lambda: 0.5,
        )

    def fetch(self, *, start: int = D1, end: int = END, **settings: Any) -> FetchResult:
        provider = self.provider(**settings)

        async def run() -> FetchResult:
            try:
                return await provider.fetch(start, end)
            finally:
                await provider.aclose()

        return asyncio.run(run())

    def fail(self, *datasets: Dataset, **settings: Any) -> tuple[ProviderError, FetchResult]:
        """The error of ``datasets``, the only ones that failed, and the poll's result."""
        result = self.fetch(**settings)
        err = only_failure(result)
        assert list(result.failures) == list(datasets)
        assert [b.dataset for b in result.batches] == [d for d in DATASETS if d not in datasets]
        return err, result


def only_failure(result: FetchResult) -> ProviderError:
    """The one error of the poll's failed dataset(s), never quoting the key."""
    return fetched.only_failure(result, KEY)




def gauges(result: FetchResult) -> dict[Any, float]:
    """The gauges of every batch (the balance's credits, the cost's spend today)."""
    return {key: value for b in result.batches for key, value in b.gauges.items()}


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


def dims(model: str, project: str = "", key: str = "") -> Dims:
    return Dims(project, model, key)


def usage_series(d: Dims, prompt: int, completion: int, reasoning: int, requests: int) -> dict:
    out: dict[Any, float] = {
        (T, d, ("input", "", "")): float(prompt),
        (T, d, ("output", "", "")): float(completion),
        (R, d, ("",)): float(requests),
    }
    if reasoning:
        out[RT, d, ()] = float(reasoning)
    return out


def test_activity_tokens_requests_cost_per_workspace_and_model(env: Env) -> None:
    result = env.fetch()
    assert result.failures == {}
    balance, usage, cost = result.batches
    assert (balance.dataset, balance.days, balance.gauges) == (
        Dataset.BALANCE, {}, {(CREDITS, Dims(), ()): 62.5769})
    assert (usage.dataset, usage.start, usage.end) == (Dataset.USAGE, D1, END)
    assert (cost.dataset, cost.start, cost.end) == (Dataset.COST, D1, END)
    sonnet, mini = dims(SONNET, "ws-main"), dims(MINI, "ws-research")
    assert usage.days == {
        # Two endpoints (Anthropic, Google Vertex) of one model add up; 2025-12-31 is ignored.
        D1: {
            **usage_series(sonnet, 442331, 66020, 0, 130),
            **usage_series(mini, 20000, 30000, 12000, 40),
        },
        D2: {
            **usage_series(mini, 50000, 45000, 20000, 60),
            **usage_series(dims(FREE, "ws-main"), 700, 350, 0, 7),
        },
    }
    # BYOK inference (paid to the upstream provider) is kept apart; $0 rows add nothing.
    assert cost.days == {
        D1: {(C, sonnet, ("inference",)): 4.73, (C, mini, ("inference",)): 0.1,
             (C, mini, ("byok",)): 0.02},
        D2: {(C, mini, ("inference",)): 0.3},
    }
    assert usage.watermark == cost.watermark == float(D3)  # completed days only
    assert usage.gauges == {}
    assert cost.gauges == {
        (TODAY, Dims(), ()): 4.8,  # usage_daily of every key, the disabled one included
    }
    assert [(b.skipped_rows, b.skipped_error) for b in result.batches] == [(0, "")] * 3
    assert result.project_names == {}
    assert dict(env.activity.calls[0].request.url.params) == {"group_by": "workspace"}
    assert list(env.keys.calls[0].request.url.params.multi_items()) == [
        ("include_disabled", "true"),
        ("offset", "0"),
    ]
    assert env.credits.calls[0].request.headers["authorization"] == f"Bearer {KEY}"
    assert env.observed == [
        ("/credits", "200"), ("/workspaces", "200"), ("/keys", "200"), ("/activity", "200")]


def test_window_after_the_first_poll_keeps_only_its_days(env: Env) -> None:
    _, usage, cost = env.fetch(start=D2, group_by=("model",)).batches
    assert usage.start == D2
    assert usage.days == {
        D2: {
            **usage_series(dims(MINI), 50000, 45000, 20000, 60),
            **usage_series(dims(FREE), 700, 350, 0, 7),
        }
    }
    assert cost.days == {D2: {(C, dims(MINI), ("inference",)): 0.3}}
    assert dict(env.activity.calls[0].request.url.params) == {}  # no workspace split


def test_per_key_attribution_with_an_unattributed_rest(env: Env) -> None:
    env.by_key = {CI_BOT: rows(1, 4), PROD: rows(3)}
    result = env.fetch(group_by=("model", "api_key"))
    _, usage, cost = result.batches
    assert usage.days == {
        D1: {
            **usage_series(dims(SONNET, key="ci-bot"), 402331, 61020, 0, 118),
            **usage_series(dims(SONNET), 40000, 5000, 0, 12),  # no listed key explains it
            **usage_series(dims(MINI, key="prod"), 20000, 30000, 12000, 40),
        },
        D2: {
            **usage_series(dims(MINI, key="ci-bot"), 50000, 45000, 20000, 60),
            **usage_series(dims(FREE), 700, 350, 0, 7),
        },
    }
    assert cost.days == {
        D1: {
            (C, dims(SONNET, key="ci-bot"), ("inference",)): 4.2175,
            (C, dims(SONNET), ("inference",)): 0.5125,
            (C, dims(MINI, key="prod"), ("inference",)): 0.1,
            (C, dims(MINI, key="prod"), ("byok",)): 0.02,
        },
        D2: {(C, dims(MINI, key="ci-bot"), ("inference",)): 0.3},
    }
    assert gauges(result) == {
        (CREDITS, Dims(), ()): 62.5769,
        (TODAY, Dims(api_key_id="ci-bot"), ()): 1.25,
        (TODAY, Dims(api_key_id="prod"), ()): 3.5,
        (TODAY, Dims(api_key_id="old"), ()): 0.0,
        (TODAY, Dims(api_key_id="sk-or-v1-b0b...0b0"), ()): 0.05,  # no name: the label
    }
    hashes = [call.request.url.params.get("api_key_hash") for call in env.activity.calls]
    assert hashes == [
        None,
        CI_BOT,
        PROD,
        fixture("keys")["data"][2]["hash"],
        fixture("keys")["data"][3]["hash"],
    ]


def test_keys_are_paged_by_offset_until_a_short_page(env: Env) -> None:
    template = fixture("keys")["data"][0]
    full = [
        {**template, "hash": f"{i:064x}", "name": f"key-{i}", "usage_daily": 0.01}
        for i in range(100)
    ]
    last = [{**template, "hash": "f" * 64, "name": "key-last", "usage_daily": 2.5}]
    env.keys.mock(
        side_effect=[
            httpx.Response(200, json={"data": full}),
            httpx.Response(200, json={"data": last}),
        ]
    )
    result = env.fetch()
    offsets = [call.request.url.params["offset"] for call in env.keys.calls]
    assert offsets == ["0", "100"]
    assert batch_of(result, Dataset.COST).gauges[TODAY, Dims(), ()] == 3.5  # summed exactly


def test_duplicate_key_names_get_a_hash_prefix(env: Env) -> None:
    keys = fixture("keys")
    keys["data"][1]["name"] = "ci-bot"
    env.keys.mock(return_value=httpx.Response(200, json=keys))
    today = batch_of(env.fetch(group_by=("api_key",)), Dataset.COST).gauges
    assert today[TODAY, Dims(api_key_id="ci-bot (f01d5260)"), ()] == 1.25
    assert today[TODAY, Dims(api_key_id="ci-bot (a3c1e0f9)"), ()] == 3.5


def test_an_inference_key_is_refused_with_the_providers_message(env: Env) -> None:
    refused = httpx.Response(403, json=fixture("error_management_key"))
    for route in (env.credits, env.workspaces, env.keys, env.activity):
        route.mock(side_effect=None, return_value=refused)
    result = env.fetch()
    assert result.batches == []
    # "auth" is not account-wide: each request series is tried, and refused, once.
    assert {dataset: (err.reason, str(err)) for dataset, err in result.failures.items()} == {
        Dataset.BALANCE: (
            "auth", "GET /credits: HTTP 403: Only management keys can perform this operation"),
        Dataset.USAGE: (
            "auth", "GET /keys: HTTP 403: Only management keys can perform this operation"),
        Dataset.COST: (
            "auth", "GET /keys: HTTP 403: Only management keys can perform this operation"),
    }
    # (The workspace names are optional: their 403 is logged, the keys' fails the datasets.)
    assert env.observed == [("/credits", "403"), ("/workspaces", "403"), ("/keys", "403")]


def test_a_failing_credits_endpoint_leaves_usage_and_cost(env: Env) -> None:
    env.credits.mock(return_value=httpx.Response(500, json={
        "error": {"code": 500, "message": "Internal"}}))
    err, result = env.fail(Dataset.BALANCE)
    assert (err.reason, str(err)) == ("http_5xx", "GET /credits: HTTP 500: Internal")
    assert env.slept == [0.5, 1.0, 2.0]
    usage, cost = result.batches
    assert usage.days[D2][(R, dims(MINI, "ws-research"), ("",))] == 60.0
    assert cost.days == {
        D1: {(C, dims(SONNET, "ws-main"), ("inference",)): 4.73,
             (C, dims(MINI, "ws-research"), ("inference",)): 0.1,
             (C, dims(MINI, "ws-research"), ("byok",)): 0.02},
        D2: {(C, dims(MINI, "ws-research"), ("inference",)): 0.3},
    }
    assert gauges(result) == {(TODAY, Dims(), ()): 4.8}  # no credits gauge this poll


def test_a_failing_activity_report_leaves_the_balance(env: Env) -> None:
    env.activity.mock(side_effect=None, return_value=httpx.Response(400, json={
        "error": {"code": 400, "message": "Invalid date"}}))
    err, result = env.fail(Dataset.USAGE, Dataset.COST)
    assert (err.reason, str(err)) == ("http_4xx", "GET /activity: HTTP 400: Invalid date")
    assert gauges(result) == {(CREDITS, Dims(), ()): 62.5769}  # not the keys' spend either
    assert env.observed == [
        ("/credits", "200"), ("/workspaces", "200"), ("/keys", "200"), ("/activity", "400")]


def test_a_long_rate_limit_on_credits_fails_every_dataset_without_more_requests(
    env: Env,
) -> None:
    env.credits.mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}, json={
        "error": {"code": 429, "message": "Rate limit exceeded"}}))
    result = env.fetch()
    assert result.batches == []
    assert list(result.failures) == DATASETS
    err = only_failure(result)
    assert (err.reason, err.retry_after, str(err)) == (
        "rate_limited", 3600.0, "GET /credits: HTTP 429: Rate limit exceeded")
    assert env.observed == [("/credits", "429")]
    assert env.slept == []


def test_server_errors_are_retried_then_succeed(env: Env) -> None:
    env.activity.mock(
        side_effect=[
            httpx.Response(500, json={"error": {"code": 500, "message": "Internal"}}),
            httpx.Response(200, json=fixture("activity")),
        ]
    )
    result = env.fetch()
    assert result.failures == {}
    assert batch_of(result, Dataset.COST).days[D2] == {
        (C, dims(MINI, "ws-research"), ("inference",)): 0.3}
    assert env.slept == [0.5]


MALFORMED_ROWS = [
    ({"prompt_tokens": "12"}, "GET /activity: 'prompt_tokens' not a non-negative integer ('12')"),
    ({"date": "01/01/2026"}, "GET /activity: bad date '01/01/2026'"),
    ({"usage": None}, "GET /activity: amount None is not a number"),
]


@pytest.mark.parametrize(("change", "message"), MALFORMED_ROWS)
def test_malformed_activity_fails_usage_and_cost(
    env: Env, change: dict[str, Any], message: str
) -> None:
    body = {"data": [{**fixture("activity")["data"][1], **change}]}  # its only row
    env.activity.mock(side_effect=None, return_value=httpx.Response(200, json=body))
    err, result = env.fail(Dataset.USAGE, Dataset.COST)
    assert (err.reason, str(err)) == ("parse", f"every row is malformed ({message})")
    assert gauges(result) == {(CREDITS, Dims(), ()): 62.5769}


def test_an_activity_report_that_is_no_list_fails_usage_and_cost(env: Env) -> None:
    env.activity.mock(side_effect=None, return_value=httpx.Response(200, json={"rows": []}))
    err, _ = env.fail(Dataset.USAGE, Dataset.COST)
    assert (err.reason, str(err)) == ("parse", "GET /activity: 'data' is not a list of objects")


@pytest.mark.parametrize(("change", "message"), MALFORMED_ROWS)
def test_a_malformed_activity_row_is_skipped_and_counted_once(
    env: Env, change: dict[str, Any], message: str
) -> None:
    data = fixture("activity")["data"]
    data.insert(3, {**data[3], **change})  # a broken copy of the gpt-5-mini row of day 1
    env.activity.mock(side_effect=None, return_value=httpx.Response(200, json={"data": data}))
    result = env.fetch()
    assert result.failures == {}
    _, usage, cost = result.batches
    sonnet, mini = dims(SONNET, "ws-main"), dims(MINI, "ws-research")
    assert usage.days == {  # exactly as without the broken row
        D1: {
            **usage_series(sonnet, 442331, 66020, 0, 130),
            **usage_series(mini, 20000, 30000, 12000, 40),
        },
        D2: {
            **usage_series(mini, 50000, 45000, 20000, 60),
            **usage_series(dims(FREE, "ws-main"), 700, 350, 0, 7),
        },
    }
    assert cost.days == {
        D1: {(C, sonnet, ("inference",)): 4.73, (C, mini, ("inference",)): 0.1,
             (C, mini, ("byok",)): 0.02},
        D2: {(C, mini, ("inference",)): 0.3},
    }
    # One report feeds both datasets: the row is counted once, in the cost batch.
    assert usage.skipped_rows == 0
    assert (cost.skipped_rows, cost.skipped_error) == (1, message)


def test_malformed_credits_and_keys(env: Env) -> None:
    env.credits.mock(return_value=httpx.Response(200, json={"data": {"total_credits": 5}}))
    err, result = env.fail(Dataset.BALANCE)
    assert (err.reason, str(err)) == ("parse", "GET /credits: amount None is not a number")
    assert batch_of(result, Dataset.COST).days[D2] == {
        (C, dims(MINI, "ws-research"), ("inference",)): 0.3}
    env.credits.mock(return_value=httpx.Response(200, json=fixture("credits")))
    env.keys.mock(return_value=httpx.Response(200, json={"data": [{"name": "x"}]}))
    err, result = env.fail(Dataset.USAGE, Dataset.COST)
    assert (err.reason, str(err)) == ("parse", "GET /keys: key without a 'hash'")
    assert gauges(result) == {(CREDITS, Dims(), ()): 62.5769}


def research_key(usage_daily: float) -> dict[str, Any]:
    return {"hash": "e" * 64, "name": "research-bot", "label": "sk-or-v1-eee...eee",
            "disabled": False, "usage": 9.0, "usage_daily": usage_daily,
            "workspace_id": "ws-research"}


def test_every_workspace_is_read_and_named(env: Env) -> None:
    # /keys without workspace_id lists the default workspace's keys only: the others' spend
    # today was missing. /workspaces names them (the project label) and lists their keys.
    env.workspaces.mock(return_value=httpx.Response(200, json={
        "data": [{"id": "ws-main", "name": "Production", "slug": "production"},
                 {"id": "ws-research", "name": "Research", "slug": "research"}],
        "total_count": 2}))

    def keys(request: httpx.Request) -> httpx.Response:
        workspace = request.url.params.get("workspace_id")
        if workspace == "ws-research":
            return httpx.Response(200, json={"data": [research_key(2.0)]})
        return httpx.Response(200, json=fixture("keys"))  # default and ws-main: the same keys

    env.keys.mock(side_effect=keys)
    result = env.fetch()
    assert result.failures == {}
    assert result.project_names == {"ws-main": "Production", "ws-research": "Research"}
    # Every key once (ws-main's listed twice): 4.8 of the fixture's keys plus 2.0.
    assert gauges(result)[TODAY, Dims(), ()] == pytest.approx(6.8)
    assert [call.request.url.params.get("workspace_id") for call in env.keys.calls] == [
        None, "ws-main", "ws-research"]
    assert dict(env.workspaces.calls[0].request.url.params) == {"offset": "0", "limit": "100"}
    assert env.workspaces.call_count == 1  # the names of the poll's keys and of its labels


def test_a_failing_workspace_list_keeps_the_default_workspace(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.workspaces.mock(return_value=httpx.Response(403, json={
        "error": {"code": 403, "message": "forbidden"}}))
    result = env.fetch()
    assert result.failures == {} and result.project_names == {}
    assert gauges(result)[TODAY, Dims(), ()] == 4.8
    assert "could not load project names" in caplog.text


def test_group_by_user_attributes_through_the_member_filter(env: Env) -> None:
    env.members.mock(return_value=httpx.Response(200, json={
        "data": [{"id": "user_jane", "email": "jane@example.com", "first_name": "Jane",
                  "last_name": "Doe", "role": "org:member"},
                 {"id": "user_bob", "email": None, "first_name": None, "last_name": None,
                  "role": "org:admin"}],
        "total_count": 2}))
    env.by_user = {"user_jane": rows(1, 4), "user_bob": rows(3)}
    result = env.fetch(group_by=("model", "user"))
    usage, cost = batch_of(result, Dataset.USAGE), batch_of(result, Dataset.COST)
    jane, bob = Dims(model=SONNET, user_id="jane@example.com"), Dims(model=MINI, user_id="user_bob")
    assert usage.days[D1] == {
        **usage_series(jane, 402331, 61020, 0, 118),
        **usage_series(dims(SONNET), 40000, 5000, 0, 12),  # no member explains it
        **usage_series(bob, 20000, 30000, 12000, 40),  # no email: the member id
    }
    assert cost.days[D1] == {
        (C, jane, ("inference",)): 4.2175,
        (C, dims(SONNET), ("inference",)): 0.5125,
        (C, bob, ("inference",)): 0.1,
        (C, bob, ("byok",)): 0.02,
    }
    users = [call.request.url.params.get("user_id") for call in env.activity.calls]
    assert users == [None, "user_bob", "user_jane"]
    # Without grouping by user no member is listed and no per-member report asked.
    env.fetch(group_by=("model",))
    assert env.members.call_count == 1 and len(env.activity.calls) == 4


def test_byok_inference_is_exported_but_no_spend_of_the_account() -> None:
    from exporter.core.ledger import Ledger
    from exporter.core.records import Batch as LedgerBatch

    batch = LedgerBatch(Dataset.COST, D1, END)
    batch.add(D1, (C, dims(MINI), ("inference",)), 0.1)
    batch.add(D1, (C, dims(MINI), ("byok",)), 0.02)
    ledger = Ledger()
    ledger.apply(FetchResult([batch]), END)
    assert ledger.totals[(C, dims(MINI), ("byok",))] == 0.02  # on /metrics, apart
    # Paid to the upstream provider on the user's own key: not this account's spend.
    assert ledger.daily_spend(C) == {D1: {dims(MINI): 0.1}}


def test_attribution_is_capped_so_a_poll_stays_bounded(
    env: Env, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import exporter.sources.providers.openrouter as openrouter

    monkeypatch.setattr(openrouter, "MAX_FILTERED_REPORTS", 1)
    env.members.mock(return_value=httpx.Response(200, json={
        "data": [{"id": "user_a", "email": "a@example.com"},
                 {"id": "user_b", "email": "b@example.com"}], "total_count": 2}))
    env.by_user = {"user_a": rows(1), "user_b": rows(3)}
    result = env.fetch(group_by=("model", "user"))
    users = [call.request.url.params.get("user_id") for call in env.activity.calls]
    assert users == [None, "user_a"]  # one filtered report, not one per member
    usage = batch_of(result, Dataset.USAGE)
    assert usage.days[D1][(R, Dims(model=SONNET, user_id="a@example.com"), ("",))] == 118.0
    assert usage.days[D1][(R, dims(MINI), ("",))] == 40.0  # user_b's: unattributed, counted
    assert "only the first 1 are attributed" in caplog.text
