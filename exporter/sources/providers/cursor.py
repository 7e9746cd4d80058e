"""Cursor: the team Admin API (an admin key as the Basic user name, empty password).

``POST /teams/filtered-usage-events`` lists every request of the team (time in epoch
milliseconds, model, kind, per-event token usage and the cents charged); the exporter sums
them per UTC day and model (and user, with ``group_by: [user]``). ``POST /teams/spend`` has
each member's spend this month and the hard limit on it; those are the ``limits`` dataset,
read only with per-user grouping (a per-user limit is nothing without its user).

Cursor aggregates usage hourly and asks clients to poll at most once an hour, with at most
20 requests a minute per endpoint: the account polls hourly by default, and pages of one
endpoint are spaced :data:`REQUEST_SPACING` apart.

Field names follow Cursor's Admin API documentation; that the four token counts are
disjoint (``inputTokens`` without the cache reads and writes) is as documented there and
not verified against live traffic.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

from exporter.core.records import (
    Batch,
    Dataset,
    Dims,
    Family,
    FetchResult,
    SeriesKey,
    TokenType,
    day_start,
)
from exporter.sources.providers.base import HOUR, DatasetReader, ProviderError
from exporter.sources.providers.client import HttpProvider, JSONObject, objects
from exporter.sources.providers.fields import (
    add_money,
    check_usable,
    count,
    label,
    money,
    quote,
    skip_row,
)

DEFAULT_BASE_URL = "https://api.cursor.com"
EVENTS_PATH = "/teams/filtered-usage-events"
SPEND_PATH = "/teams/spend"
EVENTS_PAGE_SIZE = 1000  # the documented maximum
SPEND_PAGE_SIZE = 100
PAGE_CAP = 2000
"""Pages of one read (two million events): a team beyond it fails the dataset, it is not
silently cut short."""
REQUEST_SPACING = 3.0
"""Seconds between two requests to one endpoint: Cursor allows 20 a minute."""
_TOKENS = (
    ("inputTokens", TokenType.INPUT),
    ("outputTokens", TokenType.OUTPUT),
    ("cacheReadTokens", TokenType.INPUT_CACHE_READ),
    ("cacheWriteTokens", TokenType.INPUT_CACHE_WRITE),
)
HARD = "hard"


def _line_item(kind: str | None) -> str:
    """The charge's kind, as a bounded label: Cursor's ``kind`` is free text such as
    "Usage-based" or "Included in Business"."""
    text = (kind or "").lower()
    if "usage" in text:
        return "usage_based"
    if "included" in text:
        return "included"
    return "other"


def _millis(value: Any, where: str) -> int:
    """Epoch milliseconds (Cursor sends them as a string or a number) as Unix seconds."""
    # ASCII digits only, and few: int() refuses "²" and strings of over 4300 digits with a
    # ValueError, which would fail the dataset as a bug instead of leaving out the event.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 16:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**45:
        raise ProviderError("parse", f"{where}: 'timestamp' is not epoch milliseconds")
    return value // 1000


class CursorProvider(HttpProvider):
    """Client for one Cursor team (Admin API key)."""

    name: ClassVar[str] = "cursor"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    default_poll_interval: ClassVar[str] = "1h"
    # Aggregated hourly: the last hour may still be missing.
    expected_lag: ClassVar[Mapping[Dataset, float]] = {Dataset.USAGE: 3 * HOUR}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._last_request: dict[str, float] = {}
        """When each endpoint was last requested (the provider's monotonic clock)."""

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """HTTP Basic with the key as the user name and no password."""
        token = base64.b64encode(f"{key}:".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Usage and charges for every UTC day in ``[start, end)``; member limits if grouped
        by user."""
        reader = DatasetReader()
        await reader.read_one(Dataset.USAGE, lambda: self._usage(start, end))
        if "user" in self._group_by:
            await reader.read_one(Dataset.LIMITS, self._limits)
        return reader.result()

    async def _post(self, path: str, body: Mapping[str, Any]) -> JSONObject:
        """One request to ``path``, at least :data:`REQUEST_SPACING` after the previous one."""
        last = self._last_request.get(path)
        if last is not None:
            wait = REQUEST_SPACING - (self._clock() - last)
            if wait > 0:
                await self._sleep(wait)
        try:
            return await self._api.post_json(path, body)
        finally:
            self._last_request[path] = self._clock()

    async def _pages(
        self, path: str, body: Mapping[str, Any], more: Callable[[JSONObject, int], bool]
    ) -> list[JSONObject]:
        """Every page of ``path`` (1-based ``page``) while ``more(answer, page)``."""
        pages = []
        for page in range(1, PAGE_CAP + 1):
            answer = await self._post(path, {**body, "page": page})
            pages.append(answer)
            if not more(answer, page):
                return pages
        raise ProviderError("parse", f"POST {path}: still more pages after {PAGE_CAP}")

    async def _usage(self, start: int, end: int) -> Batch:
        where = f"POST {EVENTS_PATH}"

        def more(answer: JSONObject, page: int) -> bool:
            pagination = answer.get("pagination")
            if not isinstance(pagination, dict):
                raise ProviderError("parse", f"{where}: no 'pagination' object")
            has_next = pagination.get("hasNextPage")
            if not isinstance(has_next, bool):
                raise ProviderError("parse", f"{where}: 'pagination.hasNextPage' is not a boolean")
            return has_next

        # endDate is inclusive, in milliseconds.
        window = {"startDate": start * 1000, "endDate": end * 1000 - 1,
                  "pageSize": EVENTS_PAGE_SIZE}
        pages = await self._pages(EVENTS_PATH, window, more)
        batch = Batch(Dataset.USAGE, start, end)
        charged: dict[tuple[int, SeriesKey], Decimal] = {}
        rows = 0
        for answer in pages:
            for event in objects(answer, "usageEvents", where):
                rows += 1
                try:
                    self._event(batch, charged, event, start, end, where)
                except ProviderError as err:
                    skip_row(batch, err)
        add_money(batch, charged)
        batch.watermark = float(end // HOUR * HOUR)  # aggregated hourly: up to the last full hour
        return check_usable(batch, rows)

    def _event(
        self,
        batch: Batch,
        charged: dict[tuple[int, SeriesKey], Decimal],
        event: Mapping[str, Any],
        start: int,
        end: int,
        where: str,
    ) -> None:
        ts = _millis(event.get("timestamp"), where)
        if not start <= ts < end:
            return
        day = day_start(ts)
        model = label(event, "model", where) or ""
        user = (label(event, "userEmail", where) or "") if "user" in self._group_by else ""
        dims = Dims(model=model if "model" in self._group_by else "", user_id=user)
        usage = event.get("tokenUsage")
        if usage is not None and not isinstance(usage, dict):
            raise ProviderError("parse", f"{where}: 'tokenUsage' is not an object")
        counts = [count(usage or {}, field, where, required=False) for field, _ in _TOKENS]
        cents = event.get("chargedCents")
        amount = money(cents, where) if cents is not None else Decimal(0)
        if amount < 0:
            raise ProviderError("parse", f"{where}: 'chargedCents' is negative ({quote(cents)})")
        kind = _line_item(label(event, "kind", where))
        keys: list[SeriesKey] = [
            (Family.TOKENS, dims, (token_type, "text", "default")) for _, token_type in _TOKENS
        ]
        batch.add_all(day, (*keys, (Family.REQUESTS, dims, ("default",))), (*counts, 1))
        if amount:
            key = (Family.BILLED_COST, dims, (kind,))
            charged[day, key] = charged.get((day, key), Decimal(0)) + amount / 100

    async def _limits(self) -> Batch:
        """Each member's hard limit and spend this month (Cursor blocks usage beyond it)."""
        where = f"POST {SPEND_PATH}"

        def more(answer: JSONObject, page: int) -> bool:
            pages = answer.get("totalPages")
            if isinstance(pages, bool) or not isinstance(pages, int):
                raise ProviderError("parse", f"{where}: 'totalPages' is not an integer")
            return page < pages

        batch = Batch(Dataset.LIMITS, 0, 0)
        labels = (HARD, "month")
        for answer in await self._pages(SPEND_PATH, {"pageSize": SPEND_PAGE_SIZE}, more):
            for member in objects(answer, "teamMemberSpend", where):
                email = label(member, "email", where)
                limit = _limit_dollars(member, where)
                if not email or limit is None:
                    continue  # no limit: usage is not blocked for this member
                spend = float(money(member.get("spendCents", 0), where)) / 100
                dims = Dims(user_id=email)
                batch.gauges[Family.PROVIDER_LIMIT, dims, labels] = limit
                batch.gauges[Family.PROVIDER_LIMIT_SPEND, dims, labels] = spend
                # Cursor reports no enforcement state: a member at the limit is blocked.
                batch.gauges[Family.PROVIDER_LIMIT_ENFORCING, dims, labels] = float(
                    spend >= limit
                )
        return batch


def _limit_dollars(member: Mapping[str, Any], where: str) -> float | None:
    """The member's hard limit in dollars: the override where set, else the team's
    per-user limit as it applies to them; None without one."""
    for field in ("hardLimitOverrideDollars", "effectivePerUserLimitDollars"):
        value = member.get(field)
        if value is None:
            continue
        dollars = float(money(value, where))
        if dollars > 0:
            return dollars
    return None
