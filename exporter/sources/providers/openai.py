"""OpenAI organization Usage API and Costs API (admin key)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from exporter.core.gcpause import paused_gc
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
from exporter.sources.providers.client import HttpProvider, objects
from exporter.sources.providers.fields import (
    Counts,
    CurrencyRates,
    DimsReader,
    add_money,
    check_usable,
    count,
    grouped_fields,
    label,
    money,
    project_ids,
    quantity,
    query_end,
    quote,
    skip_row,
    watermark,
)
from exporter.sources.providers.openai_limits import read_limits

DEFAULT_BASE_URL = "https://api.openai.com/v1"
COSTS_PATH = "/organization/costs"
PROJECTS_PATH = "/organization/projects"
DIM_FIELDS = {"project": "project_id", "model": "model", "api_key": "api_key_id", "user": "user_id"}
_TEXT, _AUDIO, _IMAGE = "text", "audio", "image"
_LATEST = 2**35  # the year 3058: a later bucket time is a broken answer
# A cost line item names its model first ("gpt-4.1-mini-2025-04-14, input (batch)"), as in OpenAI's
# reference example (UNVERIFIED: the spec's own example is "input_tokens"). What does not have that
# form ("Text tokens", "input_tokens", "GPT-4o mini, input") names no model id and gets none.
_LINE_ITEM_MODEL = re.compile(r"([^\s,]+), \S.*")

RowHandler = Callable[[Batch, int, Dims, Mapping[str, Any], str], None]
"""Adds one result row to a batch (batch, UTC day, the row's dims, row, where for errors)."""


def _service_tier(row: Mapping[str, Any], where: str) -> str:
    batch = row.get("batch")
    if batch is not None and not isinstance(batch, bool):
        raise ProviderError("parse", f"{where}: 'batch' is not a boolean ({quote(batch)})")
    if batch:
        return "batch"
    return label(row, "service_tier", where) or "default"


# Completions fields: three required, then optional ones that default to 0.
_COMPLETION_FIELDS = (
    "input_tokens",
    "output_tokens",
    "num_model_requests",
    "input_cached_tokens",
    "input_cache_write_tokens",
    "input_uncached_tokens",
    "input_audio_tokens",
    "input_image_tokens",
    "input_cached_audio_tokens",
    "input_cached_image_tokens",
    "output_audio_tokens",
    "output_image_tokens",
)
_REQUIRED = 3
_OLD_SHAPE = frozenset(
    (
        "input_uncached_tokens",
        "input_cache_write_tokens",
        "input_text_tokens",
        "output_text_tokens",
        "input_cached_text_tokens",
        "input_cached_audio_tokens",
        "input_image_tokens",
        "input_cached_image_tokens",
        "output_image_tokens",
    )
)
"""The completions fields added on 2026-07-15: a row with none of them has the old semantics."""


_counts = Counts(_COMPLETION_FIELDS, required=_REQUIRED)


@functools.lru_cache(maxsize=65_536)
def _completion_keys(dims: Dims, tier: str) -> tuple[SeriesKey, ...]:
    """The series of one completions row, in the order of the values ``_values`` computes."""
    tokens: list[SeriesKey] = [
        (Family.TOKENS, dims, (token_type, modality, tier))
        for token_type in (TokenType.INPUT, TokenType.INPUT_CACHE_READ, TokenType.OUTPUT)
        for modality in (_TEXT, _AUDIO, _IMAGE)
    ]
    # OpenAI reports no modality split for cache writes.
    tokens.append((Family.TOKENS, dims, (TokenType.INPUT_CACHE_WRITE, _TEXT, tier)))
    return (*tokens, (Family.REQUESTS, dims, (tier,)))


def _values(row: Mapping[str, Any], where: str) -> tuple[int, ...]:
    (
        input_tokens,
        output,
        requests,
        cached,
        cache_write,
        uncached,
        in_audio,
        in_image,
        cached_audio,
        cached_image,
        out_audio,
        out_image,
    ) = _counts(row, where)
    cached_text = cached - cached_audio - cached_image
    if _OLD_SHAPE.isdisjoint(row):
        # A row of the spec before 2026-07-15 (none of the fields added since): input_tokens
        # and output_tokens count text only (cached text included), input_audio_tokens is
        # audio with its cached part, which that spec does not split off.
        values = (
            input_tokens - cached,
            in_audio,
            0,
            cached,
            0,
            0,
            output,
            out_audio,
            0,
            0,
            requests,
        )
    else:
        if row.get("input_uncached_tokens") is None:
            # input_tokens includes cached and cache-write tokens, of every modality.
            uncached = input_tokens - cached - cache_write
        values = (
            uncached - in_audio - in_image,
            in_audio,
            in_image,
            cached_text,
            cached_audio,
            cached_image,
            output - out_audio - out_image,
            out_audio,
            out_image,
            cache_write,
            requests,
        )
    if min(values) < 0:
        first = min(i for i, v in enumerate(values) if v < 0)
        kind = ("input", "input_cache_read", "output")[first // 3]
        raise ProviderError("parse", f"{where}: inconsistent token counts for {kind}")
    return values


def _completions(batch: Batch, day: int, dims: Dims, row: Mapping[str, Any], where: str) -> None:
    batch.add_all(day, _completion_keys(dims, _service_tier(row, where)), _values(row, where))


def _requests(row: Mapping[str, Any], where: str) -> int:
    return count(row, "num_model_requests", where)


def _counted(
    family: Family, field: str, read: Callable[[Mapping[str, Any], str, str], float]
) -> RowHandler:
    """A row handler for an endpoint that reports one quantity and the requests."""

    def add(batch: Batch, day: int, dims: Dims, row: Mapping[str, Any], where: str) -> None:
        value, requests = read(row, field, where), _requests(row, where)  # the row, then add
        batch.add_all(
            day, ((family, dims, ()), (Family.REQUESTS, dims, ("default",))), (value, requests)
        )

    return add


def _images(batch: Batch, day: int, dims: Dims, row: Mapping[str, Any], where: str) -> None:
    # Image prices depend on the size (and the quality), so the size and the source
    # (generation, edit, variation) are labels of their own.
    labels = (label(row, "size", where) or "", label(row, "source", where) or "")
    images, requests = count(row, "images", where), _requests(row, where)
    keys = ((Family.IMAGES, dims, labels if labels[1] else labels[:1] if labels[0] else ()),)
    batch.add_all(day, (*keys, (Family.REQUESTS, dims, ("default",))), (images, requests))


def _input_tokens(batch: Batch, day: int, dims: Dims, row: Mapping[str, Any], where: str) -> None:
    key: SeriesKey = (Family.TOKENS, dims, (TokenType.INPUT, _TEXT, "default"))
    tokens, requests = count(row, "input_tokens", where), _requests(row, where)
    batch.add_all(day, (key, (Family.REQUESTS, dims, ("default",))), (tokens, requests))


def _tool(tool: str, field: str) -> RowHandler:
    """A row handler for a tool billed per call or session."""

    def add(batch: Batch, day: int, dims: Dims, row: Mapping[str, Any], where: str) -> None:
        batch.add(day, (Family.TOOL_CALLS, dims, (tool,)), count(row, field, where))

    return add


def _stored_bytes(batch: Batch, day: int, dims: Dims, row: Mapping[str, Any], where: str) -> None:
    # A level, not a sum: folded into the latest day's gauge by ``_latest_level``.
    batch.add(day, (Family.VECTOR_STORE_BYTES, dims, ()), count(row, "usage_bytes", where))


def _latest_level(batch: Batch) -> None:
    """Vector storage: the gauge is the latest day that reports any, the days are not counted."""
    if batch.days:
        batch.gauges.update(batch.days[max(batch.days)])
    batch.days.clear()


class Endpoint(NamedTuple):
    """One usage endpoint: its dataset, the dimensions it can group by, the group_by fields
    beyond them, and what one result row adds."""

    dataset: Dataset
    path: str
    dims: tuple[str, ...]
    extra: tuple[str, ...]
    add: RowHandler


_ALL = ("project", "model", "api_key", "user")
USAGE_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        Dataset.USAGE,
        "/organization/usage/completions",
        _ALL,
        ("batch", "service_tier"),
        _completions,
    ),
    Endpoint(Dataset.EMBEDDINGS, "/organization/usage/embeddings", _ALL, (), _input_tokens),
    Endpoint(Dataset.MODERATIONS, "/organization/usage/moderations", _ALL, (), _input_tokens),
    Endpoint(Dataset.IMAGES, "/organization/usage/images", _ALL, ("size", "source"), _images),
    Endpoint(
        Dataset.AUDIO_SPEECHES,
        "/organization/usage/audio_speeches",
        _ALL,
        (),
        _counted(Family.AUDIO_SPEECH_CHARACTERS, "characters", count),
    ),
    Endpoint(
        Dataset.AUDIO_TRANSCRIPTIONS,
        "/organization/usage/audio_transcriptions",
        _ALL,
        (),
        _counted(Family.AUDIO_TRANSCRIPTION_SECONDS, "seconds", quantity),
    ),
    Endpoint(
        Dataset.VECTOR_STORES,
        "/organization/usage/vector_stores",
        ("project",),
        (),
        _stored_bytes,
    ),
    Endpoint(
        Dataset.CODE_INTERPRETER_SESSIONS,
        "/organization/usage/code_interpreter_sessions",
        ("project",),
        (),
        _tool("code_interpreter", "num_sessions"),
    ),
    Endpoint(
        Dataset.FILE_SEARCH_CALLS,
        "/organization/usage/file_search_calls",
        ("project", "api_key", "user"),
        (),
        _tool("file_search", "num_requests"),
    ),
    Endpoint(
        Dataset.WEB_SEARCH_CALLS,
        "/organization/usage/web_search_calls",
        _ALL,
        (),
        _tool("web_search", "num_requests"),
    ),
)


