"""Fake GitHub enhanced-billing REST API: usage report, AI credit and premium request reports.

Quirks kept from the real API: camelCase fields and float amounts; ``/usage`` without
``month`` answers the whole year; the AI credit and premium request reports sum over the
period asked for (no per-item date) and echo it in ``timePeriod``; Copilot is billed in AI
credits from 2026-06-01 (the premium request report has nothing after, the AI credit report
nothing before); only the last 24 months exist; GitHub's ``{"message",
"documentation_url", "status"}`` error envelope. Field for field as the official
``ai_credit/usage`` example (``reference/specs/github-billing.json``).

Where the published schema and the real API differ, the API wins: ``/usage`` items'
``quantity`` is fractional (seats prorated per day in user-months, premium requests with
multipliers such as 0.33) though the docs type it ``integer``: GitHub serves floats
(google/go-github#3610, citing github/docs#39074). tests/test_contracts.py keeps that one
violation as a known departure.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Final

from .github_data import (
    ACTIONS,
    AI_CREDITS,
    DAY,
    ENTERPRISE,
    ORGS,
    PREMIUM_REQUESTS,
    PRODUCT,
    GitHubData,
    Org,
    Unit,
    money,
    unit_of,
)
from .query import ApiError, Query

GITHUB = "github"
JSON = dict[str, Any]
VERSIONS = ("2022-11-28", "2026-03-10")
DOCS = "https://docs.github.com/rest"
_PATH = re.compile(
    r"/(?P<kind>organizations|enterprises)/(?P<owner>[^/]+)/settings/billing/"
    r"(?P<report>usage|premium_request/usage|ai_credit/usage|budgets)"
)
_ORGS = {org.name.lower(): org for org in ORGS}
AI_CREDITS_BUDGET: Final = 250
"""Dollars a month of AI credits the first organization stops at (prevent_further_usage)."""
USER_BUDGET: Final = ("mona", 20, 12.5)
"""(login, dollars, consumed) of the first organization's budget for one user."""


