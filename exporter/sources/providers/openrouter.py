"""OpenRouter: credits, daily activity per model, today's spend from the keys' counters.

Needs a management key. ``/activity`` has only *completed* UTC days, so the
month-to-date counters end at the last midnight; what was spent since then is
published as the ``BILLED_COST_TODAY`` gauge (the keys' ``usage_daily``), never
added to a counter: at midnight that amount moves into the per-model activity
rows, and a counter that held it would have to decrease.

Every workspace counts: ``/workspaces`` names them (the ``project`` label, refreshed hourly)
and their keys are listed with ``workspace_id`` (without it ``/keys`` has the default
workspace's only). ``/activity`` has no key or member dimension, only filters: grouping by
``api_key`` (or else ``user``, through ``/organization/members`` and ``user_id``) asks one
report per key (member). BYOK inference (``byok_usage_inference``, paid to the upstream
provider on the user's own key) is billed cost with ``line_item="byok"``: exported, but not
this account's spend (budgets and recording rules leave it out; see ``ELSEWHERE_BILLED``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
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
from exporter.sources.providers.base import (
    HOUR,
    DatasetReader,
    NameCache,
    ProviderError,
    ProviderSettings,
)
from exporter.sources.providers.client import HttpProvider, JSONObject, objects
from exporter.sources.providers.fields import (
    add_money,
    count,
    label,
    money,
    parse_date,
    skip_row,
)

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
CREDITS_PATH = "/credits"
ACTIVITY_PATH = "/activity"
KEYS_PATH = "/keys"
WORKSPACES_PATH = "/workspaces"
MEMBERS_PATH = "/organization/members"
KEYS_PAGE_SIZE = 100  # fixed by the API: a shorter page is the last one
KEYS_PAGE_CAP = 50
LIST_PAGE_SIZE = 100  # /workspaces and /organization/members: limit at most 100
LINE_ITEM = "inference"
BYOK_LINE_ITEM = "byok"
MAX_FILTERED_REPORTS = 100
"""Keys (or members) attributed through a filtered /activity report each poll, at most."""
_COUNTS = ("requests", "prompt_tokens", "completion_tokens", "reasoning_tokens")


@dataclass(slots=True)
class _Totals:
    """One (day, workspace, model[, key]) cell of the activity report."""

    counts: list[int] = field(default_factory=lambda: [0, 0, 0, 0])  # order of _COUNTS
    usage: Decimal = Decimal(0)
    byok: Decimal = Decimal(0)  # inference on the user's own provider keys (BYOK)

    def add(self, other: _Totals, sign: int = 1) -> None:
        self.counts = [a + sign * b for a, b in zip(self.counts, other.counts, strict=True)]
        self.usage += sign * other.usage
        self.byok += sign * other.byok

    def clamp(self) -> None:
        """No negative rest: a filtered report may hold rows the whole one rounded away."""
        self.counts = [max(0, c) for c in self.counts]
        self.usage, self.byok = max(Decimal(0), self.usage), max(Decimal(0), self.byok)


Cell = tuple[int, str, str]  # (day, workspace id, model)


def _key_ids(keys: Iterable[Mapping[str, Any]], where: str) -> list[tuple[str, str]]:
    """(hash, api_key_id) per key: the name, else the label; a hash prefix disambiguates."""
    found: list[tuple[str, str]] = []
    for key in keys:
        key_hash = label(key, "hash", where)
        if not key_hash:
            raise ProviderError("parse", f"{where}: key without a 'hash'")
        name = label(key, "name", where) or label(key, "label", where) or key_hash[:12]
        found.append((key_hash, name))
    names = [name for _, name in found]
    return [
        (key_hash, name if names.count(name) == 1 else f"{name} ({key_hash[:8]})")
        for key_hash, name in found
    ]


class OpenRouterProvider(HttpProvider):
    """Client for one OpenRouter account (management key)."""

    name: ClassVar[str] = "openrouter"

    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    # /activity reports completed UTC days only: its data always ends at the last midnight, and
    # yesterday's may take a few hours to appear.
    expected_lag: ClassVar[Mapping[Dataset, float]] = {
        Dataset.USAGE: 30 * HOUR,
        Dataset.COST: 30 * HOUR,
    }

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """Bearer management key."""
        return {"Authorization": f"Bearer {key}"}

    def __init__(self, settings: ProviderSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._workspace_names: dict[str, str] = {}
        self._account = settings.account
        self._capped = False
        self._members = NameCache(
            self._load_members,
            account=settings.account,
            clock=kwargs.get("clock", time.monotonic),
            redact=self._api.redact,
        )

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Activity of the completed UTC days in ``[start, end)``, credits, today's spend."""
        reader = DatasetReader()
        await reader.read_one(Dataset.BALANCE, self._balance)
        await reader.read((Dataset.USAGE, Dataset.COST), lambda: self._usage_and_cost(start, end))
        names = self._workspace_names if "project" in self._group_by else {}
        return reader.result(names)

    async def _balance(self) -> Batch:
        remaining = await self._credits()
        balance = Batch(Dataset.BALANCE, 0, 0)
        balance.gauges[Family.CREDITS_REMAINING, Dims(), ()] = float(remaining)
        return balance

    async def _usage_and_cost(self, start: int, end: int) -> tuple[Batch, Batch]:
        """Both come from the same report (and today's spend from the keys)."""
        workspaces = self._workspace_names = await self._names.resolve(())
        keys = await self._keys(workspaces)
        by_key, by_user = "api_key" in self._group_by, "user" in self._group_by
        today: dict[str, Decimal] = {}
        for _, key_id, usage_daily in keys:
            dim = key_id if by_key else ""
            today[dim] = today.get(dim, Decimal(0)) + usage_daily

        usage = Batch(Dataset.USAGE, start, end)
        cells = await self._activity({}, usage)
        # /activity has no key or member dimension, only a filter for each: one report per key
        # (or member), and what none of them explains (deleted keys, former members) stays
        # unattributed. Keys take precedence: a report per key and member is not asked for.
        filters: list[tuple[dict[str, str], str]] = []
        if by_key:
            filters = [({"api_key_hash": key_hash}, key_id) for key_hash, key_id, _ in keys]
        elif by_user:
            members = await self._members.resolve(())
            filters = [({"user_id": member}, name) for member, name in sorted(members.items())]
        if len(filters) > MAX_FILTERED_REPORTS:
            # Each is a request of every poll: an account with thousands of keys or members
            # must not turn one poll into thousands. The rest stays unattributed.
            if not self._capped:
                logger.warning(
                    "account %s: %d keys or members, only the first %d are attributed "
                    "(one /activity request each per poll); the rest stays unattributed",
                    self._account,
                    len(filters),
                    MAX_FILTERED_REPORTS,
                )
                self._capped = True
            filters = filters[:MAX_FILTERED_REPORTS]
        attributed: dict[tuple[Cell, str], _Totals] = {}
        for params, name in filters:
            # The same rows again, filtered: a malformed one was counted in the full report.
            scratch = Batch(Dataset.USAGE, start, end)
            for cell, totals in (await self._activity(params, scratch, check=False)).items():
                attributed[cell, name] = totals
                cells.setdefault(cell, _Totals()).add(totals, -1)
        for cell, totals in cells.items():
            totals.clamp()
            attributed[cell, ""] = totals

        cost = Batch(Dataset.COST, start, end)
        for dim, amount in today.items():
            cost.gauges[Family.BILLED_COST_TODAY, Dims(api_key_id=dim), ()] = float(amount)
        money_totals: dict[tuple[int, SeriesKey], Decimal] = {}
        for ((day, workspace, model), name), totals in attributed.items():
            if not start <= day < end:
                continue  # before the window (or the month): the ledger must not see it
            dims = self._dims(workspace, model, name if by_key else "", name if by_user else "")
            requests, prompt, completion, reasoning = totals.counts
            usage.add(day, (Family.TOKENS, dims, (TokenType.INPUT, "", "")), prompt)
            usage.add(day, (Family.TOKENS, dims, (TokenType.OUTPUT, "", "")), completion)
            usage.add(day, (Family.REASONING_TOKENS, dims, ()), reasoning)
            usage.add(day, (Family.REQUESTS, dims, ("",)), requests)
            for line_item, amount in ((LINE_ITEM, totals.usage), (BYOK_LINE_ITEM, totals.byok)):
                if amount:
                    key: SeriesKey = (Family.BILLED_COST, dims, (line_item,))
                    money_totals[day, key] = money_totals.get((day, key), Decimal(0)) + amount
        add_money(cost, money_totals)
        cost.skipped_rows, cost.skipped_error = usage.skipped_rows, usage.skipped_error
        usage.skipped_rows, usage.skipped_error = 0, ""  # the rows of both: counted once
        # The report claims every completed day: data is complete up to the last midnight.
        usage.watermark = cost.watermark = float(max(start, min(end, day_start(end))))
        return usage, cost

    def _dims(self, workspace: str, model: str, key_id: str, user: str) -> Dims:
        group_by = self._group_by
        return Dims(
            workspace if "project" in group_by else "",
            model if "model" in group_by else "",
            key_id,
            user,
        )

    async def _credits(self) -> Decimal:
        body = await self._api.get_json(CREDITS_PATH, {})
        where = f"GET {CREDITS_PATH}"
        data = body.get("data")
        if not isinstance(data, dict):
            raise ProviderError("parse", f"{where}: 'data' is not an object")
        return money(data.get("total_credits"), where) - money(data.get("total_usage"), where)

    async def _keys(self, workspaces: Mapping[str, str]) -> list[tuple[str, str, Decimal]]:
        """(hash, api_key_id, usage_daily) of every key of every workspace, disabled ones
        included: without ``workspace_id`` the list has the default workspace's keys only."""
        where = f"GET {KEYS_PATH}"
        listed: dict[str, JSONObject] = {}  # by hash: a workspace listed twice adds nothing
        for workspace in (None, *sorted(workspaces)):
            for item in await self._key_pages(workspace, where):
                key_hash = label(item, "hash", where)
                if not key_hash:
                    raise ProviderError("parse", f"{where}: key without a 'hash'")
                listed.setdefault(key_hash, item)
        items = list(listed.values())
        ids = _key_ids(items, where)
        return [
            (key_hash, key_id, money(item.get("usage_daily", 0), where))
            for (key_hash, key_id), item in zip(ids, items, strict=True)
        ]

    async def _key_pages(self, workspace: str | None, where: str) -> list[JSONObject]:
        listed: list[JSONObject] = []
        for page in range(KEYS_PAGE_CAP):
            params: dict[str, str | int] = {
                "include_disabled": "true",
                "offset": page * KEYS_PAGE_SIZE,
            }
            if workspace is not None:
                params["workspace_id"] = workspace
            items = objects(await self._api.get_json(KEYS_PATH, params), "data", where)
            listed.extend(items)
            if len(items) < KEYS_PAGE_SIZE:
                return listed
        raise ProviderError("parse", f"{where}: still more keys after {KEYS_PAGE_CAP} pages")

    async def _offset_list(self, path: str) -> list[JSONObject]:
        """Every item of an ``offset``/``limit`` list with ``total_count`` (workspaces, members)."""
        where = f"GET {path}"
        items: list[JSONObject] = []
        for page in range(KEYS_PAGE_CAP):
            body = await self._api.get_json(
                path, {"offset": page * LIST_PAGE_SIZE, "limit": LIST_PAGE_SIZE}
            )
            found = objects(body, "data", where)
            items.extend(found)
            total = body.get("total_count")
            if len(found) < LIST_PAGE_SIZE or (isinstance(total, int) and len(items) >= total):
                return items
        raise ProviderError("parse", f"{where}: still more items after {KEYS_PAGE_CAP} pages")

    async def load_names(self) -> dict[str, str]:
        """Workspace names by id (the ``project`` label), from ``/workspaces``."""
        names: dict[str, str] = {}
        for workspace in await self._offset_list(WORKSPACES_PATH):
            workspace_id = label(workspace, "id", f"GET {WORKSPACES_PATH}")
            name = label(workspace, "name", f"GET {WORKSPACES_PATH}")
            if workspace_id:
                names[workspace_id] = name or workspace_id
        return names

    async def _load_members(self) -> dict[str, str]:
        """Organization members by id: their email address (the ``user`` label), else the id."""
        members: dict[str, str] = {}
        for member in await self._offset_list(MEMBERS_PATH):
            member_id = label(member, "id", f"GET {MEMBERS_PATH}")
            if member_id:
                members[member_id] = label(member, "email", f"GET {MEMBERS_PATH}") or member_id
        return members

    async def _activity(
        self, params: Mapping[str, str], batch: Batch, *, check: bool = True
    ) -> dict[Cell, _Totals]:
        """The whole report (last 30 completed days; no pagination) summed per cell; malformed
        rows are counted in ``batch`` (and, if ``check``, fail it when they are all there is)."""
        query = dict(params)
        if "project" in self._group_by:
            query["group_by"] = "workspace"  # adds workspace_id to every row
        body = await self._api.get_json(ACTIVITY_PATH, query)
        where = f"GET {ACTIVITY_PATH}"
        cells: dict[Cell, _Totals] = {}
        rows = objects(body, "data", where)
        skipped = batch.skipped_rows
        for row in rows:
            try:
                cell = (
                    parse_date(row.get("date"), "date", where),
                    label(row, "workspace_id", where) or "",
                    label(row, "model", where) or "",
                )
                counts = [
                    count(row, name, where, required=name != "reasoning_tokens") for name in _COUNTS
                ]
                usage = money(row.get("usage"), where)
                byok = row.get("byok_usage_inference")
                byok_usd = Decimal(0) if byok is None else money(byok, where)
            except ProviderError as err:
                skip_row(batch, err)
                continue
            totals = cells.setdefault(cell, _Totals())
            totals.add(_Totals(counts, usage, byok_usd))
        if check and rows and batch.skipped_rows - skipped >= len(rows):
            raise ProviderError("parse", f"every row is malformed ({batch.skipped_error})")
        return cells
