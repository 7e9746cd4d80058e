"""Anthropic Admin API: messages usage report, cost report, opt-in Claude Code report; or, for a
Claude Enterprise organization, the Analytics API (``anthropic_analytics.py``)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from exporter.core.gcpause import paused_gc
from exporter.core.records import (
    Batch,
    Dataset,
    Family,
    FetchResult,
    SeriesKey,
)
from exporter.sources.providers.anthropic_analytics import fetch_analytics
from exporter.sources.providers.anthropic_rows import CENTS, add_message_row, buckets_by_day
from exporter.sources.providers.base import HOUR, DatasetReader, ProviderError
from exporter.sources.providers.claude_code import fetch_claude_code
from exporter.sources.providers.client import HttpProvider
from exporter.sources.providers.fields import (
    DimsReader,
    add_money,
    check_usable,
    grouped_fields,
    label,
    money,
    project_ids,
    query_end,
    quote,
    rfc3339,
    skip_row,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
USAGE_PATH = "/v1/organizations/usage_report/messages"
COST_PATH = "/v1/organizations/cost_report"
WORKSPACES_PATH = "/v1/organizations/workspaces"
DIM_FIELDS = {
    "project": "workspace_id",
    "model": "model",
    "api_key": "api_key_id",
    "user": "account_id",
}
DEFAULT_WORKSPACE = "default"  # workspace_id is null for the default workspace
FAST_MODE_HEADERS = {"anthropic-beta": "fast-mode-2026-02-01"}
_COST_FIELDS = ("cost_type", "token_type", "service_tier", "context_window", "inference_geo")
"""The cost report's fields beside the description, kept as labels (null where not apply)."""


def _cost_row(
    row: Mapping[str, Any], read_dims: DimsReader, where: str
) -> tuple[SeriesKey, Decimal]:
    currency = row.get("currency")
    if not isinstance(currency, str) or currency.upper() != "USD":
        raise ProviderError("parse", f"{where}: unsupported currency {quote(currency)}")
    dollars = money(row.get("amount"), where) / CENTS  # amounts are in cents
    labels = [label(row, field, where) or "" for field in ("description", *_COST_FIELDS)]
    while len(labels) > 1 and not labels[-1]:  # trailing empty labels are left out
        labels.pop()
    return (Family.BILLED_COST, read_dims(row, where), tuple(labels)), dollars


