"""GitHub budgets that stop Copilot usage: an organization's hard spend limits on AI credits.

``GET /organizations/{org}/settings/billing/budgets`` lists the budgets (100 a page, while
``has_next_page``), in whole dollars. A budget with ``prevent_further_usage`` stops the usage it
covers once spent; one without only alerts, and is no provider limit. Of those, the exporter
keeps the budgets on Copilot's usage-billed SKUs (``ai_credits``, ``premium_requests``: dollar
amounts; a budget on the ``copilot`` product may count licences) scoped to the organization, or
to one user with per-user grouping. Where several apply to one scope, the smallest is the limit,
and the scope is enforcing once any of them is used up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.core.records import Batch, Dataset, Dims, Family
from exporter.sources.providers.base import ProviderError
from exporter.sources.providers.client import ApiClient, objects
from exporter.sources.providers.fields import (
    check_usable,
    label,
    money,
    plain_name,
    quote,
    skip_row,
)

PAGE_SIZE = 100
PAGE_CAP = 50
HARD = "hard"
COPILOT_SKUS = frozenset(("ai_credits", "premium_requests"))
MAX_SCOPES = 1000
"""Scopes (the organization, users) with a limit: each is a few gauge series."""


def _skus(budget: Mapping[str, Any], where: str) -> set[str]:
    """The products or SKUs a budget covers: ``budget_product_sku`` (the schema) or
    ``budget_product_skus`` (the documented example)."""
    found = set()
    single = label(budget, "budget_product_sku", where)
    if single:
        found.add(single.lower())
    many = budget.get("budget_product_skus")
    if many is not None:
        if not isinstance(many, list) or not all(isinstance(s, str) for s in many):
            raise ProviderError("parse", f"{where}: 'budget_product_skus' is not a list of names")
        found.update(s.lower() for s in many)
    return found


def _scope(budget: Mapping[str, Any], by_user: bool, where: str) -> Dims | None:
    """The limit's scope, or None for a scope this account does not export."""
    scope = budget.get("budget_scope")
    if scope == "organization":
        return Dims()
    if scope == "user" and by_user:
        user = plain_name(budget, "user", where) or plain_name(budget, "budget_entity_name", where)
        # (An answer filtered by ?user= names the user once, at the top: not asked for here.)
        return Dims(user_id=user) if user else None
    return None  # enterprise, cost centre, repository, every user: not one series here


def _limit(
    budget: Mapping[str, Any], by_user: bool, where: str
) -> tuple[Dims, float, float | None] | None:
    """(scope, dollars, consumed where reported) of a budget that stops Copilot usage."""
    if budget.get("prevent_further_usage") is not True:
        return None  # alerts only: GitHub does not stop the usage
    if not _skus(budget, where) & COPILOT_SKUS:
        return None
    scope = _scope(budget, by_user, where)
    if scope is None:
        return None
    amount = budget.get("budget_amount")
    if isinstance(amount, bool) or not isinstance(amount, int | float) or not amount >= 0:
        raise ProviderError("parse", f"{where}: 'budget_amount' {quote(amount)} is not an amount")
    consumed = budget.get("consumed_amount")
    spent = None if consumed is None else float(money(consumed, where))
    if spent is not None and spent < 0:
        raise ProviderError("parse", f"{where}: negative 'consumed_amount' {quote(consumed)}")
    return scope, float(money(amount, where)), spent


async def read_budgets(api: ApiClient, prefix: str, *, by_user: bool) -> Batch:
    """The organization's hard Copilot limits, as a gauge-only batch."""
    path = f"{prefix}/budgets"
    where = f"GET {path}"
    batch = Batch(Dataset.LIMITS, 0, 0)
    limits: dict[Dims, list[tuple[float, float | None]]] = {}
    rows = 0
    for page in range(1, PAGE_CAP + 1):
        answer = await api.get_json(path, {"per_page": PAGE_SIZE, "page": page})
        for budget in objects(answer, "budgets", where):
            rows += 1
            try:
                found = _limit(budget, by_user, where)
                if found is not None and found[0] not in limits and len(limits) >= MAX_SCOPES:
                    raise ProviderError("parse", f"{where}: more than {MAX_SCOPES} limited scopes")
            except ProviderError as err:
                skip_row(batch, err)
                continue
            if found is not None:
                scope, amount, spent = found
                limits.setdefault(scope, []).append((amount, spent))
        more = answer.get("has_next_page", False)
        if not isinstance(more, bool):
            raise ProviderError("parse", f"{where}: 'has_next_page' is not a boolean")
        if not more:
            break
    else:
        raise ProviderError("parse", f"{where}: still more pages after {PAGE_CAP}")
    labels = (HARD, "month")  # GitHub budgets are monthly
    for scope, budgets in limits.items():
        # The smallest binds first; usage stops as soon as any of them is used up.
        amount, spent = min(budgets, key=lambda b: b[0])
        batch.gauges[Family.PROVIDER_LIMIT, scope, labels] = amount
        if spent is not None:
            batch.gauges[Family.PROVIDER_LIMIT_SPEND, scope, labels] = spent
        known = [(a, s) for a, s in budgets if s is not None]
        if known:
            batch.gauges[Family.PROVIDER_LIMIT_ENFORCING, scope, labels] = float(
                any(s >= a for a, s in known))
    return check_usable(batch, rows)
