"""The HTTP client every provider uses: auth, retries with backoff, error mapping, pagination."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import ipaddress
import itertools
import json
import logging
import math
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import httpx

from exporter import __version__
from exporter.config.secrets import redact
from exporter.core.gcpause import paused_gc
from exporter.core.records import Batch, Dataset
from exporter.sources.providers.base import (
    LIMITS_INTERVAL,
    NameCache,
    ProviderError,
    ProviderSettings,
    RequestObserver,
    Sleep,
)

logger = logging.getLogger(__name__)

USER_AGENT = f"ai-cost-exporter/{__version__}"
MAX_RETRY_AFTER = 60.0  # longer waits are the scheduler's job, not a sleeping poll's

JSONObject = dict[str, Any]
ParamValue = str | int | bool | Sequence[str]
Query = list[tuple[str, str | int | float | bool | None]]
Params = Mapping[str, ParamValue]


def check_base_url(url: str) -> None:
    """Refuse to send keys in clear text: https, or plain http to a loopback host only."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and is_loopback_host(host):
        return
    raise ValueError(
        f"base_url must be https:// (plain http only for a loopback host), "
        f"got scheme {parts.scheme!r} host {host!r}"
    )


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: the only hosts a key may be sent to over plain http."""
    if host.lower() == "localhost":
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


def decode_json(content: bytes) -> Any:
    """A response body's JSON value (a month of usage is a large one: see ``paused_gc``)."""
    with paused_gc():
        return json.loads(content)


async def read_capped(response: httpx.Response, limit: int, what: str) -> bytes:
    """The whole body, or ``too_large`` as soon as it (or its ``Content-Length``) exceeds
    ``limit`` bytes: nothing larger is ever held in memory."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        message = f"{what}: response of {int(declared)} bytes (limit {limit})"
        raise ProviderError("too_large", message)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise ProviderError("too_large", f"{what}: response over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _error_detail(content: bytes) -> str:
    """The provider's error message (OpenAI's, Anthropic's and GitHub's envelopes), if any."""
    try:
        body = json.loads(content)
    except ValueError:
        return ""
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    if message is None and isinstance(body, dict):
        message = body.get("message")  # GitHub: {"message": ..., "documentation_url": ...}
    return message if isinstance(message, str) else ""  # cut by redact(), after scrubbing


def _rate_limit_wait(response: httpx.Response) -> float | None:
    """Seconds to wait from Retry-After, or GitHub's x-ratelimit-reset when none is left."""
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if retry_after is not None:
        return retry_after
    if response.headers.get("x-ratelimit-remaining") == "0":
        reset = response.headers.get("x-ratelimit-reset", "")
        if reset.isdigit():
            return max(float(reset) - time.time(), 0.0)
    return None


def _is_rate_limited(response: httpx.Response) -> bool:
    # GitHub answers rate limiting with 403 (or 429) plus these headers.
    return response.status_code == 429 or (
        response.status_code == 403
        and (
            "retry-after" in response.headers
            or response.headers.get("x-ratelimit-remaining") == "0"
        )
    )


