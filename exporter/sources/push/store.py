"""The durable event store: an embedded SQLite database (WAL, ``synchronous=FULL``).

A batch is one transaction: every event is inserted (or recognised as a
duplicate by its ``(account, id)`` primary key) and added to the per-day
aggregate in the same commit, so after a crash a batch is either wholly
there or wholly absent, and an acknowledged event is on disk. Pseudo-providers
read only the small per-day aggregate table, never the events.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from exporter.core.ledger import OVERFLOW, month_start, next_month_start
from exporter.core.records import day_start
from exporter.sources.push.errors import StoreError
from exporter.sources.push.events import TOKEN_TYPES, UsageEvent

SCHEMA_VERSION = 1
_TOKEN_COLUMNS = ", ".join(f"tok_{t}" for t in TOKEN_TYPES)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    account TEXT NOT NULL,
    id TEXT NOT NULL,
    ts REAL NOT NULL,
    day INTEGER NOT NULL,
    project TEXT NOT NULL,
    model TEXT NOT NULL,
    service_tier TEXT NOT NULL,
    {", ".join(f"tok_{t} INTEGER NOT NULL" for t in TOKEN_TYPES)},
    requests INTEGER NOT NULL,
    cost_usd REAL,
    PRIMARY KEY (account, id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_day ON events (day);
CREATE TABLE IF NOT EXISTS daily (
    account TEXT NOT NULL,
    day INTEGER NOT NULL,
    project TEXT NOT NULL,
    model TEXT NOT NULL,
    service_tier TEXT NOT NULL,
    {", ".join(f"tok_{t} INTEGER NOT NULL" for t in TOKEN_TYPES)},
    requests INTEGER NOT NULL,
    cost_usd REAL NOT NULL,
    cost_events INTEGER NOT NULL,
    PRIMARY KEY (account, day, project, model, service_tier)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS overflow (
    account TEXT NOT NULL,
    month INTEGER NOT NULL,
    project TEXT NOT NULL,
    model TEXT NOT NULL,
    PRIMARY KEY (account, month, project, model)
) WITHOUT ROWID;
"""
_INSERT_EVENT = (
    "INSERT OR IGNORE INTO events (account, id, ts, day, project, model, service_tier, "
    f"{_TOKEN_COLUMNS}, requests, cost_usd) VALUES ({', '.join('?' * (9 + len(TOKEN_TYPES)))})"
)
_UPSERT_DAILY = (
    "INSERT INTO daily (account, day, project, model, service_tier, "
    f"{_TOKEN_COLUMNS}, requests, cost_usd, cost_events) "
    f"VALUES ({', '.join('?' * (8 + len(TOKEN_TYPES)))}) "
    "ON CONFLICT (account, day, project, model, service_tier) DO UPDATE SET "
    + ", ".join(f"tok_{t} = tok_{t} + excluded.tok_{t}" for t in TOKEN_TYPES)
    + ", requests = requests + excluded.requests, cost_usd = cost_usd + excluded.cost_usd"
    + ", cost_events = cost_events + excluded.cost_events"
)


@dataclass(frozen=True, slots=True)
class DailyRow:
    """One account's sums for one UTC day and (project, model, service tier)."""

    day: int
    project: str
    model: str
    service_tier: str
    tokens: tuple[int, ...]
    requests: int
    cost_usd: float
    cost_events: int
    """How many of the events reported ``cost_usd`` (0: the cost is not reported)."""


class StoreResult(NamedTuple):
    """Outcome of one stored batch."""

    accepted: int
    duplicates: int


