"""Go/Prometheus-style durations such as ``30s``, ``5m``, ``1h30m``, ``500ms`` or ``2d``."""

from __future__ import annotations

import math
import re

_UNITS: dict[str, int] = {
    "w": 604_800_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}
# "ms" must be tried before "m"; values are milliseconds so formatting stays exact.
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_ORDER = ["w", "d", "h", "m", "s", "ms"]

EXPECTED_FORM = "use a duration such as 30s or 5m (units ms, s, m, h, d, w; combined: 1h30m)"


def parse_duration(text: str) -> float:
    """Parse ``text`` into seconds; raise ``ValueError`` naming the expected form.

    Units must appear at most once and from largest to smallest (``1h30m``, not ``30m1h``).
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError(f"empty duration; {EXPECTED_FORM}")
    if stripped.startswith("-"):
        raise ValueError(f"negative duration {text!r}; {EXPECTED_FORM}")
    pos = 0
    total_ms = 0.0
    last_rank = -1
    while pos < len(stripped):
        match = _PART.match(stripped, pos)
        if match is None:
            raise ValueError(f"invalid duration {text!r}; {EXPECTED_FORM}")
        number, unit = match.groups()
        rank = _ORDER.index(unit)
        if rank <= last_rank:
            raise ValueError(
                f"invalid duration {text!r}: units must go from largest to smallest, "
                f"each at most once; {EXPECTED_FORM}"
            )
        last_rank = rank
        total_ms += float(number) * _UNITS[unit]
        pos = match.end()
    return total_ms / 1000.0


def format_duration(seconds: float) -> str:
    """Format seconds in the shortest Go-style form (``300 -> "5m"``, ``5400 -> "1h30m"``).

    Rounded to whole milliseconds; zero is ``"0s"``.
    """
    if math.isnan(seconds) or math.isinf(seconds):
        raise ValueError(f"cannot format {seconds} as a duration")
    sign = "-" if seconds < 0 else ""
    remaining = round(abs(seconds) * 1000)
    if remaining == 0:
        return "0s"
    parts: list[str] = []
    for unit in _ORDER:
        size = _UNITS[unit]
        if unit == "w" and remaining % size:
            continue  # "31d" reads better than "4w3d"; weeks only for whole weeks
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)