class AnthropicProvider(HttpProvider):
    """Client for one Anthropic organization (Admin API key)."""

    name: ClassVar[str] = "anthropic"

    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    expected_lag: ClassVar[Mapping[Dataset, float]] = {
        # The cost report has daily buckets only, the current day's may be missing: 1.5 days.
        Dataset.COST: 36 * HOUR,
        # The Analytics API refreshes about every 4 hours, at most 24.
        Dataset.ANALYTICS_USAGE: 30 * HOUR,
        Dataset.ANALYTICS_COST: 30 * HOUR,
    }

    class Options(BaseModel):
        """``options:`` of an Anthropic account."""

        model_config = ConfigDict(frozen=True, extra="forbid")

        api: Literal["admin", "analytics"] = "admin"
        """``analytics``: the key is a Claude Enterprise Analytics API key, and the account
        reads that API's usage and cost reports instead of the Admin API's."""
        claude_code: bool = False
        """Also read the Claude Code Analytics report (one request per UTC day)."""

        @model_validator(mode="after")
        def _check_api(self) -> AnthropicProvider.Options:
            if self.api == "analytics" and self.claude_code:
                raise ValueError(
                    "claude_code needs the Admin API; the Analytics API's cost already "
                    "includes Claude Code (set api: admin, or leave claude_code out)"
                )
            return self

    options: Options

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """Admin API key and API version."""
        return {"x-api-key": key, "anthropic-version": API_VERSION}

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Token usage and billed cost for every UTC day in ``[start, end)``."""
        if self.options.api == "analytics":
            return await fetch_analytics(self._api, start, end, self._group_by)
        window: dict[str, str | int] = {
            "starting_at": rfc3339(start),
            "ending_at": rfc3339(query_end(start, end)),
            "bucket_width": "1d",
            "limit": 31,
        }
        reader = DatasetReader()
        await reader.read_one(Dataset.USAGE, lambda: self._usage(start, end, window))
        await reader.read_one(Dataset.COST, lambda: self._cost(start, end, window))
        if self.options.claude_code:  # separate families: see claude_code.py on double counting
            await reader.read_one(
                Dataset.CLAUDE_CODE,
                lambda: fetch_claude_code(self._api, start, end, self._group_by),
            )
        names: dict[str, str] = {}
        if "project" in self._group_by and not reader.stopped:
            seen = project_ids(reader.batches) - {DEFAULT_WORKSPACE}
            names = {DEFAULT_WORKSPACE: DEFAULT_WORKSPACE, **await self._names.resolve(seen)}
        return reader.result(names)

    async def _usage(self, start: int, end: int, window: Mapping[str, str | int]) -> Batch:
        # context_window: tokens of requests over 200k input are billed at the long-context
        # tier; pricing needs to know which (Batch.long_context).
        # speed (fast mode) and inference_geo (US-only inference) are priced above the standard
        # rates; grouping by speed needs the fast-mode beta header.
        group_by = (
            *grouped_fields(self._group_by, DIM_FIELDS),
            "service_tier",
            "context_window",
            "inference_geo",
            "speed",
        )
        buckets = await self._api.paginate_buckets(
            USAGE_PATH, {**window, "group_by": group_by}, headers=FAST_MODE_HEADERS
        )
        days, mark = buckets_by_day(buckets, start, end, USAGE_PATH)
        batch = Batch(Dataset.USAGE, start, end, watermark=mark)
        where = f"GET {USAGE_PATH}"
        read_dims = DimsReader(self._group_by, DIM_FIELDS, null_project=DEFAULT_WORKSPACE)
        rows = 0
        with paused_gc():
            for day, results in days:
                rows += len(results)
                for row in results:
                    try:
                        add_message_row(batch, day, read_dims(row, where), row, where)
                    except ProviderError as err:
                        skip_row(batch, err)
        return check_usable(batch, rows)

    async def _cost(self, start: int, end: int, window: Mapping[str, str | int]) -> Batch:
        group_by: tuple[str, ...] = ("description",)
        if "project" in self._group_by:
            group_by = ("workspace_id", *group_by)
        buckets = await self._api.paginate_buckets(COST_PATH, {**window, "group_by": group_by})
        days, mark = buckets_by_day(buckets, start, end, COST_PATH)
        where = f"GET {COST_PATH}"
        read_dims = DimsReader(
            [d for d in self._group_by if d in ("project", "model")],
            DIM_FIELDS,
            null_project=DEFAULT_WORKSPACE,
        )
        totals: dict[tuple[int, SeriesKey], Decimal] = {}
        batch = Batch(Dataset.COST, start, end, watermark=mark)
        rows = 0
        for day, results in days:
            rows += len(results)
            for row in results:
                try:
                    key, dollars = _cost_row(row, read_dims, where)
                except ProviderError as err:
                    skip_row(batch, err)
                    continue
                totals[day, key] = totals.get((day, key), Decimal(0)) + dollars
        add_money(batch, totals)
        return check_usable(batch, rows)

    async def load_names(self) -> dict[str, str]:
        """Workspace display names by id."""
        workspaces = await self._api.paginate_list(
            WORKSPACES_PATH, {"limit": 100, "include_archived": True}, cursor="after_id"
        )
        names = {DEFAULT_WORKSPACE: DEFAULT_WORKSPACE}
        for workspace in workspaces:
            workspace_id = label(workspace, "id", f"GET {WORKSPACES_PATH}")
            name = label(workspace, "name", f"GET {WORKSPACES_PATH}")
            if workspace_id and name:
                names[workspace_id] = name
        return names
