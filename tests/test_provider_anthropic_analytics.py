"""Claude Enterprise Analytics API (Anthropic, ``options: {api: analytics}``): report pages →
exact Batch contents, the per-bucket group cap, per-user cost, ranges and failures."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import respx

from exporter.config.schema import ConfigError, parse_config
from exporter.core.ledger import OVERFLOW
from exporter.core.records import Batch, Dataset, Dims, Family, FetchResult
from exporter.sources.providers.anthropic import AnthropicProvider
from exporter.sources.providers.base import ProviderSettings
from tests import fetched

KEY = "sk-ant-analytics-FAKE-leak"
BASE = "https://api.anthropic.com"
USAGE = "/v1/organizations/analytics/usage_report"
COST = "/v1/organizations/analytics/cost_report"
USERS = "/v1/organizations/analytics/user_cost_report"
D1, D2 = 1796083200, 1796169600  # 2026-12-01, -02 00:00 UTC
END = D2 + 36_000  # poll at 2026-12-02 10:00 UTC
REFRESHED = "2026-12-02T08:00:00Z"
OPUS, HAIKU = "claude-opus-5", "claude-haiku-4-5"
ALICE, BOB = "user_01AliceSeat", "user_01BobSeat"
TOKENS, BILLED, TOOLS = Family.TOKENS, Family.BILLED_COST, Family.TOOL_CALLS


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def report(*buckets: tuple[int, list[dict[str, Any]]], more: str | None = None) -> httpx.Response:
    data = [
        {"starting_at": iso(day), "ending_at": iso(day + 86_400), "results": rows}
        for day, rows in buckets
    ]
    return httpx.Response(200, json={
        "data": data, "data_refreshed_at": REFRESHED, "has_more": more is not None,
        "next_page": more, "organization_id": "org_01Sim",
    })


def usage_row(model: str | None, uncached: int, output: int, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "uncached_input_tokens": uncached,
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 10},
        "cache_read_input_tokens": 100,
        "output_tokens": output,
        "server_tool_use": {"web_search_requests": 2},
        "requests": 3,
        "model": model, "product": None, "context_window": "0-200k",
        "inference_geo": "global", "speed": "standard", "rbac_group_id": None,
    }
    row.update(extra)
    return row


def cost_row(cents: str, product: str | None, model: str | None, cost_type: str | None = "tokens",
             **extra: Any) -> dict[str, Any]:
    return {
        "amount": cents, "list_amount": cents, "currency": "USD", "product": product,
        "model": model, "cost_type": cost_type, "token_type": None, "context_window": None,
        "inference_geo": None, "speed": None, "rbac_group_id": None, "requests": None, **extra,
    }


def user_row(user: str, day: int, cents: str, product: str, model: str) -> dict[str, Any]:
    return {
        "actor": {"type": "user_actor", "user_id": user, "email_address": f"{user}@example.com",
                  "name": None, "deleted": False},
        "amount": cents, "list_amount": cents, "currency": "USD", "product": product,
        "model": model, "cost_type": "tokens", "token_type": None,
        "starting_at": iso(day), "ending_at": iso(day + 86_400), "requests": None,
    }


def provider(group_by: tuple[str, ...] = ("project", "model")) -> AnthropicProvider:
    async def sleep(seconds: float) -> None:
        pass

    return AnthropicProvider(
        ProviderSettings(account="enterprise", api_key=lambda: KEY, group_by=group_by,
                         options={"api": "analytics"}),
        observe=lambda endpoint, code: None, sleep=sleep, rng=lambda: 0.5,
    )


def fetch(group_by: tuple[str, ...] = ("project", "model"), start: int = D1,
          end: int = END) -> FetchResult:
    async def go() -> FetchResult:
        p = provider(group_by)
        try:
            return await p.fetch(start, end)
        finally:
            await p.aclose()

    return asyncio.run(go())


def days(batch: Batch) -> dict[int, dict[Any, float]]:
    return {day: {k: round(v, 9) for k, v in series.items()} for day, series in batch.days.items()}


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        yield mock


def test_usage_and_cost_are_read_with_the_documented_query(router: respx.MockRouter) -> None:
    usage = router.get(USAGE).mock(return_value=report(
        (D1, [usage_row(OPUS, 1000, 200, speed="fast", inference_geo="us")]),
        (D2, [usage_row(HAIKU, 50, 5)]),
    ))
    cost = router.get(COST).mock(return_value=report(
        (D1, [cost_row("1234.5", "claude_code", OPUS), cost_row("250", None, None, "web_search")]),
        (D2, [cost_row("0.25", "chat", HAIKU)]),
    ))
    result = fetch()
    assert result.failures == {}
    query = usage.calls[0].request.url.params
    assert query.get_list("group_by[]") == ["model", "context_window", "inference_geo", "speed"]
    assert (query["starting_at"], query["ending_at"]) == (iso(D1), iso(D2 + 86_400))
    assert (query["bucket_width"], query["limit"], query["beta"]) == ("1d", "31", "true")
    headers = usage.calls[0].request.headers
    assert headers["x-api-key"] == KEY and headers["anthropic-version"] == "2023-06-01"
    assert "anthropic-beta" not in headers  # no beta header is documented for these reports
    assert cost.calls[0].request.url.params.get_list("group_by[]") == [
        "product", "model", "cost_type"]
    usage_batch = fetched.batch_of(result, Dataset.ANALYTICS_USAGE)
    assert usage_batch.watermark == D2 + 8 * 3600  # data_refreshed_at, before the last bucket's end
    opus, haiku = Dims(model=OPUS), Dims(model=HAIKU)
    fast_us = ("standard", "fast", "us")
    assert days(usage_batch) == {
        D1: {
            (TOKENS, opus, ("input", "text", *fast_us)): 1000.0,
            (TOKENS, opus, ("input_cache_read", "text", *fast_us)): 100.0,
            (TOKENS, opus, ("input_cache_write", "text", *fast_us)): 10.0,
            (TOKENS, opus, ("output", "text", *fast_us)): 200.0,
            (TOOLS, opus, ("web_search",)): 2.0,
        },
        D2: {
            (TOKENS, haiku, ("input", "text", "standard")): 50.0,
            (TOKENS, haiku, ("input_cache_read", "text", "standard")): 100.0,
            (TOKENS, haiku, ("input_cache_write", "text", "standard")): 10.0,
            (TOKENS, haiku, ("output", "text", "standard")): 5.0,
            (TOOLS, haiku, ("web_search",)): 2.0,
        },
    }
    # Fractional cents to dollars; usage of no product is "other".
    assert days(fetched.batch_of(result, Dataset.ANALYTICS_COST)) == {
        D1: {(BILLED, opus, ("claude_code", "tokens")): 12.345,
             (BILLED, Dims(), ("other", "web_search")): 2.5},
        D2: {(BILLED, haiku, ("chat", "tokens")): 0.0025},
    }


def test_a_bucket_at_the_group_cap_gets_the_rest_of_its_total(router: respx.MockRouter) -> None:
    # 100 groups of 1 cent: the cap. The ungrouped total (150 cents) says 50 are missing.
    capped = [cost_row("1", "chat", f"model-{i}", None) for i in range(100)]
    router.get(COST).mock(side_effect=lambda request: (
        report((D1, capped), (D2, [cost_row("7", "chat", HAIKU, None)]))
        if request.url.params.get_list("group_by[]")
        else report((D1, [cost_row("150", None, None, None)]),
                    (D2, [cost_row("7", None, None, None)]))
    ))
    router.get(USAGE).mock(return_value=report((D1, []), (D2, [])))
    result = fetch()
    d1 = days(fetched.batch_of(result, Dataset.ANALYTICS_COST))[D1]
    assert len(d1) == 101
    assert d1[(BILLED, Dims(model=OVERFLOW), (OVERFLOW,))] == 0.5
    assert sum(d1.values()) == pytest.approx(1.5)  # the day's whole total, no more


def test_usage_at_the_group_cap_books_the_missing_tokens_apart(router: respx.MockRouter) -> None:
    capped = [usage_row(f"model-{i}", 10, 1) for i in range(100)]
    total = usage_row(None, 1500, 120, context_window=None, inference_geo=None, speed=None)
    total["cache_read_input_tokens"] = 10_000
    total["cache_creation"] = {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 1000}
    total["server_tool_use"] = {"web_search_requests": 200}
    router.get(USAGE).mock(side_effect=lambda request: (
        report((D1, capped)) if request.url.params.get_list("group_by[]") else report((D1, [total]))
    ))
    router.get(COST).mock(return_value=report((D1, [])))
    d1 = days(fetched.batch_of(fetch(end=D1 + 80_000), Dataset.ANALYTICS_USAGE))[D1]
    rest = Dims(model=OVERFLOW)  # model "(other)": no price, counted as unpriced tokens
    assert d1[(TOKENS, rest, ("input", "text", "standard"))] == 500.0
    assert d1[(TOKENS, rest, ("output", "text", "standard"))] == 20.0
    assert (TOKENS, rest, ("input_cache_read", "text", "standard")) not in d1  # 100 x 100: none
    assert (TOOLS, rest, ("web_search",)) not in d1


def by_day(pages: dict[int, list[httpx.Response]]) -> Any:
    """A side effect answering the per-user report's one-day requests, page after page."""
    def answer(request: httpx.Request) -> httpx.Response:
        day = int(datetime.fromisoformat(request.url.params["starting_at"]).timestamp())
        return pages[day].pop(0)
    return answer


