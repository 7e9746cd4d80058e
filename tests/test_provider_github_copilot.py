"""GitHub Copilot provider: billing usage, AI credit and premium request reports → exact Batch
contents, one dataset each (COST, AI_CREDITS from 2026-06-01, PREMIUM_REQUESTS before)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from exporter.config.schema import ConfigError, parse_config
from exporter.core.records import DAY, Batch, Dataset, Dims, Family, FetchResult
from exporter.sources.providers import PROVIDERS
from exporter.sources.providers.base import ProviderError, ProviderSettings
from exporter.sources.providers.github_copilot import (
    AI_CREDITS_START,
    GitHubCopilotOptions,
    GitHubCopilotProvider,
)

FIXTURES = Path(__file__).parent / "fixtures" / "github_copilot"
TOKEN = "ghp_FAKEtokenGitHubDoNotLeak0123456789"
BASE = "https://api.github.com"
ORG_PREFIX = "/organizations/octo-demo/settings/billing"
USAGE, PREMIUM = f"{ORG_PREFIX}/usage", f"{ORG_PREFIX}/premium_request/usage"
AI = f"{ORG_PREFIX}/ai_credit/usage"
D0, D1, D2 = 1772236800, 1772323200, 1772409600  # 2026-02-28, 03-01, 03-02 00:00 UTC
END = D2 + 55_800  # poll at 2026-03-02 15:30 UTC


def utc(year: int, month: int, day: int) -> int:
    return int(datetime(year, month, day, tzinfo=UTC).timestamp())


M30, M31, J1, J2 = utc(2026, 5, 30), utc(2026, 5, 31), utc(2026, 6, 1), utc(2026, 6, 2)
J_END = J2 + 55_800  # poll at 2026-06-02 15:30 UTC
SONNET, HAIKU, GPT5 = "Claude Sonnet 4.5", "Claude Haiku 4.5", "GPT-5"
PR_SKU, AI_SKU = "Copilot Premium Request", "Copilot AI Credits"
C, P, A = Family.BILLED_COST, Family.PREMIUM_REQUESTS, Family.AI_CREDITS

# The official example of GET /organizations/{org}/settings/billing/ai_credit/usage (github/docs
# src/rest/data/fpt-2022-11-28/billing.json @ 098f865, codeExamples[0].response.example).
OFFICIAL_AI_CREDITS: dict[str, Any] = {
    "timePeriod": {"year": 2025},
    "organization": "GitHub",
    "usageItems": [
        {"product": "Copilot", "sku": "Copilot AI Credits", "model": "GPT-5",
         "unitType": "credits", "pricePerUnit": 0.01, "grossQuantity": 100, "grossAmount": 1,
         "discountQuantity": 0, "discountAmount": 0, "netQuantity": 100, "netAmount": 1},
    ],
}


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def period(day: int) -> dict[str, int]:
    dt = datetime.fromtimestamp(day, UTC)
    return {"year": dt.year, "month": dt.month, "day": dt.day}


def report(day: int, *items: dict[str, Any]) -> dict[str, Any]:
    """A per-day report (AI credits or premium requests) echoing ``day``."""
    return {"timePeriod": period(day), "organization": "octo-demo", "usageItems": list(items)}


def credit(model: str, credits: float, net: float | str | None, **fields: Any) -> dict[str, Any]:
    """An AI credit report item (1 credit = $0.01 before discounts)."""
    return {"product": "Copilot", "sku": AI_SKU, "model": model, "unitType": "credits",
            "pricePerUnit": 0.01, "grossQuantity": credits, "grossAmount": credits / 100,
            "discountQuantity": 0, "discountAmount": 0, "netQuantity": credits,
            "netAmount": net, **fields}


def premium(model: str, requests: float) -> dict[str, Any]:
    return {"product": "Copilot", "sku": PR_SKU, "model": model, "unitType": "requests",
            "pricePerUnit": 0.04, "grossQuantity": requests, "grossAmount": requests * 0.04,
            "discountQuantity": 0, "discountAmount": 0, "netQuantity": requests,
            "netAmount": requests * 0.04}


def usage(date: str, sku: str, net: float, product: str = "Copilot") -> dict[str, Any]:
    """A ``/usage`` item (no model: the endpoint has none)."""
    return {"date": date, "product": product, "sku": sku, "quantity": 1, "unitType": "x",
            "pricePerUnit": net, "grossAmount": net, "discountAmount": 0, "netAmount": net,
            "organizationName": "octo-demo"}


def echo(*items: dict[str, Any]) -> Callable[[httpx.Request], httpx.Response]:
    """A per-day endpoint answering each request with ``items`` for the day it asks for."""
    def respond(request: httpx.Request) -> httpx.Response:
        asked = {key: int(request.url.params[key]) for key in ("year", "month", "day")}
        return httpx.Response(200, json={"timePeriod": asked, "organization": "octo-demo",
                                         "usageItems": list(items)})
    return respond


def params(route: respx.Route) -> list[list[tuple[str, str]]]:
    return [list(call.request.url.params.multi_items()) for call in route.calls]


class Env:
    """Mocked GitHub billing API plus a provider recording observe() and sleep()."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router
        self.observed: list[tuple[str, str]] = []
        self.slept: list[float] = []
        self.usage = router.get(USAGE).mock(return_value=httpx.Response(200, json=fixture("usage")))
        self.premium = router.get(PREMIUM).mock(side_effect=[
            httpx.Response(200, json=fixture("premium_d1")),
            httpx.Response(200, json=fixture("premium_d2")),
        ])
        self.credits = router.get(AI).mock(side_effect=echo())
        # No budgets: the limits dataset has its own tests (test_github_budgets.py), and
        # fetch() leaves it out of what these tests see.
        self.budgets = router.get(url__regex=r".*/settings/billing/budgets").respond(
            json={"budgets": [], "has_next_page": False})

    def provider(self, options: Any = None, **settings: Any) -> GitHubCopilotProvider:
        async def sleep(seconds: float) -> None:
            self.slept.append(seconds)

        return GitHubCopilotProvider(
            ProviderSettings(account="gh", api_key=lambda: TOKEN,
                             options=options or {"organization": "octo-demo"}, **settings),
            observe=lambda endpoint, code: self.observed.append((endpoint, code)),
            sleep=sleep, rng=lambda: 0.5,
        )

    def fetch(
        self, provider: GitHubCopilotProvider | None = None, start: int = D1, end: int = END
    ) -> FetchResult:
        async def go(provider: GitHubCopilotProvider) -> FetchResult:
            try:
                return await provider.fetch(start, end)
            finally:
                await provider.aclose()

        result = asyncio.run(go(provider or self.provider()))
        result.batches = [b for b in result.batches if b.dataset is not Dataset.LIMITS]
        result.failures.pop(Dataset.LIMITS, None)
        self.observed[:] = [o for o in self.observed if not o[0].endswith("/budgets")]
        return result

    def june(self, provider: GitHubCopilotProvider | None = None) -> FetchResult:
        """A poll of 2026-06-02 only: AI credits, no premium requests."""
        return self.fetch(provider, start=J2, end=J_END)


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


