"""Cursor Admin API: exact batches from documented responses, pacing, limits, failures."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from exporter.core.records import Dataset, Dims, Family, FetchResult, TokenType
from exporter.sources.providers.base import ProviderSettings
from exporter.sources.providers.cursor import REQUEST_SPACING, CursorProvider
from tests import fetched
from tests.fetched import batch_of

FIXTURES = Path(__file__).parent / "fixtures" / "cursor"
KEY = "key_cursor-FAKE-admin-do-not-leak-7"
BASE = "https://api.cursor.com"
D1, D2 = 1767225600, 1767312000  # 2026-01-01, -02 00:00 UTC
END = D2 + 43_200  # poll at 2026-01-02 12:00 UTC
T, R, C = Family.TOKENS, Family.REQUESTS, Family.BILLED_COST
SONNET, GPT = "claude-4.5-sonnet", "gpt-5"
DEV, OPS = "dev@example.com", "ops@example.com"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def tokens(dims: Dims, input_: int, output: int, read: int, write: int) -> dict[Any, float]:
    values = {TokenType.INPUT: input_, TokenType.OUTPUT: output,
              TokenType.INPUT_CACHE_READ: read, TokenType.INPUT_CACHE_WRITE: write}
    return {(T, dims, (t, "text", "default")): float(v) for t, v in values.items() if v}


class Env:
    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router
        self.observed: list[tuple[str, str]] = []
        self.slept: list[float] = []
        self.now = 1000.0
        self.events = router.post("/teams/filtered-usage-events").mock(side_effect=[
            httpx.Response(200, json=fixture("usage_events_page1")),
            httpx.Response(200, json=fixture("usage_events_page2")),
        ])
        self.spend = router.post("/teams/spend").respond(json=fixture("spend"))

    def provider(self, **settings: Any) -> CursorProvider:
        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)
            self.now += seconds

        return CursorProvider(
            ProviderSettings(account="team", api_key=lambda: KEY, **settings),
            observe=lambda endpoint, code: self.observed.append((endpoint, code)),
            sleep=sleep, rng=lambda: 0.5, clock=lambda: self.now,
        )

    def fetch(self, provider: CursorProvider | None = None) -> FetchResult:
        async def run(p: CursorProvider) -> FetchResult:
            try:
                return await p.fetch(D1, END)
            finally:
                await p.aclose()

        return asyncio.run(run(provider or self.provider()))


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


def test_usage_events_summed_per_day_and_model(env: Env) -> None:
    result = env.fetch(env.provider(group_by=("model",)))
    assert result.failures == {}
    usage = batch_of(result, Dataset.USAGE)
    sonnet, gpt, auto = Dims(model=SONNET), Dims(model=GPT), Dims(model="auto")
    assert usage.days == {
        D1: {
            **tokens(sonnet, 1300, 350, 4000, 500),
            **tokens(gpt, 800, 200, 1000, 0),
            (R, sonnet, ("default",)): 2.0,
            (R, gpt, ("default",)): 1.0,
            # Charged cents summed exactly: 1.7025 + "0.105" (a string) = 1.8075 cents.
            (C, sonnet, ("usage_based",)): 0.018075,
        },
        D2: {(R, auto, ("default",)): 1.0},  # an event without token usage is still a request
    }
    assert (usage.start, usage.end, usage.watermark) == (D1, END, float(END))
    assert (usage.skipped_rows, usage.skipped_error) == (0, "")
    # Without per-user grouping there are no member limits to read.
    assert [b.dataset for b in result.batches] == [Dataset.USAGE]
    assert env.spend.call_count == 0


def test_requests_basic_auth_window_and_paging(env: Env) -> None:
    env.fetch()
    first, second = (json.loads(call.request.content) for call in env.events.calls)
    # endDate is inclusive, in milliseconds; pages are 1-based, 1000 events at most.
    assert first == {"startDate": D1 * 1000, "endDate": END * 1000 - 1, "pageSize": 1000,
                     "page": 1}
    assert second == {**first, "page": 2}
    request = env.events.calls[0].request
    assert request.headers["authorization"] == "Basic " + base64.b64encode(
        f"{KEY}:".encode()).decode()
    assert request.headers["content-type"] == "application/json"
    assert env.observed == [("/teams/filtered-usage-events", "200")] * 2


def test_pages_of_one_endpoint_are_spaced_for_the_rate_limit(env: Env) -> None:
    env.fetch()
    # 20 requests a minute per endpoint: the second page waits the rest of 3 seconds (the
    # mocked clock does not move between the two requests).
    assert env.slept == [REQUEST_SPACING]


def test_per_user_grouping_labels_users_and_reads_their_limits(env: Env) -> None:
    result = env.fetch(env.provider(group_by=("model", "user")))
    usage = batch_of(result, Dataset.USAGE)
    assert usage.days[D1][C, Dims(model=SONNET, user_id=DEV), ("usage_based",)] == 0.017025
    assert usage.days[D1][C, Dims(model=SONNET, user_id=OPS), ("usage_based",)] == 0.00105
    limits = batch_of(result, Dataset.LIMITS)
    hard = ("hard", "month")
    assert limits.gauges == {
        # The override where set, else the team's per-user limit; no limit: no series.
        (Family.PROVIDER_LIMIT, Dims(user_id=DEV), hard): 50.0,
        (Family.PROVIDER_LIMIT_SPEND, Dims(user_id=DEV), hard): 42.5,
        (Family.PROVIDER_LIMIT_ENFORCING, Dims(user_id=DEV), hard): 0.0,
        (Family.PROVIDER_LIMIT, Dims(user_id=OPS), hard): 20.0,
        (Family.PROVIDER_LIMIT_SPEND, Dims(user_id=OPS), hard): 20.005,
        (Family.PROVIDER_LIMIT_ENFORCING, Dims(user_id=OPS), hard): 1.0,  # at its limit
    }
    assert json.loads(env.spend.calls[0].request.content) == {"pageSize": 100, "page": 1}


def test_spend_pages_follow_total_pages(env: Env) -> None:
    page1 = {**fixture("spend"), "totalPages": 2}
    page2 = {**fixture("spend"), "teamMemberSpend": [], "totalPages": 2}
    env.spend.mock(side_effect=[httpx.Response(200, json=page1), httpx.Response(200, json=page2)])
    env.fetch(env.provider(group_by=("user",)))
    assert [json.loads(c.request.content)["page"] for c in env.spend.calls] == [1, 2]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"timestamp": "yesterday"}, "'timestamp' is not epoch milliseconds"),
        ({"timestamp": "9" * 5000}, "'timestamp' is not epoch milliseconds"),
        ({"timestamp": "²"}, "'timestamp' is not epoch milliseconds"),
        ({"chargedCents": -5}, "'chargedCents' is negative (-5)"),
        ({"tokenUsage": {"inputTokens": -1}}, "'inputTokens' not a non-negative integer (-1)"),
        ({"tokenUsage": "many"}, "'tokenUsage' is not an object"),
    ],
)
def test_a_malformed_event_is_left_out_and_counted(
    env: Env, change: dict[str, Any], message: str
) -> None:
    page = fixture("usage_events_page2")
    page["usageEvents"].append({**page["usageEvents"][0], **change})
    env.events.mock(side_effect=[httpx.Response(200, json=fixture("usage_events_page1")),
                                 httpx.Response(200, json=page)])
    usage = batch_of(env.fetch(env.provider(group_by=("model",))), Dataset.USAGE)
    assert (usage.skipped_rows, usage.skipped_error) == (
        1, f"POST /teams/filtered-usage-events: {message}")
    assert usage.days[D2] == {(R, Dims(model="auto"), ("default",)): 1.0}


def test_a_page_without_pagination_fails_the_usage(env: Env) -> None:
    env.events.mock(return_value=httpx.Response(200, json={"usageEvents": []}))
    result = env.fetch()
    err = fetched.only_failure(result, KEY)
    assert (err.reason, str(err)) == (
        "parse", "POST /teams/filtered-usage-events: no 'pagination' object")


def test_a_failing_spend_report_keeps_the_usage(env: Env) -> None:
    env.spend.mock(return_value=httpx.Response(
        403, json={"error": "Forbidden", "message": "not an admin key"}))
    result = env.fetch(env.provider(group_by=("user",)))
    assert list(result.failures) == [Dataset.LIMITS]
    assert batch_of(result, Dataset.USAGE).days


def test_a_rate_limit_is_honoured_and_the_key_never_echoed(env: Env) -> None:
    env.events.mock(side_effect=[
        httpx.Response(429, headers={"Retry-After": "7"},
                       json={"error": "Too Many Requests", "message": f"slow down {KEY}"}),
        httpx.Response(200, json=fixture("usage_events_page2")),
    ])
    result = env.fetch()
    assert result.failures == {}
    assert 7.0 in env.slept
    assert env.observed[0] == ("/teams/filtered-usage-events", "429")


def test_hourly_default_poll_interval() -> None:
    from exporter.config.schema import AccountConfig

    assert AccountConfig(name="c", provider="cursor", api_key="k").poll_interval == 3600.0
    assert AccountConfig(
        name="c", provider="cursor", api_key="k", poll_interval=600.0
    ).poll_interval == 600.0