def users_page(*rows: dict[str, Any], more: str | None = None) -> httpx.Response:
    return httpx.Response(200, json={"data": list(rows), "has_more": more is not None,
                                     "next_page": more})


def test_per_user_cost_is_moved_out_of_the_organizations_rows(router: respx.MockRouter) -> None:
    router.get(USAGE).mock(return_value=report((D1, []), (D2, [])))
    cost = router.get(COST).mock(return_value=report(
        (D1, [cost_row("1000", "claude_code", OPUS), cost_row("300", None, OPUS)]),
        (D2, [cost_row("50", "chat", HAIKU)]),
    ))
    users = router.get(USERS).mock(side_effect=by_day({
        D1: [users_page(user_row(ALICE, D1, "600", "claude_code", OPUS), more="p2"),
             users_page(user_row(BOB, D1, "400", "claude_code", OPUS))],
        D2: [users_page(user_row(BOB, D2, "50", "chat", HAIKU))],
    }))
    result = fetch(("model", "user"))
    assert result.failures == {}
    assert cost.calls[0].request.url.params.get_list("group_by[]") == [
        "product", "model", "cost_type"]
    # One request (series) per day; the same grouping as the organization's report.
    query = users.calls[0].request.url.params
    assert query.get_list("group_by[]") == ["product", "model", "cost_type"]
    assert (query["starting_at"], query["ending_at"]) == (iso(D1), iso(D2))
    assert (query["bucket_width"], query["limit"]) == ("1d", "1000")
    assert users.calls[1].request.url.params["page"] == "p2"
    assert users.call_count == 3
    assert days(fetched.batch_of(result, Dataset.ANALYTICS_COST)) == {
        D1: {
            (BILLED, Dims(model=OPUS, user_id=ALICE), ("claude_code", "tokens")): 6.0,
            (BILLED, Dims(model=OPUS, user_id=BOB), ("claude_code", "tokens")): 4.0,
            (BILLED, Dims(model=OPUS), ("other", "tokens")): 3.0,  # API keys: no seat user's
        },
        D2: {(BILLED, Dims(model=HAIKU, user_id=BOB), ("chat", "tokens")): 0.5},
    }