def batches(result: FetchResult, *datasets: Dataset) -> list[Batch]:
    """The result's batches, which must be exactly ``datasets`` in that order."""
    assert [b.dataset for b in result.batches] == list(datasets)
    return result.batches


def failed(result: FetchResult, *datasets: Dataset) -> list[ProviderError]:
    """The errors of the failed ``datasets`` (exactly those, in order; no token in any)."""
    assert list(result.failures) == list(datasets)
    errors: list[ProviderError] = []
    for dataset in datasets:
        err = result.failures[dataset]
        assert isinstance(err, ProviderError)
        assert TOKEN not in str(err)
        errors.append(err)
    return errors


ORG = Dims("octo-demo")
EXPECTED_COST = {
    D1: {
        (C, ORG, ("Copilot Business",)): 7.3549,
        # net 0: covered by the allowance (zeros are not stored)
    },
    D2: {
        (C, ORG, ("Copilot Business",)): 7.3549,  # product "copilot", RFC 3339 date
        (C, ORG, (PR_SKU,)): 8.9132,  # two items summed exactly; one amount is a string
    },
}
EXPECTED_PREMIUM = {
    D1: {
        (P, Dims(model=SONNET), (PR_SKU,)): 400.0,
        (P, Dims(model=HAIKU), (PR_SKU,)): 12.5,
    },
    D2: {
        (P, Dims(model=SONNET), (PR_SKU,)): 250.0,
        (P, Dims(model=HAIKU), (PR_SKU,)): 50.33,
        # the Spark item is another product: dropped
    },
}


def test_fetch_returns_exact_batches(env: Env) -> None:
    result = env.fetch()
    cost, premium = batches(result, Dataset.COST, Dataset.PREMIUM_REQUESTS)
    assert (cost.start, cost.end, cost.watermark) == (D1, END, float(END))
    assert cost.days == EXPECTED_COST  # Feb 28 is outside the window, Actions is dropped
    assert (premium.start, premium.end, premium.watermark) == (D1, END, float(END))
    assert premium.days == EXPECTED_PREMIUM
    assert result.project_names == {} and result.failures == {}
    assert [(b.gauges, b.skipped_rows, b.skipped_error) for b in result.batches] == [
        ({}, 0, ""), ({}, 0, "")]
    assert env.credits.call_count == 0  # March: no AI credits yet


