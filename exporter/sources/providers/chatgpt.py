"""ChatGPT workspaces: Codex used on a ChatGPT plan, from the Codex Analytics API.

``GET /v1/analytics/codex/workspaces/{workspace_id}/usage`` answers one row per user and UTC
day (or per day for the workspace, ``group=workspace``) with the credits used and the text
tokens (uncached input, cached input, output), in ``totals`` and split by model; pages of up to
1000 rows follow ``next_page`` while ``has_more``. Credits are the plan's unit, exported as
``aicost_credits_used_total{product="codex"}``, and as billed dollars
(``line_item="credits"``) only at a configured rate per credit: enterprise contracts set their
own price. The key is a workspace Admin key (or a Platform key OpenAI support scoped) with
``codex.enterprise.analytics.read``.

Codex signed in with an API key is billed on the OpenAI Platform and is in the organization's
usage there (``provider: openai``), not here: the two never overlap. The row fields follow the
transcriptions of OpenAI's admin API reference (UNVERIFIED against live traffic).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
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
    TokenType,
)
from exporter.sources.providers.base import HOUR, DatasetReader, ProviderError
from exporter.sources.providers.client import HttpProvider, JSONObject, objects
from exporter.sources.providers.fields import (
    add_money,
    check_usable,
    count,
    money,
    plain_name,
    query_end,
    quote,
    skip_row,
    watermark,
)

DEFAULT_BASE_URL = "https://api.chatgpt.com"
USAGE_ENDPOINT = "/v1/analytics/codex/workspaces/{workspace_id}/usage"
PAGE_SIZE = 1000
PAGE_CAP = 50
PRODUCT = "codex"
LINE_ITEM = "credits"
TOKENS = (
    ("uncached_text_input_tokens", TokenType.INPUT),
    ("cached_text_input_tokens", TokenType.INPUT_CACHE_READ),
    ("text_output_tokens", TokenType.OUTPUT),
)
_WORKSPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_TOKEN = re.compile(r"[A-Za-z0-9_=+/.:-]{1,512}")


class ChatGPTOptions(BaseModel):
    """``options:`` of a ``chatgpt`` account."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    workspace_id: str
    """The workspace's id (ChatGPT admin console, Workspace details)."""
    credit_usd_rate: float | None = None
    """US dollars per credit of the contract; without it, credits are not turned into dollars."""

    @field_validator("workspace_id")
    @classmethod
    def _check_workspace(cls, value: str) -> str:
        if _WORKSPACE.fullmatch(value) is None:
            raise ValueError("must be a ChatGPT workspace id")
        return value

    @field_validator("credit_usd_rate")
    @classmethod
    def _check_rate(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value < 100:
            raise ValueError("must be a positive number of dollars per credit (list price 0.04)")
        return value


Amounts = list[Decimal]
"""Credits, then each of :data:`TOKENS`, in that order (exact: the remainder beyond the
models listed is a difference)."""


def _amounts(node: Mapping[str, Any], where: str) -> Amounts:
    credits = Decimal(0) if node.get("credits") is None else money(node["credits"], where)
    if credits < 0:
        raise ProviderError("parse", f"{where}: negative 'credits' ({quote(node['credits'])})")
    tokens = (Decimal(count(node, field, where, required=False)) for field, _ in TOKENS)
    return [credits, *tokens]


def _merge(split: dict[Dims, Amounts], dims: Dims, amounts: Amounts) -> None:
    known = split.get(dims)
    split[dims] = amounts if known is None else [a + b for a, b in zip(known, amounts,
                                                                        strict=True)]


class ChatGPTProvider(HttpProvider):
    """Client for one ChatGPT workspace's Codex usage."""

    name: ClassVar[str] = "chatgpt"
    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    # The analytics lag up to 12 hours and a day's row can be revised for days: hourly is plenty.
    default_poll_interval: ClassVar[str] = "1h"
    default_settle_window: ClassVar[str] = "5d"
    expected_lag: ClassVar[Mapping[Dataset, float]] = {Dataset.CODEX: 36 * HOUR}
    Options: ClassVar[type[ChatGPTOptions]] = ChatGPTOptions
    options: ChatGPTOptions

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """Bearer key (workspace Admin key or scoped Platform key)."""
        return {"Authorization": f"Bearer {key}"}

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Codex credits and tokens of every UTC day in ``[start, end)``."""
        reader = DatasetReader()
        await reader.read_one(Dataset.CODEX, lambda: self._codex(start, end))
        return reader.result()

    async def _pages(self, params: dict[str, str | int]) -> AsyncIterator[JSONObject]:
        """Every page, each read once the previous one is parsed."""
        path = USAGE_ENDPOINT.format(
            workspace_id=quote_path(self.options.workspace_id, safe="")
        )
        where = f"GET {USAGE_ENDPOINT}"
        seen = set()
        for _ in range(PAGE_CAP):
            answer = await self._api.get_json(path, params, endpoint=USAGE_ENDPOINT)
            more, token = answer.get("has_more"), answer.get("next_page")
            if not isinstance(more, bool):
                raise ProviderError("parse", f"{where}: 'has_more' is not a boolean")
            yield answer
            if not more:
                return
            if not isinstance(token, str) or not _TOKEN.fullmatch(token) or token in seen:
                raise ProviderError("parse", f"{where}: more pages without a new 'next_page'")
            seen.add(token)
            params = {**params, "page": token}
        raise ProviderError("parse", f"{where}: still more pages after {PAGE_CAP}")

    async def _codex(self, start: int, end: int) -> Batch:
        where = f"GET {USAGE_ENDPOINT}"
        params: dict[str, str | int] = {
            "start_time": start, "end_time": query_end(start, end), "limit": PAGE_SIZE,
        }
        if "user" not in self._group_by:
            params["group"] = "workspace"
        batch = Batch(Dataset.CODEX, start, end)
        cost: dict[tuple[int, SeriesKey], Decimal] = {}
        rows, ends = 0, []
        seen: set[tuple[int, str]] = set()
        async for answer in self._pages(params):
            for row in objects(answer, "data", where):
                rows += 1
                try:
                    day, user, split = self._row(row, where)
                    if (day, user) in seen:  # one row per user and day: a page overlapping
                        raise ProviderError("parse", f"{where}: a repeated row of a user's day")
                except ProviderError as err:
                    skip_row(batch, err)
                    continue
                seen.add((day, user))
                if not start <= day < end:
                    continue
                ends.append(day + DAY)
                for dims, amounts in split.items():
                    self._add(batch, cost, day, dims, amounts)
        add_money(batch, cost)
        batch.watermark = watermark(end, ends)
        return check_usable(batch, rows)

    def _row(self, row: Mapping[str, Any], where: str) -> tuple[int, str, dict[Dims, Amounts]]:
        """A row's day, user and amounts by series (by model where grouped), read in full."""
        ts, until = row.get("start_time"), row.get("end_time", None)
        if isinstance(ts, bool) or not isinstance(ts, int) or not 0 <= ts < 2**40:
            raise ProviderError("parse", f"{where}: 'start_time' {quote(ts)} is not Unix seconds")
        if ts % DAY or until not in (None, ts + DAY):  # a week's bucket is no day's
            raise ProviderError("parse", f"{where}: a row that is not one UTC day")
        user = self._user(row, where) if "user" in self._group_by else ""
        totals = row.get("totals")
        if not isinstance(totals, dict):
            raise ProviderError("parse", f"{where}: row without 'totals'")
        total = _amounts(totals, where)
        split: dict[Dims, Amounts] = {}
        models = row.get("models") if "model" in self._group_by else None
        if models:
            for item in objects(row, "models", where):
                model = plain_name(item, "model", where) or ""
                _merge(split, Dims(model=model, user_id=user), _amounts(item, where))
        listed = [sum((v[i] for v in split.values()), Decimal(0)) for i in range(len(total))]
        if any(s > t for s, t in zip(listed, total, strict=True)):
            return ts, user, {Dims(user_id=user): total}  # models beyond the totals: the totals
        # What the totals have beyond the models listed (or all of it) has no model.
        rest = [t - s for t, s in zip(total, listed, strict=True)]
        if any(rest):
            _merge(split, Dims(user_id=user), rest)
        return ts, user, split

    @staticmethod
    def _user(row: Mapping[str, Any], where: str) -> str:
        """The member's email, else their user id (an email that is no plain name too)."""
        actor = row.get("actor")
        actor = actor if isinstance(actor, dict) else {}
        try:
            email = plain_name(actor, "email", where)
        except ProviderError:
            email = None
        return (email or plain_name(actor, "user_id", where)
                or plain_name(row, "user_id", where) or "")

    def _add(
        self,
        batch: Batch,
        cost: dict[tuple[int, SeriesKey], Decimal],
        day: int,
        dims: Dims,
        amounts: Amounts,
    ) -> None:
        credits, *tokens = amounts
        keys: list[SeriesKey] = [(Family.CREDITS_USED, dims, (PRODUCT,))]
        keys += [(Family.TOKENS, dims, (token_type, "text", "default")) for _, token_type in TOKENS]
        batch.add_all(day, keys, [float(credits), *(float(n) for n in tokens)])
        rate = self.options.credit_usd_rate
        if rate is not None and credits:
            key = (day, (Family.BILLED_COST, dims, (LINE_ITEM,)))
            cost[key] = cost.get(key, Decimal(0)) + credits * Decimal(str(rate))
