"""Bucket widths, per-width page limits, RFC 3339 times and page cursors."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Final

from .query import ApiError

WIDTHS: Final = {"1m": 60, "1h": 3_600, "1d": 86_400}
# (default, maximum) buckets per page for the usage endpoints of both providers.
USAGE_LIMITS: Final = {"1m": (60, 1_440), "1h": (24, 168), "1d": (7, 31)}


def snap(ts: int, width: int) -> int:
    """Start of the bucket of ``width`` seconds containing ``ts``."""
    return ts // width * width


def rfc3339(ts: int) -> str:
    """``2026-03-02T00:00:00Z`` for Unix seconds ``ts``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str, param: str) -> int:
    """Unix seconds of an RFC 3339 timestamp (naive values are taken as UTC)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"{param}: invalid RFC 3339 timestamp {value!r}", param) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def encode_page(bucket_start: int) -> str:
    """Opaque cursor naming the first bucket of the next page."""
    return "page_" + base64.urlsafe_b64encode(str(bucket_start).encode()).decode()


def decode_page(token: str) -> int:
    """Bucket start encoded by :func:`encode_page`; 400 for anything else."""
    try:
        if not token.startswith("page_"):
            raise ValueError(token)
        return int(base64.urlsafe_b64decode(token[5:].encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(400, "page: invalid page token", "page") from None


def page_of(starts: range, page: str | None, limit: int) -> tuple[range, str | None]:
    """The ``limit`` bucket starts from the cursor on, and the cursor of the rest."""
    index = 0
    if page is not None:
        first = decode_page(page)
        if first not in starts:
            raise ApiError(400, "page: token does not belong to this query", "page")
        index = starts.index(first)
    chosen = starts[index : index + limit]
    more = index + limit < len(starts)
    return chosen, (encode_page(starts[index + limit]) if more else None)
