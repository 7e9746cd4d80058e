"""Codex Analytics API of a ChatGPT workspace: credits, tokens, dollars only at a rate."""

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
from exporter.core.records import Dataset, Dims, Family, FetchResult, TokenType
from exporter.sources.providers.base import ProviderSettings
from exporter.sources.providers.chatgpt import ChatGPTProvider
from tests.fetched import batch_of, only_failure

FIXTURES = Path(__file__).parent / "fixtures" / "chatgpt"
KEY = "sk-admin-FAKE-chatgpt-do-not-leak-2"
BASE = "https://api.chatgpt.com"
USAGE = "/v1/analytics/codex/workspaces/ws-1/usage"
D1, D2 = 1767225600, 1767312000  # 2026-01-01, -02 00:00 UTC
END = D2 + 43_200
CR, T, C = Family.CREDITS_USED, Family.TOKENS, Family.BILLED_COST
DEV, DEF = "dev@example.com", "user-def"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def tok(dims: Dims, token_type: TokenType) -> Any:
    return (T, dims, (token_type, "text", "default"))


class Env:
    def __init__(self, router: respx.MockRouter) -> None:
        self.usage = router.get(USAGE).mock(side_effect=[
            httpx.Response(200, json=fixture("codex_usage_page1")),
            httpx.Response(200, json=fixture("codex_usage_page2")),
        ])

    def answer(self, *rows: dict[str, Any]) -> None:
        self.usage.side_effect = None
        self.usage.return_value = httpx.Response(200, json={
            "object": "page", "data": list(rows), "has_more": False, "next_page": None})

    def fetch(self, group_by: tuple[str, ...] = ("model", "user"), **options: Any) -> FetchResult:
        provider = ChatGPTProvider(
            ProviderSettings(account="ws", api_key=lambda: KEY, group_by=group_by,
                             options={"workspace_id": "ws-1", **options}),
            observe=lambda endpoint, code: None, rng=lambda: 0.5,
        )

        async def run() -> FetchResult:
            try:
                return await provider.fetch(D1, END)
            finally:
                await provider.aclose()

        return asyncio.run(run())


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


def test_credits_and_tokens_per_user_day_and_model(env: Env) -> None:
    result = env.fetch()
    assert result.failures == {}
    codex = batch_of(result, Dataset.CODEX)
    gpt, dev = Dims(model="gpt-5.5", user_id=DEV), Dims(user_id=DEV)
    assert codex.days == {
        D1: {
            (CR, gpt, ("codex",)): 187.5,
            tok(gpt, TokenType.INPUT): 910_000.0,
            tok(gpt, TokenType.INPUT_CACHE_READ): 5_200_000.0,
            tok(gpt, TokenType.OUTPUT): 84_000.0,
            # The totals' credits beyond the models listed have no model.
            (CR, dev, ("codex",)): 2.5,
        },
        # No models listed and no email: the user id, and the totals without a model.
        D2: {
            (CR, Dims(user_id=DEF), ("codex",)): 12.5,
            tok(Dims(user_id=DEF), TokenType.INPUT): 20_000.0,
            tok(Dims(user_id=DEF), TokenType.OUTPUT): 3000.0,
        },
    }
    assert codex.watermark == float(END)
    # No rate per credit: no dollars.
    assert not any(key[0] is C for day in codex.days.values() for key in day)


def test_the_requests(env: Env) -> None:
    env.fetch()
    first, second = (dict(c.request.url.params) for c in env.usage.calls)
    assert first == {"start_time": str(D1), "end_time": str(D2 + 86_400), "limit": "1000"}
    assert second == {**first, "page": "p1"}
    assert env.usage.calls[0].request.headers["authorization"] == f"Bearer {KEY}"


def test_dollars_at_the_configured_rate(env: Env) -> None:
    codex = batch_of(env.fetch(credit_usd_rate=0.04), Dataset.CODEX)
    assert codex.days[D1][C, Dims(model="gpt-5.5", user_id=DEV), ("credits",)] == 7.5
    assert codex.days[D2][C, Dims(user_id=DEF), ("credits",)] == 0.5


def test_workspace_rows_without_user_grouping(env: Env) -> None:
    row = fixture("codex_usage_page1")["data"][0]
    env.answer({**row, "user_id": None, "actor": None})
    codex = batch_of(env.fetch(group_by=()), Dataset.CODEX)
    assert dict(env.usage.calls[0].request.url.params)["group"] == "workspace"
    assert codex.days[D1][CR, Dims(), ("codex",)] == 190.0


