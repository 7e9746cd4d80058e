"""Claude Code Analytics (Anthropic, opt-in): per-day report pages → exact Batch contents."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from exporter.config.schema import ConfigError, parse_config
from exporter.core.records import Dataset, Dims, Family, FetchResult
from exporter.sources.providers.anthropic import AnthropicProvider
from exporter.sources.providers.base import ProviderError, ProviderSettings
from tests import fetched

FIXTURES = Path(__file__).parent / "fixtures" / "claude_code"
KEY = "sk-ant-admin01-FAKE-cc-leak"
BASE = "https://api.anthropic.com"
CC_PATH = "/v1/organizations/usage_report/claude_code"
D1, D2 = 1772323200, 1772409600  # 2026-03-01, -02 00:00 UTC
END = D2 + 55_800  # poll at 2026-03-02 15:30 UTC
SONNET, HAIKU = "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"
DEV, BOT = "dev@example.com", "ci-review-bot"

TOK, COST = Family.CLAUDE_CODE_TOKENS, Family.CLAUDE_CODE_ESTIMATED_COST
SESS, LINES = Family.CLAUDE_CODE_SESSIONS, Family.CLAUDE_CODE_LINES
COMMITS, PRS = Family.CLAUDE_CODE_COMMITS, Family.CLAUDE_CODE_PULL_REQUESTS
TOOLS = Family.CLAUDE_CODE_TOOL_ACTIONS
EMPTY = {"data": [], "has_more": False, "next_page": None}
DATASETS = [Dataset.USAGE, Dataset.COST, Dataset.CLAUDE_CODE]  # the order they are read in
USAGE_PATH, COST_PATH = "/v1/organizations/usage_report/messages", "/v1/organizations/cost_report"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def tools(user: str, values: dict[tuple[str, str], float]) -> dict[Any, float]:
    return {(TOOLS, Dims(user_id=user), key): v for key, v in values.items() if v}


class Env:
    """Mocked Anthropic Admin API (empty messages/cost reports) plus the Claude Code report."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router
        self.observed: list[tuple[str, str]] = []
        self.slept: list[float] = []
        self.usage, self.cost = (
            router.get(path).mock(return_value=httpx.Response(200, json=EMPTY))
            for path in (USAGE_PATH, COST_PATH)
        )
        router.get("/v1/organizations/workspaces").mock(return_value=httpx.Response(
            200, json={"data": [], "has_more": False, "first_id": None, "last_id": None}))
        self.cc = router.get(CC_PATH).mock(side_effect=[
            httpx.Response(200, json=fixture("d1_page1")),
            httpx.Response(200, json=fixture("d1_page2")),
            httpx.Response(200, json=fixture("d2")),
        ])

    def provider(self, *, claude_code: bool = True, **settings: Any) -> AnthropicProvider:
        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)

        settings.setdefault("group_by", ("model", "user"))
        return AnthropicProvider(
            ProviderSettings(account="claude", api_key=lambda: KEY,
                             options={"claude_code": claude_code}, **settings),
            observe=lambda endpoint, code: self.observed.append((endpoint, code)),
            sleep=sleep, rng=lambda: 0.5,
        )

    def fetch(self, provider: AnthropicProvider | None = None, start: int = D1) -> FetchResult:
        async def go(provider: AnthropicProvider) -> FetchResult:
            try:
                return await provider.fetch(start, END)
            finally:
                await provider.aclose()

        return asyncio.run(go(provider or self.provider()))

    def fail(self, provider: AnthropicProvider | None = None) -> tuple[ProviderError, FetchResult]:
        """The error of the Claude Code dataset, the only one that failed, and the result."""
        result = self.fetch(provider)
        err = only_failure(result)
        assert list(result.failures) == [Dataset.CLAUDE_CODE]
        assert [(b.dataset, b.days) for b in result.batches] == [
            (Dataset.USAGE, {}), (Dataset.COST, {})]  # read all the same
        return err, result

    def set_day1(self, record: dict[str, Any]) -> None:
        body = {"data": [record], "has_more": False, "next_page": None}
        self.cc.mock(side_effect=[httpx.Response(200, json=body),
                                  httpx.Response(200, json=fixture("d2"))])


