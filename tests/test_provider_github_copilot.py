"""GitHub Copilot provider: billing usage + premium request reports → exact Batch contents."""

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
from exporter.sources.providers import PROVIDERS
from exporter.sources.providers.base import ProviderError, ProviderSettings
from exporter.sources.providers.github_copilot import GitHubCopilotOptions, GitHubCopilotProvider

FIXTURES = Path(__file__).parent / "fixtures" / "github_copilot"
TOKEN = "ghp_FAKEtokenGitHubDoNotLeak0123456789"
BASE = "https://api.github.com"
ORG_PREFIX = "/organizations/octo-demo/settings/billing"
USAGE, PREMIUM = f"{ORG_PREFIX}/usage", f"{ORG_PREFIX}/premium_request/usage"
D0, D1, D2 = 1772236800, 1772323200, 1772409600  # 2026-02-28, 03-01, 03-02 00:00 UTC
END = D2 + 55_800  # poll at 2026-03-02 15:30 UTC
SONNET, HAIKU = "Claude Sonnet 4.5", "Claude Haiku 4.5"
PR_SKU = "Copilot Premium Request"
C, P = Family.BILLED_COST, Family.PREMIUM_REQUESTS


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


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

        return asyncio.run(go(provider or self.provider()))

    def fail(self, provider: GitHubCopilotProvider | None = None) -> ProviderError:
        with pytest.raises(ProviderError) as info:
            self.fetch(provider)
        assert TOKEN not in str(info.value)
        return info.value


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


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
    premium, cost = result.batches
    assert (cost.dataset, cost.start, cost.end, cost.watermark) == (
        Dataset.COST, D1, END, float(END))
    assert cost.days == EXPECTED_COST  # Feb 28 is outside the window, Actions is dropped
    assert (premium.dataset, premium.start, premium.end, premium.watermark) == (
        Dataset.USAGE, D1, END, float(END))
    assert premium.days == EXPECTED_PREMIUM
    assert result.project_names == {} and result.gauges == {}


