"""GitHub budgets that stop Copilot usage, as provider limits of an organization account."""

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
from exporter.sources.providers.base import LIMITS_INTERVAL, ProviderSettings
from exporter.sources.providers.github_copilot import GitHubCopilotProvider
from tests.fetched import batch_of, only_failure

KEY = "ghp_FAKE-token-do-not-leak-5"
BUDGETS = "/organizations/acme/settings/billing/budgets"
D = 1782864000  # 2026-07-01 00:00 UTC
HARD = ("hard", "month")
L, S, E = Family.PROVIDER_LIMIT, Family.PROVIDER_LIMIT_SPEND, Family.PROVIDER_LIMIT_ENFORCING
DOCS = json.loads((Path(__file__).parent / "fixtures" / "contracts" /
                   "github-billing.json").read_text())


def budget(amount: int, *, sku: str = "ai_credits", scope: str = "organization",
           prevent: bool = True, **extra: Any) -> dict[str, Any]:
    return {"id": f"b-{amount}-{scope}", "budget_type": "BundlePricing",
            "budget_product_sku": sku, "budget_scope": scope, "budget_amount": amount,
            "prevent_further_usage": prevent,
            "budget_alerting": {"will_alert": True, "alert_recipients": []}, **extra}


class Env:
    def __init__(self, router: respx.MockRouter) -> None:
        self.now = 1000.0
        router.get(url__regex=r".*/usage.*").respond(json={
            "timePeriod": {"year": 2026, "month": 7, "day": 1}, "usageItems": []})
        self.budgets = router.get(BUDGETS).respond(json={"budgets": [], "has_next_page": False})

    def answer(self, *budgets: dict[str, Any], more: Any = False) -> None:
        self.budgets.return_value = httpx.Response(
            200, json={"budgets": list(budgets), "has_next_page": more})

    def provider(self, group_by: tuple[str, ...] = ("model",), **options: Any) -> Any:
        return GitHubCopilotProvider(
            ProviderSettings(account="gh", api_key=lambda: KEY, group_by=group_by,
                             options=options or {"organization": "acme"}),
            observe=lambda endpoint, code: None, clock=lambda: self.now,
        )

    def fetch(self, provider: Any = None) -> FetchResult:
        async def run(p: Any) -> FetchResult:
            try:
                return await p.fetch(D, D + 3600)
            finally:
                await p.aclose()

        return asyncio.run(run(provider or self.provider()))


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url="https://api.github.com", assert_all_called=False) as router:
        yield Env(router)


def test_the_smallest_hard_copilot_budget_of_the_organization(env: Env) -> None:
    env.answer(
        budget(400),
        budget(250, sku="premium_requests"),  # the smallest of those that stop usage binds
        budget(100, prevent=False),  # alerts only
        budget(50, sku="actions"),  # another product
        budget(10, sku="copilot"),  # the product's budget may count licences
        budget(20, scope="cost_center", budget_entity_name="platform"),
    )
    limits = batch_of(env.fetch(), Dataset.LIMITS)
    assert limits.gauges == {(L, Dims(), HARD): 250.0}
    assert env.budgets.calls[0].request.url.params["per_page"] == "100"


def test_a_users_budget_with_per_user_grouping(env: Env) -> None:
    env.answer(budget(30, scope="user", user="mona", consumed_amount=31.5),
               budget(20, scope="user", budget_entity_name="hubot", consumed_amount=4))
    limits = batch_of(env.fetch(env.provider(("model", "user"))), Dataset.LIMITS)
    assert limits.gauges == {
        (L, Dims(user_id="mona"), HARD): 30.0, (S, Dims(user_id="mona"), HARD): 31.5,
        (E, Dims(user_id="mona"), HARD): 1.0,  # consumed beyond it: GitHub stops the usage
        (L, Dims(user_id="hubot"), HARD): 20.0, (S, Dims(user_id="hubot"), HARD): 4.0,
        (E, Dims(user_id="hubot"), HARD): 0.0,
    }
    # Without per-user grouping a user's limit has no series to attach to.
    assert batch_of(env.fetch(), Dataset.LIMITS).gauges == {}


