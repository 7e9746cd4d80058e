"""OpenAI's hard spend limits: the organization's and each active project's.

``GET /organization/spend_limit`` and ``/organization/projects/{id}/spend_limit`` answer a
``threshold_amount`` in integer cents, its ``interval`` (only ``month`` so far) and whether the
limit is enforcing. A 404 is a scope without a limit: the spec documents no other way to say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote as quote_path

from exporter.core.records import Batch, Dataset, Dims, Family, SeriesKey
from exporter.sources.providers.base import ProviderError
from exporter.sources.providers.client import ApiClient
from exporter.sources.providers.fields import count, quote

ORGANIZATION_PATH = "/organization/spend_limit"
PROJECT_PATH = "/organization/projects/{project_id}/spend_limit"
HARD = "hard"
_INTERVAL = re.compile(r"[a-z_]{1,32}")


def limit_gauges(body: Mapping[str, Any], scope: Dims, where: str) -> dict[SeriesKey, float]:
    """The limit and enforcement gauges of one spend-limit resource."""
    cents = count(body, "threshold_amount", where)
    currency = body.get("currency")
    if currency != "USD":
        raise ProviderError("parse", f"{where}: unsupported currency {quote(currency)}")
    interval = body.get("interval")
    if not isinstance(interval, str) or not _INTERVAL.fullmatch(interval):
        problem = f"'interval' is not a period name ({quote(interval)})"
        raise ProviderError("parse", f"{where}: {problem}")
    enforcement = body.get("enforcement")
    status = enforcement.get("status") if isinstance(enforcement, dict) else None
    if not isinstance(status, str):
        raise ProviderError("parse", f"{where}: 'enforcement.status' is not a string")
    labels = (HARD, interval)
    return {
        (Family.PROVIDER_LIMIT, scope, labels): cents / 100,
        # Any status but "enforcing" (the spec allows strings beyond "inactive") is not refusing.
        (Family.PROVIDER_LIMIT_ENFORCING, scope, labels): float(status == "enforcing"),
    }


async def _limit(api: ApiClient, path: str, endpoint: str, scope: Dims) -> dict[SeriesKey, float]:
    try:
        body = await api.get_json(path, {}, endpoint=endpoint)
    except ProviderError as err:
        if err.status == 404:
            return {}
        raise
    return limit_gauges(body, scope, f"GET {path}")


async def read_limits(api: ApiClient, projects: Iterable[str]) -> Batch:
    """The organization's spend limit and those of ``projects``, as one gauge-only batch."""
    batch = Batch(Dataset.LIMITS, 0, 0)
    batch.gauges.update(await _limit(api, ORGANIZATION_PATH, ORGANIZATION_PATH, Dims()))
    for project_id in sorted(projects):
        path = PROJECT_PATH.format(project_id=quote_path(project_id, safe=""))
        batch.gauges.update(await _limit(api, path, PROJECT_PATH, Dims(project_id=project_id)))
    return batch
