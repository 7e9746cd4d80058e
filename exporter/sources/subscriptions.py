"""Fixed recurring costs (seats, flat plans) that no usage API reports.

Each subscription is charged its whole amount on its billing day, from that
day's start (UTC), as billed cost with ``line_item="subscription"`` and
``project`` = the subscription's name. The charges are generated from the
configuration, so a restart reproduces them. Budgets count them like any billed
cost; their forecast adds the charges still to come in the period instead of
extrapolating a one-off charge as a daily rate.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from exporter.config.names import Name, ProviderLabel
from exporter.config.secrets import redact
from exporter.core.budgets import AccountSpend, BudgetConfig, BudgetMatch, BudgetStatus, evaluate
from exporter.core.records import Batch, Dataset, Dims, Family, FetchResult, day_start
from exporter.sources.push.events import retention_start

SUBSCRIPTION_LINE_ITEM = "subscription"
Period = Literal["monthly", "yearly"]


class SubscriptionConfig(BaseModel):
    """One entry of ``subscriptions:``."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: Name
    provider: ProviderLabel
    account: Name
    amount_usd: float = Field(gt=0, le=10_000_000)
    per_seat: bool = False
    seats: int | None = Field(default=None, ge=1, le=1_000_000)
    period: Period
    billing_day: int = Field(ge=1, le=31)
    billing_month: int | None = Field(default=None, ge=1, le=12)
    start: date | None = None
    """First day a charge may fall on (inclusive)."""
    end: date | None = None
    """Charges fall before this day (exclusive): model a price or seat change as two entries."""

    @property
    def charge_usd(self) -> float:
        """What one billing period costs."""
        return self.amount_usd * ((self.seats or 1) if self.per_seat else 1)

    def charges(self, start: float, end: float) -> list[int]:
        """Charge times (billing days' starts, UTC) in ``[start, end)``."""
        first = datetime.fromtimestamp(start, UTC)
        last = datetime.fromtimestamp(max(start, end), UTC)
        out = []
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            if self.period == "monthly" or month == self.billing_month:
                day = min(self.billing_day, calendar.monthrange(year, month)[1])
                when = date(year, month, day)
                ts = int(datetime(year, month, day, tzinfo=UTC).timestamp())
                if (
                    start <= ts < end
                    and (self.start is None or when >= self.start)
                    and (self.end is None or when < self.end)
                ):
                    out.append(ts)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out


def subscription_problems(data: object, polled: Iterable[str], pushed: Iterable[str]) -> list[str]:
    """Cross-entry problems of the raw ``subscriptions:`` list, each with its path."""
    if not isinstance(data, list):
        return []
    problems = []
    taken = {*polled} | {*pushed}
    names: dict[str, int] = {}
    providers: dict[str, tuple[str, int]] = {}
    for index, sub in enumerate(data):
        if not isinstance(sub, dict):
            continue
        where = f"subscriptions[{index}]"
        problems.extend(_entry_problems(sub, where))
        name, account, provider = sub.get("name"), sub.get("account"), sub.get("provider")
        if isinstance(name, str):
            if name in names:
                problems.append(
                    f"{where}.name: duplicate subscription name {name!r} "
                    f"(also subscriptions[{names[name]}])"
                )
            names.setdefault(name, index)
        if not isinstance(account, str):
            continue
        if account in taken:
            problems.append(
                f"{where}.account: {account!r} is already the name of a polled or pushed "
                "account; give the subscription's account its own name"
            )
        if isinstance(provider, str):
            other = providers.setdefault(account, (provider, index))
            if other[0] != provider:
                problems.append(
                    f"{where}.provider: account {account!r} has provider {other[0]!r} "
                    f"in subscriptions[{other[1]}]"
                )
    return problems