def test_requests_params_and_headers(env: Env) -> None:
    env.fetch()
    assert params(env.usage) == [[("year", "2026"), ("month", "3")]]
    assert params(env.premium) == [
        [("year", "2026"), ("month", "3"), ("day", "1")],
        [("year", "2026"), ("month", "3"), ("day", "2")],
    ]
    headers = env.usage.calls[0].request.headers
    assert headers["authorization"] == f"Bearer {TOKEN}"
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert headers["user-agent"] == "ai-cost-exporter/0.1.0"
    assert env.observed == [(USAGE, "200"), (PREMIUM, "200"), (PREMIUM, "200")]


def test_enterprise_paths(env: Env) -> None:
    prefix = "/enterprises/octo-ent/settings/billing"
    usage = env.router.get(f"{prefix}/usage").mock(
        return_value=httpx.Response(200, json={"usageItems": []}))
    premium = env.router.get(f"{prefix}/premium_request/usage").mock(
        return_value=httpx.Response(200, json={"timePeriod": {"year": 2026, "month": 3, "day": 2},
                                               "enterprise": "octo-ent", "usageItems": []}))
    result = env.fetch(env.provider({"enterprise": "octo-ent"}), start=D2)
    assert (usage.call_count, premium.call_count, env.usage.call_count) == (1, 1, 0)
    assert [b.days for b in batches(result, Dataset.COST, Dataset.PREMIUM_REQUESTS)] == [{}, {}]
    assert [b.watermark for b in result.batches] == [None, None]


def test_enterprise_ai_credits(env: Env) -> None:
    prefix = "/enterprises/octo-ent/settings/billing"
    usage = env.router.get(f"{prefix}/usage").mock(
        return_value=httpx.Response(200, json={"usageItems": []}))
    credits = env.router.get(f"{prefix}/ai_credit/usage").mock(
        side_effect=echo(credit(GPT5, 100, 1)))
    premium = env.router.get(f"{prefix}/premium_request/usage").mock(side_effect=echo())
    result = env.june(env.provider({"enterprise": "octo-ent"}))
    cost, ai = batches(result, Dataset.COST, Dataset.AI_CREDITS)
    assert params(usage) == [[("year", "2026"), ("month", "6")]]
    assert params(credits) == [[("year", "2026"), ("month", "6"), ("day", "2")]]
    assert (premium.call_count, env.usage.call_count, env.credits.call_count) == (0, 0, 0)
    assert ai.days == {J2: {(A, Dims(model=GPT5), ()): 100.0,
                            (C, Dims(model=GPT5), (AI_SKU,)): 1.0}}
    assert (cost.days, ai.watermark) == ({}, float(J_END))


def test_window_across_a_month_boundary(env: Env) -> None:
    env.premium.mock(side_effect=[
        httpx.Response(200, json={"timePeriod": {"year": 2026, "month": 2, "day": 28},
                                  "usageItems": []}),
        httpx.Response(200, json=fixture("premium_d1")),
    ])
    result = env.fetch(start=D0, end=D1 + 600)
    cost, premium = batches(result, Dataset.COST, Dataset.PREMIUM_REQUESTS)
    assert params(env.usage) == [[("year", "2026"), ("month", "2")],
                                 [("year", "2026"), ("month", "3")]]
    # Both answers hold every fixture item: only the month asked for counts, never twice.
    assert cost.days == {
        D0: {(C, ORG, ("Copilot Business",)): 8.1434},
        D1: {(C, ORG, ("Copilot Business",)): 7.3549},
    }
    assert premium.days == {D1: EXPECTED_PREMIUM[D1]}


def test_without_grouping_and_custom_products(env: Env) -> None:
    options = {"organization": "octo-demo", "products": ["copilot", "SPARK"]}
    cost, premium = env.fetch(env.provider(options, group_by=())).batches
    assert cost.days[D2] == {(C, Dims(), ("Copilot Business",)): 7.3549,
                             (C, Dims(), (PR_SKU,)): 8.9132}
    assert premium.days[D2] == {(P, Dims(), (PR_SKU,)): 300.33,
                                (P, Dims(), ("Spark Premium Request",)): 7.0}