def only_failure(result: FetchResult) -> ProviderError:
    """The one error of the poll's failed dataset(s), never quoting the key."""
    return fetched.only_failure(result, KEY)


def page(*records: dict[str, Any]) -> httpx.Response:
    return httpx.Response(200, json={"data": list(records), "has_more": False, "next_page": None})


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


EXPECTED = {
    D1: {
        (SESS, Dims(user_id=DEV), ()): 4.0,
        (COMMITS, Dims(user_id=DEV), ()): 6.0,
        (PRS, Dims(user_id=DEV), ()): 1.0,
        (LINES, Dims(user_id=DEV), ("added",)): 812.0,
        (LINES, Dims(user_id=DEV), ("removed",)): 230.0,
        **tools(DEV, {("edit", "accepted"): 31, ("edit", "rejected"): 4,
                      ("multi_edit", "accepted"): 5, ("write", "accepted"): 7,
                      ("write", "rejected"): 1}),
        (TOK, Dims(model=SONNET, user_id=DEV), ("input", "api")): 52000.0,
        (TOK, Dims(model=SONNET, user_id=DEV), ("output", "api")): 18400.0,
        (TOK, Dims(model=SONNET, user_id=DEV), ("input_cache_read", "api")): 640000.0,
        (TOK, Dims(model=SONNET, user_id=DEV), ("input_cache_write", "api")): 21000.0,
        (COST, Dims(model=SONNET, user_id=DEV), ("api",)): 7.34,
        (TOK, Dims(model=HAIKU, user_id=DEV), ("input", "api")): 1000.0,
        (TOK, Dims(model=HAIKU, user_id=DEV), ("output", "api")): 200.0,
        (COST, Dims(model=HAIKU, user_id=DEV), ("api",)): 0.002,
        (SESS, Dims(user_id=BOT), ()): 2.0,
        (LINES, Dims(user_id=BOT), ("added",)): 10.0,
        **tools(BOT, {("edit", "accepted"): 3}),
        (TOK, Dims(model=HAIKU, user_id=BOT), ("input", "api")): 3000.0,
        (TOK, Dims(model=HAIKU, user_id=BOT), ("output", "api")): 800.0,
        (TOK, Dims(model=HAIKU, user_id=BOT), ("input_cache_read", "api")): 9000.0,
        (COST, Dims(model=HAIKU, user_id=BOT), ("api",)): 0.0115,
    },
    D2: {
        (SESS, Dims(user_id=DEV), ()): 1.0,
        (COMMITS, Dims(user_id=DEV), ()): 1.0,
        (LINES, Dims(user_id=DEV), ("added",)): 40.0,
        (LINES, Dims(user_id=DEV), ("removed",)): 12.0,
        **tools(DEV, {("edit", "accepted"): 2, ("edit", "rejected"): 1,
                      ("write", "accepted"): 1}),
        (TOK, Dims(model=SONNET, user_id=DEV), ("input", "subscription")): 100.0,
        (TOK, Dims(model=SONNET, user_id=DEV), ("output", "subscription")): 50.0,
        (TOK, Dims(model=SONNET, user_id=DEV), ("input_cache_read", "subscription")): 400.0,
        (TOK, Dims(model=SONNET, user_id=DEV), ("input_cache_write", "subscription")): 30.0,
        (COST, Dims(model=SONNET, user_id=DEV), ("subscription",)): 0.125,
    },
}


def test_fetch_returns_exact_batch_in_its_own_families(env: Env) -> None:
    result = env.fetch()
    usage, cost, claude_code = result.batches
    assert (claude_code.dataset, claude_code.start, claude_code.end) == (
        Dataset.CLAUDE_CODE, D1, END)
    assert claude_code.watermark == float(END - 3600)  # the report lags about an hour
    assert claude_code.days == EXPECTED
    # No double count: nothing of the Claude Code report lands in the API token/cost families.
    assert usage.days == {} and cost.days == {}
    families = {key[0] for day in claude_code.days.values() for key in day}
    assert Family.TOKENS not in families and Family.BILLED_COST not in families


