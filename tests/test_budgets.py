"""Budgets: UTC calendar periods, spend per basis, forecast, matching."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from exporter.core.budgets import (
    AccountSpend,
    BudgetConfig,
    BudgetMatch,
    evaluate,
    limit_forecasts,
    period_bounds,
)
from exporter.core.records import DAY, Dims, Family, SeriesKey


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def day(text: str) -> int:
    return int(ts(text + "T00:00:00"))


def test_period_bounds_are_utc_calendar_periods() -> None:
    assert period_bounds("day", ts("2026-11-26T23:59:59")) == (day("2026-11-26"), day("2026-11-27"))
    assert period_bounds("day", ts("2026-11-27T00:00:00")) == (day("2026-11-27"), day("2026-11-28"))
    # 2026-11-26 is a Thursday; weeks start on Monday, also across a month boundary.
    assert period_bounds("week", ts("2026-11-26T10:00:00")) == (
        day("2026-11-23"),
        day("2026-11-30"),
    )
    assert period_bounds("week", ts("2026-11-30T00:00:00")) == (
        day("2026-11-30"),
        day("2026-12-07"),
    )
    assert period_bounds("week", ts("2026-12-02T12:00:00")) == (
        day("2026-11-30"),
        day("2026-12-07"),
    )
    assert period_bounds("month", ts("2026-11-30T23:59:59")) == (
        day("2026-11-01"),
        day("2026-12-01"),
    )
    assert period_bounds("month", ts("2026-12-31T12:00:00")) == (
        day("2026-12-01"),
        day("2027-01-01"),
    )
    assert period_bounds("month", ts("2028-02-29T12:00:00")) == (
        day("2028-02-01"),
        day("2028-03-01"),
    )


OPENAI = Dims("proj_a", "gpt-4.1")
OTHER = Dims("proj_b", "gpt-4.1-mini")


def spend(
    billed: dict[str, dict[Dims, float]],
    estimated: dict[str, dict[Dims, float]],
    *,
    settled_before: str = "2026-11-24",
    provider: str = "openai",
    account: str = "oai",
) -> AccountSpend:
    return AccountSpend(
        provider=provider,
        account=account,
        billed={day(d): v for d, v in billed.items()},
        estimated={day(d): v for d, v in estimated.items()},
        settled_before=day(settled_before),
        project_names={"proj_a": "Search", "proj_b": "Chat"},
    )


ACCOUNT = spend(
    billed={
        "2026-11-20": {OPENAI: 10.0},
        "2026-11-23": {OPENAI: 4.0, OTHER: 1.0},
        "2026-11-24": {OPENAI: 99.0},
    },  # not settled yet: "best" ignores it
    estimated={
        "2026-11-20": {OPENAI: 9.0},
        "2026-11-23": {OPENAI: 3.0, OTHER: 2.0},
        "2026-11-24": {OPENAI: 5.0},
        "2026-11-25": {OPENAI: 6.0, OTHER: 1.0},
        "2026-11-26": {OPENAI: 2.0},
    },
)
NOW = ts("2026-11-26T12:00:00")


def one(budget: BudgetConfig, accounts: list[AccountSpend] | None = None, now: float = NOW):
    (status,) = evaluate([budget], accounts if accounts is not None else [ACCOUNT], now)
    return status


@pytest.mark.parametrize(
    ("basis", "expected"),
    [
        ("billed", 10.0 + 4.0 + 1.0 + 99.0),
        ("estimated", 9.0 + 3.0 + 2.0 + 5.0 + 6.0 + 1.0 + 2.0),
        # settled days (before 11-24) as billed, the rest estimated
        ("best", 10.0 + 4.0 + 1.0 + 5.0 + 6.0 + 1.0 + 2.0),
    ],
)
def test_month_spend_per_basis(basis: str, expected: float) -> None:
    status = one(BudgetConfig(name="m", period="month", limit_usd=100, basis=basis))  # type: ignore[arg-type]
    assert status.spend_usd == pytest.approx(expected)
    assert status.period_end == day("2026-12-01")
    assert status.utilization == pytest.approx(expected / 100)


def test_best_falls_back_to_estimate_where_nothing_matching_was_billed() -> None:
    # OpenAI's cost API has no model dimension: a model budget uses the estimate.
    modelled = spend(
        billed={"2026-11-20": {Dims("proj_a", ""): 10.0}}, estimated={"2026-11-20": {OPENAI: 9.0}}
    )
    status = one(
        BudgetConfig(name="m", period="month", limit_usd=100, match=BudgetMatch(model="gpt-4.1")),
        [modelled],
    )
    assert status.spend_usd == 9.0


def test_week_and_day_periods() -> None:
    week = one(BudgetConfig(name="w", period="week", limit_usd=50))
    assert week.spend_usd == pytest.approx(4.0 + 1.0 + 5.0 + 7.0 + 2.0)  # Mon 23 .. Thu 26
    assert week.period_end == day("2026-11-30")
    today = one(BudgetConfig(name="d", period="day", limit_usd=5))
    assert today.spend_usd == 2.0 and today.period_end == day("2026-11-27")


def test_matching_by_project_name_or_id_account_and_provider() -> None:
    def spend_for(match: BudgetMatch) -> float:
        return one(
            BudgetConfig(name="x", period="month", limit_usd=1, basis="estimated", match=match)
        ).spend_usd

    assert spend_for(BudgetMatch(project="Chat")) == 3.0
    assert spend_for(BudgetMatch(project="proj_b")) == 3.0
    assert spend_for(BudgetMatch(model="gpt-4.1")) == 25.0
    assert spend_for(BudgetMatch(provider="anthropic")) == 0.0
    assert spend_for(BudgetMatch(account="oai", project="Search", model="gpt-4.1")) == 25.0


def test_forecast_uses_the_trailing_seven_days_even_before_the_period_start() -> None:
    # Monday 00:00 + 12 h: the week is half a day old; the rate comes from the 6.5 days before.
    now = ts("2026-11-30T12:00:00")
    account = spend(
        billed={}, estimated={"2026-11-24": {OPENAI: 13.0}, "2026-11-30": {OPENAI: 1.0}}
    )
    status = one(
        BudgetConfig(name="w", period="week", limit_usd=100, basis="estimated"), [account], now
    )
    rate = 14.0 / (6.5 * DAY)  # trailing window: 11-24 00:00 .. now
    assert status.spend_usd == 1.0
    assert math.isclose(status.forecast_usd, 1.0 + rate * 6.5 * DAY)


def test_every_budget_is_present_at_zero_spend() -> None:
    budgets = [BudgetConfig(name=n, period="day", limit_usd=1) for n in ("a", "b")]
    statuses = evaluate(budgets, [], NOW)
    assert [(s.name, s.spend_usd, s.forecast_usd) for s in statuses] == [("a", 0, 0), ("b", 0, 0)]


def test_spend_at_the_start_of_a_new_period() -> None:
    just_after = ts("2026-12-01T00:05:00")
    account = spend(
        billed={},
        estimated={"2026-11-30": {OPENAI: 50.0}, "2026-12-01": {OPENAI: 0.5}},
        settled_before="2026-11-29",
    )
    month = one(
        BudgetConfig(name="m", period="month", limit_usd=10, basis="estimated"),
        [account],
        just_after,
    )
    day_budget = one(
        BudgetConfig(name="d", period="day", limit_usd=10, basis="estimated"), [account], just_after
    )
    assert month.spend_usd == 0.5 and day_budget.spend_usd == 0.5
    assert month.period_end == day("2027-01-01")


# --- forecasts of the spend limits a provider enforces

LIMIT_LABELS = ("hard", "month")


def limit_key(family: Family, scope: Dims) -> SeriesKey:
    return (family, scope, LIMIT_LABELS)


def test_a_limit_is_forecast_over_its_scope_on_the_best_basis() -> None:
    org, project = Dims(), Dims("proj_a")
    gauges = {
        limit_key(Family.PROVIDER_LIMIT, org): 1000.0,
        limit_key(Family.PROVIDER_LIMIT_ENFORCING, org): 0.0,
        limit_key(Family.PROVIDER_LIMIT, project): 30.0,
        (Family.VECTOR_STORE_BYTES, project, ()): 5.0,  # not a limit
    }
    forecasts = limit_forecasts(gauges, ACCOUNT, NOW)
    assert set(forecasts) == {
        limit_key(Family.PROVIDER_LIMIT_FORECAST, org),
        limit_key(Family.PROVIDER_LIMIT_FORECAST, project),
    }
    # Best basis: billed before 11-24 (settled), estimated after. Trailing 7 days: 11-20 .. now.
    left = day("2026-12-01") - NOW
    trailing = NOW - day("2026-11-20")
    org_spend = 10.0 + 4.0 + 1.0 + 5.0 + 6.0 + 1.0 + 2.0
    project_spend = 10.0 + 4.0 + 5.0 + 6.0 + 2.0  # proj_a only
    assert forecasts[limit_key(Family.PROVIDER_LIMIT_FORECAST, org)] == pytest.approx(
        org_spend + org_spend / trailing * left)
    assert forecasts[limit_key(Family.PROVIDER_LIMIT_FORECAST, project)] == pytest.approx(
        project_spend + project_spend / trailing * left)


def test_a_limit_uses_the_spend_the_provider_counts_against_it() -> None:
    user = Dims(user_id="u1")
    gauges = {
        limit_key(Family.PROVIDER_LIMIT, user): 50.0,
        limit_key(Family.PROVIDER_LIMIT_SPEND, user): 40.0,
    }
    forecasts = limit_forecasts(gauges, ACCOUNT, NOW)
    # The rate still comes from the account's daily spend in the scope (none for u1 here).
    assert forecasts == {limit_key(Family.PROVIDER_LIMIT_FORECAST, user): 40.0}


def test_only_monthly_limits_are_forecast() -> None:
    gauges = {(Family.PROVIDER_LIMIT, Dims(), ("hard", "billing_cycle")): 10.0}
    assert limit_forecasts(gauges, ACCOUNT, NOW) == {}