def test_ai_credits_without_grouping_by_model(env: Env) -> None:
    env.credits.mock(side_effect=echo(credit(GPT5, 100, 1), credit(SONNET, 50, "0.5")))
    _, ai = env.june(env.provider(group_by=("project",))).batches
    assert ai.days == {J2: {(A, Dims(), ()): 150.0, (C, Dims(), (AI_SKU,)): 1.5}}


# --- AI credits (from 2026-06-01) ---------------------------------------------------------


def test_ai_credits_start_on_the_first_of_june() -> None:
    assert AI_CREDITS_START == J1 == M31 + DAY


def test_ai_credits_from_the_official_example(env: Env) -> None:
    env.usage.mock(return_value=httpx.Response(200, json={"usageItems": []}))
    body = {**OFFICIAL_AI_CREDITS, "timePeriod": period(J2)}  # as asked for the day
    env.credits.mock(side_effect=None, return_value=httpx.Response(200, json=body))
    result = env.june()
    assert result.failures == {}
    cost, ai = batches(result, Dataset.COST, Dataset.AI_CREDITS)
    # 100 credits of GPT-5 (1 credit = $0.01), net $1.00: the billed cost, with its model
    assert ai.days == {J2: {(A, Dims(model=GPT5), ()): 100.0,
                            (C, Dims(model=GPT5), (AI_SKU,)): 1.0}}
    assert (ai.start, ai.end, ai.watermark, ai.skipped_rows) == (J2, J_END, float(J_END), 0)
    assert cost.days == {}
    assert env.premium.call_count == 0  # no premium requests after May
    assert params(env.credits) == [[("year", "2026"), ("month", "6"), ("day", "2")]]
    assert env.observed == [(USAGE, "200"), (AI, "200")]


@pytest.mark.parametrize("time_period, message", [
    ({"year": 2025}, "timePeriod.year is 2025, asked 2026"),  # the example as published
    ({"year": 2026}, "timePeriod.month is None, asked 6"),
    ({"year": 2026, "month": 6}, "timePeriod.day is None, asked 2"),
    ({"year": 2026, "month": 6, "day": 1}, "timePeriod.day is 1, asked 2"),
    ({"year": 2026, "month": 6, "day": "2"}, "timePeriod.day is '2', asked 2"),
    ({"year": 2026, "month": True, "day": 2}, "timePeriod.month is True, asked 6"),
    ({"year": 2026, "month": 6, "day": 2.0}, "timePeriod.day is 2.0, asked 2"),
])
def test_a_credit_report_not_for_the_day_fails_only_its_dataset(
    env: Env, time_period: dict[str, Any], message: str
) -> None:
    # Without the day the reply could be the month's sum: never booked as one day.
    env.usage.mock(return_value=httpx.Response(200, json={
        "usageItems": [usage("2026-06-02", "Copilot Business", 7.3549)]}))
    body = {**OFFICIAL_AI_CREDITS, "timePeriod": time_period}
    env.credits.mock(side_effect=None, return_value=httpx.Response(200, json=body))
    result = env.june()
    (err,) = failed(result, Dataset.AI_CREDITS)
    assert (err.reason, str(err)) == ("parse", f"GET {AI}: {message}")
    (cost,) = batches(result, Dataset.COST)  # still read
    assert cost.days == {J2: {(C, ORG, ("Copilot Business",)): 7.3549}}


@pytest.mark.parametrize("sku", [AI_SKU, "COPILOT AI CREDITS", "copilot ai credits (overage)"])
def test_ai_credit_dollars_are_counted_once(env: Env, sku: str) -> None:
    # /usage bills the same credits again (no model): only the credit report's amount counts.
    env.usage.mock(return_value=httpx.Response(200, json={"usageItems": [
        usage("2026-06-02", "Copilot Business", 7.3549),
        usage("2026-06-02", sku, 3.5),
        usage("2026-06-02", "Actions Linux", 0.96, product="Actions"),
    ]}))
    env.credits.mock(side_effect=echo(credit(GPT5, 100, 1), credit(SONNET, 250, 2.5)))
    result = env.june()
    cost, ai = batches(result, Dataset.COST, Dataset.AI_CREDITS)
    assert cost.days == {J2: {(C, ORG, ("Copilot Business",)): 7.3549}}
    assert ai.days == {J2: {
        (A, Dims(model=GPT5), ()): 100.0,
        (C, Dims(model=GPT5), (AI_SKU,)): 1.0,
        (A, Dims(model=SONNET), ()): 250.0,
        (C, Dims(model=SONNET), (AI_SKU,)): 2.5,
    }}
    billed = sum(value for b in result.batches for key, value in b.days[J2].items() if key[0] is C)
    assert billed == pytest.approx(7.3549 + 3.5)  # seats + the credits' net amount, once


