"""Subscriptions: charges on billing days (clamped), as billed cost, in budgets and forecasts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from exporter.config.schema import ConfigError, parse_config
from exporter.core.budgets import AccountSpend, BudgetConfig
from exporter.core.records import DAY, Dataset, Dims, Family
from exporter.core.snapshot import AccountSnapshot, SnapshotStore
from exporter.scheduler import AccountPoller
from exporter.sources.push.provider import labelled
from exporter.sources.subscriptions import (
    SubscriptionConfig,
    SubscriptionProvider,
    evaluate_budgets,
    subscription_accounts,
)


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def sub(**overrides: Any) -> SubscriptionConfig:
    data: dict[str, Any] = {
        "name": "chatgpt-team",
        "provider": "openai",
        "account": "chatgpt",
        "amount_usd": 30,
        "per_seat": True,
        "seats": 12,
        "period": "monthly",
        "billing_day": 31,
    }
    data.update(overrides)
    return SubscriptionConfig.model_validate(data)


def test_monthly_billing_day_is_clamped_to_the_month() -> None:
    charges = sub().charges(ts("2027-01-01"), ts("2028-04-01"))
    days = [datetime.fromtimestamp(t, UTC).date().isoformat() for t in charges]
    assert days[:4] == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30"]
    assert days[-3:] == ["2028-01-31", "2028-02-29", "2028-03-31"]  # leap year
    assert len(days) == 15


def test_charge_is_counted_from_the_billing_days_start() -> None:
    s = sub(billing_day=15)
    assert s.charges(ts("2026-11-01"), ts("2026-11-15")) == []
    assert s.charges(ts("2026-11-01"), ts("2026-11-15") + 1) == [ts("2026-11-15")]


def test_yearly_and_flat() -> None:
    s = sub(period="yearly", billing_month=3, billing_day=1, per_seat=False, seats=None,
            amount_usd=4000)  # fmt: skip
    assert s.charge_usd == 4000
    assert s.charges(ts("2026-01-01"), ts("2028-12-31")) == [
        ts("2026-03-01"), ts("2027-03-01"), ts("2028-03-01")]  # fmt: skip
    assert sub().charge_usd == 360


def test_start_and_end_bound_the_charges() -> None:
    s = sub(billing_day=10, start="2026-09-10", end="2026-11-10")
    assert s.charges(ts("2026-01-01"), ts("2027-01-01")) == [ts("2026-09-10"), ts("2026-10-10")]


def test_provider_batch_covers_the_retention_window() -> None:
    subs = (sub(), sub(name="seats-2", billing_day=1, per_seat=False, seats=None, amount_usd=99))
    provider = labelled(SubscriptionProvider, "openai")(subs)
    assert provider.name == "openai"
    now = ts("2026-12-03T12:00:00")
    [batch] = asyncio.run(provider.fetch(ts("2026-12-01"), now)).batches
    assert (batch.dataset, batch.start, batch.end) == (Dataset.COST, ts("2026-11-24"), now)
    assert batch.days == {
        ts("2026-11-30"): {(Family.BILLED_COST, Dims("chatgpt-team"), ("subscription",)): 360.0},
        ts("2026-12-01"): {(Family.BILLED_COST, Dims("seats-2"), ("subscription",)): 99.0},
    }


def run_poller(subs: tuple[SubscriptionConfig, ...], times: list[str]) -> list[dict[Any, float]]:
    clock = [0.0]
    snapshots = SnapshotStore([AccountSnapshot("openai", "chatgpt")])
    poller = AccountPoller(
        account="chatgpt",
        provider_factory=lambda _: labelled(SubscriptionProvider, "openai")(subs),
        store=snapshots,
        poll_interval=300,
        settle_window=-DAY,
        clock=lambda: clock[0],
    )
    out = []
    for when in times:
        clock[0] = ts(when)
        asyncio.run(poller.poll_once())
        out.append(dict(poller.ledger.totals))
    return out


def test_poller_across_billing_days_and_month_boundaries() -> None:
    key = (Family.BILLED_COST, Dims("chatgpt-team"), ("subscription",))
    totals = run_poller(
        (sub(billing_day=31),),
        ["2026-11-29T23:59:00", "2026-11-30T00:00:01", "2026-11-30T23:00:00",
         "2026-12-01T00:00:01", "2026-12-31T00:00:01", "2027-02-28T00:00:01"],
    )  # fmt: skip
    assert [t.get(key, 0.0) for t in totals] == [0.0, 360.0, 360.0, 0.0, 360.0, 360.0]


def test_budgets_count_charges_and_forecast_the_ones_still_due() -> None:
    seats = sub(billing_day=5)  # $360, charged on Nov 5
    flat = sub(name="extra", billing_day=20, per_seat=False, seats=None, amount_usd=100)
    now = ts("2026-11-10T12:00:00")
    budget = BudgetConfig(name="all", period="month", limit_usd=1000)
    estimated = BudgetConfig(name="est", period="month", limit_usd=1000, basis="estimated")
    other = BudgetConfig.model_validate(
        {"name": "other", "period": "month", "limit_usd": 1000, "match": {"provider": "anthropic"}}
    )
    spends = [
        # A usage account estimated at $7 a day, Oct 30 to Nov 10.
        AccountSpend("anthropic", "ant", {},
                     {ts("2026-11-05") + i * DAY: {Dims(): 7.0} for i in range(-6, 6)},
                     settled_before=0, project_names={}),
        AccountSpend("openai", "chatgpt", {ts("2026-11-05"): {Dims("chatgpt-team"): 360.0}}, {},
                     settled_before=now + DAY, project_names={}),
    ]  # fmt: skip
    statuses = {
        b.name: b for b in evaluate_budgets([budget, estimated, other], spends, [seats, flat], now)
    }
    left = ts("2026-12-01") - now
    rate = 7 * 7 / (now - ts("2026-11-04"))  # the trailing 7 days, today included
    usage = 7.0 * 10  # Nov 1 to Nov 10
    assert statuses["all"].spend_usd == pytest.approx(usage + 360)
    # Not $360 extrapolated as a daily rate: the usage rate, plus the $100 due on Nov 20.
    assert statuses["all"].forecast_usd == pytest.approx(usage + rate * left + 360 + 100)
    assert statuses["est"].spend_usd == pytest.approx(usage)
    assert statuses["est"].forecast_usd == pytest.approx(usage + rate * left)
    assert statuses["other"].forecast_usd == pytest.approx(usage + rate * left)
    assert evaluate_budgets([budget], spends, [], now)[0].forecast_usd == pytest.approx(
        usage + 360 + (49 + 360) / (now - ts("2026-11-04")) * left
    )


def test_accounts_group_subscriptions() -> None:
    a, b = sub(), sub(name="extra", per_seat=False, seats=None)
    assert subscription_accounts([a, b]) == {"chatgpt": ("openai", (a, b))}


BASE = """
accounts: []
subscriptions:
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    return info.value.problems