def test_one_request_series_per_day_with_pagination(env: Env) -> None:
    env.fetch()
    params = [list(call.request.url.params.multi_items()) for call in env.cc.calls]
    assert params == [
        [("starting_at", "2026-03-01"), ("limit", "1000")],
        [("starting_at", "2026-03-01"), ("limit", "1000"), ("page", "page_Y2M6MQ==")],
        [("starting_at", "2026-03-02"), ("limit", "1000")],
    ]
    headers = env.cc.calls[0].request.headers
    assert (headers["x-api-key"], headers["anthropic-version"]) == (KEY, "2023-06-01")
    assert env.observed[-3:] == [(CC_PATH, "200")] * 3


def test_steady_state_poll_reads_only_the_window_days(env: Env) -> None:
    env.cc.mock(side_effect=[httpx.Response(200, json=fixture("d2"))])
    _, _, claude_code = env.fetch(start=D2 + 3600).batches  # last success - settle window
    assert [call.request.url.params["starting_at"] for call in env.cc.calls] == ["2026-03-02"]
    assert claude_code.days == {D2: EXPECTED[D2]}


def test_disabled_by_default(env: Env) -> None:
    result = env.fetch(env.provider(claude_code=False))
    assert len(result.batches) == 2
    assert env.cc.call_count == 0


def test_without_user_and_model_grouping(env: Env) -> None:
    _, _, claude_code = env.fetch(env.provider(group_by=("project",))).batches
    assert claude_code.days[D1][(SESS, Dims(), ())] == 6.0
    assert claude_code.days[D1][(TOK, Dims(), ("input", "api"))] == 56000.0
    assert claude_code.days[D1][(COST, Dims(), ("api",))] == 7.3535
    assert claude_code.days[D2][(COST, Dims(), ("subscription",))] == 0.125
    assert all(key[1] == Dims() for day in claude_code.days.values() for key in day)


def test_model_without_user_grouping(env: Env) -> None:
    _, _, claude_code = env.fetch(env.provider(group_by=("model",))).batches
    assert claude_code.days[D1][(TOK, Dims(model=HAIKU), ("input", "api"))] == 4000.0
    assert claude_code.days[D1][(COST, Dims(model=HAIKU), ("api",))] == 0.0135


