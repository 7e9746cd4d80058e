"""Anthropic's Claude Enterprise Analytics API: the token usage and billed cost of a Claude
Enterprise organization (chat, Claude Code, Cowork and the other products, and its API-key
traffic), with per-user billed cost.

Opt-in per Anthropic account (``options: {api: analytics}``), with an Analytics API key
(claude.ai > Analytics > API keys, scope ``read:analytics``): an Admin API key cannot call this
API, nor this key the Admin API. Sources: the API reference (platform.claude.com/docs/en/api/
admin/analytics, "Get Cost Over Time", "Get Per-User Cost", "Get Token Usage") and
anthropic-sdk-python's ``beta.organization.analytics`` resources. Neither documents a beta
header; the SDK marks the paths ``?beta=true``, and so do we. UNVERIFIED against a live
organization.

- A report gives at most the top 100 groups of a bucket, with no remainder row. A day with 100
  groups is read again without grouping, and what its groups miss is booked under ``(other)``,
  so that every day's total is whole.
- A request spans at most 31 days, and nothing before 2026-01-01 is served.
- The data is refreshed about every 4 hours (at most 24; ``data_refreshed_at`` is the
  watermark) and is final only after about 30 days: a longer ``settle_window`` catches more of
  the late corrections.
- Per-user cost covers seat users only. With ``group_by: [user]``, what the organization's
  report has beyond the users' rows (API keys, automation) is booked with no user. That
  report is read one day per request (a day of a large organization is many pages).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from exporter.core.ledger import OVERFLOW
from exporter.core.records import (
    DAY,
    Batch,
    Dataset,
    Dims,
    Family,
    FetchResult,
    SeriesKey,
    day_start,
)
from exporter.sources.providers.anthropic_rows import (
    CENTS,
    add_message_row,
    buckets_by_day,
    message_keys,
    message_values,
)
from exporter.sources.providers.base import DatasetReader, ProviderError
from exporter.sources.providers.client import ApiClient, JSONObject
from exporter.sources.providers.fields import (
    DimsReader,
    add_money,
    check_usable,
    label,
    money,
    parse_rfc3339,
    query_end,
    quote,
    rfc3339,
    skip_row,
)

USAGE_PATH = "/v1/organizations/analytics/usage_report"
COST_PATH = "/v1/organizations/analytics/cost_report"
USER_COST_PATH = "/v1/organizations/analytics/user_cost_report"
GROUP_CAP = 100
"""Groups a report returns per bucket, at most."""
MAX_DAYS = 31
"""Days one request may span."""
EARLIEST = 1_767_225_600
"""2026-01-01T00:00:00Z: the API serves nothing before."""
BUCKET_LIMIT = 31  # buckets per page at bucket_width 1d (the documented maximum)
USER_ROW_LIMIT = 1000  # rows per page of the per-user report (the documented maximum)
UNATTRIBUTED = "other"
"""The product of usage the API attributes to no product (Anthropic's own word for it)."""
MODEL_FIELDS = {"model": "model"}


async def fetch_analytics(
    api: ApiClient, start: int, end: int, group_by: Sequence[str]
) -> FetchResult:
    """Token usage and billed cost for every UTC day in ``[start, end)``."""
    start = max(start, EARLIEST)
    reader = DatasetReader()
    await reader.read_one(Dataset.ANALYTICS_USAGE, lambda: _usage(api, start, end, group_by))
    await reader.read_one(Dataset.ANALYTICS_COST, lambda: _cost(api, start, end, group_by))
    return reader.result()


async def _report(
    api: ApiClient, path: str, params: Mapping[str, Any], start: int, end: int
) -> tuple[list[tuple[int, list[JSONObject]]], float | None]:
    """The daily buckets of a report over ``[start, end)``, in requests of at most 31 days,
    and its watermark: the last bucket's end, or ``data_refreshed_at`` if earlier; None if a
    page has no refresh time (the API's "no export covers this range")."""
    where = f"GET {path}"
    days: list[tuple[int, list[JSONObject]]] = []
    seen: set[int] = set()
    marks: list[float] = []
    refreshed: list[float] = []

    def note(body: JSONObject) -> None:
        value = body.get("data_refreshed_at")
        refreshed.append(math.inf if value is None else parse_rfc3339(value, where))

    for first, stop in _ranges(start, end):
        query = {**params, **_window(first, stop), "limit": BUCKET_LIMIT}
        buckets = await _pages(api, path, query, note)
        # Only the days this request asked for: a neighbour's day would count twice.
        chunk, mark = buckets_by_day(buckets, first, stop, path)
        for day, _ in chunk:
            if day in seen:
                raise ProviderError("parse", f"{where}: the bucket of {rfc3339(day)} twice")
            seen.add(day)
        days.extend(chunk)
        if mark is not None:
            marks.append(min(mark, end))
    if not marks or math.inf in refreshed:
        return days, None
    return days, min(max(marks), *refreshed)


async def _pages(
    api: ApiClient,
    path: str,
    query: Mapping[str, Any],
    on_page: Callable[[JSONObject], None] | None = None,
) -> list[JSONObject]:
    """Every page's ``data``; read once more from the first page if the cursor expired (HTTP
    410: the data was refreshed while it was being paged through)."""
    try:
        return await api.paginate_buckets(path, query, on_page=on_page)
    except ProviderError as err:
        if err.status != 410:
            raise
    return await api.paginate_buckets(path, query, on_page=on_page)


def _ranges(start: int, end: int) -> list[tuple[int, int]]:
    stop = query_end(start, end)
    step = MAX_DAYS * DAY
    return [(first, min(first + step, stop)) for first in range(start, stop, step)]


def _window(first: int, stop: int) -> dict[str, Any]:
    return {
        "starting_at": rfc3339(first),
        "ending_at": rfc3339(stop),
        "bucket_width": "1d",
        "beta": True,
    }


async def _usage(api: ApiClient, start: int, end: int, group_by: Sequence[str]) -> Batch:
    # Not by product: tokens have no product label, and fewer groups stay under the cap.
    fields = ("model",) if "model" in group_by else ()
    params = {"group_by": (*fields, "context_window", "inference_geo", "speed")}
    days, mark = await _report(api, USAGE_PATH, params, start, end)
    where = f"GET {USAGE_PATH}"
    batch = Batch(Dataset.ANALYTICS_USAGE, start, end, watermark=mark)
    read_dims = DimsReader(group_by, MODEL_FIELDS)
    grouped: dict[int, list[int]] = {}  # per capped day, what its groups add up to
    rows = 0
    for day, results in days:
        rows += len(results)
        for row in results:
            try:
                add_message_row(batch, day, read_dims(row, where), row, where)
            except ProviderError as err:
                skip_row(batch, err)
                continue
            if len(results) >= GROUP_CAP:
                _add_to(grouped.setdefault(day, [0] * 6), message_values(row, where))
    if grouped:
        rest = message_keys(Dims(model=OVERFLOW) if fields else Dims(), "standard", "", "")
        totals, _ = await _report(api, USAGE_PATH, {}, min(grouped), max(grouped) + DAY)
        for day, results in totals:
            if day not in grouped:
                continue
            total = [0] * 6
            for row in results:  # ungrouped: one row per bucket
                try:
                    _add_to(total, message_values(row, where))
                except ProviderError as err:
                    skip_row(batch, err)
            missing = [max(t - s, 0) for t, s in zip(total, grouped[day], strict=True)]
            batch.add_all(day, rest, missing)
    return check_usable(batch, rows)


def _add_to(sums: list[int], values: Sequence[int]) -> None:
    for i, value in enumerate(values):
        sums[i] += value


def _cost_row(row: Mapping[str, Any], dims: Dims, where: str) -> tuple[SeriesKey, Decimal]:
    currency = row.get("currency")
    if not isinstance(currency, str) or currency.upper() != "USD":
        raise ProviderError("parse", f"{where}: unsupported currency {quote(currency)}")
    dollars = money(row.get("amount"), where) / CENTS  # fractional cents
    labels: tuple[str, ...] = (label(row, "product", where) or UNATTRIBUTED,)
    if cost_type := label(row, "cost_type", where):
        labels = (*labels, cost_type)
    return (Family.BILLED_COST, dims, labels), dollars


async def _cost(api: ApiClient, start: int, end: int, group_by: Sequence[str]) -> Batch:
    fields = ("product", "model", "cost_type") if "model" in group_by else ("product", "cost_type")
    days, mark = await _report(api, COST_PATH, {"group_by": fields}, start, end)
    where = f"GET {COST_PATH}"
    batch = Batch(Dataset.ANALYTICS_COST, start, end, watermark=mark)
    read_dims = DimsReader(group_by, MODEL_FIELDS)
    totals: dict[tuple[int, SeriesKey], Decimal] = {}
    grouped: dict[int, Decimal] = {}  # per capped day, what its groups add up to
    rows = 0
    for day, results in days:
        rows += len(results)
        for row in results:
            try:
                key, dollars = _cost_row(row, read_dims(row, where), where)
            except ProviderError as err:
                skip_row(batch, err)
                continue
            totals[day, key] = totals.get((day, key), Decimal(0)) + dollars
            if len(results) >= GROUP_CAP:
                grouped[day] = grouped.get(day, Decimal(0)) + dollars
    if grouped:
        rest: SeriesKey = (
            Family.BILLED_COST,
            Dims(model=OVERFLOW) if "model" in group_by else Dims(),
            (OVERFLOW,),
        )
        day_totals, _ = await _report(api, COST_PATH, {}, min(grouped), max(grouped) + DAY)
        for day, results in day_totals:
            if day not in grouped:
                continue
            total = Decimal(0)
            for row in results:  # ungrouped: one row per bucket
                try:
                    total += _cost_row(row, Dims(), where)[1]
                except ProviderError as err:
                    skip_row(batch, err)
            totals[day, rest] = max(total - grouped[day], Decimal(0))
    if "user" in group_by:
        rows += await _by_user(api, start, end, fields, group_by, totals, batch)
    add_money(batch, totals)
    return check_usable(batch, rows)


async def _by_user(
    api: ApiClient,
    start: int,
    end: int,
    fields: tuple[str, ...],
    group_by: Sequence[str],
    totals: dict[tuple[int, SeriesKey], Decimal],
    batch: Batch,
) -> int:
    """Move each seat user's cost out of the organization's rows (``totals``) into the user's
    own series; what stays there is the cost no user is billed for. Returns the rows read.

    One request per day: a day's rows are users x products x models x cost types, and a large
    organization's month of them would be more pages than one read may take."""
    where = f"GET {USER_COST_PATH}"
    read_dims = DimsReader([d for d in group_by if d == "model"], MODEL_FIELDS)
    overflow = Dims(model=OVERFLOW) if "model" in group_by else Dims()
    rows = 0
    for day in range(start, query_end(start, end), DAY):
        query = {**_window(day, day + DAY), "group_by": fields, "limit": USER_ROW_LIMIT}
        page = await _pages(api, USER_COST_PATH, query)
        rows += len(page)
        for row in page:
            try:
                if day_start(parse_rfc3339(row.get("starting_at"), where)) != day:
                    raise ProviderError("parse", f"{where}: a row of another day than asked")
                actor = row.get("actor")
                if not isinstance(actor, dict):
                    raise ProviderError("parse", f"{where}: 'actor' is not an object")
                user = label(actor, "user_id", where)
                if not user:
                    raise ProviderError("parse", f"{where}: the actor has no user_id")
                org_key, dollars = _cost_row(row, read_dims(row, where), where)
            except ProviderError as err:
                skip_row(batch, err)
                continue
            _, dims, labels = org_key
            user_key: SeriesKey = (Family.BILLED_COST, dims._replace(user_id=user), labels)
            totals[day, user_key] = totals.get((day, user_key), Decimal(0)) + dollars
            # From the organization's row of the same product, model and cost type; from the
            # remainder of a capped day if that row was beyond the cap.
            for source in (org_key, (Family.BILLED_COST, overflow, (OVERFLOW,))):
                if (day, source) in totals:
                    totals[day, source] = max(totals[day, source] - dollars, Decimal(0))
                    break
    return rows