def test_each_day_goes_to_exactly_one_of_the_two_reports(env: Env) -> None:
    by_month = {
        "5": [usage("2026-05-30", PR_SKU, 0.4),
              usage("2026-05-31", AI_SKU, 0.25)],  # before June: not in any credit report
        "6": [usage("2026-06-01", "Copilot Business", 7.3549),
              usage("2026-06-01", AI_SKU, 1.0)],  # the credit report's: left out here
    }
    env.usage.mock(side_effect=lambda request: httpx.Response(
        200, json={"usageItems": by_month[request.url.params["month"]]}))
    env.premium.mock(side_effect=echo(premium(SONNET, 10)))
    env.credits.mock(side_effect=echo(credit(GPT5, 100, 1)))
    result = env.fetch(start=M30, end=J_END)
    assert result.failures == {}
    cost, ai, premiums = batches(
        result, Dataset.COST, Dataset.AI_CREDITS, Dataset.PREMIUM_REQUESTS)
    assert params(env.usage) == [[("year", "2026"), ("month", "5")],
                                 [("year", "2026"), ("month", "6")]]
    assert params(env.premium) == [[("year", "2026"), ("month", "5"), ("day", "30")],
                                   [("year", "2026"), ("month", "5"), ("day", "31")]]
    assert params(env.credits) == [[("year", "2026"), ("month", "6"), ("day", "1")],
                                   [("year", "2026"), ("month", "6"), ("day", "2")]]
    assert cost.days == {
        M30: {(C, ORG, (PR_SKU,)): 0.4},
        M31: {(C, ORG, (AI_SKU,)): 0.25},
        J1: {(C, ORG, ("Copilot Business",)): 7.3549},
    }
    per_day = {(P, Dims(model=SONNET), (PR_SKU,)): 10.0}
    assert premiums.days == {M30: per_day, M31: per_day}
    credits = {(A, Dims(model=GPT5), ()): 100.0, (C, Dims(model=GPT5), (AI_SKU,)): 1.0}
    assert ai.days == {J1: credits, J2: credits}
    assert (cost.watermark, ai.watermark, premiums.watermark) == (
        float(J2), float(J_END), float(J1))
    assert [(b.start, b.end) for b in result.batches] == [(M30, J_END)] * 3


# --- pagination -----------------------------------------------------------------------------


def test_link_pagination_is_followed(env: Env) -> None:
    items = fixture("usage")["usageItems"]
    link = (f'<{BASE}{USAGE}?year=2026&month=3&page=2>; rel="next", '
            f'<{BASE}{USAGE}?year=2026&month=3&page=2>; rel="last"')
    env.usage.mock(side_effect=[
        httpx.Response(200, json={"usageItems": items[:4]}, headers={"link": link}),
        httpx.Response(200, json={"usageItems": items[4:]},
                       headers={"link": f'<{BASE}{USAGE}?year=2026&month=3&page=1>; rel="prev"'}),
    ])
    cost, _ = env.fetch().batches
    assert cost.days == EXPECTED_COST  # both pages summed, and nothing twice
    assert params(env.usage) == [[("year", "2026"), ("month", "3")],
                                 [("year", "2026"), ("month", "3"), ("page", "2")]]
    assert env.observed[:2] == [(USAGE, "200"), (USAGE, "200")]


def test_every_page_of_a_day_is_checked_against_the_day(env: Env) -> None:
    link = {"link": f'<{BASE}{AI}?year=2026&month=6&day=2&page=2>; rel="next"'}
    page2 = report(J2, credit(GPT5, 40, 0.4), credit(SONNET, 25, "0.25"))
    env.credits.mock(side_effect=[
        httpx.Response(200, json=report(J2, credit(GPT5, 60, 0.6)), headers=link),
        httpx.Response(200, json=page2),
    ])
    _, ai = env.june().batches
    assert ai.days == {J2: {
        (A, Dims(model=GPT5), ()): 100.0,
        (C, Dims(model=GPT5), (AI_SKU,)): 1.0,  # 0.6 + 0.4 summed exactly
        (A, Dims(model=SONNET), ()): 25.0,
        (C, Dims(model=SONNET), (AI_SKU,)): 0.25,
    }}
    assert params(env.credits)[1] == [("year", "2026"), ("month", "6"), ("day", "2"),
                                      ("page", "2")]
    env.credits.mock(side_effect=[
        httpx.Response(200, json=report(J2, credit(GPT5, 60, 0.6)), headers=link),
        httpx.Response(200, json={**page2, "timePeriod": {"year": 2026, "month": 6}}),
    ])
    result = env.june()
    (err,) = failed(result, Dataset.AI_CREDITS)
    assert (err.reason, str(err)) == ("parse", f"GET {AI}: timePeriod.day is None, asked 2")
    batches(result, Dataset.COST)