def _entry_problems(sub: dict[str, object], where: str) -> list[str]:
    problems = []
    per_seat, period = sub.get("per_seat") is True, sub.get("period")
    if per_seat and sub.get("seats") is None:
        problems.append(f"{where}.seats: required with per_seat: true")
    if not per_seat and sub.get("seats") is not None:
        problems.append(f"{where}.seats: only used with per_seat: true")
    if period == "yearly" and sub.get("billing_month") is None:
        problems.append(f"{where}.billing_month: required for a yearly subscription")
    if period == "monthly" and sub.get("billing_month") is not None:
        problems.append(f"{where}.billing_month: only used with period: yearly")
    start, end = sub.get("start"), sub.get("end")
    if isinstance(start, date) and isinstance(end, date) and end <= start:
        problems.append(f"{where}.end: must be after start")
    return problems


def subscription_accounts(
    subscriptions: Sequence[SubscriptionConfig],
) -> dict[str, tuple[str, tuple[SubscriptionConfig, ...]]]:
    """Account name -> (provider label, its subscriptions), in configuration order."""
    out: dict[str, tuple[str, tuple[SubscriptionConfig, ...]]] = {}
    for sub in subscriptions:
        provider, subs = out.get(sub.account, (sub.provider, ()))
        out[sub.account] = (provider, (*subs, sub))
    return out


class SubscriptionProvider:
    """A pseudo-provider: one account's subscription charges as billed cost per day.

    Give it the configured provider label with ``exporter.sources.push.provider.labelled``.
    """

    name: ClassVar[str] = "subscription"
    expected_lag: ClassVar[Mapping[Dataset, float]] = {}  # charges are known ahead of time

    def __init__(self, subscriptions: Sequence[SubscriptionConfig]) -> None:
        self.subscriptions = tuple(subscriptions)

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Every charge of the retention window (and of ``[start, end)``)."""
        first = min(day_start(start), retention_start(end))
        batch = Batch(Dataset.COST, first, end, watermark=float(end))
        for sub in self.subscriptions:
            key = (Family.BILLED_COST, Dims(project_id=sub.name), (SUBSCRIPTION_LINE_ITEM,))
            for ts in sub.charges(first, end):
                batch.add(day_start(ts), key, sub.charge_usd)
        return FetchResult([batch])

    async def aclose(self) -> None:
        """Nothing to release."""

    def redact(self, text: str) -> str:
        """No key of ours is involved: only key-like text is scrubbed, and the length cut."""
        return redact(text)


def _matches(match: BudgetMatch, sub: SubscriptionConfig) -> bool:
    return (
        match.provider in (None, sub.provider)
        and match.account in (None, sub.account)
        and match.project in (None, sub.name)
        and match.model is None  # a subscription has no model
    )


def evaluate_budgets(
    budgets: Sequence[BudgetConfig],
    spends: Sequence[AccountSpend],
    subscriptions: Sequence[SubscriptionConfig],
    now: float,
) -> tuple[BudgetStatus, ...]:
    """:func:`exporter.core.budgets.evaluate`, with subscriptions forecast as scheduled charges.

    Spend includes the charges made so far. The forecast is the forecast of
    the other accounts (their trailing rate) + the charges made so far + the
    charges still due before the period ends; estimated-basis budgets count no
    subscription (an estimate is tokens x prices).
    """
    statuses = evaluate(budgets, spends, now)
    if not subscriptions:
        return statuses
    fixed = {(s.provider, s.account) for s in subscriptions}
    variable = evaluate(budgets, [s for s in spends if (s.provider, s.account) not in fixed], now)
    out = []
    for budget, total, rest in zip(budgets, statuses, variable, strict=True):
        upcoming = 0.0
        if budget.basis != "estimated":
            upcoming = sum(
                sub.charge_usd * len(sub.charges(int(now) + 1, total.period_end))
                for sub in subscriptions
                if _matches(budget.match, sub)
            )
        charged = total.spend_usd - rest.spend_usd
        out.append(replace(total, forecast_usd=rest.forecast_usd + charged + upcoming))
    return tuple(out)
