"""Deterministic synthetic usage: per-stream values as a pure function of (seed, hour).

Values of a past hour never change. The hour containing ``now`` is prorated: over a
sub-range ``[a, b)`` seconds of an hour whose full value is ``x`` the simulator counts
``floor(x*b/3600) - floor(x*a/3600)``, so minutes add up to hours, hours to days, and
the current hour only grows as the clock advances.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime
from functools import lru_cache

from .catalog import STREAMS, Stream
from .costs import CostLine, price_streams

DAY = 86_400
HOUR = 3_600

Values = tuple[int, ...]
Totals = list[Values | None]  # aligned with the provider's streams; None = no usage


def month_start(now: float) -> int:
    """Start of the UTC month of ``now``."""
    dt = datetime.fromtimestamp(now, UTC)
    return int(datetime(dt.year, dt.month, 1, tzinfo=UTC).timestamp())


def activity(hour: int) -> float:
    """Daily and weekly rhythm in [0.06, 1]: quiet nights (UTC) and weekends."""
    hod = hour // HOUR % 24
    weekday = (hour // DAY + 3) % 7  # 1970-01-01 was a Thursday; 5, 6 = weekend
    level = 0.06 if hod < 8 else 0.06 + 0.94 * math.sin(math.pi * (hod - 8) / 16)
    return level * 0.3 if weekday >= 5 else level


class SyntheticData:
    """Usage and cost values of both simulated organisations for one seed."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        # Per-instance caches (a method-level lru_cache would pin every instance).
        self.hour = lru_cache(maxsize=8_192)(self._generate_hour)
        self._day = lru_cache(maxsize=1_024)(self._sum_day)
        self._cost_day = lru_cache(maxsize=1_024)(self._price_day)

    def _generate_hour(self, provider: str, hour: int) -> tuple[Values | None, ...]:
        """Full-hour values of every stream of ``provider`` (hour-aligned ``hour``)."""
        streams = STREAMS[provider]
        rng = random.Random((self.seed * 1_000_003 + hour // HOUR) * 2 + (provider == "anthropic"))
        day_rng = random.Random(f"{self.seed}:{provider}:{hour // DAY}")
        level = activity(hour)
        hod, weekday = hour // HOUR % 24, (hour // DAY + 3) % 7
        # Some whole hours (weekend/weekday nights) and some Sundays are idle for the org.
        idle_org = rng.random() < (0.5 if weekday >= 5 else 0.15) and hod < 7
        idle_org = idle_org or (weekday == 6 and day_rng.random() < 0.35)
        rows: list[Values | None] = []
        for stream in streams:
            rows.append(self._row(stream, hour, level, idle_org, rng))
        return tuple(rows)

    @staticmethod
    def _row(
        stream: Stream, hour: int, level: float, idle_org: bool, rng: random.Random
    ) -> Values | None:
        # Always draw the same amount of randomness so streams stay independent.
        u_idle, u_volume = rng.random(), rng.random()
        noise = [rng.random() for _ in stream.mix]
        if idle_org or u_idle < 0.5 - 0.45 * level:
            return None
        if stream.until is not None and hour >= stream.until:
            return None
        requests = int(stream.rate * level * (0.5 + u_volume))
        if requests == 0:
            return None
        parts = (
            int(requests * m * (0.75 + 0.5 * n)) for m, n in zip(stream.mix, noise, strict=True)
        )
        return (requests, *parts)

    def _sum_day(self, provider: str, day: int) -> Totals:
        acc: list[list[int] | None] = [None] * len(STREAMS[provider])
        for hour in range(day, day + DAY, HOUR):
            _add(acc, self.hour(provider, hour))
        return _freeze(acc)

    def totals(self, provider: str, start: int, end: float) -> Totals:
        """Per-stream sums over ``[start, end)``; the caller clips ``end`` to now."""
        acc: list[list[int] | None] = [None] * len(STREAMS[provider])
        t = start
        while t < end:
            day = t - t % DAY
            if t == day and day + DAY <= end:
                _add(acc, self._day(provider, day))
                t = day + DAY
                continue
            hour = t - t % HOUR
            stop = min(hour + HOUR, end)
            full = self.hour(provider, hour)
            if t == hour and stop == hour + HOUR:
                _add(acc, full)
            else:
                a, b = t - hour, stop - hour
                _add(acc, [_part(v, a, b) for v in full])
            t = hour + HOUR
        return _freeze(acc)

    def cost_lines(self, provider: str, day: int, now: float) -> tuple[CostLine, ...]:
        """Priced usage of UTC ``day`` as the provider's cost report bills it."""
        if day + DAY <= now:
            return self._cost_day(provider, day)
        return price_streams(provider, self.totals(provider, day, min(day + DAY, now)))

    def _price_day(self, provider: str, day: int) -> tuple[CostLine, ...]:
        return price_streams(provider, self._day(provider, day))


def _part(values: Values | None, a: int, b: float) -> Values | None:
    if values is None:
        return None
    part = tuple(math.floor(x * b / HOUR) - math.floor(x * a / HOUR) for x in values)
    return part if any(part) else None


def _add(acc: list[list[int] | None], rows: Totals | tuple[Values | None, ...]) -> None:
    for i, row in enumerate(rows):
        if row is None:
            continue
        current = acc[i]
        if current is None:
            acc[i] = list(row)
        else:
            for j, x in enumerate(row):
                current[j] += x


def _freeze(acc: list[list[int] | None]) -> Totals:
    return [tuple(row) if row is not None and any(row) else None for row in acc]