def _bucket(bucket: Mapping[str, Any], path: str) -> tuple[int, int, list[dict[str, Any]]]:
    start, end = bucket.get("start_time"), bucket.get("end_time")
    if (
        isinstance(start, bool)
        or isinstance(end, bool)
        or not (isinstance(start, int) and isinstance(end, int))
    ):
        raise ProviderError("parse", f"GET {path}: bucket without integer start_time/end_time")
    if not (0 <= start <= _LATEST and 0 <= end <= _LATEST):
        raise ProviderError("parse", f"GET {path}: bucket time out of range ({quote(start)})")
    return start, end, objects(bucket, "results", f"GET {path}")


def _quantity(row: Mapping[str, Any], dims: Dims, where: str) -> tuple[SeriesKey, float] | None:
    """The billed quantity of a cost row grouped by line item, in its unit (None if absent)."""
    value = row.get("quantity")
    if value is None:
        return None
    amount = quantity(row, "quantity", where)
    unit = label(row, "quantity_unit", where) or ""
    return (Family.BILLED_QUANTITY, dims, (label(row, "line_item", where) or "", unit)), amount


def line_item_model(line_item: str) -> str:
    """The model a cost line item names, ``""`` if it names none."""
    match = _LINE_ITEM_MODEL.fullmatch(line_item)
    return match.group(1) if match else ""


