"""The SQLite event store and the pseudo-provider reading it into the normal ledger pipeline."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.core.pricing import Pricer
from exporter.core.records import DAY, Dataset, Dims, Family
from exporter.core.snapshot import AccountSnapshot, SnapshotStore
from exporter.scheduler import AccountPoller
from exporter.sources.push.errors import StoreError
from exporter.sources.push.events import UsageEvent
from exporter.sources.push.provider import PushProvider, labelled
from exporter.sources.push.store import EventStore

NOV = 1793491200  # 2026-11-01T00:00:00Z
NOW = NOV + 25 * DAY + 13 * 3600
T = NOV + 25 * DAY + 10 * 3600  # an event time on Nov 26


def ev(id: str, ts: float = T, *, account: str = "team-a", output: int = 300,
       cost: float | None = None, model: str = "sonar-pro") -> UsageEvent:  # fmt: skip
    return UsageEvent(id, account, ts, "search", model, "default", (1200, 0, 0, 0, output), 1, cost)


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    return EventStore(tmp_path / "push.db")


def test_duplicates_count_once(store: EventStore) -> None:
    assert store.insert([ev("a"), ev("b"), ev("a")]) == (2, 1)
    assert store.insert([ev("b"), ev("c")]) == (1, 1)
    # The same id in another account is another event.
    assert store.insert([ev("a", account="team-b")]) == (1, 0)
    [row] = store.daily("team-a", NOV, NOW)
    assert (row.day, row.tokens, row.requests, row.cost_events) == (
        NOV + 25 * DAY, (3600, 0, 0, 0, 900), 3, 0)  # fmt: skip


def test_durability_settings_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "push.db"
    store = EventStore(path)
    store.insert([ev("a", cost=0.5), ev("b", ts=T - DAY, cost=0.25)])
    store.close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    raw.close()
    reopened = EventStore(path)
    assert reopened._db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    assert reopened.insert([ev("a"), ev("b")]) == (0, 2)
    rows = sorted(reopened.daily("team-a", NOV, NOW), key=lambda r: r.day)
    assert [(r.day - NOV) // DAY for r in rows] == [24, 25]
    assert [r.cost_usd for r in rows] == [0.25, 0.5]


def test_a_failing_batch_stores_nothing(store: EventStore) -> None:
    bad = ev("bad")
    object.__setattr__(bad, "tokens", ("not", "a", "number", 0))  # wrong arity: SQL error
    with pytest.raises(StoreError):
        store.insert([ev("x"), bad])
    assert store.daily("team-a", NOV, NOW) == []
    assert store.insert([ev("x")]) == (1, 0)


def test_concurrent_writers_lose_nothing(store: EventStore) -> None:
    def push(worker: int) -> None:
        for batch in range(20):
            store.insert([ev(f"w{worker}-{batch}-{i}") for i in range(10)] + [ev("shared")])

    threads = [threading.Thread(target=push, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    [row] = store.daily("team-a", NOV, NOW)
    assert row.requests == 8 * 20 * 10 + 1
    assert row.tokens[4] == 300 * (8 * 20 * 10 + 1)


def test_prune_deletes_days_before(store: EventStore) -> None:
    store.insert([ev("old", ts=NOV - 20 * DAY), ev("new")])
    assert store.prune(NOV - 8 * DAY) == 1
    assert [r.day for r in store.daily("team-a", 0, NOW)] == [NOV + 25 * DAY]
    assert store.insert([ev("new")]) == (0, 1)


def test_unusable_database_path_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="push database .*missing"):
        EventStore(tmp_path / "missing" / "push.db")


def test_provider_returns_the_whole_window_as_batches(store: EventStore) -> None:
    store.insert([ev("a", cost=0.01), ev("b"), ev("c", ts=NOV - 3 * DAY, model="sonar")])
    provider = labelled(PushProvider, "perplexity")(store, "team-a", clock=lambda: NOW)
    assert provider.name == "perplexity" and PushProvider.name == "push"
    result = asyncio.run(provider.fetch(NOV + 24 * DAY, NOW))
    usage, cost = result.batches
    assert (usage.dataset, usage.start, usage.end) == (Dataset.USAGE, NOV - 7 * DAY, NOW)
    dims = Dims(project_id="search", model="sonar-pro")
    assert usage.days[NOV + 25 * DAY] == {
        (Family.TOKENS, dims, ("input", "text", "default")): 2400.0,
        (Family.TOKENS, dims, ("output", "text", "default")): 600.0,
        (Family.REQUESTS, dims, ("default",)): 2.0,
    }
    assert NOV - 3 * DAY in usage.days  # the week before the month, for budgets
    assert cost.days == {NOV + 25 * DAY: {(Family.BILLED_COST, dims, ("pushed",)): 0.01}}
    assert usage.watermark == cost.watermark == NOW


def test_poller_publishes_month_to_date_with_estimates(store: EventStore) -> None:
    store.insert([ev("a", cost=0.01), ev("b"), ev("c", ts=NOV - 3 * DAY)])
    now = [float(NOW)]
    snapshots = SnapshotStore([AccountSnapshot("perplexity", "team-a")])
    poller = AccountPoller(
        account="team-a",
        provider_factory=lambda _: labelled(PushProvider, "perplexity")(store, "team-a"),
        store=snapshots,
        poll_interval=10,
        settle_window=-DAY,
        pricer=Pricer(),
        clock=lambda: now[0],
    )
    asyncio.run(poller.poll_once())
    dims = Dims(project_id="search", model="sonar-pro")
    totals = poller.ledger.totals
    assert totals[(Family.TOKENS, dims, ("output", "text", "default"))] == 600  # not Oct's
    # sonar-pro: $3/M input, $15/M output; every event is estimated, also those with a cost.
    assert totals[(Family.ESTIMATED_COST, dims, ("output", "default"))] == pytest.approx(0.009)
    assert totals[(Family.ESTIMATED_COST, dims, ("input", "default"))] == pytest.approx(0.0072)
    assert totals[(Family.BILLED_COST, dims, ("pushed",))] == 0.01
    spend = snapshots.current.accounts[0].data.spend
    assert spend is not None and spend.settled_before == NOV + 26 * DAY  # tomorrow: all final
    assert {day: v for day, v in spend.billed.items() if v} == {NOV + 25 * DAY: {dims: 0.01}}
    # An event pushed later for an earlier day of the month shows at the next poll.
    store.insert([ev("d", ts=NOV + 2 * DAY)])
    now[0] += 10
    asyncio.run(poller.poll_once())
    assert poller.ledger.totals[(Family.TOKENS, dims, ("output", "text", "default"))] == 900
    assert poller.ledger.revisions == 0


@pytest.fixture
def read_only_mount(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs that the test can remount read-only (mounting needs root, as CI runs)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only filesystem needs root (CI runs as root)")
    mount = tmp_path / "ro"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "--lazy", str(mount)], check=True)


@pytest.mark.parametrize("crashed", [False, True], ids=["closed", "killed"])
def test_a_database_on_a_read_only_filesystem_is_refused_at_open(
    read_only_mount: Path, crashed: bool
) -> None:
    path = read_only_mount / "push.db"
    # A killed exporter leaves the WAL and shared-memory files: SQLite then still opens the
    # database read-only and answers reads, which used to look like a healthy empty store.
    script = (
        "import os, sys; from pathlib import Path; from exporter.sources.push.store import "
        "EventStore; from tests.test_push_store import ev; s = EventStore(Path(sys.argv[1])); "
        "s.insert([ev('a')]); os._exit(0) if sys.argv[2] == 'True' else s.close()"
    )
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", script, str(path), str(crashed)], cwd=root, check=True)
    assert (path.with_name("push.db-wal").exists()) is crashed
    subprocess.run(["mount", "-o", "remount,ro", str(read_only_mount)], check=True)
    with pytest.raises(StoreError, match=r"push\.db: .*its directory must be writable"):
        EventStore(path)


def test_label_sets_beyond_the_cap_are_folded_at_insert_and_counted(tmp_path: Path) -> None:
    # What a stranger's invented names can grow stays bounded on disk and in every read: the
    # store folds as the ledger would, and counts each folded pair once.
    path = tmp_path / "push.db"
    store = EventStore(path, max_label_sets={"team-a": 3})
    events = [ev(f"e{i}", model=f"model-{i % 10}") for i in range(40)]
    assert store.insert(events[:20]) == (20, 0)
    assert store.insert(events[20:]) == (20, 0)
    rows = store.daily("team-a", NOV, NOW)
    assert sorted((r.project, r.model) for r in rows) == [
        ("(other)", "(other)"), ("search", "model-0"), ("search", "model-1"), ("search", "model-2"),
    ]  # fmt: skip
    assert sum(r.requests for r in rows) == 40  # nothing lost
    assert [r.requests for r in rows if r.model == "(other)"] == [28]
    assert store.sums("team-a", NOV, NOW, month=NOV)[1] == 7  # model-3 .. model-9
    assert store.insert(events) == (0, 40)  # duplicates are not counted again
    store.close()
    reopened = EventStore(path, max_label_sets={"team-a": 3})
    assert reopened.insert([ev("late", model="model-0"), ev("new", model="model-99")]) == (2, 0)
    assert reopened.sums("team-a", NOV, NOW, month=NOV)[1] == 8
    assert len(reopened.daily("team-a", NOV, NOW)) == 4
    # Another account, and a store without caps, fold nothing.
    assert reopened.insert([ev("b", account="team-b", model="m1")]) == (1, 0)
    assert reopened.sums("team-b", NOV, NOW, month=NOV)[1] == 0
