"""Shared machinery of the provider clients.

Settings, the classified :class:`ProviderError`, the :class:`Provider` protocol,
an :class:`ApiClient` (httpx with retries, error mapping and pagination), the
project-name cache and the strict value parsers every provider module uses.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import httpx

from exporter import __version__
from exporter.records import DAY, Batch, Dims, FetchResult, SeriesKey

logger = logging.getLogger(__name__)

REASONS = (
    "auth",
    "rate_limited",
    "http_5xx",
    "http_4xx",
    "timeout",
    "connection",
    "parse",
    "secret",
)
DIMENSIONS = ("project", "model", "api_key", "user")
USER_AGENT = f"ai-cost-exporter/{__version__}"
MAX_RETRY_AFTER = 60.0  # longer waits are the scheduler's job, not a sleeping poll's
NAMES_MAX_AGE = 3600.0

JSONObject = dict[str, Any]
ParamValue = str | int | bool | Sequence[str]
Query = list[tuple[str, str | int | float | bool | None]]
Params = Mapping[str, ParamValue]
RequestObserver = Callable[[str, str], None]
"""``observe(endpoint, code)``: code is the HTTP status, or "timeout"/"connection_error"."""
Sleep = Callable[[float], Awaitable[object]]


class ProviderError(Exception):
    """A failed poll, classified. Message never contains a secret."""

    def __init__(self, reason: str, message: str, *, retry_after: float | None = None) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown ProviderError reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class ProviderSettings:
    """What a provider client needs to know about one configured account."""

    account: str
    api_key: Callable[[], str] = field(repr=False)
    base_url: str | None = None
    timeout: float = 30.0
    group_by: tuple[str, ...] = ("project", "model")

    def __post_init__(self) -> None:
        unknown = [dim for dim in self.group_by if dim not in DIMENSIONS]
        if unknown:
            raise ValueError(f"unknown group_by dimension(s) {unknown}; allowed: {DIMENSIONS}")
        if not self.timeout > 0:
            raise ValueError("timeout must be positive")


class Provider(Protocol):
    """One account's client: fetches month-to-date usage and cost."""

    name: ClassVar[str]

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Every day in ``[start, end)``, complete, or raise :class:`ProviderError`."""
        ...

    async def aclose(self) -> None:
        """Release the HTTP connections."""
        ...


ProviderFactory = Callable[..., Provider]
"""``cls(settings, *, observe, transport=None, sleep=asyncio.sleep, rng=random.random)``."""


def check_base_url(url: str) -> None:
    """Refuse to send keys in clear text: https, or plain http to a loopback host only."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and _is_loopback(host):
        return
    raise ValueError(
        f"base_url must be https:// (plain http only for a loopback host), "
        f"got scheme {parts.scheme!r} host {host!r}"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def encode_params(params: Params) -> Query:
    """Query pairs with arrays bracket-encoded (``group_by[]=a&group_by[]=b``), as the SDKs do."""
    pairs: Query = []
    for key, value in params.items():
        if isinstance(value, bool):
            pairs.append((key, "true" if value else "false"))
        elif isinstance(value, str | int):
            pairs.append((key, str(value)))
        else:
            pairs.extend((f"{key}[]", item) for item in value)
    return pairs


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), else None."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return None
    return max(seconds, 0.0)


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "[redacted]") if secret else text


def _error_detail(response: httpx.Response) -> str:
    """The provider's error message (both OpenAI's and Anthropic's envelopes), if any."""
    try:
        body = response.json()
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return message[:300] if isinstance(message, str) else ""