@functools.cache
def shared_tls_context() -> ssl.SSLContext:
    """The TLS settings of every provider client: httpx's default (certifi's CA bundle, or
    ``SSL_CERT_FILE``/``SSL_CERT_DIR``). One for the process, because each context holds its
    own parsed copy of the CA bundle (about 1 MB of RSS per account otherwise)."""
    return httpx.create_ssl_context()


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
        self._max_bytes = settings.max_response_bytes
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=settings.timeout,
            verify=shared_tls_context(),
            transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False,  # a redirect must not carry the key elsewhere
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    def redact(self, text: str) -> str:
        """``text`` without the account's key or anything key-like, cut short (see ``redact``)."""
        try:
            secrets = [self._api_key().strip()]
        except Exception:  # an unreadable key cannot be in the text either
            secrets = []
        return redact(text, secrets)

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

    async def get_json(
        self,
        path: str,
        params: Params | Query,
        headers: Mapping[str, str] | None = None,
        *,
        endpoint: str | None = None,
    ) -> JSONObject:
        """GET ``path`` and return its JSON object, retrying what is worth retrying;
        ``headers`` are sent besides the auth headers (a beta flag). ``endpoint`` names the
        request in ``aicost_api_requests_total`` where ``path`` holds an id (its template).
        ``params`` as a list of pairs is sent as it is (a key repeated, as Google-style APIs
        take arrays)."""
        query = params if isinstance(params, list) else encode_params(params)
        body, _ = await self._get(path, query, headers, endpoint)
        return body

    async def get_linked(self, path: str, params: Params, page_cap: int = 50) -> list[JSONObject]:
        """The JSON object of ``path`` and of every page its ``Link: <…>; rel="next"`` header
        leads to (GitHub's pagination), in order; a link off this account's base URL is refused
        (the key would go along)."""
        bodies: list[JSONObject] = []
        query = encode_params(params)
        base = str(self._http.base_url).rstrip("/")
        for _ in range(page_cap):
            body, headers = await self._get(path, query)
            bodies.append(body)
            target = _next_link(headers.get("link", ""))
            if target is None:
                return bodies
            parts = urlsplit(target[len(base) :]) if target.startswith(base + "/") else None
            if parts is None or parts.path != path:
                # Another host would get the key; another path would be counted as this
                # report (and its text would become an endpoint label).
                host = urlsplit(target).hostname or "?"
                raise ProviderError("parse", f"GET {path}: next page link to {host} refused")
            query = list(parse_qsl(parts.query, keep_blank_values=True))
        raise ProviderError("parse", f"GET {path}: still more pages after {page_cap}")

    async def post_json(
        self, path: str, body: Mapping[str, Any], *, endpoint: str | None = None
    ) -> JSONObject:
        """POST ``body`` as JSON to ``path`` (a report that takes its query as a body) and
        return the JSON object answered, retrying as :meth:`get_json` does."""
        answer, _ = await self._get(path, [], None, endpoint, body)
        return answer

    async def _get(
        self,
        path: str,
        query: Query,
        extra: Mapping[str, str] | None = None,
        endpoint: str | None = None,
        post: Mapping[str, Any] | None = None,
    ) -> tuple[JSONObject, httpx.Headers]:
        """GET ``path`` (or POST the JSON body ``post`` to it)."""
        key = self._key()
        headers = {**(extra or {}), **self._auth_headers(key)}
        method = "GET" if post is None else "POST"
        what = f"{method} {path}"
        observed = endpoint or path
        for attempt in range(1, self._attempts + 1):
            delay: float | None = None
            try:
                async with (
                    asyncio.timeout(self._timeout),
                    self._http.stream(
                        method, path, params=query, headers=headers, json=post
                    ) as response,
                ):
                    try:
                        content = await read_capped(response, self._max_bytes, what)
                    except ProviderError:  # too large: still an answer with a status
                        self._observe(observed, str(response.status_code))
                        raise
                    self._observe(observed, str(response.status_code))
            except (httpx.InvalidURL, UnicodeError) as exc:
                # A request built from the provider's own values (a page token) that no URL can
                # carry: the answer was malformed, not the exporter.
                problem = f"a provider value makes no valid request ({type(exc).__name__})"
                raise ProviderError("parse", f"{what}: {problem}") from None
            except (httpx.TimeoutException, TimeoutError):
                self._observe(observed, "timeout")
                error = ProviderError("timeout", f"{what}: no response within {self._timeout:g} s")
            except httpx.TransportError as exc:
                self._observe(observed, "connection_error")
                detail = redact(f"{type(exc).__name__}: {exc}", [key])
                error = ProviderError("connection", f"{what}: {detail}")
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return self._decode(what, content), response.headers
                detail = redact(_error_detail(content), [key])
                message = f"{what}: HTTP {status}" + (f": {detail}" if detail else "")
                if 300 <= status < 400:
                    # Never followed: the key would go along. Only the target's host is named.
                    target = urlsplit(response.headers.get("location", "")).hostname or "?"
                    raise ProviderError(
                        "redirect", f"{what}: HTTP {status} redirect to {target}", status=status
                    )
                if _is_rate_limited(response):
                    retry_after = _rate_limit_wait(response)
                    error = ProviderError(
                        "rate_limited", message, retry_after=retry_after, status=status
                    )
                    if retry_after is not None and retry_after > MAX_RETRY_AFTER:
                        raise error
                    delay = retry_after
                elif status in (401, 403):
                    raise ProviderError("auth", message, status=status)
                elif status >= 500:
                    error = ProviderError("http_5xx", message, status=status)
                else:
                    raise ProviderError("http_4xx", message, status=status)
            if attempt == self._attempts:
                raise error
            if delay is None:  # capped exponential backoff, full jitter
                ceiling = min(self._backoff_cap, self._backoff_base * 2 ** (attempt - 1))
                delay = self._rng() * ceiling
            logger.debug("%s (attempt %d); retrying in %.1f s", error, attempt, delay)
            await self._sleep(delay)
        raise AssertionError("unreachable")

    @staticmethod
    def _decode(what: str, content: bytes) -> JSONObject:
        try:
            body = decode_json(content)
        except (ValueError, RecursionError):
            raise ProviderError("parse", f"{what}: response is not valid JSON") from None
        if not isinstance(body, dict):
            kind = type(body).__name__
            raise ProviderError("parse", f"{what}: expected a JSON object, got {kind}")
        return body

    async def paginate_buckets(
        self,
        path: str,
        params: Params,
        page_cap: int = 50,
        *,
        headers: Mapping[str, str] | None = None,
        on_page: Callable[[JSONObject], None] | None = None,
    ) -> list[JSONObject]:
        """All buckets of a ``data``/``has_more``/``next_page`` report, page after page;
        ``on_page`` sees each page's body (for fields beside ``data``)."""
        return await self._paginate(path, params, "next_page", "page", page_cap, headers, on_page)

    async def paginate_list(
        self, path: str, params: Params, *, cursor: str, page_cap: int = 50
    ) -> list[JSONObject]:
        """All items of a list endpoint paged by ``last_id`` (sent back as ``cursor``)."""
        return await self._paginate(path, params, "last_id", cursor, page_cap)

    async def _paginate(
        self,
        path: str,
        params: Params,
        token: str,
        param: str,
        page_cap: int,
        headers: Mapping[str, str] | None = None,
        on_page: Callable[[JSONObject], None] | None = None,
    ) -> list[JSONObject]:
        """``data`` of every page, sending the body's ``token`` back as ``param`` while
        ``has_more``; a missing token or more than ``page_cap`` pages is a parse error."""
        items: list[JSONObject] = []
        query: dict[str, ParamValue] = dict(params)
        for _ in range(page_cap):
            body = await self.get_json(path, query, headers)
            items.extend(objects(body, "data", f"GET {path}"))
            if on_page is not None:
                on_page(body)
            if not _has_more(body, f"GET {path}"):
                return items
            value = body.get(token)
            if not isinstance(value, str) or not value:
                raise ProviderError("parse", f"GET {path}: has_more without a {token}")
            query = {**params, param: value}
        raise ProviderError("parse", f"GET {path}: still more pages after {page_cap}")