@pytest.mark.parametrize("target, host", [
    (f"https://evil.example{USAGE}?page=2", "evil.example"),
    (f"https://api.github.com.evil.example{USAGE}?page=2", "api.github.com.evil.example"),
    (f"http://api.github.com{USAGE}?page=2", "api.github.com"),  # not over plain http
    (f"{USAGE}?page=2", "?"),  # relative: not the account's base URL either
    # another path of the same host: would be counted as this report, its path a label
    (f"https://api.github.com{USAGE}/ghp_SECRETTOKEN1234567890abcdef?page=2", "api.github.com"),
])
def test_a_next_link_off_the_base_url_is_refused(env: Env, target: str, host: str) -> None:
    env.usage.mock(return_value=httpx.Response(
        200, json=fixture("usage"), headers={"link": f'<{target}>; rel="next"'}))
    result = env.fetch()  # respx would fail any request to another host
    (err,) = failed(result, Dataset.COST)
    assert (err.reason, str(err)) == ("parse", f"GET {USAGE}: next page link to {host} refused")
    assert env.usage.call_count == 1
    (premium,) = batches(result, Dataset.PREMIUM_REQUESTS)  # the next dataset is still read
    assert premium.days == EXPECTED_PREMIUM


# --- malformed replies ----------------------------------------------------------------------


def test_time_period_must_be_the_day_asked_for(env: Env) -> None:
    wrong = {**fixture("premium_d1"), "timePeriod": {"year": 2026, "month": 3}}
    env.premium.mock(side_effect=[httpx.Response(200, json=wrong),
                                  httpx.Response(200, json=fixture("premium_d2"))])
    result = env.fetch()  # day not echoed: could be the month's sum, not booked as day 1
    (err,) = failed(result, Dataset.PREMIUM_REQUESTS)
    assert (err.reason, str(err)) == ("parse", f"GET {PREMIUM}: timePeriod.day is None, asked 1")
    (cost,) = batches(result, Dataset.COST)
    assert cost.days == EXPECTED_COST
    wrong["timePeriod"] = {"year": 2026, "month": 3, "day": 9}
    env.premium.mock(side_effect=None, return_value=httpx.Response(200, json=wrong))
    (err,) = failed(env.fetch(), Dataset.PREMIUM_REQUESTS)
    assert (err.reason, str(err)) == ("parse", f"GET {PREMIUM}: timePeriod.day is 9, asked 1")


BAD_USAGE_ITEMS = [
    ({"date": "1 March", "product": "Copilot", "sku": "x", "netAmount": 1}, "bad date '1 March'"),
    ({"date": None, "product": "Copilot", "sku": "x", "netAmount": 1}, "'date' None"),
    ({"date": "2026-03-01", "product": "Copilot", "sku": "x", "netAmount": "abc"}, "not a number"),
    ({"date": "2026-03-01", "product": "Copilot", "sku": "x"}, "amount None is not a number"),
    ({"date": "2026-03-01", "product": 7, "sku": "x", "netAmount": 1}, "'product' is not a string"),
]


@pytest.mark.parametrize("item, message", BAD_USAGE_ITEMS)
def test_a_bad_usage_item_is_skipped_and_counted(
    env: Env, item: dict[str, Any], message: str
) -> None:
    items = fixture("usage")["usageItems"]
    env.usage.mock(return_value=httpx.Response(200, json={"usageItems": [*items[:3], item,
                                                                         *items[3:]]}))
    result = env.fetch()
    assert result.failures == {}
    cost, _ = batches(result, Dataset.COST, Dataset.PREMIUM_REQUESTS)
    assert cost.days == EXPECTED_COST  # the bad item adds nothing, the others all count
    assert cost.skipped_rows == 1
    assert cost.skipped_error.startswith(f"GET {USAGE}: ") and message in cost.skipped_error


@pytest.mark.parametrize("item, message", BAD_USAGE_ITEMS)
def test_only_bad_usage_items_fail_the_cost(env: Env, item: dict[str, Any], message: str) -> None:
    env.usage.mock(return_value=httpx.Response(200, json={"usageItems": [item, item]}))
    result = env.fetch()
    (err,) = failed(result, Dataset.COST)
    assert err.reason == "parse"
    assert str(err).startswith(f"every row is malformed (GET {USAGE}: ") and message in str(err)
    (premium,) = batches(result, Dataset.PREMIUM_REQUESTS)
    assert premium.days == EXPECTED_PREMIUM


