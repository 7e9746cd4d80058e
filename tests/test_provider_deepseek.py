"""DeepSeek provider: the balance as a USD gauge, conversion only with a configured rate."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from exporter.config.schema import ConfigError, parse_config
from exporter.core.ledger import Ledger
from exporter.core.records import Dims, Family, FetchResult
from exporter.sources.providers.base import ProviderError, ProviderSettings
from exporter.sources.providers.deepseek import DeepSeekOptions, DeepSeekProvider

FIXTURES = Path(__file__).parent / "fixtures" / "deepseek"
KEY = "sk-FAKEKEY-deepseek-do-not-leak-42"
BASE = "https://api.deepseek.com"
BALANCE = (Family.CREDITS_REMAINING, Dims(), ())
NOW = 1767398400 + 3600


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


class Env:
    def __init__(self, router: respx.MockRouter) -> None:
        self.route = router.get("/user/balance").mock(
            return_value=httpx.Response(200, json=fixture("balance_usd"))
        )

    def provider(self, options: Any = None) -> DeepSeekProvider:
        async def sleep(seconds: float) -> None:
            pass

        return DeepSeekProvider(
            ProviderSettings(account="ds", api_key=lambda: KEY, options=options),
            observe=lambda endpoint, code: None,
            sleep=sleep,
        )

    def fetch(self, provider: DeepSeekProvider | None = None, **kw: Any) -> FetchResult:
        provider = provider or self.provider(**kw)
        return asyncio.run(provider.fetch(NOW - 86_400, NOW))

    def serve(self, name: str) -> None:
        self.route.mock(return_value=httpx.Response(200, json=fixture(name)))


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


def test_usd_balance_is_the_gauge_and_there_is_no_usage(env: Env) -> None:
    result = env.fetch()
    assert result.batches == []
    assert result.gauges == {BALANCE: 42.17}
    assert env.route.calls[0].request.headers["authorization"] == f"Bearer {KEY}"
    ledger = Ledger()  # an empty batch list is a valid poll: no counters, no watermark
    ledger.apply(result, NOW)
    assert (ledger.totals, ledger.watermarks) == ({}, {})


def test_cny_is_converted_with_a_configured_rate(env: Env) -> None:
    env.serve("balance_cny")
    options = DeepSeekOptions.model_validate({"currency_rates": {"cny": 0.14}})
    assert env.fetch(options=options).gauges == {BALANCE: 15.4}


def test_cny_without_a_rate_is_not_exported_and_warned_once(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.serve("balance_cny")
    provider = env.provider()
    caplog.set_level(logging.DEBUG, logger="exporter.sources.providers.deepseek")
    assert env.fetch(provider).gauges == {}
    assert env.fetch(provider).gauges == {}
    levels = [r.levelno for r in caplog.records if "cannot be converted" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG]
    assert "balance in CNY cannot be converted to USD" in caplog.records[0].getMessage()


def test_a_zero_balance_in_another_currency_does_not_block_the_usd_one(env: Env) -> None:
    env.serve("balance_mixed")
    assert env.fetch().gauges == {BALANCE: 5.5}


def test_bad_key_and_malformed_balance(env: Env) -> None:
    env.route.mock(return_value=httpx.Response(401, json=fixture("error_auth")))
    with pytest.raises(ProviderError) as info:
        env.fetch()
    assert info.value.reason == "auth"
    assert KEY not in str(info.value)
    body = fixture("balance_usd")
    body["balance_infos"][0]["total_balance"] = "42,17"
    env.route.mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(ProviderError) as info:
        env.fetch()
    assert (info.value.reason, str(info.value)) == (
        "parse",
        "GET /user/balance: amount '42,17' is not a number",
    )


CONFIG = """
accounts:
  - name: ds
    provider: deepseek
    api_key: ${{DS_KEY}}
{options}
"""


def test_options_are_validated_in_the_config_file() -> None:
    config = parse_config(
        CONFIG.format(options="    options: {currency_rates: {CNY: 0.14}}"), env={"DS_KEY": "x"}
    )
    assert config.accounts[0].options == DeepSeekOptions(currency_rates={"CNY": 0.14})
    with pytest.raises(ConfigError) as info:
        parse_config(
            CONFIG.format(options="    options: {currency_rates: {CNY: -1}}"), env={"DS_KEY": "x"}
        )
    assert info.value.problems == [
        "accounts[0]: options.currency_rates: Value error, rate for CNY must be a positive number"
    ]
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG.format(options="    options: {rates: {CNY: 1}}"), env={"DS_KEY": "x"})
    assert info.value.problems == ["accounts[0]: options.rates: Extra inputs are not permitted"]