def _cost_row(
    row: Mapping[str, Any],
    read_dims: DimsReader,
    rates: Mapping[str, float],
    where: str,
    *,
    by_model: bool,
) -> tuple[SeriesKey, Decimal]:
    """A cost row in dollars, converted at a configured rate; without a rate, in its own
    currency as ``UNCONVERTED_COST`` (never relabelled as dollars). With ``by_model``, the model
    is the one the line item names, so billed cost can be selected by model like usage."""
    amount = row.get("amount")
    if not isinstance(amount, dict):
        raise ProviderError("parse", f"{where}: 'amount' is not an object")
    currency = amount.get("currency")
    if not isinstance(currency, str) or len(currency) != 3 or not currency.isalpha():
        raise ProviderError("parse", f"{where}: unsupported currency {quote(currency)}")
    value = money(amount.get("value"), where)
    dims = read_dims(row, where)
    line_item = label(row, "line_item", where) or ""
    if by_model:
        dims = dims._replace(model=line_item_model(line_item))
    code = currency.upper()
    if code != "USD" and code not in rates:
        return (Family.UNCONVERTED_COST, dims, (currency.lower(),)), value
    if code != "USD":
        value *= Decimal(str(rates[code]))
    return (Family.BILLED_COST, dims, (line_item,)), value


