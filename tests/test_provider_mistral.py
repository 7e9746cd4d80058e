"""Mistral Admin API: tokens and cost priced from the month's price table, the spend limit."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from exporter.core.records import DAY, Dataset, Dims, Family, FetchResult, TokenType
from exporter.sources.providers.base import LIMITS_INTERVAL, ProviderSettings
from exporter.sources.providers.mistral import MistralProvider
from tests.fetched import batch_of, only_failure

FIXTURES = Path(__file__).parent / "fixtures" / "mistral"
KEY = "mistral-FAKE-admin-key-do-not-leak-4"
BASE = "https://api.mistral.ai/v1/admin"
D1, D2 = 1767225600, 1767312000  # 2026-01-01, -02 00:00 UTC
END = D2 + 43_200  # poll at 2026-01-02 12:00 UTC
T, C = Family.TOKENS, Family.BILLED_COST
LARGE, SMALL, MEDIUM, OCR = ("mistral-large-2512", "mistral-small-2603", "mistral-medium-3-5",
                             "mistral-ocr-2512")


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def tok(model: str, token_type: TokenType, tier: str = "default") -> Any:
    return (T, Dims(model=model), (token_type, "text", tier))


class Env:
    def __init__(self, router: respx.MockRouter) -> None:
        self.observed: list[tuple[str, str]] = []
        self.now = 1000.0
        self.usage = router.get("/usage").respond(json=fixture("usage"))
        self.limit = router.get("/spend-limit").respond(json=fixture("spend_limit"))

    def provider(self, **settings: Any) -> MistralProvider:
        options = settings.pop("options", {})
        return MistralProvider(
            ProviderSettings(account="org", api_key=lambda: KEY, options=options, **settings),
            observe=lambda endpoint, code: self.observed.append((endpoint, code)),
            rng=lambda: 0.5, clock=lambda: self.now,
        )

    def fetch(self, provider: MistralProvider | None = None, start: int = D1) -> FetchResult:
        async def run(p: MistralProvider) -> FetchResult:
            try:
                return await p.fetch(start, END)
            finally:
                await p.aclose()

        return asyncio.run(run(provider or self.provider()))

    def answer(self, **changes: Any) -> None:
        self.usage.return_value = httpx.Response(200, json={**fixture("usage"), **changes})


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


def test_tokens_per_day_model_and_lane(env: Env) -> None:
    result = env.fetch()
    assert result.failures == {}
    usage = batch_of(result, Dataset.USAGE)
    assert usage.days == {
        D1: {
            tok(LARGE, TokenType.INPUT): 11121.0,
            tok(LARGE, TokenType.OUTPUT): 1115.0,
            tok(LARGE, TokenType.INPUT_CACHE_READ): 5000.0,  # the "cached" lane
            tok(MEDIUM, TokenType.INPUT): 40000.0,  # Vibe's tokens are tokens too
        },
        D2: {
            tok(LARGE, TokenType.INPUT, "priority"): 2000.0,
            # Used, though the plan's allowance covered them (value_paid 0).
            tok(SMALL, TokenType.INPUT): 90000.0,
            # OCR counts pages, not tokens: only its cost is exported.
        },
    }
    assert (usage.start, usage.end, usage.watermark) == (D1, END, float(END))


def test_cost_is_units_billed_times_the_unit_price_of_the_row(env: Env) -> None:
    cost = batch_of(env.fetch(), Dataset.COST)
    assert cost.days == {
        # 11121 × 5e-7 + 1115 × 1.5e-6 + 5000 × 5e-8 (a price without zone and tier applies to
        # any): exact decimal sums.
        D1: {(C, Dims(model=LARGE), ("completion",)): 0.007483,
             (C, Dims(model=MEDIUM), ("vibe_code.completion",)): 0.016},
        # The eu/priority price, not the global one; the allowance-covered row costs nothing.
        D2: {(C, Dims(model=LARGE), ("completion",)): 0.002,
             (C, Dims(model=OCR), ("ocr",)): 0.12},
    }
    assert cost.skipped_rows == 0


def test_the_request_and_its_headers(env: Env) -> None:
    options = {"workspace_id": "2f6b1c9e-0000-4000-8000-000000000001"}
    env.fetch(env.provider(options=options))
    request = env.usage.calls[0].request
    assert dict(request.url.params) == {"month": "1", "year": "2026",
                                        "workspace_id": options["workspace_id"]}
    # The guide names x-api-key, the API reference a Bearer token.
    assert request.headers["x-api-key"] == KEY
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert env.observed == [("/usage", "200"), ("/spend-limit", "200")]


def test_a_window_across_months_reads_each_month(env: Env) -> None:
    env.fetch(start=D1 - 2 * DAY)
    months = [dict(c.request.url.params) for c in env.usage.calls]
    assert months == [{"month": "12", "year": "2025"}, {"month": "1", "year": "2026"}]


def test_euros_need_a_rate(env: Env) -> None:
    env.answer(currency="EUR")
    cost = batch_of(env.fetch(), Dataset.COST)
    assert cost.days[D2] == {(Family.UNCONVERTED_COST, Dims(model=LARGE), ("eur",)): 0.002,
                             (Family.UNCONVERTED_COST, Dims(model=OCR), ("eur",)): 0.12}
    env.answer(currency="EUR")
    cost = batch_of(env.fetch(env.provider(options={"currency_rates": {"EUR": 1.25}})),
                    Dataset.COST)
    assert cost.days[D2] == {(C, Dims(model=LARGE), ("completion",)): 0.0025,
                             (C, Dims(model=OCR), ("ocr",)): 0.15}


def test_a_row_without_a_price_is_counted_and_the_rest_kept(env: Env) -> None:
    answer = fixture("usage")
    answer["prices"] = [p for p in answer["prices"] if p["billing_metric"] != "mistral-ocr-2512"]
    env.usage.return_value = httpx.Response(200, json=answer)
    result = env.fetch()
    cost = batch_of(result, Dataset.COST)
    assert (C, Dims(model=OCR), ("ocr",)) not in cost.days[D2]
    assert cost.skipped_rows == 1
    assert "no unit price for 'api_pages/mistral-ocr-2512/input/global/standard'" in (
        cost.skipped_error)
    assert batch_of(result, Dataset.USAGE).skipped_rows == 0


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"value": -1}, "'value' not a non-negative integer"),
        ({"value_paid": "12"}, "'value_paid' not a non-negative integer"),
        ({"timestamp": "01/01/2026"}, "bad date"),
        ({"billing_metric": "a b"}, "is not a name"),
        ({"billing_metric": None}, "without 'billing_metric'"),
    ],
)
def test_a_malformed_row_is_left_out(env: Env, change: dict[str, Any], problem: str) -> None:
    answer = fixture("usage")
    rows = answer["completion"]["models"]["mistral-large-latest::mistral-large-2512"]["output"]
    rows[0].update(change)
    env.usage.return_value = httpx.Response(200, json=answer)
    result = env.fetch()
    usage, cost = batch_of(result, Dataset.USAGE), batch_of(result, Dataset.COST)
    assert tok(LARGE, TokenType.OUTPUT) not in usage.days[D1]
    assert usage.skipped_rows == 1 and problem in usage.skipped_error
    assert cost.days[D1][C, Dims(model=LARGE), ("completion",)] == pytest.approx(0.0058105)


def test_blocks_of_another_shape_are_counted(env: Env) -> None:
    env.answer(chat={"rows": []}, audio={"models": {"m": ["not lanes"]}})
    usage = batch_of(env.fetch(), Dataset.USAGE)
    assert usage.skipped_rows == 2
    assert usage.days  # the rest is read


def test_an_idle_month(env: Env) -> None:
    env.usage.return_value = httpx.Response(200, json={
        "currency": None, "prices": None, "completion": {"models": {}}})
    result = env.fetch()
    assert result.failures == {}
    assert [b.days for b in result.batches if b.dataset is not Dataset.LIMITS] == [{}, {}]


def test_an_unknown_currency_code_fails_both_datasets(env: Env) -> None:
    env.answer(currency="€")
    result = env.fetch()
    assert {Dataset.USAGE, Dataset.COST} <= set(result.failures)
    assert "unsupported currency" in str(result.failures[Dataset.COST])


def test_the_spend_limit(env: Env) -> None:
    limits = batch_of(env.fetch(), Dataset.LIMITS)
    hard = ("hard", "month")
    assert limits.gauges == {
        (Family.PROVIDER_LIMIT, Dims(), hard): 500.0,
        (Family.PROVIDER_LIMIT_SPEND, Dims(), hard): 125.0,  # API and Vibe
        (Family.PROVIDER_LIMIT_ENFORCING, Dims(), hard): 0.0,
    }


def test_the_limit_in_euros_is_converted_or_left_out(env: Env) -> None:
    body = fixture("spend_limit")
    body["limits"].update(currency="EUR")
    body["limits"]["completion"].update(monthly_limit_reached=True)
    env.limit.return_value = httpx.Response(200, json=body)
    assert batch_of(env.fetch(), Dataset.LIMITS).gauges == {}
    limits = batch_of(env.fetch(env.provider(options={"currency_rates": {"EUR": 1.1}})),
                      Dataset.LIMITS)
    hard = ("hard", "month")
    assert limits.gauges[Family.PROVIDER_LIMIT, Dims(), hard] == pytest.approx(550.0)
    assert limits.gauges[Family.PROVIDER_LIMIT_ENFORCING, Dims(), hard] == 1.0


def test_no_monthly_limit_is_no_series_and_read_hourly(env: Env) -> None:
    body = fixture("spend_limit")
    body["limits"]["completion"].update(no_monthly_limit=True)
    env.limit.return_value = httpx.Response(200, json=body)
    provider = env.provider()

    async def polls() -> list[FetchResult]:
        try:
            found = [await provider.fetch(D1, END)]
            env.now += LIMITS_INTERVAL - 1
            found.append(await provider.fetch(D1, END))
            return found
        finally:
            await provider.aclose()

    results = asyncio.run(polls())
    assert [batch_of(r, Dataset.LIMITS).gauges for r in results] == [{}, {}]
    assert env.limit.call_count == 1


def test_a_broken_limit_answer_fails_limits_only(env: Env) -> None:
    env.limit.return_value = httpx.Response(200, json={"limits": {"completion": {}}})
    result = env.fetch()
    err = only_failure(result, KEY)
    assert set(result.failures) == {Dataset.LIMITS}
    assert "'monthly_limit_reached' is not a boolean" in str(err)


def test_a_refused_key_is_not_leaked(env: Env) -> None:
    env.usage.return_value = httpx.Response(401, json={"message": f"bad key {KEY}"})
    result = env.fetch()
    err = only_failure(result, KEY)
    assert err.reason == "auth"
    assert env.limit.call_count == 0


def test_unconverted_cost_of_every_category_adds_up(env: Env) -> None:
    env.answer(currency="EUR")
    cost = batch_of(env.fetch(env.provider(group_by=())), Dataset.COST)
    # completion 0.002 and ocr 0.12 on the 2nd: one series without a model, summed.
    assert cost.days[D2] == {(Family.UNCONVERTED_COST, Dims(), ("eur",)): 0.122}


def test_a_day_is_read_from_its_own_months_answer_only(env: Env) -> None:
    # Both months answered with the same (January) rows: December's answer adds nothing.
    usage = batch_of(env.fetch(start=D1 - 2 * DAY), Dataset.USAGE)
    assert usage.days[D1][tok(LARGE, TokenType.INPUT)] == 11121.0
    assert env.usage.call_count == 2


def test_tiers_are_a_bounded_label_and_empty_blocks_are_empty(env: Env) -> None:
    answer = fixture("usage")
    rows = answer["completion"]["models"]["mistral-large-latest::mistral-large-2512"]["output"]
    rows[0]["service_tier"] = "flex-2027"
    answer["ocr"] = {}
    env.usage.return_value = httpx.Response(200, json=answer)
    usage = batch_of(env.fetch(), Dataset.USAGE)
    assert usage.days[D1][tok(LARGE, TokenType.OUTPUT, "other")] == 1115.0
    assert usage.skipped_rows == 0


def test_a_negative_limit_is_refused(env: Env) -> None:
    body = fixture("spend_limit")
    body["limits"]["completion"]["usage_limit"] = -500
    env.limit.return_value = httpx.Response(200, json=body)
    err = only_failure(env.fetch(), KEY)
    assert "negative amount" in str(err)