def record(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = fixture("d1_page2")["data"][0]
    row.update(changes)
    return row


BAD_RECORDS = [
    (record(date="2026-03-05T00:00:00Z"), "record dated '2026-03-05T00:00:00Z'"),
    (record(date="yesterday"), "bad timestamp"),
    (record(actor={"type": "robot"}), "unknown actor type 'robot'"),
    (record(actor={"type": "api_actor"}), "actor 'api_key_name' missing"),
    (record(core_metrics=None), "'core_metrics' is not an object"),
    (record(core_metrics={"num_sessions": -1}), "'num_sessions' not a non-negative integer"),
    (record(model_breakdown=[{"model": HAIKU, "tokens": {"input": 1}}]), "'cache_read' missing"),
    (record(model_breakdown=[{"model": HAIKU, "tokens": {
        "input": 1, "output": 1, "cache_read": 0, "cache_creation": 0},
        "estimated_cost": {"currency": "EUR", "amount": 1}}]), "unsupported currency 'EUR'"),
    (record(tool_actions={"edit_tool": 3}), "'edit_tool' is not an object"),
]


@pytest.mark.parametrize("row, message", BAD_RECORDS)
def test_a_bad_record_is_skipped_and_counted(env: Env, row: dict[str, Any], message: str) -> None:
    # The bot's record of day 1 (the second page) is malformed: the developer's records stay.
    env.cc.mock(side_effect=[httpx.Response(200, json=fixture("d1_page1")), page(row),
                             httpx.Response(200, json=fixture("d2"))])
    result = env.fetch()
    assert result.failures == {}
    _, _, claude_code = result.batches
    assert claude_code.skipped_rows == 1
    assert claude_code.skipped_error.startswith(f"GET {CC_PATH}: ")
    assert message in claude_code.skipped_error
    developer = {k: v for k, v in EXPECTED[D1].items() if k[1].user_id == DEV}
    assert claude_code.days == {D1: developer, D2: EXPECTED[D2]}  # nothing of the bot's
    assert claude_code.watermark == float(END - 3600)


def test_every_record_malformed_fails_only_the_claude_code_dataset(env: Env) -> None:
    robot = {"type": "robot"}
    env.cc.mock(side_effect=[
        page({**fixture("d1_page1")["data"][0], "actor": robot}),
        page(record(actor=robot)),
        page({**fixture("d2")["data"][0], "actor": robot}),
    ])
    err, _ = env.fail()
    assert (err.reason, str(err)) == (
        "parse", f"every row is malformed (GET {CC_PATH}: unknown actor type 'robot')")


def test_bare_date_is_accepted(env: Env) -> None:
    env.set_day1(record(date="2026-03-01"))
    _, _, claude_code = env.fetch().batches
    assert claude_code.days[D1][(SESS, Dims(user_id=BOT), ())] == 2.0


def test_a_failed_day_fails_the_whole_dataset(env: Env) -> None:
    env.cc.mock(side_effect=[
        httpx.Response(200, json=fixture("d1_page1")),
        httpx.Response(200, json=fixture("d1_page2")),
        *[httpx.Response(500, json={"type": "error", "error": {
            "type": "api_error", "message": "Internal server error"}})] * 4,
    ])
    err, _ = env.fail()  # day 1 was read, but a dataset is published complete or not at all
    assert (err.reason, str(err)) == ("http_5xx", f"GET {CC_PATH}: HTTP 500: Internal server error")
    assert env.slept == [0.5, 1.0, 2.0]


def test_permission_error_is_auth(env: Env) -> None:
    env.cc.mock(side_effect=None, return_value=httpx.Response(403, json={
        "type": "error", "error": {"type": "permission_error", "message": "no analytics"}}))
    err, _ = env.fail()  # the messages usage and cost reports are still published
    assert (err.reason, str(err)) == ("auth", f"GET {CC_PATH}: HTTP 403: no analytics")
    assert env.cc.call_count == 1


def test_has_more_without_cursor_is_parse(env: Env) -> None:
    env.cc.mock(side_effect=None, return_value=httpx.Response(
        200, json={"data": [], "has_more": True, "next_page": None}))
    err, _ = env.fail()
    assert (err.reason, str(err)) == ("parse", f"GET {CC_PATH}: has_more without a next_page")


def test_a_long_rate_limit_on_the_first_dataset_skips_the_claude_code_report(env: Env) -> None:
    env.usage.mock(return_value=httpx.Response(429, headers={"retry-after": "3600"}))
    result = env.fetch()
    assert result.batches == []
    assert list(result.failures) == DATASETS
    err = only_failure(result)
    assert (err.reason, err.retry_after) == ("rate_limited", 3600.0)
    assert (env.cost.call_count, env.cc.call_count) == (0, 0)
    assert env.slept == []


def test_a_connection_failure_on_the_cost_report_skips_the_claude_code_report(env: Env) -> None:
    env.cost.mock(side_effect=httpx.ConnectError("connection refused"))
    result = env.fetch()
    assert [(b.dataset, b.days) for b in result.batches] == [(Dataset.USAGE, {})]
    assert list(result.failures) == [Dataset.COST, Dataset.CLAUDE_CODE]
    assert str(only_failure(result)) == f"GET {COST_PATH}: ConnectError: connection refused"
    assert env.cc.call_count == 0


def test_config_option() -> None:
    base = "accounts:\n  - name: a\n    provider: anthropic\n    api_key: ${K}\n"
    on = parse_config(base + "    options: {claude_code: true}\n", env={"K": "x"})
    assert on.accounts[0].options == AnthropicProvider.Options(claude_code=True)
    off = parse_config(base, env={"K": "x"})
    assert off.accounts[0].options == AnthropicProvider.Options(claude_code=False)
    with pytest.raises(ConfigError) as info:
        parse_config(base + "    options: {claude_cod: true}\n", env={"K": "x"})
    assert info.value.problems == [
        "accounts[0]: options.claude_cod: Extra inputs are not permitted"]
