"""Budgets: calendar periods in UTC, spend on a chosen basis, and a forecast to the period end.

Spend comes from the per-day, per-dimension cost every account keeps for
the month and the week before it (``AccountData.daily_spend``). Forecast =
spend so far + the trailing 7-day spend rate × the time left in the period;
the trailing window reaches back before the period start when the period is
younger than 7 days, so a fresh week or month is not forecast from nothing.
The spend limits a provider enforces are forecast the same way, over their scope.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from exporter.core.ledger import month_start
from exporter.core.records import DAY, Dims, Family, SeriesKey, day_start

Period = Literal["day", "week", "month"]
Basis = Literal["billed", "estimated", "best"]
TRAILING_DAYS = 7


class BudgetMatch(BaseModel):
    """Which spend counts toward a budget; every given field must match (none: all spend)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: str | None = None
    account: str | None = None
    project: str | None = Field(default=None, description="project/workspace display name or id")
    model: str | None = None


class BudgetConfig(BaseModel):
    """One entry of the ``budgets:`` list."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    period: Period
    limit_usd: float = Field(gt=0)
    warning_ratio: float = Field(default=0.8, gt=0, le=1)
    basis: Basis = "best"
    match: BudgetMatch = BudgetMatch()


@dataclass(frozen=True, slots=True)
class AccountSpend:
    """What budgets need to know of one account: its identity and daily spend."""

    provider: str
    account: str
    billed: Mapping[int, Mapping[Dims, float]]
    estimated: Mapping[int, Mapping[Dims, float]]
    settled_before: int
    project_names: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A budget's values for its current period, as exposed on /metrics."""

    name: str
    period: Period
    limit_usd: float
    warning_ratio: float
    spend_usd: float
    forecast_usd: float
    period_end: int

    @property
    def utilization(self) -> float:
        """Spend over limit."""
        return self.spend_usd / self.limit_usd


def period_bounds(period: Period, now: float) -> tuple[int, int]:
    """``[start, end)`` of the UTC calendar day, week (from Monday) or month containing ``now``."""
    today = day_start(now)
    if period == "day":
        return today, today + DAY
    if period == "week":
        monday = today - datetime.fromtimestamp(today, UTC).weekday() * DAY
        return monday, monday + 7 * DAY
    start = month_start(now)
    return start, month_start(start + 32 * DAY)


def _matches(match: BudgetMatch, account: AccountSpend, dims: Dims) -> bool:
    if match.provider is not None and match.provider != (dims.provider or account.provider):
        return False
    if match.account is not None and match.account != account.account:
        return False
    if match.model is not None and match.model != dims.model:
        return False
    if match.project is not None:
        name = account.project_names.get(dims.project_id, dims.project_id)
        if match.project not in (dims.project_id, name) or not dims.project_id:
            return False
    return True


def _day_spend(
    basis: Basis, account: AccountSpend, day: int, matches: Callable[[Dims], bool]
) -> float:
    def total(spend: Mapping[int, Mapping[Dims, float]]) -> float:
        return sum(usd for dims, usd in spend.get(day, {}).items() if matches(dims))

    if basis == "billed":
        return total(account.billed)
    estimated = total(account.estimated)
    if basis == "estimated":
        return estimated
    # best: what the provider billed for settled days, the estimate for the rest (and for
    # settled days it billed nothing matching, e.g. a cost API without a model dimension).
    if day < account.settled_before:
        billed = total(account.billed)
        if billed > 0:
            return billed
    return estimated


def _spend(budget: BudgetConfig, accounts: Sequence[AccountSpend], start: int, end: float) -> float:
    return sum(
        _day_spend(budget.basis, account, day,
                   functools.partial(_matches, budget.match, account))
        for account in accounts for day in range(start, int(end), DAY)
    )


def _forecast(spend: float, trailing: float, trailing_start: int, now: float, end: int) -> float:
    """``spend`` plus the trailing spend rate times the time left until ``end``."""
    return spend + trailing / (now - trailing_start) * (end - now)


def evaluate(budgets: Iterable[BudgetConfig], accounts: Sequence[AccountSpend],
             now: float) -> tuple[BudgetStatus, ...]:
    """Every budget's spend and forecast at ``now`` (every budget, also at zero spend)."""
    statuses = []
    trailing_start = day_start(now) - (TRAILING_DAYS - 1) * DAY
    for budget in budgets:
        start, end = period_bounds(budget.period, now)
        spend = _spend(budget, accounts, start, now)
        trailing = _spend(budget, accounts, trailing_start, now)
        statuses.append(BudgetStatus(
            name=budget.name, period=budget.period, limit_usd=budget.limit_usd,
            warning_ratio=budget.warning_ratio, spend_usd=spend,
            forecast_usd=_forecast(spend, trailing, trailing_start, now, end), period_end=end,
        ))
    return tuple(statuses)


def _in_scope(scope: Dims, dims: Dims) -> bool:
    """Whether spend of ``dims`` counts under a limit on ``scope`` (its non-empty dims)."""
    return all(not want or want == got for want, got in zip(scope, dims, strict=True))


def limit_forecasts(
    gauges: Mapping[SeriesKey, float], account: AccountSpend, now: float
) -> dict[SeriesKey, float]:
    """The month-end forecast of every monthly provider limit among ``gauges``: the spend the
    provider counts against it where it reports one, else the account's spend in the limit's
    scope on the "best" basis, plus the trailing 7-day rate in that scope times the time left."""
    forecasts: dict[SeriesKey, float] = {}
    trailing_start = day_start(now) - (TRAILING_DAYS - 1) * DAY
    for (family, scope, labels) in gauges:
        if family is not Family.PROVIDER_LIMIT or labels[1:2] != ("month",):
            continue
        start, end = period_bounds("month", now)
        matches = functools.partial(_in_scope, scope)

        def spend(first: int, matches: Callable[[Dims], bool] = matches) -> float:
            return sum(_day_spend("best", account, day, matches)
                       for day in range(first, int(now), DAY))

        so_far = gauges.get((Family.PROVIDER_LIMIT_SPEND, scope, labels))
        if so_far is None:
            so_far = spend(start)
        forecast = _forecast(so_far, spend(trailing_start), trailing_start, now, end)
        forecasts[Family.PROVIDER_LIMIT_FORECAST, scope, labels] = forecast
    return forecasts


def spend_of(provider: str, account: str, ledger_spend: Mapping[Family, Mapping[int, Mapping[
        Dims, float]]], settled_before: int, project_names: Mapping[str, str]) -> AccountSpend:
    """An :class:`AccountSpend` from a ledger's daily spend by family."""
    return AccountSpend(provider, account, ledger_spend.get(Family.BILLED_COST, {}),
                        ledger_spend.get(Family.ESTIMATED_COST, {}), settled_before, project_names)
