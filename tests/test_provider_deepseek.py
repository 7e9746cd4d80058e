"""DeepSeek provider: the balance (and is_available) as gauges of one BALANCE batch, conversion
only with a configured rate, every field optional."""

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
from exporter.core.records import Dataset, Dims, Family, FetchResult, SeriesKey
from exporter.sources.providers.base import ProviderError, ProviderSettings
from exporter.sources.providers.deepseek import DeepSeekOptions, DeepSeekProvider

FIXTURES = Path(__file__).parent / "fixtures" / "deepseek"
KEY = "sk-FAKEKEY-deepseek-do-not-leak-42"
BASE = "https://api.deepseek.com"
BALANCE = (Family.CREDITS_REMAINING, Dims(), ())
AVAILABLE = (Family.CREDITS_AVAILABLE, Dims(), ())
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
    (batch,) = result.batches
    assert (batch.dataset, batch.days, batch.watermark) == (Dataset.BALANCE, {}, None)
    assert batch.gauges == {BALANCE: 42.17, AVAILABLE: 1.0}
    assert (batch.skipped_rows, result.failures) == (0, {})
    assert env.route.calls[0].request.headers["authorization"] == f"Bearer {KEY}"
    ledger = Ledger()  # a batch of gauges only is a valid poll: no counters, no watermark
    ledger.apply(result, NOW)
    assert (ledger.totals, ledger.watermarks) == ({}, {})


def gauges(result: FetchResult) -> dict[SeriesKey, float]:
    """The one BALANCE batch's gauges (the poll must not have failed)."""
    assert result.failures == {}
    (batch,) = result.batches
    assert batch.dataset is Dataset.BALANCE
    return batch.gauges


def test_official_example_is_cny_and_converted_with_a_configured_rate(env: Env) -> None:
    # The documented example body (api-docs.deepseek.com, get-user-balance): CNY 110.00.
    env.serve("balance_cny")
    options = DeepSeekOptions.model_validate({"currency_rates": {"cny": 0.14}})
    assert gauges(env.fetch(options=options)) == {BALANCE: 15.4, AVAILABLE: 1.0}


def test_cny_without_a_rate_is_not_exported_and_warned_once(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    env.serve("balance_cny")
    provider = env.provider()
    caplog.set_level(logging.DEBUG, logger="exporter.sources.providers.deepseek")
    # is_available is still published: only the balance needs the rate
    assert gauges(env.fetch(provider)) == {AVAILABLE: 1.0}
    assert gauges(env.fetch(provider)) == {AVAILABLE: 1.0}
    levels = [r.levelno for r in caplog.records if "cannot be converted" in r.getMessage()]
    assert levels == [logging.WARNING, logging.DEBUG]
    assert "balance in CNY cannot be converted to USD" in caplog.records[0].getMessage()


def test_a_zero_balance_in_another_currency_does_not_block_the_usd_one(env: Env) -> None:
    env.serve("balance_mixed")
    assert gauges(env.fetch()) == {BALANCE: 5.5, AVAILABLE: 1.0}


def test_not_available_is_zero(env: Env) -> None:
    env.route.mock(return_value=httpx.Response(200, json={
        "is_available": False,
        "balance_infos": [{"currency": "USD", "total_balance": "0.00",
                           "granted_balance": "0.00", "topped_up_balance": "0.00"}]}))
    assert gauges(env.fetch()) == {BALANCE: 0.0, AVAILABLE: 0.0}


@pytest.mark.parametrize("body, expected", [
    # every field of the reply is optional: what is missing is not published, never read as 0
    ({}, {}),
    ({"is_available": True}, {AVAILABLE: 1.0}),
    ({"balance_infos": None, "is_available": False}, {AVAILABLE: 0.0}),
    ({"balance_infos": [{"currency": "USD", "total_balance": "42.17"}]}, {BALANCE: 42.17}),
    # no total_balance: granted + topped up, exactly
    ({"is_available": True, "balance_infos": [
        {"currency": "USD", "granted_balance": "0.10", "topped_up_balance": "0.20"}]},
     {BALANCE: 0.3, AVAILABLE: 1.0}),
    ({"balance_infos": [{"currency": "USD", "total_balance": None,
                         "granted_balance": "1.5", "topped_up_balance": "40"}]},
     {BALANCE: 41.5}),
    # neither the total nor both parts: the balance is unknown, so not published
    ({"is_available": True, "balance_infos": [{"currency": "USD"}]}, {AVAILABLE: 1.0}),
    ({"balance_infos": [{"currency": "USD", "granted_balance": "5.00"}]}, {}),
    # an empty list says nothing about the balance: not a balance of 0
    ({"is_available": False, "balance_infos": []}, {AVAILABLE: 0.0}),
    # one unknown part makes the sum unknown: no understated balance
    ({"balance_infos": [{"currency": "USD", "total_balance": "5.00"},
                        {"currency": "USD", "topped_up_balance": "1.00"}]}, {}),
])
def test_missing_fields_are_not_published(
    env: Env, body: dict[str, Any], expected: dict[SeriesKey, float]
) -> None:
    env.route.mock(return_value=httpx.Response(200, json=body))
    assert gauges(env.fetch()) == expected


def failure(result: FetchResult) -> ProviderError:
    """The BALANCE dataset's error (nothing was read)."""
    assert result.batches == []
    assert list(result.failures) == [Dataset.BALANCE]
    err = result.failures[Dataset.BALANCE]
    assert isinstance(err, ProviderError)
    assert KEY not in str(err)
    return err


def test_bad_key_and_malformed_balance(env: Env) -> None:
    env.route.mock(return_value=httpx.Response(401, json=fixture("error_auth")))
    assert failure(env.fetch()).reason == "auth"
    body = fixture("balance_usd")
    body["balance_infos"][0]["total_balance"] = "42,17"
    env.route.mock(return_value=httpx.Response(200, json=body))
    err = failure(env.fetch())
    assert (err.reason, str(err)) == ("parse", "GET /user/balance: amount '42,17' is not a number")


@pytest.mark.parametrize("body, message", [
    ({"is_available": "yes"}, "GET /user/balance: 'is_available' is not a boolean"),
    ({"balance_infos": {"currency": "USD"}},
     "GET /user/balance: 'balance_infos' is not a list of objects"),
    ({"balance_infos": [{"currency": 840, "total_balance": "1"}]},
     "GET /user/balance: 'currency' is not a string (840)"),
    ({"balance_infos": [{"currency": "USD", "granted_balance": "x", "topped_up_balance": "1"}]},
     "GET /user/balance: amount 'x' is not a number"),
])
def test_wrong_types_fail_the_balance(env: Env, body: dict[str, Any], message: str) -> None:
    env.route.mock(return_value=httpx.Response(200, json=body))
    err = failure(env.fetch())
    assert (err.reason, str(err)) == ("parse", message)


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


def test_a_currency_string_reaches_the_log_short_and_plain(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    long = "X" * 5000 + "\n\x1b[31mforged log line"
    env.route.mock(return_value=httpx.Response(200, json={
        "is_available": True,
        "balance_infos": [{"currency": long, "total_balance": "5.00"}]}))
    env.fetch()
    assert "XXXXXXXX" in caplog.text and "X" * 9 not in caplog.text
    assert "forged" not in caplog.text and "\x1b" not in caplog.text
