"""Budgets: calendar periods in UTC, spend on a chosen basis, and a forecast to the period end.

Spend comes from the per-day, per-dimension cost every account keeps for
the month and the week before it (``AccountData.daily_spend``). Forecast =
spend so far + the trailing 7-day spend rate × the time left in the period;
the trailing window reaches back before the period start when the period is
younger than 7 days, so a fresh week or month is not forecast from nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from exporter.core.ledger import month_start
from exporter.core.records import DAY, Dims, Family, day_start

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
    if match.provider is not None and match.provider != account.provider:
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


def _day_spend(budget: BudgetConfig, account: AccountSpend, day: int) -> float:
    def total(spend: Mapping[int, Mapping[Dims, float]]) -> float:
        return sum(usd for dims, usd in spend.get(day, {}).items()
                   if _matches(budget.match, account, dims))

    if budget.basis == "billed":
        return total(account.billed)
    estimated = total(account.estimated)
    if budget.basis == "estimated":
        return estimated
    # best: what the provider billed for settled days, the estimate for the rest (and for
    # settled days it billed nothing matching, e.g. a cost API without a model dimension).
    if day < account.settled_before:
        billed = total(account.billed)
        if billed > 0:
            return billed
    return estimated


def _spend(budget: BudgetConfig, accounts: Sequence[AccountSpend], start: int, end: float) -> float:
    return sum(_day_spend(budget, account, day) for account in accounts
               for day in range(start, int(end), DAY))


def evaluate(budgets: Iterable[BudgetConfig], accounts: Sequence[AccountSpend],
             now: float) -> tuple[BudgetStatus, ...]:
    """Every budget's spend and forecast at ``now`` (every budget, also at zero spend)."""
    statuses = []
    trailing_start = day_start(now) - (TRAILING_DAYS - 1) * DAY
    for budget in budgets:
        start, end = period_bounds(budget.period, now)
        spend = _spend(budget, accounts, start, now)
        trailing = _spend(budget, accounts, trailing_start, now)
        rate = trailing / (now - trailing_start)
        statuses.append(BudgetStatus(
            name=budget.name, period=budget.period, limit_usd=budget.limit_usd,
            warning_ratio=budget.warning_ratio, spend_usd=spend,
            forecast_usd=spend + rate * (end - now), period_end=end,
        ))
    return tuple(statuses)


def spend_of(provider: str, account: str, ledger_spend: Mapping[Family, Mapping[int, Mapping[
        Dims, float]]], settled_before: int, project_names: Mapping[str, str]) -> AccountSpend:
    """An :class:`AccountSpend` from a ledger's daily spend by family."""
    return AccountSpend(provider, account, ledger_spend.get(Family.BILLED_COST, {}),
                        ledger_spend.get(Family.ESTIMATED_COST, {}), settled_before, project_names)