def test_a_bad_premium_item_is_skipped_and_counted(env: Env) -> None:
    body = fixture("premium_d2")
    body["usageItems"].insert(1, {**body["usageItems"][0], "grossQuantity": "lots"})
    env.premium.mock(side_effect=[httpx.Response(200, json=fixture("premium_d1")),
                                  httpx.Response(200, json=body)])
    _, premiums = env.fetch().batches
    assert premiums.days == EXPECTED_PREMIUM
    assert (premiums.skipped_rows, premiums.skipped_error) == (
        1, f"GET {PREMIUM}: 'grossQuantity' not a non-negative number ('lots')")


def test_a_bad_credit_item_adds_nothing(env: Env) -> None:
    # Its credits are well-formed but its amount is not: the whole item is left out.
    env.credits.mock(side_effect=echo(credit(GPT5, 100, 1), credit(GPT5, 50, "n/a"),
                                      credit(SONNET, -3, 0)))
    result = env.june()
    _, ai = batches(result, Dataset.COST, Dataset.AI_CREDITS)
    assert ai.days == {J2: {(A, Dims(model=GPT5), ()): 100.0,
                            (C, Dims(model=GPT5), (AI_SKU,)): 1.0}}
    assert (ai.skipped_rows, ai.skipped_error) == (
        2, f"GET {AI}: amount 'n/a' is not a number")


def test_only_bad_credit_items_fail_the_credits(env: Env) -> None:
    env.credits.mock(side_effect=echo(credit(GPT5, 50, None), {"product": "Copilot"}))
    result = env.june()
    (err,) = failed(result, Dataset.AI_CREDITS)
    assert (err.reason, str(err)) == (
        "parse", f"every row is malformed (GET {AI}: amount None is not a number)")
    batches(result, Dataset.COST)


@pytest.mark.parametrize("body, message", [
    ({"usageItems": "nope"}, "'timePeriod' is not an object"),
    ({"timePeriod": "2026-03-01", "usageItems": []}, "'timePeriod' is not an object"),
    ({"timePeriod": {"year": 2026, "month": 3, "day": 1}, "usageItems": "nope"},
     "'usageItems' is not a list of objects"),
])
def test_bad_premium_reports_fail_only_their_dataset(
    env: Env, body: dict[str, Any], message: str
) -> None:
    env.premium.mock(side_effect=None, return_value=httpx.Response(200, json=body))
    result = env.fetch()
    (err,) = failed(result, Dataset.PREMIUM_REQUESTS)
    assert (err.reason, str(err)) == ("parse", f"GET {PREMIUM}: {message}")
    (cost,) = batches(result, Dataset.COST)
    assert cost.days == EXPECTED_COST
    assert env.premium.call_count == 1  # the dataset's first bad day ends its read


@pytest.mark.parametrize("item, message", [
    ({"product": "Copilot", "sku": "x", "model": "m", "grossQuantity": -1},
     "'grossQuantity' not a non-negative number (-1)"),
    ({"product": "Copilot", "sku": "x", "model": "m"}, "'grossQuantity' missing"),
    ({"product": "Copilot", "sku": "x", "model": ["m"], "grossQuantity": 1},
     "'model' is not a string (['m'])"),
])
def test_only_bad_premium_items_fail_the_premium_requests(
    env: Env, item: dict[str, Any], message: str
) -> None:
    env.premium.mock(side_effect=echo(item))
    result = env.fetch()
    (err,) = failed(result, Dataset.PREMIUM_REQUESTS)
    assert (err.reason, str(err)) == (
        "parse", f"every row is malformed (GET {PREMIUM}: {message})")
    assert env.premium.call_count == 2  # every day read: one good day would have been enough
    batches(result, Dataset.COST)


# --- HTTP errors ----------------------------------------------------------------------------


def test_bad_credentials_is_auth_without_the_token(env: Env) -> None:
    bad = httpx.Response(401, json={
        "message": "Bad credentials", "documentation_url": "https://docs.github.com/rest",
        "status": "401"})
    env.usage.mock(return_value=bad)
    env.premium.mock(side_effect=None, return_value=bad)
    result = env.fetch()
    cost_err, premium_err = failed(result, Dataset.COST, Dataset.PREMIUM_REQUESTS)
    assert (cost_err.reason, str(cost_err)) == ("auth", f"GET {USAGE}: HTTP 401: Bad credentials")
    assert premium_err is cost_err  # a 401 ends the poll: the token is valid nowhere
    assert result.batches == []
    assert (env.usage.call_count, env.premium.call_count) == (1, 0)  # never retried


