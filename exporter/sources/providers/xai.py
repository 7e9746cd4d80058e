"""xAI: billed spend per day and its postpaid spending limit, from the Management API.

A management key (Bearer; not an inference key) belongs to one team: its id comes from the
configuration or, once, from ``GET /auth/management-keys/validation``. ``POST
/v1/billing/teams/{team_id}/usage`` is the console's usage explorer: daily dollar sums
(``"usd"``, ``AGGREGATION_SUM``), grouped by the billing line's ``description`` (such as
"Chat grok-4-0709") with per-model grouping; that is the ``cost`` dataset. ``GET
/v1/billing/teams/{team_id}/postpaid/spending-limits`` has the monthly limit in force
(``effectiveSl``, US cents as a string), read once an hour: the ``limits`` dataset.

xAI's reference shows the paths; the request and answer fields follow the clients that use
them (UNVERIFIED against an official schema): times as ``YYYY-MM-DD HH:MM:SS`` in the named
time zone, ``endTime`` taken as inclusive, values in dollars as numbers, and ``limitReached``
when the answer was cut at xAI's cap on result size. A cut grouped answer is read again
without grouping, so the account's total stays whole. The prepaid balance is not read: xAI
posts spend against it only when a billing cycle closes, so it would overstate what is left.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar
from urllib.parse import quote as quote_path

from pydantic import BaseModel, ConfigDict, field_validator

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
from exporter.sources.providers.base import HOUR, DatasetReader, ProviderError
from exporter.sources.providers.client import HttpProvider, JSONObject, objects
from exporter.sources.providers.fields import (
    add_money,
    check_usable,
    money,
    parse_rfc3339,
    query_end,
    quote,
    skip_row,
    watermark,
)

DEFAULT_BASE_URL = "https://management-api.x.ai"
VALIDATION_PATH = "/auth/management-keys/validation"
USAGE_ENDPOINT = "/v1/billing/teams/{team_id}/usage"
LIMITS_ENDPOINT = "/v1/billing/teams/{team_id}/postpaid/spending-limits"
LINE_ITEM = "usage"
HARD = "hard"
MAX_DESCRIPTION = 120
_TEAM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_MODEL = re.compile(r"grok[\w.-]*")


class XAIOptions(BaseModel):
    """``options:`` of an ``xai`` account."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    team_id: str | None = None
    """The team whose billing to read; by default the management key's own team."""

    @field_validator("team_id")
    @classmethod
    def _check_team_id(cls, value: str | None) -> str | None:
        if value is not None and _TEAM_ID.fullmatch(value) is None:
            raise ValueError("must be an xAI team id (letters, digits, '-', '_')")
        return value


def model_of(description: str) -> str:
    """The model a billing line's description names ("Chat grok-4-0709" -> "grok-4-0709"),
    else the description itself."""
    found = _MODEL.search(description)
    return found.group(0) if found else description