def test_a_users_cost_beyond_the_cap_comes_out_of_the_rest(router: respx.MockRouter) -> None:
    capped = [cost_row("1", "chat", f"model-{i}") for i in range(100)]
    router.get(COST).mock(side_effect=lambda request: (
        report((D1, capped)) if request.url.params.get_list("group_by[]")
        else report((D1, [cost_row("150", None, None, None)]))
    ))
    router.get(USAGE).mock(return_value=report((D1, [])))
    router.get(USERS).mock(side_effect=by_day({
        D1: [users_page(user_row(ALICE, D1, "30", "chat", OPUS))],  # beyond the cap
    }))
    d1 = days(fetched.batch_of(fetch(("model", "user"), end=D1 + 80_000),
                               Dataset.ANALYTICS_COST))[D1]
    assert d1[(BILLED, Dims(model=OPUS, user_id=ALICE), ("chat", "tokens"))] == 0.3
    assert d1[(BILLED, Dims(model=OVERFLOW), (OVERFLOW,))] == 0.2  # 1.50 - 1.00 - 0.30
    assert sum(d1.values()) == pytest.approx(1.5)


def test_a_range_longer_than_31_days_is_read_in_parts_from_2026(router: respx.MockRouter) -> None:
    usage = router.get(USAGE).mock(return_value=report())
    router.get(COST).mock(return_value=report())
    start = 1766620800  # 2025-12-25: before anything the API serves
    fetch(start=start, end=1770292800)  # 2026-02-05 12:00
    ranges = [(c.request.url.params["starting_at"], c.request.url.params["ending_at"])
              for c in usage.calls]
    assert ranges == [("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"),
                      ("2026-02-01T00:00:00Z", "2026-02-06T00:00:00Z")]


def test_a_failing_cost_report_keeps_the_usage(router: respx.MockRouter) -> None:
    router.get(USAGE).mock(return_value=report((D1, [usage_row(OPUS, 1, 1)])))
    router.get(COST).mock(return_value=httpx.Response(403, json={
        "type": "error", "error": {"type": "permission_error", "message": "read:analytics"}}))
    result = fetch()
    assert list(result.failures) == [Dataset.ANALYTICS_COST]
    assert fetched.only_failure(result, KEY).reason == "auth"
    assert fetched.batch_of(result, Dataset.ANALYTICS_USAGE).days