class EventStore:
    """Thread-safe access to the event database (one connection, serialised by a lock).

    SQLite serialises writers anyway; a single connection keeps the durability
    settings in one place. Other processes (``ai-cost-exporter import``) may use
    the same file at the same time: WAL and the busy timeout handle that.
    """

    def __init__(
        self,
        path: Path,
        *,
        busy_timeout: float = 10.0,
        max_label_sets: Mapping[str, int] | None = None,
    ) -> None:
        self.path = path
        self._caps = dict(max_label_sets or {})
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise _store_error(path, exc) from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._check_version()
            self._check_writable()
        except sqlite3.Error as exc:
            self._db.close()
            raise _store_error(path, exc) from None

    def _check_version(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None:
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)",
                (str(SCHEMA_VERSION),),
            )
        elif row[0] != str(SCHEMA_VERSION):
            raise StoreError(
                f"push database {self.path}: schema version {row[0]}, expected {SCHEMA_VERSION}"
            )

    def _check_writable(self) -> None:
        # On a read-only filesystem an existing WAL database still opens and answers reads,
        # and then every push fails: refuse it at startup instead of serving without pushes.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("UPDATE meta SET value = value WHERE key = 'schema'")
        finally:
            self._rollback()

    def _rollback(self) -> None:
        # SQLite has already rolled back after some errors (a full disk): a second ROLLBACK
        # would raise "cannot rollback" and hide the real cause.
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def insert(self, events: Sequence[UsageEvent]) -> StoreResult:
        """Store a batch in one durable transaction; events already stored are duplicates."""
        accepted = 0
        months: dict[tuple[str, int], _MonthLabels] = {}
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    accepted = sum(self._insert_one(event, months) for event in events)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except sqlite3.Error as exc:
                raise _store_error(self.path, exc) from None
        return StoreResult(accepted, len(events) - accepted)

    def _insert_one(self, event: UsageEvent, months: dict[tuple[str, int], _MonthLabels]) -> bool:
        """Insert ``event`` and add it to its day's sums; False if it was stored before."""
        day = day_start(event.timestamp)
        labels = (event.project, event.model, event.service_tier)
        values = (*event.tokens, event.requests)
        cursor = self._db.execute(
            _INSERT_EVENT, (event.account, event.id, event.timestamp, day, *labels, *values,
                            event.cost_usd)
        )  # fmt: skip
        if cursor.rowcount != 1:
            return False
        cap = self._caps.get(event.account)
        if cap is not None:
            project, model = self._admit(event.account, day, event.project, event.model, cap,
                                         months)  # fmt: skip
            labels = (project, model, event.service_tier)
        has_cost = event.cost_usd is not None
        self._db.execute(
            _UPSERT_DAILY, (event.account, day, *labels, *values, event.cost_usd or 0.0,
                            int(has_cost))
        )  # fmt: skip
        return True

    def _admit(
        self,
        account: str,
        day: int,
        project: str,
        model: str,
        cap: int,
        months: dict[tuple[str, int], _MonthLabels],
    ) -> tuple[str, str]:
        """The (project, model) the day's sums are kept under: the event's own while the
        account has fewer than ``cap`` of them this month, else :data:`OVERFLOW` (the ledger's
        rule, applied here so that the sums a stranger can grow stay bounded on disk and in
        every later read), with the folded pair counted in ``overflow``."""
        month = month_start(day)
        labels = months.get((account, month))
        if labels is None:
            rows = self._db.execute(
                "SELECT DISTINCT project, model FROM daily WHERE account = ? AND day >= ? "
                "AND day < ?", (account, month, next_month_start(month))
            ).fetchall()  # fmt: skip
            pairs = {(r[0], r[1]) for r in rows}
            real = sum(1 for pair in pairs if OVERFLOW not in pair)
            labels = months[account, month] = _MonthLabels(pairs, real)
        if (project, model) in labels.pairs:
            return project, model
        if labels.real < cap:
            labels.pairs.add((project, model))
            labels.real += 1
            return project, model
        self._db.execute(
            "INSERT OR IGNORE INTO overflow (account, month, project, model) VALUES (?, ?, ?, ?)",
            (account, month, project, model),
        )
        folded = (OVERFLOW if project else "", OVERFLOW if model else "")
        labels.pairs.add(folded)
        return folded

    def daily(self, account: str, start: int, end: int) -> list[DailyRow]:
        """The account's per-day sums for days in ``[start, end)``."""
        return self.sums(account, start, end, month=0)[0]

    def sums(
        self, account: str, start: int, end: int, *, month: int
    ) -> tuple[list[DailyRow], int]:
        """The account's per-day sums for days in ``[start, end)``, and how many (project,
        model) pairs were folded in the month starting at ``month``, read in one transaction
        (a batch stored in between would otherwise be counted but not summed)."""
        query = (
            f"SELECT day, project, model, service_tier, {_TOKEN_COLUMNS}, requests, cost_usd, "
            "cost_events FROM daily WHERE account = ? AND day >= ? AND day < ?"
        )
        with self._lock:
            try:
                self._db.execute("BEGIN")
                try:
                    rows = self._db.execute(query, (account, day_start(start), end)).fetchall()
                    (folded,) = self._db.execute(
                        "SELECT COUNT(*) FROM overflow WHERE account = ? AND month = ?",
                        (account, month),
                    ).fetchone()
                finally:
                    self._rollback()
            except sqlite3.Error as exc:
                raise _store_error(self.path, exc) from None
        n = len(TOKEN_TYPES)
        daily = [
            DailyRow(r[0], r[1], r[2], r[3], tuple(r[4 : 4 + n]), r[4 + n], r[5 + n], r[6 + n])
            for r in rows
        ]
        return daily, int(folded)

    def prune(self, before: int) -> int:
        """Delete events and sums of days before ``before``; the number of events deleted."""
        cutoff = day_start(before)
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    deleted = self._db.execute("DELETE FROM events WHERE day < ?", (cutoff,))
                    self._db.execute("DELETE FROM daily WHERE day < ?", (cutoff,))
                    self._db.execute(
                        "DELETE FROM overflow WHERE month < ?", (month_start(cutoff),)
                    )
                    self._db.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
            except sqlite3.Error as exc:
                raise _store_error(self.path, exc) from None
        return int(deleted.rowcount)


@dataclass(slots=True)
class _MonthLabels:
    """The (project, model) pairs an account's sums have in one month, folded ones included."""

    pairs: set[tuple[str, str]]
    real: int
    """How many of them are not folded ones."""


def _store_error(path: Path, exc: sqlite3.Error) -> StoreError:
    message = f"push database {path}: {exc}"
    if getattr(exc, "sqlite_errorname", "").startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")):
        message += " (pushed events are written there: the file and its directory must be writable)"
    return StoreError(message)