def check_headers(headers: Mapping[str, str], token: str) -> None:
    """401 unless ``Authorization: Bearer|token <token>``; 400 for an unknown API version."""
    scheme, _, given = headers.get("authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "token") or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        raise ApiError(401, "Bad credentials")
    version = headers.get("x-github-api-version")
    if version is not None and version not in VERSIONS:
        raise ApiError(400, f"Unsupported 'X-GitHub-Api-Version' header: {version}")


def error_body(err: ApiError) -> JSON:
    """GitHub's error envelope."""
    return {"message": err.message, "documentation_url": DOCS, "status": str(err.status)}


def handle(path: str, query: Query, now: float, data: GitHubData) -> JSON:
    """Answer one GET below the ``/github`` prefix, or raise :class:`ApiError`."""
    match = _PATH.fullmatch(path)
    if match is None:
        raise ApiError(404, "Not Found")
    owner = match["owner"].lower()
    if match["kind"] == "organizations":
        if owner not in _ORGS:
            raise ApiError(404, "Not Found")
        orgs = [_ORGS[owner]]
        selected = orgs
    else:
        if owner != ENTERPRISE:
            raise ApiError(404, "Not Found")
        orgs = list(ORGS)
        wanted = query.one("organization")
        selected = [o for o in orgs if wanted is None or o.name.lower() == wanted.lower()]
    if match["report"] == "budgets":
        if match["kind"] != "organizations":
            raise ApiError(404, "Not Found")
        return _budgets(query, orgs[0].name)
    if match["report"] == "usage":
        return _usage(query, now, data, orgs)
    unit = AI_CREDITS if match["report"] == "ai_credit/usage" else PREMIUM_REQUESTS
    body = _report(query, now, data, selected, unit)
    if match["kind"] == "organizations":
        return {"timePeriod": body.pop("timePeriod"), "organization": orgs[0].name, **body}
    return {"timePeriod": body.pop("timePeriod"), "enterprise": ENTERPRISE, **body}


def _period(query: Query, now: float, *, default_month: bool) -> tuple[dict[str, int], range]:
    """The requested period and its UTC day starts (validated like GitHub does)."""
    today = datetime.fromtimestamp(now, UTC)
    year = query.integer("year", today.year)
    month = query.integer("month", today.month if default_month else None)
    day = query.integer("day")
    assert year is not None
    if not 1000 <= year <= 9999:
        raise ApiError(400, "year must be a four-digit year")
    if month is None and day is not None:
        month = today.month
    if month is not None and not 1 <= month <= 12:
        raise ApiError(400, "month must be between 1 and 12")
    period = {"year": year}
    try:
        if month is None:
            first, stop = date(year, 1, 1), date(year + 1, 1, 1)
        elif day is None:
            period["month"] = month
            first = date(year, month, 1)
            stop = date(year + (month == 12), month % 12 + 1, 1)
        else:
            period |= {"month": month, "day": day}
            first = date(year, month, day)
            stop = date.fromordinal(first.toordinal() + 1)
    except ValueError:
        raise ApiError(400, "Invalid date in the requested time period") from None
    oldest = date(today.year - 2, today.month, 1)
    if first < oldest:
        raise ApiError(400, "Only data from the past 24 months is accessible")
    starts = range(_ts(first), min(_ts(stop), int(now) // DAY * DAY + DAY), DAY)
    return period, starts


def _ts(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def _usage(query: Query, now: float, data: GitHubData, orgs: list[Org]) -> JSON:
    _, starts = _period(query, now, default_month=False)
    items = []
    for day in starts:
        when = datetime.fromtimestamp(day, UTC).strftime("%Y-%m-%d")
        for org in orgs:
            seats = data.seat_quantity(org, day)
            seat_amount = money(seats * org.seat_price)
            items.append(
                _item(when, PRODUCT, org.seat_sku, seats, "UserMonths", org.seat_price, org)
                | _amounts(seat_amount, Decimal(0))
            )
            lines = data.premium(org, day, now)
            if lines:
                billed_in = unit_of(day)
                gross = sum((line.gross for line in lines), Decimal(0))
                discount = sum((line.discount for line in lines), Decimal(0))
                price = billed_in.price
                items.append(
                    _item(when, PRODUCT, billed_in.sku, gross, billed_in.unit_type, price, org)
                    | _amounts(money(gross * price), money(discount * price))
                )
            minutes = data.actions_minutes(org.name, day, now)
            if minutes:
                product, sku, unit, price = ACTIONS
                amount = money(minutes * price)
                items.append(
                    _item(when, product, sku, Decimal(minutes), unit, price, org)
                    | _amounts(amount, amount)  # within the free minutes: net 0
                    | {"repositoryName": f"{org.name}/app"}
                )
    return {"usageItems": items}


def _item(
    when: str, product: str, sku: str, quantity: Decimal, unit: str, price: Decimal, org: Org
) -> JSON:
    return {
        "date": when,
        "product": product,
        "sku": sku,
        "quantity": float(quantity),
        "unitType": unit,
        "pricePerUnit": float(price),
        "organizationName": org.name,
    }


def _amounts(gross: Decimal, discount: Decimal) -> JSON:
    return {
        "grossAmount": float(gross),
        "discountAmount": float(discount),
        "netAmount": float(gross - discount),
    }


def _report(query: Query, now: float, data: GitHubData, orgs: list[Org], unit: Unit) -> JSON:
    """The AI credit or premium request report: per model, summed over the period."""
    period, starts = _period(query, now, default_month=True)
    model_filter = (query.one("model") or "").lower()
    product_filter = (query.one("product") or "").lower()
    user = query.one("user")
    sums: dict[str, tuple[Decimal, Decimal]] = {}
    if user is None and product_filter in ("", PRODUCT.lower()):  # no per-user data here
        for day in starts:
            if unit_of(day) is not unit:
                continue
            for org in orgs:
                for line in data.premium(org, day, now):
                    if model_filter and line.model.name.lower() != model_filter:
                        continue
                    gross, discount = sums.get(line.model.name, (Decimal(0), Decimal(0)))
                    sums[line.model.name] = (gross + line.gross, discount + line.discount)
    items = []
    for model, (gross, discount) in sums.items():
        items.append(
            {
                "product": PRODUCT,
                "sku": unit.sku,
                "model": model,
                "unitType": unit.unit_type,
                "pricePerUnit": float(unit.price),
                "grossQuantity": float(gross),
                "grossAmount": float(money(gross * unit.price)),
                "discountQuantity": float(discount),
                "discountAmount": float(money(discount * unit.price)),
                "netQuantity": float(gross - discount),
                "netAmount": float(money((gross - discount) * unit.price)),
            }
        )
    return {"timePeriod": period, "usageItems": items}


def expected(
    data: GitHubData, owner: str, start: int, end: int, now: float
) -> dict[str, dict[tuple[str, ...], float]]:
    """Ground truth of an organization's or the enterprise's Copilot billing, as the exporter
    must publish it, over the UTC days starting in ``[start, end)`` and before ``now``.

    ``cost``: net USD of ``/usage`` by (organization, sku), AI credits left out;
    ``ai_credit_cost``: net USD of the AI credits by (model, sku), from the per-day reports;
    ``ai_credits``: gross credits by (model,); ``premium_requests``: gross quantity by
    (model, sku), before 2026-06-01.
    """
    orgs = list(ORGS) if owner == ENTERPRISE else [_ORGS[owner.lower()]]
    cost: dict[tuple[str, ...], Decimal] = {}
    credit_cost: dict[tuple[str, ...], Decimal] = {}
    credits: dict[tuple[str, ...], Decimal] = {}
    premium: dict[tuple[str, ...], Decimal] = {}
    first = -(-start // DAY) * DAY
    for day in range(first, min(end, int(now) // DAY * DAY + DAY), DAY):
        unit = unit_of(day)
        by_model: dict[str, tuple[Decimal, Decimal]] = {}
        for org in orgs:
            seat_key = (org.name, org.seat_sku)
            seat = money(data.seat_quantity(org, day) * org.seat_price)
            cost[seat_key] = cost.get(seat_key, Decimal(0)) + seat
            lines = data.premium(org, day, now)
            if lines and unit is PREMIUM_REQUESTS:
                gross = sum((line.gross for line in lines), Decimal(0))
                discount = sum((line.discount for line in lines), Decimal(0))
                net = money(gross * unit.price) - money(discount * unit.price)
                key = (org.name, unit.sku)
                cost[key] = cost.get(key, Decimal(0)) + net
            for line in lines:
                key = (line.model.name, unit.sku)
                if unit is PREMIUM_REQUESTS:
                    premium[key] = premium.get(key, Decimal(0)) + line.gross
                else:
                    credits[key[:1]] = credits.get(key[:1], Decimal(0)) + line.gross
                    gross, discount = by_model.get(line.model.name, (Decimal(0), Decimal(0)))
                    by_model[line.model.name] = (gross + line.gross, discount + line.discount)
        for model, (gross, discount) in by_model.items():  # one report per day, as the API
            key = (model, AI_CREDITS.sku)
            net = money((gross - discount) * AI_CREDITS.price)
            credit_cost[key] = credit_cost.get(key, Decimal(0)) + net
    return {
        "cost": {k: float(v) for k, v in cost.items() if v},
        "ai_credit_cost": {k: float(v) for k, v in credit_cost.items() if v},
        "ai_credits": {k: float(v) for k, v in credits.items() if v},
        "premium_requests": {k: float(v) for k, v in premium.items() if v},
    }


def budgets(org: str) -> list[JSON]:
    """An organization's budgets: one that stops Copilot's AI credits at
    :data:`AI_CREDITS_BUDGET` dollars, one that stops a user's, and two the exporter leaves out
    (another product; alerts only)."""
    if org != ORGS[0].name:
        return []
    alerting = {"will_alert": True, "alert_recipients": ["octo-admin"]}
    return [
        {"id": "3f1c6a52-5b1e-4c0a-9d8e-000000000001", "budget_type": "BundlePricing",
         "budget_product_sku": "ai_credits", "budget_scope": "organization",
         "budget_entity_name": org, "budget_amount": AI_CREDITS_BUDGET,
         "prevent_further_usage": True, "budget_alerting": alerting},
        {"id": "3f1c6a52-5b1e-4c0a-9d8e-000000000002", "budget_type": "ProductPricing",
         "budget_product_sku": "actions", "budget_scope": "organization",
         "budget_entity_name": org, "budget_amount": 50, "prevent_further_usage": True,
         "budget_alerting": alerting},
        {"id": "3f1c6a52-5b1e-4c0a-9d8e-000000000003", "budget_type": "BundlePricing",
         "budget_product_sku": "ai_credits", "budget_scope": "organization",
         "budget_entity_name": org, "budget_amount": 100, "prevent_further_usage": False,
         "budget_alerting": alerting},
        {"id": "3f1c6a52-5b1e-4c0a-9d8e-000000000004", "budget_type": "BundlePricing",
         "budget_product_sku": "ai_credits", "budget_scope": "user", "user": USER_BUDGET[0],
         "budget_entity_name": USER_BUDGET[0], "budget_amount": USER_BUDGET[1],
         "consumed_amount": USER_BUDGET[2], "prevent_further_usage": True,
         "budget_alerting": {"will_alert": False, "alert_recipients": []}},
    ]


def _budgets(query: Query, org: str) -> JSON:
    page, size = query.integer("page", 1), query.integer("per_page", 10)
    assert page is not None and size is not None
    if page < 1 or not 1 <= size <= 100:
        raise ApiError(422, "page must be at least 1 and per_page between 1 and 100")
    found = budgets(org)
    return {"budgets": found[(page - 1) * size : page * size],
            "has_next_page": page * size < len(found), "total_count": len(found)}