def test_the_documented_examples(env: Env) -> None:
    for index in (0, 1):
        example = DOCS["budgets"][0]["codeExamples"][index]["response"]["example"]
        env.budgets.return_value = httpx.Response(200, json=example)
        limits = batch_of(env.fetch(env.provider(("model", "user"))), Dataset.LIMITS)
        # Actions, Packages, enterprise and cost-centre scopes; the second example's AI-credit
        # budget is a user's in an answer filtered by ?user=, which names no user in the budget.
        assert (limits.gauges, limits.skipped_rows) == ({}, 0)


def test_pages_until_has_next_page_is_false(env: Env) -> None:
    env.budgets.side_effect = [
        httpx.Response(200, json={"budgets": [budget(300)], "has_next_page": True}),
        httpx.Response(200, json={"budgets": [budget(200)], "has_next_page": False}),
    ]
    limits = batch_of(env.fetch(), Dataset.LIMITS)
    assert [c.request.url.params["page"] for c in env.budgets.calls] == ["1", "2"]
    assert limits.gauges == {(L, Dims(), HARD): 200.0}


def test_a_malformed_budget_is_left_out(env: Env) -> None:
    env.answer(budget(300), {**budget(200), "budget_amount": "lots"},
               {**budget(100), "budget_product_skus": "ai_credits"})
    limits = batch_of(env.fetch(), Dataset.LIMITS)
    assert limits.gauges == {(L, Dims(), HARD): 300.0}
    assert limits.skipped_rows == 2


def test_a_broken_answer_fails_limits_only(env: Env) -> None:
    env.answer(budget(300), more="yes")
    result = env.fetch()
    err = only_failure(result, KEY)
    assert set(result.failures) == {Dataset.LIMITS}
    assert "'has_next_page' is not a boolean" in str(err)


def test_read_hourly_and_never_for_an_enterprise(env: Env) -> None:
    env.answer(budget(300))
    provider = env.provider()

    async def polls() -> None:
        try:
            await provider.fetch(D, D + 3600)
            env.now += LIMITS_INTERVAL - 1
            await provider.fetch(D, D + 3600)
            env.now += 1
            await provider.fetch(D, D + 3600)
        finally:
            await provider.aclose()

    asyncio.run(polls())
    assert env.budgets.call_count == 2
    result = env.fetch(env.provider(enterprise="acme-ent"))
    assert Dataset.LIMITS not in {b.dataset for b in result.batches}
    assert env.budgets.call_count == 2


def test_the_smallest_limits_and_any_used_up_enforces(env: Env) -> None:
    env.answer(budget(100, scope="user", user="mona", consumed_amount=150),
               budget(50, sku="premium_requests", scope="user", user="mona", consumed_amount=0))
    limits = batch_of(env.fetch(env.provider(("model", "user"))), Dataset.LIMITS)
    mona = Dims(user_id="mona")
    assert limits.gauges == {(L, mona, HARD): 50.0, (S, mona, HARD): 0.0,
                             (E, mona, HARD): 1.0}  # the AI-credit budget stopped usage


def test_user_logins_are_plain_names_and_spend_is_never_negative(env: Env) -> None:
    env.answer(budget(30, scope="user", user="a\nb"),
               budget(30, scope="user", user="mona", consumed_amount=-5),
               budget(300))
    limits = batch_of(env.fetch(env.provider(("model", "user"))), Dataset.LIMITS)
    assert limits.gauges == {(L, Dims(), HARD): 300.0}
    assert limits.skipped_rows == 2


def test_every_budget_malformed_fails_and_skips_are_counted_once(env: Env) -> None:
    env.answer({**budget(300), "budget_amount": "300"})
    result = env.fetch()
    assert "every row is malformed" in str(result.failures[Dataset.LIMITS])
    env.answer(budget(300), {**budget(200), "budget_amount": None})
    provider = env.provider()

    async def polls() -> list[int]:
        try:
            found = []
            for _ in range(3):
                found.append(batch_of(await provider.fetch(D, D + 3600),
                                      Dataset.LIMITS).skipped_rows)
            return found
        finally:
            await provider.aclose()

    assert asyncio.run(polls()) == [1, 0, 0]  # read once an hour, its skip counted once
