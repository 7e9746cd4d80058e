"""Fireworks billing API: exact batches from documented shapes, Money, paging, failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import respx

from exporter.config.schema import ConfigError, parse_config
from exporter.core.records import DAY, Dataset, Dims, Family, FetchResult, TokenType
from exporter.sources.providers.base import ProviderSettings
from exporter.sources.providers.fireworks import FireworksProvider, google_money
from tests.fetched import batch_of, only_failure

FIXTURES = Path(__file__).parent / "fixtures" / "fireworks"
KEY = "fw_FAKE-key-do-not-leak-3"
BASE = "https://api.fireworks.ai"
COSTS = "/v1/accounts/acme-ai/usageCosts:query"
USAGE = "/v1/accounts/acme-ai/billingUsage"
D1, D2 = 1767225600, 1767312000  # 2026-01-01, -02 00:00 UTC
END = D2 + 43_200  # poll at 2026-01-02 12:00 UTC
C, T = Family.BILLED_COST, Family.TOKENS
DEEPSEEK = "accounts/fireworks/models/deepseek-v3p2"
KIMI = "accounts/fireworks/models/kimi-k2p6"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def row(day: str, subtotal: dict[str, Any], **dimensions: Any) -> dict[str, Any]:
    return {"dimensions": {"startTime": f"{day}T00:00:00Z", **dimensions}, "subtotal": subtotal}


class Env:
    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router
        self.observed: list[tuple[str, str]] = []
        self.costs = router.post(COSTS).mock(side_effect=[
            httpx.Response(200, json=fixture("usage_costs_page1")),
            httpx.Response(200, json=fixture("usage_costs_page2")),
        ])
        self.usage = router.get(USAGE).respond(json=fixture("billing_usage"))

    def provider(self, **settings: Any) -> FireworksProvider:
        options = settings.pop("options", {"account_id": "acme-ai"})
        return FireworksProvider(
            ProviderSettings(account="fw", api_key=lambda: KEY, options=options, **settings),
            observe=lambda endpoint, code: self.observed.append((endpoint, code)),
            rng=lambda: 0.5,
        )

    def fetch(self, provider: FireworksProvider | None = None, start: int = D1,
              end: int = END) -> FetchResult:
        async def run(p: FireworksProvider) -> FetchResult:
            try:
                return await p.fetch(start, end)
            finally:
                await p.aclose()

        return asyncio.run(run(provider or self.provider()))

    def costs_answer(self, *rows: dict[str, Any], **extra: Any) -> None:
        self.costs.side_effect = None
        self.costs.return_value = httpx.Response(200, json={"rows": list(rows), **extra})


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


def test_costs_per_day_and_model_across_pages(env: Env) -> None:
    result = env.fetch()
    assert result.failures == {}
    cost = batch_of(result, Dataset.COST)
    usage = ("usage",)
    assert cost.days == {
        D1: {(C, Dims(model=DEEPSEEK), usage): 1.25, (C, Dims(model=KIMI), usage): 0.04},
        # A cost Fireworks could not attribute to a model is the account's, without one.
        D2: {(C, Dims(model=DEEPSEEK), usage): 1.0, (C, Dims(), usage): 0.75},
    }
    # evaluationTime: the costs are complete up to 11:00.
    assert (cost.start, cost.end, cost.watermark) == (D1, END, float(D2 + 39_600))
    assert cost.skipped_rows == 0


def test_costs_request_body_and_paging(env: Env) -> None:
    env.fetch()
    first, second = (json.loads(call.request.content) for call in env.costs.calls)
    # Today's whole day is asked for; the account scope needs an admin key.
    assert first == {"startTime": "2026-01-01T00:00:00Z", "endTime": "2026-01-03T00:00:00Z",
                     "scope": "ACCOUNT", "groupBy": ["DAY", "MODEL"], "pageSize": 1000}
    assert second == {**first, "pageToken": "cost-page-2"}
    request = env.costs.calls[0].request
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert env.observed == [
        ("/v1/accounts/{account_id}/usageCosts:query", "200"),
        ("/v1/accounts/{account_id}/usageCosts:query", "200"),
        ("/v1/accounts/{account_id}/billingUsage", "200"),
    ]


def test_serverless_tokens_per_day_model_and_api_key(env: Env) -> None:
    result = env.fetch(env.provider(group_by=("model", "api_key")))
    usage = batch_of(result, Dataset.USAGE)

    def tokens(dims: Dims, prompt: int, completion: int) -> dict[Any, float]:
        found = {(T, dims, (TokenType.INPUT, "text", "default")): float(prompt)}
        if completion:
            found[T, dims, (TokenType.OUTPUT, "text", "default")] = float(completion)
        return found

    prod, batch = Dims(model=DEEPSEEK, api_key_id="key_prod"), Dims(model=KIMI,
                                                                      api_key_id="key_batch")
    assert usage.days == {
        D1: tokens(prod, 1_200_000, 300_000),
        # int64 counts come as strings; an absent one is 0 (proto3 leaves zeros out).
        D2: {**tokens(batch, 500_000, 40_000), **tokens(prod, 7000, 0)},
    }
    assert usage.watermark == float(END)
    query = parse_qsl(str(env.usage.calls[0].request.url.query, "ascii"))
    # A repeated groupBy, as the gateway takes arrays.
    assert query == [("startTime", "2026-01-01T00:00:00Z"), ("endTime", "2026-01-03T00:00:00Z"),
                     ("usageType", "SERVERLESS"), ("timezone", "UTC"),
                     ("groupBy", "model_name"), ("groupBy", "api_key_id")]


def test_grouped_by_api_key_only(env: Env) -> None:
    env.costs_answer(row("2026-01-01", {"currencyCode": "USD", "units": "2", "nanos": 5},
                         apiKeyId="key_prod"))
    result = env.fetch(env.provider(group_by=("api_key",)))
    body = json.loads(env.costs.calls[0].request.content)
    assert body["groupBy"] == ["DAY", "API_KEY"]
    assert batch_of(result, Dataset.COST).days == {
        D1: {(C, Dims(api_key_id="key_prod"), ("usage",)): 2.000000005}
    }
    assert dict(parse_qsl(str(env.usage.calls[0].request.url.query, "ascii")))["groupBy"] == (
        "api_key_id"
    )


@pytest.mark.parametrize(
    ("money", "amount"),
    [
        ({"currencyCode": "USD", "units": "12", "nanos": 340000000}, "12.34"),
        ({"currencyCode": "usd", "nanos": 1}, "0.000000001"),
        ({"currencyCode": "USD", "units": 3}, "3"),  # a number is an int64 too
        ({"currencyCode": "USD", "units": "-1", "nanos": -500000000}, "-1.5"),
    ],
)
def test_google_money(money: dict[str, Any], amount: str) -> None:
    value, currency = google_money(money, "here")
    assert (str(value.normalize()), currency) == (str(type(value)(amount).normalize()), "USD")


@pytest.mark.parametrize(
    ("money", "problem"),
    [
        ({"currencyCode": "USD", "units": "1", "nanos": -5}, "differ in sign"),
        ({"currencyCode": "USD", "nanos": 1_000_000_000}, "'nanos'"),
        ({"currencyCode": "USD", "units": "1.5"}, "'units'"),
        ({"currencyCode": "USD", "units": "²"}, "'units'"),
        ({"currencyCode": "USD", "units": "9" * 19}, "implausibly large"),
        ({"units": "1"}, "currency"),
        ("1.00", "not a Money object"),
    ],
)
def test_a_malformed_subtotal_skips_its_row(env: Env, money: Any, problem: str) -> None:
    good = row("2026-01-02", {"currencyCode": "USD", "units": "4"}, model=DEEPSEEK)
    env.costs_answer(row("2026-01-01", money, model=KIMI), good)
    result = env.fetch()
    cost = batch_of(result, Dataset.COST)
    assert cost.days == {D2: {(C, Dims(model=DEEPSEEK), ("usage",)): 4.0}}
    assert cost.skipped_rows == 1
    assert problem in cost.skipped_error


def test_a_negative_subtotal_is_refused(env: Env) -> None:
    env.costs_answer(row("2026-01-01", {"currencyCode": "USD", "units": "-2"}, model=KIMI))
    err = only_failure(env.fetch(), KEY)
    assert err.reason == "parse"
    assert "negative subtotal" in str(err)


def test_another_currency_needs_a_rate(env: Env) -> None:
    eur = row("2026-01-01", {"currencyCode": "EUR", "units": "10"}, model=KIMI)
    env.costs_answer(eur)
    cost = batch_of(env.fetch(), Dataset.COST)
    assert cost.days == {D1: {(Family.UNCONVERTED_COST, Dims(model=KIMI), ("eur",)): 10.0}}
    env.costs_answer(eur)
    options = {"account_id": "acme-ai", "currency_rates": {"EUR": 1.1}}
    cost = batch_of(env.fetch(env.provider(options=options)), Dataset.COST)
    assert cost.days == {D1: {(C, Dims(model=KIMI), ("usage",)): 11.0}}


def test_empty_answers_are_no_usage(env: Env) -> None:
    # proto3 JSON leaves out empty lists: an idle account answers {}.
    env.costs.side_effect = None
    env.costs.return_value = httpx.Response(200, json={"subtotal": {"currencyCode": "USD"}})
    env.usage.return_value = httpx.Response(200, json={})
    result = env.fetch()
    assert result.failures == {}
    assert [(b.dataset, b.days, b.watermark) for b in result.batches] == [
        (Dataset.COST, {}, None), (Dataset.USAGE, {}, None)
    ]


def test_a_repeated_page_token_fails_costs_only(env: Env) -> None:
    page = fixture("usage_costs_page1")
    env.costs.side_effect = [httpx.Response(200, json=page)] * 2
    result = env.fetch()
    err = only_failure(result, KEY)
    assert err.reason == "parse" and "repeated 'nextPageToken'" in str(err)
    assert set(result.failures) == {Dataset.COST}
    assert batch_of(result, Dataset.USAGE).days


def test_ranges_over_31_days_are_split(env: Env) -> None:
    env.costs_answer()
    start = D1 - 40 * DAY
    env.fetch(start=start)
    bodies = [json.loads(call.request.content) for call in env.costs.calls]
    assert [(b["startTime"], b["endTime"]) for b in bodies] == [
        ("2025-11-22T00:00:00Z", "2025-12-23T00:00:00Z"),
        ("2025-12-23T00:00:00Z", "2026-01-03T00:00:00Z"),
    ]
    assert env.usage.call_count == 2


def test_rows_outside_the_window_are_left_out(env: Env) -> None:
    env.costs_answer(row("2025-12-31", {"currencyCode": "USD", "units": "9"}, model=KIMI),
                     row("2026-01-01", {"currencyCode": "USD", "units": "1"}, model=KIMI))
    assert batch_of(env.fetch(), Dataset.COST).days == {
        D1: {(C, Dims(model=KIMI), ("usage",)): 1.0}
    }


def test_a_bad_token_count_skips_its_row(env: Env) -> None:
    answer = fixture("billing_usage")
    answer["serverlessCosts"][0]["promptTokens"] = "12e3"
    env.usage.return_value = httpx.Response(200, json=answer)
    usage = batch_of(env.fetch(), Dataset.USAGE)
    assert D1 not in usage.days and usage.skipped_rows == 1
    assert "'promptTokens' is not a token count" in usage.skipped_error


def test_a_denied_key_fails_both_datasets_without_leaking_it(env: Env) -> None:
    env.costs.side_effect = None
    env.costs.return_value = httpx.Response(403, json={"code": 7, "message": f"denied {KEY}"})
    env.usage.return_value = httpx.Response(403, json={"code": 7, "message": "denied"})
    result = env.fetch()
    assert set(result.failures) == {Dataset.COST, Dataset.USAGE}
    for err in result.failures.values():
        assert getattr(err, "reason", None) == "auth" and KEY not in str(err)


ACCOUNT = """
accounts:
  - name: fw
    provider: fireworks
    api_key: fw_x
{options}
"""


def test_config_requires_a_valid_account_id() -> None:
    with pytest.raises(ConfigError, match=r"accounts\[0\].*account_id"):
        parse_config(ACCOUNT.format(options=""), source="t")
    with pytest.raises(ConfigError, match=r"account_id.*Fireworks account id"):
        parse_config(ACCOUNT.format(options="    options: {account_id: ../admin}"), source="t")
    config = parse_config(ACCOUNT.format(options="    options: {account_id: acme-ai}"),
                          source="t")
    (account,) = config.accounts
    assert account.poll_interval == 900  # the billing APIs cache for minutes


def test_a_row_outside_its_requests_range_is_not_counted_twice(env: Env) -> None:
    # Two windows; each answers the day where they meet: it is the second window's.
    boundary = "2025-12-23"
    env.costs_answer(row(boundary, {"currencyCode": "USD", "units": "1"}, model=KIMI))
    cost = batch_of(env.fetch(start=D1 - 40 * DAY), Dataset.COST)
    assert cost.days == {D1 - 9 * DAY: {(C, Dims(model=KIMI), ("usage",)): 1.0}}


def test_label_values_must_be_plain_names(env: Env) -> None:
    env.costs_answer(row("2026-01-01", {"currencyCode": "USD", "units": "1"}, model="x" * 300),
                     row("2026-01-01", {"currencyCode": "USD", "units": "2"}, model="a\nb"),
                     row("2026-01-01", {"currencyCode": "USD", "units": "3"}, model=KIMI))
    cost = batch_of(env.fetch(), Dataset.COST)
    assert cost.days == {D1: {(C, Dims(model=KIMI), ("usage",)): 3.0}}
    assert cost.skipped_rows == 2 and "is not a name" in cost.skipped_error


def test_currencies_without_a_rate_are_bounded(env: Env) -> None:
    codes = ["EUR", "GBP", "JPY", "CHF", "SEK", "ÅÄÖ"]
    env.costs_answer(*(row("2026-01-01", {"currencyCode": c, "units": "1"}, model=KIMI)
                       for c in codes))
    cost = batch_of(env.fetch(), Dataset.COST)
    assert sorted(k[2][0] for k in cost.days[D1]) == ["chf", "eur", "gbp", "jpy"]
    assert cost.skipped_rows == 2