def _clock_time(ts: int) -> str:
    """Unix seconds as the usage explorer's ``YYYY-MM-DD HH:MM:SS`` (UTC)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _cents(value: Any, where: str) -> Decimal | None:
    """A ``{"val": "<cents>"}`` amount in dollars; None when absent."""
    if value is None:
        return None
    raw = value.get("val") if isinstance(value, dict) else value
    if raw is None:
        return None
    return money(raw, where) / 100


class XAIProvider(HttpProvider):
    """Client for one xAI team (management key)."""

    name: ClassVar[str] = "xai"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    # Cost is booked as requests are made: a day's figure is final once the day is over.
    expected_lag: ClassVar[Mapping[Dataset, float]] = {Dataset.COST: 3 * HOUR}
    Options: ClassVar[type[XAIOptions]] = XAIOptions
    options: XAIOptions
    _team: str | None = None

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """Bearer management key."""
        return {"Authorization": f"Bearer {key}"}

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Spend of every UTC day in ``[start, end)``, and the spending limit."""
        reader = DatasetReader()
        # Without the team, neither dataset can be read: both fail with the lookup's error.
        if await reader.read((Dataset.COST, Dataset.LIMITS), self._find_team) is None:
            return reader.result()
        await reader.read_one(Dataset.COST, lambda: self._costs(start, end))
        await reader.read_one(Dataset.LIMITS, lambda: self.hourly(self._spending_limit))
        return reader.result()

    def _path(self, template: str) -> str:
        assert self._team is not None, "fetch() finds the team first"
        return template.format(team_id=quote_path(self._team, safe=""))

    async def _find_team(self) -> tuple[Batch, ...]:
        """The configured team, else the key's own (looked up once)."""
        if self._team is None:
            self._team = self.options.team_id or await self._own_team()
        return ()

    async def _own_team(self) -> str:
        where = f"GET {VALIDATION_PATH}"
        answer = await self._api.get_json(VALIDATION_PATH, {})
        # scopeId replaces the deprecated teamId for team-scoped keys.
        team = answer.get("scopeId") if answer.get("scope") == "SCOPE_TEAM" else None
        team = team or answer.get("teamId")
        if not isinstance(team, str) or _TEAM_ID.fullmatch(team) is None:
            raise ProviderError(
                "parse", f"{where}: no team id for this key (set options.team_id)"
            )
        return team

    async def _usage(self, start: int, stop: int, grouped: bool) -> JSONObject:
        request = {
            "analyticsRequest": {
                "timeRange": {
                    "startTime": _clock_time(start),
                    "endTime": _clock_time(stop - 1),  # inclusive
                    "timezone": "Etc/GMT",
                },
                "timeUnit": "TIME_UNIT_DAY",
                "values": [{"name": "usd", "aggregation": "AGGREGATION_SUM"}],
                "groupBy": ["description"] if grouped else [],
                "filters": [],
            }
        }
        path = self._path(USAGE_ENDPOINT)
        return await self._api.post_json(path, request, endpoint=USAGE_ENDPOINT)

    async def _costs(self, start: int, end: int) -> Batch:
        where = f"POST {USAGE_ENDPOINT}"
        stop = query_end(start, end)
        grouped = "model" in self._group_by
        answer = await self._usage(start, stop, grouped)
        batch = Batch(Dataset.COST, start, end)
        totals: dict[tuple[int, SeriesKey], Decimal] = {}
        ends: list[int] = []
        rows = self._add(answer, grouped, batch, totals, ends)
        if answer.get("limitReached") is True and grouped:
            # Cut at xAI's result cap: the lines listed stay as they are (a series published
            # must not move), and what the day's total has beyond them has no model.
            total: dict[tuple[int, SeriesKey], Decimal] = {}
            ungrouped = await self._usage(start, stop, False)
            if ungrouped.get("limitReached") is not True:
                rows += self._add(ungrouped, False, batch, total, ends)
                listed: dict[int, Decimal] = {}
                for (day, _), amount in totals.items():
                    listed[day] = listed.get(day, Decimal(0)) + amount
                for (day, key), amount in total.items():
                    rest = amount - listed.get(day, Decimal(0))
                    if rest > 0:
                        totals[day, key] = rest
                answer = ungrouped
        if answer.get("limitReached") is True:
            raise ProviderError("parse", f"{where}: the answer was cut short (limitReached)")
        add_money(batch, totals)
        batch.watermark = watermark(end, ends)
        return check_usable(batch, rows)

    def _add(
        self,
        answer: Mapping[str, Any],
        grouped: bool,
        batch: Batch,
        totals: dict[tuple[int, SeriesKey], Decimal],
        ends: list[int],
    ) -> int:
        """Adds an answer's daily amounts in the fetch window to ``totals`` (and each day
        answered, zero or not, to ``ends``); its number of series."""
        where = f"POST {USAGE_ENDPOINT}"
        series_list = objects(answer, "timeSeries", where)
        for series in series_list:
            try:
                points = self._series(series, grouped, where)
            except ProviderError as err:
                skip_row(batch, err)
                continue
            for day, key, amount in points:
                if batch.start <= day < batch.end:
                    ends.append(day + DAY)
                    if amount:
                        totals[day, key] = totals.get((day, key), Decimal(0)) + amount
        return len(series_list)

    @staticmethod
    def _series(
        series: Mapping[str, Any], grouped: bool, where: str
    ) -> list[tuple[int, SeriesKey, Decimal]]:
        """One series' daily amounts, read in full before any is added."""
        model = ""
        if grouped:
            group = series.get("group")
            if not isinstance(group, list) or not group or not isinstance(group[0], str):
                raise ProviderError("parse", f"{where}: series without a 'group' description")
            if len(group[0]) > MAX_DESCRIPTION or not group[0].isprintable():
                problem = f"description {quote(group[0])} is too long or not printable"
                raise ProviderError("parse", f"{where}: {problem}")
            model = model_of(group[0])
        key: SeriesKey = (Family.BILLED_COST, Dims(model=model), (LINE_ITEM,))
        points = []
        for point in objects(series, "dataPoints", where):
            day = day_start(parse_rfc3339(point.get("timestamp"), where))
            values = point.get("values")
            if not isinstance(values, list) or not values:
                raise ProviderError("parse", f"{where}: data point without 'values'")
            amount = money(values[0], where)
            if amount < 0:
                raise ProviderError("parse", f"{where}: negative amount ({quote(values[0])})")
            points.append((day, key, amount))  # a day at 0 is a day answered
        return points

    async def _spending_limit(self) -> Batch:
        """The postpaid monthly spending limit in force."""
        where = f"GET {LIMITS_ENDPOINT}"
        batch = Batch(Dataset.LIMITS, 0, 0)
        try:
            answer = await self._api.get_json(
                self._path(LIMITS_ENDPOINT), {}, endpoint=LIMITS_ENDPOINT
            )
        except ProviderError as err:
            if err.status != 404:  # a prepaid-only team has no postpaid limit
                raise
            answer = {}
        limits = answer.get("spendingLimits", {})
        if not isinstance(limits, dict):
            raise ProviderError("parse", f"{where}: 'spendingLimits' is not an object")
        limit = _cents(limits.get("effectiveSl"), where)
        if limit is not None and limit > 0:
            batch.gauges[Family.PROVIDER_LIMIT, Dims(), (HARD, "month")] = float(limit)
        return batch