_LINK = re.compile(r'<([^>]*)>\s*;[^,]*?\brel="?next"?', re.IGNORECASE)


def _next_link(header: str) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header, if any."""
    found = _LINK.search(header)
    return found.group(1) if found else None


def objects(body: Mapping[str, Any], key: str, where: str) -> list[JSONObject]:
    """``body[key]`` as a list of JSON objects, else a parse error."""
    items = body.get(key)
    if not isinstance(items, list) or not all(map(isinstance, items, itertools.repeat(dict))):
        raise ProviderError("parse", f"{where}: {key!r} is not a list of objects")
    return items


def _has_more(body: Mapping[str, Any], where: str) -> bool:
    has_more = body.get("has_more")
    if not isinstance(has_more, bool):
        raise ProviderError("parse", f"{where}: 'has_more' is not a boolean")
    return has_more


class HttpProvider:
    """Base of the HTTP providers: an :class:`ApiClient` and a project-name cache.

    Subclasses set ``name`` and ``default_base_url``, implement
    :meth:`auth_headers` and ``fetch``, and override :meth:`load_names` when the
    provider can name projects. A provider with settings of its own declares a
    pydantic ``Options`` model; ``self.options`` is then that model.
    """

    name: ClassVar[str]
    default_base_url: ClassVar[str]
    expected_lag: ClassVar[Mapping[Dataset, float]] = {}
    _hourly: tuple[float, Batch] | None = None
    """When :meth:`hourly` last read (the provider's clock), and what it read."""

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        observe: RequestObserver,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._group_by = settings.group_by
        model = getattr(type(self), "Options", None)
        options = settings.options
        if model is not None and not isinstance(options, model):
            # config loading validated them; a provider built in code may pass a mapping
            options = model.model_validate(options or {})
        self.options: Any = options
        self._api = ApiClient(
            settings,
            default_base_url=self.default_base_url,
            auth_headers=self.auth_headers,
            observe=observe,
            transport=transport,
            sleep=sleep,
            rng=rng,
        )
        self._clock = clock
        self._sleep = sleep
        self._names = NameCache(
            self.load_names, account=settings.account, clock=clock, redact=self._api.redact
        )

    @staticmethod
    def auth_headers(key: str) -> Mapping[str, str]:
        """The headers that carry ``key``."""
        raise NotImplementedError

    async def hourly(self, read: Callable[[], Awaitable[Batch]]) -> Batch:
        """``read()``, at most once per :data:`LIMITS_INTERVAL` (spend limits change when a
        person changes them): between reads, the last read as it was, its malformed rows
        counted only once. A failed read is tried again on the next poll."""
        now = self._clock()
        if self._hourly is not None and now - self._hourly[0] < LIMITS_INTERVAL:
            return replace(self._hourly[1], skipped_rows=0, skipped_error="")
        batch = await read()
        self._hourly = (now, batch)
        return batch

    async def load_names(self) -> dict[str, str]:
        """Project display names by id (none by default)."""
        return {}

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._api.aclose()

    def redact(self, text: str) -> str:
        """An error message fit to log and publish: without this account's key (see ``redact``)."""
        return self._api.redact(text)