@pytest.mark.parametrize(("change", "problem"), [
    ({"start_time": "2026-01-01"}, "is not Unix seconds"),
    ({"totals": None}, "without 'totals'"),
    ({"totals": {"credits": -1}}, "negative 'credits'"),
    ({"totals": {"credits": "x"}}, "not a number"),
    ({"actor": {"email": "a b@example.com", "user_id": "a b"}, "user_id": None}, "is not a name"),
])
def test_a_malformed_row_is_left_out(env: Env, change: dict[str, Any], problem: str) -> None:
    good = fixture("codex_usage_page2")["data"][0]
    env.answer({**fixture("codex_usage_page1")["data"][0], **change}, good)
    codex = batch_of(env.fetch(), Dataset.CODEX)
    assert D1 not in codex.days and D2 in codex.days
    assert codex.skipped_rows == 1 and problem in codex.skipped_error


def test_more_pages_without_a_new_token_fail(env: Env) -> None:
    page = fixture("codex_usage_page1")
    env.usage.side_effect = [httpx.Response(200, json=page)] * 2
    err = only_failure(env.fetch(), KEY)
    assert "without a new 'next_page'" in str(err)


def test_an_unscoped_key_is_refused_without_leaking_it(env: Env) -> None:
    env.usage.side_effect = None
    env.usage.return_value = httpx.Response(403, json={"detail": f"key {KEY} lacks the scope"})
    err = only_failure(env.fetch(), KEY)
    assert err.reason == "auth"


ACCOUNT = """
accounts:
  - name: ws
    provider: chatgpt
    api_key: k
{options}
"""


def test_config_defaults_and_validation() -> None:
    config = parse_config(ACCOUNT.format(options="    options: {workspace_id: ws-1}"), source="t")
    (account,) = config.accounts
    # Hourly, and five days re-read: a day's row is revised as late usage arrives.
    assert (account.poll_interval, account.settle_window) == (3600, 5 * 86_400)
    with pytest.raises(ConfigError, match=r"workspace_id"):
        parse_config(ACCOUNT.format(options=""), source="t")
    with pytest.raises(ConfigError, match=r"credit_usd_rate"):
        parse_config(ACCOUNT.format(
            options="    options: {workspace_id: ws-1, credit_usd_rate: -1}"), source="t")


def test_a_repeated_row_of_a_users_day_counts_once(env: Env) -> None:
    row = fixture("codex_usage_page1")["data"][0]
    env.answer(row, row)
    codex = batch_of(env.fetch(), Dataset.CODEX)
    assert codex.days[D1][CR, Dims(model="gpt-5.5", user_id=DEV), ("codex",)] == 187.5
    assert codex.skipped_rows == 1 and "repeated row" in codex.skipped_error


def test_models_beyond_the_totals_leave_the_totals(env: Env) -> None:
    row = fixture("codex_usage_page1")["data"][0]
    env.answer({**row, "models": row["models"] * 2})  # the same model listed twice: 375 > 190
    codex = batch_of(env.fetch(), Dataset.CODEX)
    assert codex.days[D1][CR, Dims(user_id=DEV), ("codex",)] == 190.0
    assert not any(key[1].model for key in codex.days[D1])


@pytest.mark.parametrize("times", [
    {"end_time": 1767225600 + 7 * 86_400},  # a week's bucket
    {"start_time": 1767225600 - 3600, "end_time": 1767225600 + 82_800},  # not a UTC day
])
def test_a_row_that_is_not_one_utc_day_is_left_out(env: Env, times: dict[str, int]) -> None:
    env.answer({**fixture("codex_usage_page1")["data"][0], **times},
               fixture("codex_usage_page2")["data"][0])
    codex = batch_of(env.fetch(), Dataset.CODEX)
    assert list(codex.days) == [D2]
    assert "not one UTC day" in codex.skipped_error


def test_an_email_that_is_no_plain_name_falls_back_to_the_user_id(env: Env) -> None:
    row = fixture("codex_usage_page1")["data"][0]
    env.answer({**row, "actor": {"user_id": "user-abc", "email": "josé@example.com"}})
    codex = batch_of(env.fetch(), Dataset.CODEX)
    assert {key[1].user_id for key in codex.days[D1]} == {"user-abc"}


def test_a_page_token_no_request_can_carry_fails_the_dataset(env: Env) -> None:
    page = {**fixture("codex_usage_page1"), "next_page": "p" * 600}
    env.usage.side_effect = [httpx.Response(200, json=page)]
    err = only_failure(env.fetch(), KEY)
    assert err.reason == "parse" and "without a new 'next_page'" in str(err)
