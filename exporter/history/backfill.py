"""``ai-cost-exporter backfill``: the providers' history as OpenMetrics for promtool.

One file per UTC month (``aicost-YYYY-MM.om``) for ``promtool tsdb create-blocks-from
openmetrics``. Every counter has the name and labels of ``/metrics`` and its month-to-date value:
from the start of each day (every ``step``) it holds the sum of the month's days up to and
including that one, as the live exporter shows it once the provider has reported the day, and a
new month starts again from its first day. Gauges (balances, limits, budgets) have no history and
are left out; so are ``_created`` samples (see docs/backfill.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from exporter.config.schema import Config
from exporter.core.records import DAY, Family, SeriesKey, day_start
from exporter.core.snapshot import LabelPairs, build_account_data
from exporter.history.collect import AccountMonth, HistoryError, read_history
from exporter.web.metrics import FAMILY_METRICS

DEFAULT_STEP = 300
"""Seconds between samples: Prometheus' default lookback (5 minutes), so that every panel of a
dashboard finds a sample wherever it looks."""
MIN_STEP = 60


class BackfillError(Exception):
    """Bad arguments: nothing is written."""


EARLIEST = int(datetime(2020, 1, 1, tzinfo=UTC).timestamp())
"""The earliest ``--from``: before it no provider's usage API holds anything."""


def parse_day(text: str, flag: str) -> int:
    """Unix seconds of UTC day ``YYYY-MM-DD``."""
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise BackfillError(f"{flag} {text!r}: expected YYYY-MM-DD, e.g. 2026-09-01") from None
    return int(day.timestamp())


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(pairs: LabelPairs) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in pairs)


def counter_series(
    month: AccountMonth, first: int = 0
) -> dict[Family, dict[LabelPairs, list[tuple[int, float]]]]:
    """Per counter family and label set, (day, month-to-date value) for every day of the month
    from the series' first, but none before ``first`` (whose days still count in the sums)."""
    out: dict[Family, dict[LabelPairs, list[tuple[int, float]]]] = {}
    running: dict[SeriesKey, float] = {}
    for day in range(month.month_start, month.end, DAY):
        for key, value in month.days.get(day, {}).items():
            if FAMILY_METRICS[key[0]].type == "counter":
                running[key] = running.get(key, 0.0) + value
        if not running or day < first:
            continue
        data = build_account_data(
            month.provider, month.account, month.month_start, running, month.project_names, {}, 0
        )
        for family, series in data.families.items():
            target = out.setdefault(family, {})
            for labels, value in zip(series.labels, series.values, strict=True):
                target.setdefault(labels, []).append((day, value))
    return out


def openmetrics(months: Iterable[AccountMonth], step: int, start: int, end: int) -> Iterator[str]:
    """The lines of one OpenMetrics exposition of ``months`` (of one calendar month), samples
    every ``step`` seconds in ``[start, end)``."""
    families: dict[Family, dict[LabelPairs, list[tuple[int, float]]]] = {}
    for month in months:
        for family, series in counter_series(month, start).items():
            families.setdefault(family, {}).update(series)
    for family in sorted(families, key=lambda f: FAMILY_METRICS[f].name):
        definition = FAMILY_METRICS[family]
        yield f"# TYPE {definition.name} counter\n"
        if definition.unit:
            yield f"# UNIT {definition.name} {definition.unit}\n"
        yield f"# HELP {definition.name} {_escape(definition.help)}\n"
        for labels, points in sorted(families[family].items()):
            prefix = f"{definition.name}_total{{{_labels(labels)}}} "
            for day, value in points:
                for ts in range(day, min(day + DAY, end), step):
                    yield f"{prefix}{value!r} {ts}\n"
    yield "# EOF\n"


def _write(path: Path, lines: Iterable[str]) -> int:
    """Write ``lines`` to ``path`` whole or not at all; the number of lines.

    Into a new file of its own first (``mkstemp``: created, never opened through a link
    someone put in ``--out``), renamed onto ``path`` once complete, so a file promtool reads
    always ends in ``# EOF`` and a planted symbolic link is replaced, not written through."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.fchmod(descriptor, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
        count = 0
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            for line in lines:
                file.write(line)
                count += 1
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return count


def run_backfill(
    config: Config, first: str, last: str | None, out: Path, step: int = DEFAULT_STEP
) -> int:
    """The ``backfill`` command: one file per month in ``out``; 0 once written, else 1."""
    try:
        start = parse_day(first, "--from")
        today = day_start(time.time())
        end = parse_day(last, "--to") if last is not None else today
        if end > today:
            raise BackfillError(f"--to {last}: only days that have ended can be backfilled")
        if start >= end:
            raise BackfillError("--from must be before --to (default: today, UTC)")
        if start < EARLIEST:  # a typo such as 0026-09-01 would write a file per month since
            raise BackfillError(f"--from {first}: no provider holds usage from before 2020")
        if step < MIN_STEP or DAY % step:
            raise BackfillError(f"--step: {step}s must divide a day and be at least {MIN_STEP}s")
        left_out: list[str] = []
        history = asyncio.run(
            read_history(config, start, end, as_far_as_kept=left_out, warnings=left_out)
        )
    except (BackfillError, HistoryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for problem in left_out:
        print(f"warning: {problem}", file=sys.stderr)
    by_month: dict[int, list[AccountMonth]] = {}
    for month in history:  # from the month of --from: its days before it count, unwritten
        by_month.setdefault(month.month_start, []).append(month)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for month_start_, months in sorted(by_month.items()):
            name = datetime.fromtimestamp(month_start_, UTC).strftime("aicost-%Y-%m.om")
            lines = _write(out / name, openmetrics(months, step, start, end))
            print(f"{out / name}: {lines} line(s)", file=sys.stderr)
    except OSError as exc:
        print(f"error: --out {out}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 1
    return 0