def test_config_problems_are_all_reported_with_paths() -> None:
    text = (
        BASE
        + """
  - {name: a, provider: openai, account: x, amount_usd: 1, period: yearly, billing_day: 40,
     seats: 3}
  - {name: a, provider: cursor, account: x, amount_usd: -1, per_seat: true, period: monthly,
     billing_day: 1, billing_month: 2, start: 2026-02-01, end: 2026-01-01}
"""
    )
    assert problems(text) == [
        "subscriptions[0].billing_day: Input should be less than or equal to 31",
        "subscriptions[1].amount_usd: Input should be greater than 0",
        "subscriptions[0].seats: only used with per_seat: true",
        "subscriptions[0].billing_month: required for a yearly subscription",
        "subscriptions[1].seats: required with per_seat: true",
        "subscriptions[1].billing_month: only used with period: yearly",
        "subscriptions[1].end: must be after start",
        "subscriptions[1].name: duplicate subscription name 'a' (also subscriptions[0])",
        "subscriptions[1].provider: account 'x' has provider 'openai' in subscriptions[0]",
    ]


def test_subscription_account_may_not_reuse_a_polled_name_and_budgets_see_it() -> None:
    text = """
accounts:
  - {name: oai, provider: openai, api_key: sk-x}
subscriptions:
  - {name: a, provider: openai, account: oai, amount_usd: 1, period: monthly, billing_day: 1}
budgets:
  - {name: b, period: month, limit_usd: 1, match: {provider: cursor}}
"""
    assert problems(text) == [
        "subscriptions[0].account: 'oai' is already the name of a polled or pushed account; "
        "give the subscription's account its own name",
        "budgets[0].match.provider: no configured account uses provider 'cursor'",
    ]
    ok = parse_config(BASE + """
  - {name: a, provider: cursor, account: cur, amount_usd: 1, period: monthly, billing_day: 1}
budgets:
  - {name: b, period: month, limit_usd: 1, match: {provider: cursor, account: cur}}
""")  # fmt: skip
    assert [s.account for s in ok.subscriptions] == ["cur"]


def test_names_and_provider_labels_follow_the_accounts_rules() -> None:
    text = (
        BASE
        + """
  - {name: "-a", provider: "bad label", account: "x y", amount_usd: 1, period: monthly,
     billing_day: 1}
"""
    )
    name_rule = (
        "must start with a letter or digit and contain only letters, digits, '_', '.' and '-'"
    )
    assert problems(text) == [
        f"subscriptions[0].name: {name_rule}",
        "subscriptions[0].provider: must be 1-64 characters, start with a letter or digit and "
        "contain only letters, digits, '_', '.' and '-'",
        f"subscriptions[0].account: {name_rule}",
    ]