class OpenAIProvider(HttpProvider):
    """Client for one OpenAI organization (admin key)."""

    name: ClassVar[str] = "openai"

    default_base_url: ClassVar[str] = DEFAULT_BASE_URL
    # Costs come in daily buckets, and the current day's may be missing: a day and a half.
    expected_lag: ClassVar[Mapping[Dataset, float]] = {Dataset.COST: 36 * HOUR}

    class Options(BaseModel):
        """``options:`` of an OpenAI account."""

        model_config = ConfigDict(frozen=True, extra="forbid")

        currency_rates: CurrencyRates = Field(default_factory=dict)
        """US dollars per unit of a cost currency other than ``usd``, e.g. ``{EUR: 1.08}``."""

    options: Options
    _active_projects: frozenset[str] = frozenset()

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """Bearer admin key."""
        return {"Authorization": f"Bearer {key}"}

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Usage and billed cost for every UTC day in ``[start, end)``, dataset by dataset."""
        window: dict[str, str | int] = {
            "start_time": start,
            "end_time": query_end(start, end),
            "bucket_width": "1d",
            "limit": 31,
        }
        reader = DatasetReader()
        for endpoint in USAGE_ENDPOINTS:
            await reader.read_one(
                endpoint.dataset, functools.partial(self._usage, endpoint, start, end, window)
            )
        await reader.read_one(Dataset.COST, lambda: self._costs(start, end, window))
        names: dict[str, str] = {}
        if "project" in self._group_by and not reader.stopped:
            names = await self._names.resolve(project_ids(reader.batches))
        await reader.read_one(Dataset.LIMITS, lambda: self.hourly(self._spend_limits))
        return reader.result(names)

    async def _spend_limits(self) -> Batch:
        """The hard spend limits (one request per active project)."""
        # Spend per project is only known when it is grouped by project.
        projects = self._active_projects if "project" in self._group_by else ()
        return await read_limits(self._api, projects)

    async def _usage(
        self, endpoint: Endpoint, start: int, end: int, window: Mapping[str, str | int]
    ) -> Batch:
        group_by = [dim for dim in self._group_by if dim in endpoint.dims]
        params = {**window, "group_by": grouped_fields(group_by, DIM_FIELDS) + endpoint.extra}
        buckets = await self._api.paginate_buckets(endpoint.path, params)
        read_dims = DimsReader(group_by, DIM_FIELDS)
        add_result, where = endpoint.add, f"GET {endpoint.path}"
        batch = Batch(endpoint.dataset, start, end)
        ends, rows = [], 0
        with paused_gc():
            for bucket in buckets:
                b_start, b_end, results = _bucket(bucket, endpoint.path)
                ends.append(b_end)
                day = day_start(b_start)
                if start <= day < end:
                    rows += len(results)
                    for row in results:
                        try:
                            add_result(batch, day, read_dims(row, where), row, where)
                        except ProviderError as err:
                            skip_row(batch, err)
        batch.watermark = watermark(end, ends)
        if endpoint.add is _stored_bytes:
            _latest_level(batch)
        return check_usable(batch, rows)

    async def _costs(self, start: int, end: int, window: Mapping[str, int | str]) -> Batch:
        group_by = ["line_item"]
        if "project" in self._group_by:
            group_by.insert(0, "project_id")
        if "api_key" in self._group_by:
            group_by.append("api_key_id")
        buckets = await self._api.paginate_buckets(COSTS_PATH, {**window, "group_by": group_by})
        where = f"GET {COSTS_PATH}"
        read_dims = DimsReader(
            [d for d in self._group_by if d in ("project", "api_key")], DIM_FIELDS
        )
        by_model = "model" in self._group_by
        totals: dict[tuple[int, SeriesKey], Decimal] = {}
        batch = Batch(Dataset.COST, start, end)
        ends, rows = [], 0
        for bucket in buckets:
            b_start, b_end, results = _bucket(bucket, COSTS_PATH)
            ends.append(b_end)
            day = day_start(b_start)
            if not start <= day < end:
                continue
            rows += len(results)
            for row in results:
                try:
                    key, value = _cost_row(
                        row, read_dims, self.options.currency_rates, where, by_model=by_model
                    )
                except ProviderError as err:
                    skip_row(batch, err)
                    continue
                try:
                    billed = _quantity(row, key[1], where)
                except ProviderError:
                    billed = None  # a bad quantity does not cost the row its dollars
                totals[day, key] = totals.get((day, key), Decimal(0)) + value
                if billed is not None:
                    batch.add(day, *billed)
        batch.watermark = watermark(end, ends)
        add_money(batch, totals)
        return check_usable(batch, rows)

    async def load_names(self) -> dict[str, str]:
        """Project display names by id (and the active projects, whose limits are read)."""
        projects = await self._api.paginate_list(
            PROJECTS_PATH, {"limit": 100, "include_archived": True}, cursor="after"
        )
        names: dict[str, str] = {}
        active: set[str] = set()
        for project in projects:
            project_id = label(project, "id", f"GET {PROJECTS_PATH}")
            name = label(project, "name", f"GET {PROJECTS_PATH}")
            if project_id and name:
                names[project_id] = name
            if project_id and project.get("status", "active") == "active":
                active.add(project_id)
        self._active_projects = frozenset(active)
        return names
