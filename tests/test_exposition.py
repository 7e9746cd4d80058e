"""The exposition is rendered once per snapshot and format, and follows every new snapshot."""

from __future__ import annotations

import gzip
import threading
import time

from exporter.core.records import Dims, Family
from exporter.core.snapshot import AccountSnapshot, SnapshotStore, build_account_data
from exporter.web.exposition import Exposition

NOV = 1793491200
TEXT = "text/plain"
OPENMETRICS = "application/openmetrics-text;version=1.0.0"
LINE = (
    'aicost_requests_total{account="main",project="p",project_id="p",provider="openai",'
    'service_tier="default"}'
)


def publish(store: SnapshotStore, requests: float) -> None:
    key = (Family.REQUESTS, Dims("p"), ("default",))
    store.update("main", data=build_account_data("openai", "main", NOV, {key: requests}, {}, {}, 0))


def test_scrapes_of_one_snapshot_get_the_bytes_of_one_render() -> None:
    store = SnapshotStore([AccountSnapshot("openai", "main")])
    publish(store, 3.0)
    exposition = Exposition(lambda: store.current)
    content_type, first = exposition.body(TEXT, gzipped=False)
    assert content_type.startswith("text/plain; version=0.0.4")
    assert f"{LINE} 3.0" in first.decode().splitlines()
    assert exposition.body(TEXT, gzipped=False)[1] is first
    # Each format and encoding is its own body, each rendered once.
    om_type, om = exposition.body(OPENMETRICS, gzipped=False)
    assert om_type.startswith("application/openmetrics-text") and om.endswith(b"# EOF\n")
    zipped = exposition.body(TEXT, gzipped=True)[1]
    assert gzip.decompress(zipped) == first
    assert exposition.body(TEXT, gzipped=True)[1] is zipped
    assert exposition.body(OPENMETRICS, gzipped=False)[1] is om


def test_a_new_snapshot_is_rendered_at_its_first_scrape() -> None:
    store = SnapshotStore([AccountSnapshot("openai", "main")])
    publish(store, 3.0)
    exposition = Exposition(lambda: store.current)
    before = exposition.body(TEXT, gzipped=True)[1]
    publish(store, 5.0)
    after = gzip.decompress(exposition.body(TEXT, gzipped=True)[1]).decode()
    assert f"{LINE} 5.0" in after.splitlines()
    assert f"{LINE} 3.0" in gzip.decompress(before).decode().splitlines()


def test_any_accept_header_gets_one_of_four_bodies() -> None:
    # prometheus_client echoes the Accept header's OpenMetrics version and escaping into the
    # content type; a cache keyed by it would let a scraper render and keep a body per value.
    store = SnapshotStore([AccountSnapshot("openai", "main")])
    publish(store, 3.0)
    exposition = Exposition(lambda: store.current)
    content_type, first = exposition.body(OPENMETRICS, gzipped=True)
    assert content_type == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    for n in range(20):
        accept = f"application/openmetrics-text;version=1.0.{n};escaping=values"
        assert exposition.body(accept, gzipped=True) == (content_type, first)
        assert exposition.body(accept, gzipped=True)[1] is first
    _, bodies = exposition._rendered
    # The gzipped body asked for, and the plain one it was made from (kept, so that a flood of
    # plain requests finds a body instead of queueing behind a second render).
    assert set(bodies) == {(True, True), (True, False)}


def test_a_plain_request_during_a_render_gets_the_body_the_gzipped_one_was_made_from() -> None:
    store = SnapshotStore([AccountSnapshot("openai", "main")])
    publish(store, 3.0)
    exposition = Exposition(lambda: store.current)
    gzipped = exposition.body(TEXT, gzipped=True)[1]
    publish(store, 5.0)
    served: list[bytes] = []
    with exposition._lock:  # another scrape is rendering the new snapshot
        scrape = threading.Thread(
            target=lambda: served.append(exposition.body(TEXT, gzipped=False)[1]), daemon=True
        )
        scrape.start()
        scrape.join(5)  # without a plain body it would wait for the render
        assert served, "the plain request queued behind the render"
    assert gzip.decompress(gzipped) == served[0]


def test_while_a_render_is_under_way_scrapes_get_the_newest_body_at_once() -> None:
    store = SnapshotStore([AccountSnapshot("openai", "main")])
    publish(store, 3.0)
    exposition = Exposition(lambda: store.current)
    old = exposition.body(TEXT, gzipped=True)[1]
    publish(store, 5.0)
    with exposition._lock:  # another scrape is rendering the new snapshot
        served: list[bytes] = []
        scrape = threading.Thread(
            target=lambda: served.append(exposition.body(TEXT, gzipped=True)[1])
        )
        scrape.start()
        scrape.join(2)
        assert served == [old]
        # A kind never rendered before has nothing older to serve: that scrape waits.
        waiter = threading.Thread(
            target=exposition.body, args=(OPENMETRICS,), kwargs={"gzipped": True}
        )
        waiter.start()
        time.sleep(0.2)  # not join(timeout): under libfaketime a timed wait that expires hangs
        assert waiter.is_alive()
    waiter.join(5)
    new = gzip.decompress(exposition.body(TEXT, gzipped=True)[1]).decode()
    assert f"{LINE} 5.0" in new.splitlines()
    # Once the new snapshot is rendered, the old body is never served again.
    with exposition._lock:
        assert gzip.decompress(exposition.body(TEXT, gzipped=True)[1]).decode() == new


def test_a_body_older_than_the_previous_snapshot_is_never_served() -> None:
    store = SnapshotStore([AccountSnapshot("openai", "main")])
    publish(store, 3.0)
    exposition = Exposition(lambda: store.current)
    exposition.body(OPENMETRICS, gzipped=False)  # asked once, at 3.0
    for requests in (4.0, 5.0):
        publish(store, requests)
        exposition.body(TEXT, gzipped=True)  # Prometheus's scrapes render every snapshot
    publish(store, 6.0)
    with exposition._lock:  # a render of the snapshot at 6.0 is under way
        served: list[bytes] = []
        scrape = threading.Thread(
            target=lambda: served.append(exposition.body(OPENMETRICS, gzipped=False)[1])
        )
        scrape.start()
        time.sleep(0.3)
        assert scrape.is_alive() and served == []  # it waits rather than get the 3.0 body
    scrape.join(5)
    assert f"{LINE} 6.0" in served[0].decode().splitlines()