def test_not_found_is_http_4xx(env: Env) -> None:
    env.usage.mock(return_value=httpx.Response(404, json={"message": "Not Found"}))
    result = env.fetch()
    (err,) = failed(result, Dataset.COST)
    assert err.reason == "http_4xx"
    (premium,) = batches(result, Dataset.PREMIUM_REQUESTS)
    assert premium.days == EXPECTED_PREMIUM


def test_unavailable_is_retried_then_succeeds(env: Env) -> None:
    env.usage.mock(side_effect=[httpx.Response(503, json={"message": "Service unavailable"}),
                                httpx.Response(200, json=fixture("usage"))])
    cost, _ = env.fetch().batches
    assert cost.days == EXPECTED_COST
    assert env.slept == [0.5]
    assert env.observed[:2] == [(USAGE, "503"), (USAGE, "200")]


def test_rate_limited_with_long_retry_after_goes_to_the_scheduler(env: Env) -> None:
    env.premium.mock(side_effect=None, return_value=httpx.Response(
        429, headers={"retry-after": "120"}, json={"message": "API rate limit exceeded"}))
    result = env.fetch()
    (err,) = failed(result, Dataset.PREMIUM_REQUESTS)
    assert (err.reason, err.retry_after) == ("rate_limited", 120.0)
    assert env.slept == []
    (cost,) = batches(result, Dataset.COST)
    assert cost.days == EXPECTED_COST


@pytest.mark.parametrize("answer, reason", [
    (httpx.Response(429, headers={"retry-after": "120"},
                    json={"message": "API rate limit exceeded"}), "rate_limited"),
    (httpx.ConnectError("connection refused"), "connection"),
])
def test_an_account_wide_failure_stops_the_poll(
    env: Env, answer: httpx.Response | Exception, reason: str
) -> None:
    env.usage.mock(side_effect=[answer] * 4)
    result = env.fetch(start=M30, end=J_END)  # all three datasets due
    errors = failed(result, Dataset.COST, Dataset.AI_CREDITS, Dataset.PREMIUM_REQUESTS)
    assert errors[0].reason == reason
    assert errors[1] is errors[0] and errors[2] is errors[0]  # recorded, not tried
    assert (env.credits.call_count, env.premium.call_count) == (0, 0)
    assert result.batches == []


def test_malformed_json_is_parse(env: Env) -> None:
    env.usage.mock(return_value=httpx.Response(200, text='{"usageItems": ['))
    result = env.fetch()
    (err,) = failed(result, Dataset.COST)
    assert (err.reason, str(err)) == ("parse", f"GET {USAGE}: response is not valid JSON")
    batches(result, Dataset.PREMIUM_REQUESTS)


def test_registered_and_options_validated_by_config() -> None:
    assert PROVIDERS["github_copilot"] is GitHubCopilotProvider
    base = "accounts:\n  - name: gh\n    provider: github_copilot\n    api_key: ${K}\n"
    config = parse_config(base + "    options: {enterprise: octo-ent}\n", env={"K": TOKEN})
    assert config.accounts[0].options == GitHubCopilotOptions(enterprise="octo-ent")
    for options, problem in [
        ("{}", "options: Value error, set exactly one of 'organization' or 'enterprise'"),
        ("{organization: a, enterprise: b}",
         "options: Value error, set exactly one of 'organization' or 'enterprise'"),
        ("{organization: '../x'}",
         "options.organization: Value error, "
         "must be a GitHub organization name or enterprise slug"),
        ("{organization: a, products: []}",
         "options.products: Value error, must list at least one non-empty product name"),
        ("{org: a}", "options.org: Extra inputs are not permitted"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_config(base + f"    options: {options}\n", env={"K": TOKEN})
        assert info.value.problems == [f"accounts[0]: {problem}"]
    with pytest.raises(ConfigError) as info:
        parse_config(base, env={"K": TOKEN})
    assert info.value.problems == [
        "accounts[0]: options: Value error, set exactly one of 'organization' or 'enterprise'"]


def test_provider_refuses_missing_options() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        GitHubCopilotProvider(ProviderSettings(account="gh", api_key=lambda: TOKEN),
                              observe=lambda endpoint, code: None)


def test_every_dataset_may_lag_three_days() -> None:
    # Days without usage have no items: a quiet weekend must not read as stale data.
    three_days = 72 * 3600.0
    assert GitHubCopilotProvider.expected_lag == {
        Dataset.COST: three_days,
        Dataset.AI_CREDITS: three_days,
        Dataset.PREMIUM_REQUESTS: three_days,
    }
