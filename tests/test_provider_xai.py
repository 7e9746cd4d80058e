"""xAI Management API: the key's team, daily spend per model, the spending limit, failures."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import respx

from exporter.core.records import Dataset, Dims, Family, FetchResult
from exporter.sources.providers.base import LIMITS_INTERVAL, ProviderSettings
from exporter.sources.providers.xai import XAIProvider, model_of
from tests.fetched import batch_of, only_failure

KEY = "xai-FAKE-management-key-do-not-leak-9"
BASE = "https://management-api.x.ai"
TEAM = "65c1e471-aaaa-bbbb-cccc-0123456789ab"
USAGE = f"/v1/billing/teams/{TEAM}/usage"
LIMITS = f"/v1/billing/teams/{TEAM}/postpaid/spending-limits"
D1, D2 = 1767225600, 1767312000  # 2026-01-01, -02 00:00 UTC
END = D2 + 43_200  # poll at 2026-01-02 12:00 UTC
C = Family.BILLED_COST
USD = ("usage",)


def series(description: str | None, *points: tuple[str, Any]) -> dict[str, Any]:
    group = [description] if description else []
    return {"group": group, "groupLabels": group, "dataPoints": [
        {"timestamp": f"{day}T00:00:00Z", "values": [value]} for day, value in points]}


GROUPED = {
    "timeSeries": [
        series("Chat grok-4-0709", ("2026-01-01", 0.75973725), ("2026-01-02", 0)),
        series("grok-2-image-1212", ("2026-01-01", 0.07), ("2026-01-02", "0.14")),
    ],
    "limitReached": False,
}


class Env:
    def __init__(self, router: respx.MockRouter) -> None:
        self.observed: list[tuple[str, str]] = []
        self.now = 1000.0
        self.validation = router.get("/auth/management-keys/validation").respond(json={
            "apiKeyId": "b86b", "teamId": "deprecated-team", "scope": "SCOPE_TEAM",
            "scopeId": TEAM, "name": "exporter"})
        self.usage = router.post(USAGE).respond(json=GROUPED)
        self.limits = router.get(LIMITS).respond(json={"spendingLimits": {
            "softSl": {"val": "20000"}, "effectiveSl": {"val": "20000"},
            "effectiveHardSl": {"val": "22500"}}})

    def provider(self, **settings: Any) -> XAIProvider:
        options = settings.pop("options", {})
        return XAIProvider(
            ProviderSettings(account="team", api_key=lambda: KEY, options=options, **settings),
            observe=lambda endpoint, code: self.observed.append((endpoint, code)),
            rng=lambda: 0.5, clock=lambda: self.now,
        )

    def fetch(self, provider: XAIProvider | None = None, close: bool = True) -> FetchResult:
        async def run(p: XAIProvider) -> FetchResult:
            try:
                return await p.fetch(D1, END)
            finally:
                if close:
                    await p.aclose()

        return asyncio.run(run(provider or self.provider()))


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


def test_daily_spend_per_model_and_the_spending_limit(env: Env) -> None:
    result = env.fetch()
    assert result.failures == {}
    cost = batch_of(result, Dataset.COST)
    assert cost.days == {
        D1: {(C, Dims(model="grok-4-0709"), USD): 0.75973725,
             (C, Dims(model="grok-2-image-1212"), USD): 0.07},
        D2: {(C, Dims(model="grok-2-image-1212"), USD): 0.14},  # a zero day adds nothing
    }
    assert (cost.start, cost.end, cost.watermark) == (D1, END, float(END))
    # The limit in force, in dollars (xAI's own ceiling, effectiveHardSl, is not the team's).
    assert batch_of(result, Dataset.LIMITS).gauges == {
        (Family.PROVIDER_LIMIT, Dims(), ("hard", "month")): 200.0
    }


def test_the_request_names_the_keys_team_and_the_days(env: Env) -> None:
    env.fetch()
    # scopeId, not the deprecated teamId.
    assert env.usage.call_count == 1
    body = json.loads(env.usage.calls[0].request.content)
    assert body == {"analyticsRequest": {
        "timeRange": {"startTime": "2026-01-01 00:00:00", "endTime": "2026-01-02 23:59:59",
                      "timezone": "Etc/GMT"},
        "timeUnit": "TIME_UNIT_DAY",
        "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
        "groupBy": ["description"],
        "filters": [],
    }}
    assert env.usage.calls[0].request.headers["authorization"] == f"Bearer {KEY}"
    assert env.observed == [
        ("/auth/management-keys/validation", "200"),
        ("/v1/billing/teams/{team_id}/usage", "200"),
        ("/v1/billing/teams/{team_id}/postpaid/spending-limits", "200"),
    ]


def test_a_configured_team_is_not_looked_up(env: Env) -> None:
    env.fetch(env.provider(options={"team_id": TEAM}))
    assert env.validation.call_count == 0
    assert env.usage.call_count == 1


def test_the_team_and_the_limit_are_read_once(env: Env) -> None:
    provider = env.provider()

    async def polls() -> None:
        try:
            await provider.fetch(D1, END)
            env.now += LIMITS_INTERVAL - 1
            await provider.fetch(D1, END)
            env.now += 1
            await provider.fetch(D1, END)
        finally:
            await provider.aclose()

    asyncio.run(polls())
    assert (env.validation.call_count, env.usage.call_count, env.limits.call_count) == (1, 3, 2)


def test_without_model_grouping_one_series_per_day(env: Env) -> None:
    env.usage.return_value = httpx.Response(200, json={"timeSeries": [
        series(None, ("2026-01-01", 1.5))], "limitReached": False})
    cost = batch_of(env.fetch(env.provider(group_by=())), Dataset.COST)
    assert json.loads(env.usage.calls[0].request.content)["analyticsRequest"]["groupBy"] == []
    assert cost.days == {D1: {(C, Dims(), USD): 1.5}}


def test_a_cut_grouped_answer_is_read_again_without_grouping(env: Env) -> None:
    env.usage.side_effect = [
        httpx.Response(200, json={**GROUPED, "limitReached": True}),
        httpx.Response(200, json={"timeSeries": [series(None, ("2026-01-01", 2.25))],
                                  "limitReached": False}),
    ]
    cost = batch_of(env.fetch(), Dataset.COST)
    groups = [json.loads(c.request.content)["analyticsRequest"]["groupBy"]
              for c in env.usage.calls]
    assert groups == [["description"], []]
    # The lines listed stay; what the day's total has beyond them has no model.
    assert cost.days == {
        D1: {(C, Dims(model="grok-4-0709"), USD): 0.75973725,
             (C, Dims(model="grok-2-image-1212"), USD): 0.07,
             (C, Dims(), USD): 2.25 - 0.82973725},
        D2: {(C, Dims(model="grok-2-image-1212"), USD): 0.14},
    }


def test_a_day_answered_at_zero_moves_the_watermark(env: Env) -> None:
    env.usage.return_value = httpx.Response(200, json={"timeSeries": [
        series("Chat grok-3", ("2026-01-01", 1.5), ("2026-01-02", 0))], "limitReached": False})
    cost = batch_of(env.fetch(), Dataset.COST)
    assert cost.watermark == float(END)  # today answered (nothing spent yet)


def test_a_cut_total_fails_the_dataset(env: Env) -> None:
    env.usage.return_value = httpx.Response(200, json={"timeSeries": [], "limitReached": True})
    result = env.fetch(env.provider(group_by=()))
    err = only_failure(result, KEY)
    assert err.reason == "parse" and "limitReached" in str(err)
    assert set(result.failures) == {Dataset.COST}


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        (series("Chat grok-3", ("2026-01-01", -1)), "negative amount"),
        (series("Chat grok-3", ("2026-01-01", "lots")), "not a number"),
        (series("Chat grok-3", ("01/01/2026", 1)), "bad timestamp"),
        ({"group": [], "dataPoints": []}, "without a 'group'"),
        (series("x" * 121, ("2026-01-01", 1)), "too long"),
        (series("Chat\ngrok", ("2026-01-01", 1)), "not printable"),
        ({"group": ["Chat grok-3"], "dataPoints": [{"timestamp": "2026-01-01T00:00:00Z"}]},
         "without 'values'"),
    ],
)
def test_a_malformed_series_is_left_out(env: Env, bad: dict[str, Any], problem: str) -> None:
    env.usage.return_value = httpx.Response(200, json={
        "timeSeries": [bad, GROUPED["timeSeries"][1]], "limitReached": False})
    cost = batch_of(env.fetch(), Dataset.COST)
    assert cost.days[D1] == {(C, Dims(model="grok-2-image-1212"), USD): 0.07}
    assert cost.skipped_rows == 1 and problem in cost.skipped_error


def test_a_team_without_a_postpaid_limit(env: Env) -> None:
    env.limits.return_value = httpx.Response(404, json={"code": "404", "error": "not found"})
    assert batch_of(env.fetch(), Dataset.LIMITS).gauges == {}
    env.limits.return_value = httpx.Response(200, json={"spendingLimits": {
        "effectiveSl": {"val": "0"}}})
    assert batch_of(env.fetch(), Dataset.LIMITS).gauges == {}


def test_a_key_without_a_team_fails_with_a_hint(env: Env) -> None:
    env.validation.return_value = httpx.Response(200, json={"apiKeyId": "x",
                                                            "scope": "SCOPE_ORGANIZATION"})
    err = only_failure(env.fetch(), KEY)
    assert "set options.team_id" in str(err)


def test_an_inference_key_is_refused_without_leaking_it(env: Env) -> None:
    env.validation.return_value = httpx.Response(401, json={"code": "401",
                                                            "error": f"bad key {KEY}"})
    result = env.fetch()
    err = only_failure(result, KEY)
    assert err.reason == "auth"
    assert env.usage.call_count == 0  # a 401 concerns the whole account


@pytest.mark.parametrize(("description", "model"), [
    ("Chat grok-4-0709", "grok-4-0709"),
    ("grok-2-image-1212", "grok-2-image-1212"),
    ("API grok-4.3", "grok-4.3"),
    ("Live Search sources", "Live Search sources"),
])
def test_model_of_a_billing_line(description: str, model: str) -> None:
    assert model_of(description) == model