@pytest.mark.parametrize(("row", "message"), [
    (cost_row("12", "chat", OPUS, currency="EUR"), "unsupported currency 'EUR'"),
    (cost_row("twelve", "chat", OPUS), "amount 'twelve' is not a number"),
    (cost_row("12", 7, OPUS), "'product' is not a string"),
])
def test_a_bad_cost_row_is_skipped_and_counted(
    router: respx.MockRouter, row: dict[str, Any], message: str
) -> None:
    router.get(USAGE).mock(return_value=report())
    router.get(COST).mock(return_value=report((D1, [row, cost_row("100", "chat", OPUS)])))
    batch = fetched.batch_of(fetch(), Dataset.ANALYTICS_COST)
    assert days(batch) == {D1: {(BILLED, Dims(model=OPUS), ("chat", "tokens")): 1.0}}
    assert batch.skipped_rows == 1 and message in batch.skipped_error


def test_a_user_row_without_a_user_or_of_another_day_is_skipped(
    router: respx.MockRouter,
) -> None:
    router.get(USAGE).mock(return_value=report())
    router.get(COST).mock(return_value=report((D1, [cost_row("100", "chat", OPUS)])))
    nobody = user_row(ALICE, D1, "40", "chat", OPUS)
    nobody["actor"] = {"type": "user_actor", "user_id": None, "deleted": True}
    router.get(USERS).mock(side_effect=by_day({
        D1: [users_page(nobody)],
        D2: [users_page(user_row(BOB, D1, "40", "chat", OPUS))],  # D1's row, asked for D2
    }))
    batch = fetched.batch_of(fetch(("model", "user")), Dataset.ANALYTICS_COST)
    assert days(batch) == {D1: {(BILLED, Dims(model=OPUS), ("chat", "tokens")): 1.0}}  # whole
    assert batch.skipped_rows == 2 and "no user_id" in batch.skipped_error


def test_without_a_refresh_time_the_watermark_does_not_move(router: respx.MockRouter) -> None:
    stalled = report((D1, [usage_row(OPUS, 1, 1)]))
    body = stalled.json()
    body["data_refreshed_at"] = None  # no export covers the range
    router.get(USAGE).mock(return_value=httpx.Response(200, json=body))
    router.get(COST).mock(return_value=report((D1, [])))
    result = fetch()
    assert fetched.batch_of(result, Dataset.ANALYTICS_USAGE).watermark is None
    # The cost report's last bucket (D1) ends before its refresh time.
    assert fetched.batch_of(result, Dataset.ANALYTICS_COST).watermark == D2


def test_an_expired_cursor_reads_the_report_again(router: respx.MockRouter) -> None:
    gone = httpx.Response(410, json={"type": "error", "error": {
        "type": "invalid_request_error", "message": "page: the cursor has expired"}})
    usage = router.get(USAGE).mock(side_effect=[
        report((D1, [usage_row(OPUS, 5, 1)]), more="p2"), gone,
        report((D1, [usage_row(OPUS, 7, 1)]), more="p2"), report((D2, [usage_row(OPUS, 1, 1)])),
    ])
    router.get(COST).mock(return_value=report())
    result = fetch()
    assert usage.call_count == 4 and "page" not in usage.calls[2].request.url.params
    tokens = days(fetched.batch_of(result, Dataset.ANALYTICS_USAGE))
    assert tokens[D1][(TOKENS, Dims(model=OPUS), ("input", "text", "standard"))] == 7.0


def test_a_day_answered_twice_fails_the_dataset(router: respx.MockRouter) -> None:
    router.get(USAGE).mock(return_value=report((D1, [usage_row(OPUS, 1, 1)]),
                                               (D1, [usage_row(OPUS, 1, 1)])))
    router.get(COST).mock(return_value=report((D1, [])))
    result = fetch()
    assert list(result.failures) == [Dataset.ANALYTICS_USAGE]
    assert "twice" in str(fetched.only_failure(result, KEY))


def test_the_admin_only_claude_code_report_is_refused_with_the_analytics_api() -> None:
    text = """
accounts:
  - name: enterprise
    provider: anthropic
    api_key: sk-ant-analytics-FAKE
    options: {api: analytics, claude_code: true}
"""
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="t")
    (problem,) = [p for p in info.value.problems if "claude_code" in p]
    assert "options" in problem and "Analytics API" in problem
    with pytest.raises(ConfigError) as info:
        parse_config(text.replace("api: analytics, claude_code: true", "api: console"), source="t")
    assert any("options.api" in p for p in info.value.problems)
