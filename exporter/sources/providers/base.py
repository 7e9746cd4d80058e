"""The provider interface: settings, the classified error, the protocol, the name cache.

A provider module subclasses ``client.HttpProvider``, names its default base
URL and auth headers, and implements ``fetch``; ``client.ApiClient`` does the
HTTP and ``fields.py`` the strict parsing of provider values.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from exporter.config.secrets import redact
from exporter.core.records import Batch, Dataset, FetchResult

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
    "unsupported",
    "too_large",
    "redirect",
)
DIMENSIONS = ("project", "model", "api_key", "user")
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_RESPONSE_BYTES_LIMIT = 1024 * 1024 * 1024
NAMES_MAX_AGE = 3600.0
HOUR = 3600.0
LIMITS_INTERVAL = HOUR
"""How often a provider's spend limits are read (``HttpProvider.hourly``)."""
DEFAULT_EXPECTED_LAG = 6 * HOUR
"""How far behind the clock a dataset's data may be while all is well, unless the provider says."""

RequestObserver = Callable[[str, str], None]
"""``observe(endpoint, code)``: code is the HTTP status, or "timeout"/"connection_error"."""
Sleep = Callable[[float], Awaitable[object]]


class ProviderError(Exception):
    """A failed poll, classified. Message never contains a secret."""

    def __init__(
        self,
        reason: str,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown ProviderError reason {reason!r}")
        super().__init__(message)
        self.reason = reason
        self.retry_after = retry_after
        self.status = status
        """The HTTP status of the failed response, if there was one."""


@dataclass(frozen=True)
class ProviderSettings:
    """What a provider client needs to know about one configured account."""

    account: str
    api_key: Callable[[], str] = field(repr=False)
    base_url: str | None = None
    timeout: float = 30.0
    group_by: tuple[str, ...] = ("project", "model")
    options: Any = None  # the provider class's validated ``Options`` model, if it has one
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """A response body larger than this fails the poll (``too_large``) while it streams in."""

    def __post_init__(self) -> None:
        unknown = [dim for dim in self.group_by if dim not in DIMENSIONS]
        if unknown:
            raise ValueError(f"unknown group_by dimension(s) {unknown}; allowed: {DIMENSIONS}")
        if not self.timeout > 0:
            raise ValueError("timeout must be positive")
        if not 0 < self.max_response_bytes <= MAX_RESPONSE_BYTES_LIMIT:
            raise ValueError(f"max_response_bytes must be 1 to {MAX_RESPONSE_BYTES_LIMIT}")


class Provider(Protocol):
    """One account's client: fetches month-to-date usage and cost."""

    name: ClassVar[str]
    expected_lag: ClassVar[Mapping[Dataset, float]]
    """Per dataset, how old its watermark may be while the provider is healthy (seconds;
    :data:`DEFAULT_EXPECTED_LAG` for a dataset not listed). ``AICostDataStale`` fires beyond it."""

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Every day in ``[start, end)`` of each dataset, complete; a dataset that cannot be
        read is in ``FetchResult.failures`` (see :class:`DatasetReader`)."""
        ...

    async def aclose(self) -> None:
        """Release the HTTP connections."""
        ...

    def redact(self, text: str) -> str:
        """``text`` (an error message) without the account's key or anything key-like, cut to a
        bounded length: every poll error goes through it before it is logged or published."""
        ...


ProviderFactory = Callable[..., Provider]
"""``cls(settings, *, observe, transport=None, sleep=asyncio.sleep, rng=random.random)``."""

ACCOUNT_WIDE = frozenset(("secret", "rate_limited", "connection"))
"""Failures that concern every endpoint of the account: the datasets not read yet are not tried
(nor is anything else of the poll, such as project names). A 401 is one too: the key is not
valid anywhere; a 403 may be one endpoint's permission."""


STRIKES = 2
"""Consecutive datasets failing with a timeout or a 5xx after which a poll stops reading."""


def account_wide(err: ProviderError) -> bool:
    """Whether ``err`` concerns every endpoint of the account (see :data:`ACCOUNT_WIDE`)."""
    return err.reason in ACCOUNT_WIDE or (err.reason == "auth" and err.status == 401)


class DatasetReader:
    """Reads one poll's datasets one after another, so that one failing loses no other.

    A dataset that fails (a 400, a malformed page) is recorded in the result's ``failures``
    and the next one is read; after a failure of the whole account (:data:`ACCOUNT_WIDE`:
    the key, a rate limit, the connection; or :data:`STRIKES` datasets in a row timing out)
    the rest are recorded failed without a request.
    """

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.failures: dict[Dataset, Exception] = {}
        self._stopped: ProviderError | None = None
        self._strikes = 0

    async def read(
        self, datasets: Sequence[Dataset], fetch: Callable[[], Awaitable[Sequence[Batch]]]
    ) -> Sequence[Batch] | None:
        """The batches of ``datasets`` from ``fetch()``, or None if it failed (recorded)."""
        if self._stopped is not None:
            self.failures.update(dict.fromkeys(datasets, self._stopped))
            return None
        try:
            batches = await fetch()
        except ProviderError as err:
            # Kept until the poll is published: without its traceback, which holds the frames
            # of the read (an oversized body among them) alive.
            err.__traceback__ = None
            self.failures.update(dict.fromkeys(datasets, err))
            if account_wide(err) or self._strike(err):
                self._stopped = err
            return None
        except Exception as exc:  # a bug (or an answer no check foresaw): this dataset only
            logger.exception("reading %s failed unexpectedly", "/".join(datasets))
            exc.__traceback__ = None
            self.failures.update(dict.fromkeys(datasets, exc))
            return None
        self._strikes = 0
        self.batches.extend(batches)
        return batches

    async def read_one(
        self, dataset: Dataset, fetch: Callable[[], Awaitable[Batch]]
    ) -> Batch | None:
        """One dataset's batch, or None if it failed (recorded)."""

        async def one() -> Sequence[Batch]:
            return (await fetch(),)

        batches = await self.read((dataset,), one)
        return None if batches is None else batches[0]

    def _strike(self, err: ProviderError) -> bool:
        """Two datasets in a row timing out (or answering 5xx, each after its retries) is the
        provider being down, not one endpoint: the rest would cost minutes per poll."""
        if err.reason not in ("timeout", "http_5xx"):
            self._strikes = 0
            return False
        self._strikes += 1
        return self._strikes >= STRIKES

    @property
    def stopped(self) -> bool:
        """Whether a failure of the whole account ended the poll's reads."""
        return self._stopped is not None

    def result(self, project_names: Mapping[str, str] | None = None) -> FetchResult:
        """What the poll read, and what it could not."""
        return FetchResult(
            batches=self.batches, project_names=dict(project_names or {}), failures=self.failures
        )


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
        redact: Callable[[str], str] = redact,
    ) -> None:
        self._load = load
        self._redact = redact
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
                    self._redact(str(err)),
                    len(self._names),
                )
            else:
                self._names = names
                self._checked = set(names) | seen
                self._loaded_at = now
        return dict(self._names)
