"""GitHub budgets that stop Copilot usage: an organization's hard spend limits on AI credits.

``GET /organizations/{org}/settings/billing/budgets`` lists the budgets (100 a page, while
``has_next_page``), in whole dollars. A budget with ``prevent_further_usage`` stops the usage it
covers once spent; one without only alerts, and is no provider limit. Of those, the exporter
keeps the budgets on Copilot's usage-billed SKUs (``ai_credits``, ``premium_requests``: dollar
amounts; a budget on the ``copilot`` product may count licences) scoped to the organization, or
to one user with per-user grouping. Where several apply to one scope, the smallest binds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from exporter.core.records import Batch, Dataset, Dims, Family
from exporter.sources.providers.base import ProviderError
from exporter.sources.providers.client import ApiClient, objects
from exporter.sources.providers.fields import label, money, quote, skip_row

PAGE_SIZE = 100
PAGE_CAP = 50
HARD = "hard"
COPILOT_SKUS = frozenset(("ai_credits", "premium_requests"))


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
        user = label(budget, "user", where) or label(budget, "budget_entity_name", where)
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
    return scope, float(money(amount, where)), spent


async def read_budgets(api: ApiClient, prefix: str, *, by_user: bool) -> Batch:
    """The organization's hard Copilot limits, as a gauge-only batch."""
    path = f"{prefix}/budgets"
    where = f"GET {path}"
    batch = Batch(Dataset.LIMITS, 0, 0)
    limits: dict[Dims, tuple[float, float | None]] = {}
    for page in range(1, PAGE_CAP + 1):
        answer = await api.get_json(path, {"per_page": PAGE_SIZE, "page": page})
        for budget in objects(answer, "budgets", where):
            try:
                found = _limit(budget, by_user, where)
            except ProviderError as err:
                skip_row(batch, err)
                continue
            if found is not None:
                scope, amount, spent = found
                if scope not in limits or amount < limits[scope][0]:
                    limits[scope] = (amount, spent)
        more = answer.get("has_next_page", False)
        if not isinstance(more, bool):
            raise ProviderError("parse", f"{where}: 'has_next_page' is not a boolean")
        if not more:
            break
    else:
        raise ProviderError("parse", f"{where}: still more pages after {PAGE_CAP}")
    labels = (HARD, "month")  # GitHub budgets are monthly
    for scope, (amount, spent) in limits.items():
        batch.gauges[Family.PROVIDER_LIMIT, scope, labels] = amount
        if spent is not None:
            batch.gauges[Family.PROVIDER_LIMIT_SPEND, scope, labels] = spent
            batch.gauges[Family.PROVIDER_LIMIT_ENFORCING, scope, labels] = float(spent >= amount)
    return batch
