"""Groq: tokens and requests from the Enterprise-only Prometheus metrics API.

Groq has no usage or cost report. Enterprise organizations get a Prometheus
query API whose series are per-second rates over 5 minutes (``…:rate5m``). The
exporter integrates them: ``query_range`` with a 5-minute step returns, at each
step ``t``, the rate over ``(t-5m, t]``, so ``sum(rate × 300)`` over consecutive
steps is the count over the whole range. Error bound: each boundary (the start
of the month, each UTC midnight, now) can move up to one step (5 minutes, plus
the recording rule's evaluation lag) of traffic to the neighbouring day, and the
provider's rate() may extrapolate within each window; fine for dashboards and
budgets, not an invoice. Values are rounded to whole tokens/requests per day.

The label names ``model``, ``project_id`` and ``status_code`` are inferred from
the metric names in Groq's documentation (UNVERIFIED), as is the claim that
``tokens_in`` includes the prompt-cache hits (both are in tokens; the uncached
input is ``tokens_in - prompt_cache_hits``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, ClassVar

from exporter.core.records import (
    DAY,
    Batch,
    Dataset,
    Dims,
    Family,
    FetchResult,
    TokenType,
    day_start,
)
from exporter.sources.providers.base import DatasetReader, ProviderError
from exporter.sources.providers.client import HttpProvider, objects
from exporter.sources.providers.fields import quote

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.groq.com/v1/metrics/prometheus"
QUERY_RANGE_PATH = "/api/v1/query_range"
STEP = 300  # the rate window of Groq's recording rules
CHUNK = 10 * DAY  # 2,880 points per series and request (Prometheus allows 11,000)
METRICS = {
    "tokens_in": "model_project_id:tokens_in:rate5m",
    "tokens_out": "model_project_id:tokens_out:rate5m",
    "cache_hits": "model_project_id:prompt_cache_hits:rate5m",
    "requests": "model_project_id_status_code:requests:rate5m",
}
LABELS = {"project": "project_id", "model": "model"}
UNSUPPORTED = (
    "Groq's Prometheus metrics API answered HTTP {status}: it is available to Enterprise "
    "organizations only, and Groq has no other usage API. Use a key of an Enterprise "
    "organization, or remove this account."
)

Sums = dict[tuple[int, Dims, str], float]
"""Integrated values by (UTC day, dims, status code or "")."""


def query(metric: str, by: list[str]) -> str:
    """``sum by (labels) (metric)``: one series per grouped dimension combination."""
    return f"sum by ({', '.join(by)}) ({metric})" if by else f"sum({metric})"


def _samples(body: Mapping[str, Any], where: str) -> list[tuple[dict[str, str], list[Any]]]:
    if body.get("status") != "success":
        raise ProviderError("parse", f"{where}: status is {quote(body.get('status'))}")
    if body.get("isPartial") is True:  # VictoriaMetrics: some storage nodes did not answer
        raise ProviderError("http_5xx", f"{where}: partial response")
    data = body.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix":
        raise ProviderError("parse", f"{where}: expected a matrix result")
    series = []
    for item in objects(data, "result", where):
        labels, values = item.get("metric"), item.get("values")
        if not isinstance(labels, dict) or not isinstance(values, list):
            raise ProviderError("parse", f"{where}: series without 'metric' and 'values'")
        series.append(({str(k): str(v) for k, v in labels.items()}, values))
    return series


def _point(point: Any, where: str) -> tuple[int, float] | None:
    """(timestamp, rate) of one ``[ts, "value"]`` pair; None for NaN (no data)."""
    if not isinstance(point, list) or len(point) != 2:
        raise ProviderError("parse", f"{where}: bad sample {quote(point)}")
    ts, raw = point
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not isinstance(raw, str):
        raise ProviderError("parse", f"{where}: bad sample {quote(point)}")
    try:
        value = float(raw)
    except ValueError:
        raise ProviderError("parse", f"{where}: bad sample value {quote(raw)}") from None
    if math.isnan(value):
        return None
    if not 0 <= value < math.inf:
        raise ProviderError("parse", f"{where}: sample value {quote(raw)} is not a rate")
    return round(ts), value


class GroqProvider(HttpProvider):
    """Client for one Groq organization (Enterprise API key)."""

    name: ClassVar[str] = "groq"

    default_base_url: ClassVar[str] = DEFAULT_BASE_URL

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """Bearer API key."""
        return {"Authorization": f"Bearer {key}"}

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Integrated tokens and requests for every UTC day in ``[start, end)``."""
        reader = DatasetReader()
        await reader.read_one(Dataset.USAGE, lambda: self._usage(start, end))
        return reader.result()

    async def _usage(self, start: int, end: int) -> Batch:
        first = start + STEP  # the step ending at t covers (t - 5m, t]
        last = end // STEP * STEP
        by = [LABELS[dim] for dim in ("project", "model") if dim in self._group_by]
        sums: dict[str, Sums] = {}
        try:
            for name, metric in METRICS.items():
                labels = [*by, "status_code"] if name == "requests" else by
                sums[name] = await self._integrate(query(metric, labels), first, last)
        except ProviderError as err:
            raise self._explain(err) from None
        usage = Batch(Dataset.USAGE, start, end, watermark=float(last) if last >= first else None)
        tokens_in, hits = sums["tokens_in"], sums["cache_hits"]
        for (day, dims, status), value in tokens_in.items():
            uncached = max(0, round(value - hits.get((day, dims, status), 0.0)))
            usage.add(day, (Family.TOKENS, dims, (TokenType.INPUT, "", "")), uncached)
        for token_type, values in (
            (TokenType.INPUT_CACHE_READ, hits),
            (TokenType.OUTPUT, sums["tokens_out"]),
        ):
            for (day, dims, _), value in values.items():
                usage.add(day, (Family.TOKENS, dims, (token_type, "", "")), round(value))
        for (day, dims, status), value in sums["requests"].items():
            usage.add(day, (Family.REQUESTS, dims, ("", status)), round(value))
        return usage

    async def _integrate(self, promql: str, first: int, last: int) -> Sums:
        """``sum(rate × STEP)`` per (UTC day, dims) over the steps ``first..last``."""
        where = f"GET {QUERY_RANGE_PATH}"
        sums: Sums = {}
        chunk_start = first
        while chunk_start <= last:
            chunk_end = min(last, chunk_start + CHUNK - STEP)
            params: dict[str, str | int] = {
                "query": promql,
                "start": chunk_start,
                "end": chunk_end,
                "step": STEP,
            }
            body = await self._api.get_json(QUERY_RANGE_PATH, params)
            for labels, values in _samples(body, where):
                dims = Dims(labels.get("project_id", ""), labels.get("model", ""))
                status = labels.get("status_code", "")
                for point in values:
                    sample = _point(point, where)
                    if sample is None:
                        continue
                    ts, rate = sample
                    if not chunk_start <= ts <= chunk_end:
                        continue  # a server that ignores start/end must not double count
                    key = (day_start(ts - STEP), dims, status)
                    sums[key] = sums.get(key, 0.0) + rate * STEP
            chunk_start = chunk_end + STEP
        return sums

    def _explain(self, err: ProviderError) -> ProviderError:
        """403/404 from a working key: the organization is not on the Enterprise tier."""
        if err.status not in (403, 404):
            return err
        message = UNSUPPORTED.format(status=err.status)
        logger.warning("%s", message)
        return ProviderError("unsupported", message)