class ApiClient:
    """GET-JSON client for one account: auth, retries with backoff, error mapping, pagination."""

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        default_base_url: str,
        auth_headers: Callable[[str], Mapping[str, str]],
        observe: RequestObserver,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        attempts: int = 4,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
    ) -> None:
        base_url = settings.base_url or default_base_url
        check_base_url(base_url)
        self._api_key = settings.api_key
        self._auth_headers = auth_headers
        self._observe = observe
        self._sleep = sleep
        self._rng = rng
        self._timeout = settings.timeout
        self._attempts = attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=settings.timeout,
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,  # a redirect must not carry the key elsewhere
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def _key(self) -> str:
        try:
            key = self._api_key().strip()
        except ProviderError:
            raise
        except Exception as exc:  # only the type: the message might quote key material
            kind = type(exc).__name__
            raise ProviderError("secret", f"could not read the API key ({kind})") from None
        if not key:
            raise ProviderError("secret", "the API key is empty")
        # httpx would echo an invalid header value in its exception message.
        if not key.isascii() or not key.isprintable() or " " in key:
            raise ProviderError("secret", "the API key contains characters not allowed in a header")
        return key

    async def get_json(self, path: str, params: Params) -> JSONObject:
        """GET ``path`` and return its JSON object, retrying what is worth retrying."""
        key = self._key()
        headers = dict(self._auth_headers(key))
        query = encode_params(params)
        what = f"GET {path}"
        for attempt in range(1, self._attempts + 1):
            delay: float | None = None
            try:
                async with asyncio.timeout(self._timeout):
                    response = await self._http.get(path, params=query, headers=headers)
            except (httpx.TimeoutException, TimeoutError):
                self._observe(path, "timeout")
                error = ProviderError("timeout", f"{what}: no response within {self._timeout:g} s")
            except httpx.TransportError as exc:
                self._observe(path, "connection_error")
                detail = _scrub(f"{type(exc).__name__}: {exc}", key)
                error = ProviderError("connection", f"{what}: {detail}")
            else:
                status = response.status_code
                self._observe(path, str(status))
                if 200 <= status < 300:
                    return self._decode(what, response)
                detail = _scrub(_error_detail(response), key)
                message = f"{what}: HTTP {status}" + (f": {detail}" if detail else "")
                if status in (401, 403):
                    raise ProviderError("auth", message)
                if status == 429:
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    error = ProviderError("rate_limited", message, retry_after=retry_after)
                    if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                        raise error
                    delay = retry_after
                elif status >= 500:
                    error = ProviderError("http_5xx", message)
                else:
                    raise ProviderError("http_4xx", message)
            if attempt == self._attempts:
                raise error
            if delay is None:  # capped exponential backoff, full jitter
                ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
                delay = self._rng() * ceiling
            logger.debug("%s (attempt %d); retrying in %.1f s", error, attempt, delay)
            await self._sleep(delay)
        raise AssertionError("unreachable")

    @staticmethod
    def _decode(what: str, response: httpx.Response) -> JSONObject:
        try:
            body = response.json()
        except ValueError:
            raise ProviderError("parse", f"{what}: response is not valid JSON") from None
        if not isinstance(body, dict):
            kind = type(body).__name__
            raise ProviderError("parse", f"{what}: expected a JSON object, got {kind}")
        return body

    async def paginate_buckets(
        self, path: str, params: Params, page_cap: int = 50
    ) -> list[JSONObject]:
        """All buckets of a ``data``/``has_more``/``next_page`` report, page after page."""
        buckets: list[JSONObject] = []
        query: dict[str, ParamValue] = dict(params)
        for _ in range(page_cap):
            body = await self.get_json(path, query)
            buckets.extend(objects(body, "data", path))
            if not _has_more(body, path):
                return buckets
            page = body.get("next_page")
            if not isinstance(page, str) or not page:
                raise ProviderError("parse", f"GET {path}: has_more without a next_page")
            query = {**params, "page": page}
        raise ProviderError("parse", f"GET {path}: still more pages after {page_cap}")

    async def paginate_list(
        self, path: str, params: Params, *, cursor: str, page_cap: int = 50
    ) -> list[JSONObject]:
        """All items of a list endpoint paged by ``last_id`` (sent back as ``cursor``)."""
        items: list[JSONObject] = []
        query: dict[str, ParamValue] = dict(params)
        for _ in range(page_cap):
            body = await self.get_json(path, query)
            items.extend(objects(body, "data", path))
            if not _has_more(body, path):
                return items
            last_id = body.get("last_id")
            if not isinstance(last_id, str) or not last_id:
                raise ProviderError("parse", f"GET {path}: has_more without a last_id")
            query = {**params, cursor: last_id}
        raise ProviderError("parse", f"GET {path}: still more pages after {page_cap}")


def objects(body: Mapping[str, Any], key: str, where: str) -> list[JSONObject]:
    """``body[key]`` as a list of JSON objects, else a parse error."""
    items = body.get(key)
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ProviderError("parse", f"{where}: {key!r} is not a list of objects")
    return items


def _has_more(body: Mapping[str, Any], where: str) -> bool:
    has_more = body.get("has_more")
    if not isinstance(has_more, bool):
        raise ProviderError("parse", f"{where}: 'has_more' is not a boolean")
    return has_more


# --- values ---------------------------------------------------------------------------------