def test_requests_params_and_headers(env: Env) -> None:
    env.fetch()
    assert list(env.usage.calls[0].request.url.params.multi_items()) == [
        ("year", "2026"), ("month", "3")]
    assert [list(c.request.url.params.multi_items()) for c in env.premium.calls] == [
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
    assert [b.days for b in result.batches] == [{}, {}]
    assert [b.watermark for b in result.batches] == [None, None]


def test_window_across_a_month_boundary(env: Env) -> None:
    env.premium.mock(side_effect=[
        httpx.Response(200, json={"timePeriod": {"year": 2026, "month": 2, "day": 28},
                                  "usageItems": []}),
        httpx.Response(200, json=fixture("premium_d1")),
    ])
    premium, cost = env.fetch(start=D0, end=D1 + 600).batches
    assert [list(c.request.url.params.multi_items()) for c in env.usage.calls] == [
        [("year", "2026"), ("month", "2")], [("year", "2026"), ("month", "3")]]
    # Both answers hold every fixture item: only the month asked for counts, never twice.
    assert cost.days == {
        D0: {(C, ORG, ("Copilot Business",)): 8.1434},
        D1: {(C, ORG, ("Copilot Business",)): 7.3549},
    }
    assert premium.days == {D1: EXPECTED_PREMIUM[D1]}


def test_without_grouping_and_custom_products(env: Env) -> None:
    options = {"organization": "octo-demo", "products": ["copilot", "SPARK"]}
    premium, cost = env.fetch(env.provider(options, group_by=())).batches
    assert cost.days[D2] == {(C, Dims(), ("Copilot Business",)): 7.3549,
                             (C, Dims(), (PR_SKU,)): 8.9132}
    assert premium.days[D2] == {(P, Dims(), (PR_SKU,)): 300.33,
                                (P, Dims(), ("Spark Premium Request",)): 7.0}


def test_time_period_must_be_the_day_asked_for(env: Env) -> None:
    wrong = {**fixture("premium_d1"), "timePeriod": {"year": 2026, "month": 3}}
    env.premium.mock(side_effect=[httpx.Response(200, json=wrong),
                                  httpx.Response(200, json=fixture("premium_d2"))])
    premium, _ = env.fetch().batches  # month/day not echoed: tolerated
    assert premium.days == EXPECTED_PREMIUM
    wrong["timePeriod"] = {"year": 2026, "month": 3, "day": 9}
    env.premium.mock(side_effect=None, return_value=httpx.Response(200, json=wrong))
    err = env.fail()
    assert (err.reason, str(err)) == ("parse", f"GET {PREMIUM}: timePeriod.day is 9, asked 1")


@pytest.mark.parametrize("item, message", [
    ({"date": "1 March", "product": "Copilot", "sku": "x", "netAmount": 1}, "bad date '1 March'"),
    ({"date": None, "product": "Copilot", "sku": "x", "netAmount": 1}, "'date' None"),
    ({"date": "2026-03-01", "product": "Copilot", "sku": "x", "netAmount": "abc"}, "not a number"),
    ({"date": "2026-03-01", "product": "Copilot", "sku": "x"}, "amount None is not a number"),
    ({"date": "2026-03-01", "product": 7, "sku": "x", "netAmount": 1}, "'product' is not a string"),
])
def test_bad_usage_items_are_parse_errors(env: Env, item: dict[str, Any], message: str) -> None:
    env.usage.mock(return_value=httpx.Response(200, json={"usageItems": [item]}))
    err = env.fail()
    assert err.reason == "parse"
    assert message in str(err)


@pytest.mark.parametrize("body", [
    {"usageItems": "nope"},
    {"timePeriod": "2026-03-01", "usageItems": []},
    {"timePeriod": {"year": 2026, "month": 3, "day": 1},
     "usageItems": [{"product": "Copilot", "sku": "x", "model": "m", "grossQuantity": -1}]},
    {"timePeriod": {"year": 2026, "month": 3, "day": 1},
     "usageItems": [{"product": "Copilot", "sku": "x", "model": "m"}]},
])
def test_bad_premium_reports_are_parse_errors(env: Env, body: dict[str, Any]) -> None:
    env.premium.mock(side_effect=None, return_value=httpx.Response(200, json=body))
    assert env.fail().reason == "parse"


def test_bad_credentials_is_auth_without_the_token(env: Env) -> None:
    env.usage.mock(return_value=httpx.Response(401, json={
        "message": "Bad credentials", "documentation_url": "https://docs.github.com/rest",
        "status": "401"}))
    err = env.fail()
    assert (err.reason, str(err)) == ("auth", f"GET {USAGE}: HTTP 401: Bad credentials")
    assert env.premium.call_count == 0


def test_not_found_is_http_4xx(env: Env) -> None:
    env.usage.mock(return_value=httpx.Response(404, json={"message": "Not Found"}))
    assert env.fail().reason == "http_4xx"


def test_unavailable_is_retried_then_succeeds(env: Env) -> None:
    env.usage.mock(side_effect=[httpx.Response(503, json={"message": "Service unavailable"}),
                                httpx.Response(200, json=fixture("usage"))])
    _, cost = env.fetch().batches
    assert cost.days == EXPECTED_COST
    assert env.slept == [0.5]
    assert env.observed[:2] == [(USAGE, "503"), (USAGE, "200")]


def test_rate_limited_with_long_retry_after_goes_to_the_scheduler(env: Env) -> None:
    env.premium.mock(side_effect=None, return_value=httpx.Response(
        429, headers={"retry-after": "120"}, json={"message": "API rate limit exceeded"}))
    err = env.fail()
    assert (err.reason, err.retry_after) == ("rate_limited", 120.0)


def test_malformed_json_is_parse(env: Env) -> None:
    env.usage.mock(return_value=httpx.Response(200, text='{"usageItems": ['))
    assert env.fail().reason == "parse"


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
