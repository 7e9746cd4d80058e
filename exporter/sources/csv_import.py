"""``ai-cost-exporter import FILE.csv --account NAME``: bulk usage into the push event store.

Every row goes through the push API's validation and idempotency (the ``id``
column), and a file is stored all or nothing: if any row is rejected, nothing
is stored and every problem is reported with its line and column, so the file
can be fixed and imported again. Re-importing a file changes nothing.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from exporter.sources.push.errors import StoreError
from exporter.sources.push.events import TOKEN_TYPES, EventValidator, UsageEvent
from exporter.sources.push.settings import PushConfig
from exporter.sources.push.store import EventStore

TEXT_COLUMNS = ("id", "timestamp", "provider", "project", "model", "service_tier")
COLUMNS = (*TEXT_COLUMNS, *TOKEN_TYPES, "requests", "cost_usd")
REQUIRED_COLUMNS = ("id", "timestamp")
MAX_REPORTED = 50


class CsvImportError(Exception):
    """The import cannot start (configuration, file or header problem)."""


@dataclass
class ImportReport:
    """What an import did; ``problems`` are ``line N: column: reason``."""

    rows: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no row was rejected (and the file was stored)."""
        return self.rejected == 0


def load_push_config(path: Path) -> PushConfig:
    """The ``push:`` section of a configuration file; API keys are neither needed nor read."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as exc:
        reason = type(exc).__name__
        raise CsvImportError(f"{path}: cannot read the configuration ({reason})") from None
    push = data.get("push") if isinstance(data, dict) else None
    if not isinstance(push, dict):
        raise CsvImportError(f"{path}: no push: section (see docs/push.md)")
    try:
        config = PushConfig.model_validate(push)
    except ValidationError as exc:
        error = exc.errors(include_input=False)[0]
        where = ".".join(str(part) for part in ("push", *error["loc"]))
        raise CsvImportError(f"{path}: {where}: {error['msg']}") from None
    if config.database is None:
        raise CsvImportError(f"{path}: push.database is not set")
    database = config.database.expanduser()
    if not database.is_absolute():
        database = path.parent.absolute() / database
    return config.model_copy(update={"database": database})


def _column(field_name: str) -> str:
    return field_name.removeprefix("tokens.")


def _row_event(row: dict[str, str], account: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The row as a push event mapping, and the cells that are not numbers where required."""
    raw: dict[str, Any] = {"account": account}
    problems: list[tuple[str, str]] = []
    tokens: dict[str, int] = {}
    for name, cell in row.items():
        value = (cell or "").strip()
        if not value:
            continue
        if name in TEXT_COLUMNS:
            raw[name] = value
        elif name in (*TOKEN_TYPES, "requests"):
            try:
                number = int(value)
            except ValueError:
                problems.append((name, "must be a whole number"))
                continue
            if name == "requests":
                raw["requests"] = number
            else:
                tokens[name] = number
        elif name == "cost_usd":
            try:
                raw["cost_usd"] = float(value)
            except ValueError:
                problems.append((name, "must be a number of US dollars"))
    if tokens:
        raw["tokens"] = tokens
    ts = raw.get("timestamp")
    if isinstance(ts, str) and ts.replace(".", "", 1).isdigit():
        raw["timestamp"] = float(ts)
    return raw, problems


def read_events(
    lines: Iterable[str], account: str, validator: EventValidator, now: float
) -> tuple[list[UsageEvent], ImportReport]:
    """Validate every row; the events and a report of the rows and their problems."""
    reader = csv.DictReader(lines)
    report = ImportReport()
    header = reader.fieldnames
    if header is None:
        raise CsvImportError("the file is empty; expected a header line")
    unknown = [name for name in header if name not in COLUMNS]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if unknown or missing or len(set(header)) != len(header):
        parts = []
        if unknown:
            parts.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
        if missing:
            parts.append(f"missing column(s) {', '.join(missing)}")
        if len(set(header)) != len(header):
            parts.append("a column appears twice")
        raise CsvImportError(f"line 1: {'; '.join(parts)}; columns: {', '.join(COLUMNS)}")
    events: list[UsageEvent] = []
    for row in reader:
        report.rows += 1
        problems: list[tuple[str, str]] = []
        if None in row:
            problems.append(("", f"more cells than the {len(header)} columns"))
        raw, problems_ = _row_event({k: v for k, v in row.items() if k is not None}, account)
        problems += problems_
        event, errors = validator.validate(raw, report.rows - 1, now)
        seen = dict(problems)
        problems += [(_column(e.field), e.message) for e in errors if _column(e.field) not in seen]
        if problems:
            report.rejected += 1
            report.problems.extend(
                f"line {reader.line_num}: {column + ': ' if column else ''}{message}"
                for column, message in problems
            )
        elif event is not None:
            events.append(event)
    return events, report


def import_csv(
    path: Path,
    account: str,
    config: PushConfig,
    *,
    clock: Callable[[], float] = time.time,
) -> ImportReport:
    """Import ``path`` for pushed ``account``: everything or (on any rejected row) nothing."""
    if account not in {a.name for a in config.accounts}:
        known = ", ".join(a.name for a in config.accounts) or "none"
        raise CsvImportError(f"--account {account!r} is not a push account (configured: {known})")
    assert config.database is not None
    validator = EventValidator(
        {a.name: a.provider for a in config.accounts}, max_clock_skew=config.max_clock_skew
    )
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CsvImportError(f"{path}: cannot read ({type(exc).__name__})") from None
    events, report = read_events(io.StringIO(text, newline=""), account, validator, clock())
    if not report.ok:
        return report
    store = EventStore(
        config.database, max_label_sets={a.name: a.max_label_sets for a in config.accounts}
    )
    try:
        result = store.insert(events)
    finally:
        store.close()
    report.stored, report.duplicates = result.accepted, result.duplicates
    return report


def format_report(path: Path, report: ImportReport) -> list[str]:
    """Human-readable lines: the problems (at most :data:`MAX_REPORTED`), then a summary."""
    lines = [f"{path}: {problem}" for problem in report.problems[:MAX_REPORTED]]
    if len(report.problems) > MAX_REPORTED:
        lines.append(f"{path}: ... and {len(report.problems) - MAX_REPORTED} more problem(s)")
    if report.ok:
        lines.append(
            f"{path}: {report.rows} row(s): {report.stored} stored, "
            f"{report.duplicates} duplicate(s) skipped, 0 rejected"
        )
    else:
        lines.append(
            f"{path}: {report.rows} row(s): {report.rejected} rejected; nothing stored "
            "(fix the rows and import the file again)"
        )
    return lines


def run_import(path: Path, account: str, config_file: Path) -> int:
    """The ``import`` command: print the report; 0 when the file was stored, else 1."""
    try:
        report = import_csv(path, account, load_push_config(config_file))
    except (CsvImportError, StoreError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    lines = format_report(path, report)
    print("\n".join(lines), file=sys.stdout if report.ok else sys.stderr)
    return 0 if report.ok else 1