def count(row: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> int:
    """A non-negative integer field; a missing optional one is 0."""
    value = row.get(key)
    if value is None and not required:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problem = "missing" if value is None else f"not a non-negative integer ({value!r})"
        raise ProviderError("parse", f"{where}: {key!r} {problem}")
    return value


def quantity(row: Mapping[str, Any], key: str, where: str) -> float:
    """A required non-negative finite number (e.g. seconds of audio)."""
    value = row.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        problem = "missing" if value is None else f"not a non-negative number ({value!r})"
        raise ProviderError("parse", f"{where}: {key!r} {problem}")
    return float(value)


def label(row: Mapping[str, Any], key: str, where: str) -> str | None:
    """A string-or-null grouping field."""
    value = row.get(key)
    if value is not None and not isinstance(value, str):
        raise ProviderError("parse", f"{where}: {key!r} is not a string ({value!r})")
    return value


def money(value: Any, where: str) -> Decimal:
    """An amount given as a JSON number or a decimal string (both occur in the wild)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ProviderError("parse", f"{where}: amount {value!r} is not a number")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ProviderError("parse", f"{where}: amount {value!r} is not a number") from None
    if not amount.is_finite():
        raise ProviderError("parse", f"{where}: amount {value!r} is not finite")
    return amount


def make_dims(
    row: Mapping[str, Any],
    group_by: Iterable[str],
    fields: Mapping[str, str],
    where: str,
    *,
    null_project: str = "",
) -> Dims:
    """Dims from the row's fields for the grouped dimensions (``fields``: dimension -> field)."""
    values = dict.fromkeys(DIMENSIONS, "")
    for dim in group_by:
        if dim in fields:
            value = label(row, fields[dim], where)
            values[dim] = value if value is not None else (null_project if dim == "project" else "")
    return Dims(values["project"], values["model"], values["api_key"], values["user"])


class DimsReader:
    """Reads a row's grouping fields into :class:`Dims`, memoised per distinct raw values.

    Rows repeat the same few projects and models on every bucket; building and
    validating Dims once per distinct combination keeps parsing fast.
    """

    def __init__(
        self,
        group_by: Iterable[str],
        fields: Mapping[str, str],
        *,
        null_project: str = "",
    ) -> None:
        self._group_by = tuple(dim for dim in DIMENSIONS if dim in set(group_by) and dim in fields)
        self._fields = fields
        self._names = tuple(fields[dim] for dim in self._group_by)
        self._null_project = null_project
        self._memo: dict[tuple[Any, ...], Dims] = {}

    def __call__(self, row: Mapping[str, Any], where: str) -> Dims:
        """The row's dimensions."""
        get = row.get
        raw = tuple([get(name) for name in self._names])
        dims = self._memo.get(raw)
        if dims is None:
            dims = make_dims(
                row, self._group_by, self._fields, where, null_project=self._null_project
            )
            self._memo[raw] = dims
        return dims


def grouped_fields(group_by: Iterable[str], fields: Mapping[str, str]) -> tuple[str, ...]:
    """The provider's ``group_by`` field names for the grouped dimensions, canonical order."""
    wanted = set(group_by)
    return tuple(fields[dim] for dim in DIMENSIONS if dim in wanted and dim in fields)


def add_money(batch: Batch, totals: Mapping[tuple[int, SeriesKey], Decimal]) -> None:
    """Add exact per-(day, series) sums to ``batch`` as float dollars."""
    for (day, key), amount in totals.items():
        batch.add(day, key, float(amount))


# --- time -----------------------------------------------------------------------------------


def query_end(start: int, end: float) -> int:
    """The first UTC midnight at or after ``end`` (and after ``start``): includes today's bucket."""
    return max(math.ceil(end / DAY) * DAY, start + DAY)


def rfc3339(ts: int) -> str:
    """Unix seconds as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: Any, where: str) -> int:
    """An RFC 3339 timestamp with offset as Unix seconds."""
    if not isinstance(value, str):
        raise ProviderError("parse", f"{where}: timestamp {value!r} is not a string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ProviderError("parse", f"{where}: bad timestamp {value!r}") from None
    if parsed.tzinfo is None:
        raise ProviderError("parse", f"{where}: timestamp {value!r} has no UTC offset")
    return math.floor(parsed.timestamp())


def watermark(end: int, bucket_ends: Iterable[int]) -> float | None:
    """``min(end, latest bucket end)``; None when no bucket came back."""
    latest = max(bucket_ends, default=None)
    return None if latest is None else float(min(end, latest))


def project_ids(batches: Iterable[Batch]) -> set[str]:
    """Every non-empty project id that occurs in ``batches``."""
    return {
        key[1].project_id
        for batch in batches
        for series in batch.days.values()
        for key in series
        if key[1].project_id
    }


# --- project names --------------------------------------------------------------------------


class NameCache:
    """Project display names: loaded on first use, for an unseen id, or when older than max_age.

    A failed load never fails the poll: it is logged and the previous names stay.
    """

    def __init__(
        self,
        load: Callable[[], Awaitable[dict[str, str]]],
        *,
        account: str,
        clock: Callable[[], float] = time.monotonic,
        max_age: float = NAMES_MAX_AGE,
    ) -> None:
        self._load = load
        self._account = account
        self._clock = clock
        self._max_age = max_age
        self._names: dict[str, str] = {}
        self._checked: set[str] = set()  # ids known to the last successful load
        self._loaded_at: float | None = None

    async def resolve(self, seen: Iterable[str]) -> dict[str, str]:
        """Names to publish for this poll, refreshed if ``seen`` requires it."""
        seen = set(seen)
        now = self._clock()
        if (
            self._loaded_at is None
            or now - self._loaded_at >= self._max_age
            or not seen <= self._checked
        ):
            try:
                names = await self._load()
            except ProviderError as err:
                logger.warning(
                    "account %s: could not load project names (%s: %s); keeping %d cached name(s)",
                    self._account,
                    err.reason,
                    err,
                    len(self._names),
                )
            else:
                self._names = names
                self._checked = set(names) | seen
                self._loaded_at = now
        return dict(self._names)
