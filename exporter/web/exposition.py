"""The exposition of a snapshot, rendered once per format and encoding.

A snapshot changes only when a poll publishes, so every scrape in between is served the bytes the
first one made: the scrape path does no per-series work.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable

from prometheus_client.exposition import choose_encoder, generate_latest
from prometheus_client.openmetrics.exposition import (
    CONTENT_TYPE_LATEST as OPENMETRICS_CONTENT_TYPE,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.registry import CollectorRegistry

from exporter.core.snapshot import Snapshot
from exporter.web.collector import SnapshotCollector

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Two formats, each plain or gzipped: at most four bodies per snapshot, whatever a client puts
# in its Accept header (prometheus_client would echo any OpenMetrics version or escaping back).
_FORMATS: dict[bool, tuple[str, Callable[[CollectorRegistry], bytes]]] = {
    False: (TEXT_CONTENT_TYPE, generate_latest),
    True: (OPENMETRICS_CONTENT_TYPE, generate_openmetrics),
}

Bodies = dict[tuple[bool, bool], bytes]


def wants_openmetrics(accept: str) -> bool:
    """Whether an ``Accept`` header is served OpenMetrics (else the text format)."""
    return choose_encoder(accept)[1].startswith("application/openmetrics-text")


class Exposition:
    """The rendered bodies of the current snapshot of ``source``."""

    def __init__(self, source: Callable[[], Snapshot]) -> None:
        self._source = source
        # One render at a time. A body already made is read without the lock; while a render
        # is under way, the newest body of the kind asked for is served instead of waiting.
        self._lock = threading.Lock()
        self._rendered: tuple[Snapshot | None, Bodies] = (None, {})
        self._previous: Snapshot | None = None  # the snapshot rendered before the current one
        self._newest: dict[tuple[bool, bool], tuple[Snapshot, bytes]] = {}

    def body(self, accept: str, *, gzipped: bool) -> tuple[str, bytes]:
        """The content type chosen for an ``Accept`` header and the current snapshot's body.

        While another scrape renders a new snapshot, the previous snapshot's body is served (it
        is older by at most that render): a slow render never makes scrapes queue behind it. A
        body older than that (a kind not asked for since) is not: that scrape waits.
        """
        openmetrics = wants_openmetrics(accept)
        content_type, encoder = _FORMATS[openmetrics]
        key = (openmetrics, gzipped)
        snapshot, bodies = self._rendered  # one read: the pair never mixes two snapshots
        if snapshot is self._source() and key in bodies:
            return content_type, bodies[key]
        if not self._lock.acquire(blocking=False):
            newest = self._newest.get(key)
            if newest is not None and (
                newest[0] is self._previous or newest[0] is self._rendered[0]
            ):
                return content_type, newest[1]
            self._lock.acquire()
        try:
            snap = self._source()  # read under the lock: never back to an older snapshot
            snapshot, bodies = self._rendered
            if snapshot is not snap:
                bodies = {}
                self._previous, self._rendered = snapshot, (snap, bodies)
            body = bodies.get(key)
            if body is None:
                plain = bodies.get((openmetrics, False))
                if plain is None:
                    registry = CollectorRegistry(auto_describe=False)
                    registry.register(SnapshotCollector(lambda: snap, openmetrics=openmetrics))
                    plain = encoder(registry)
                    # Kept beside the gzipped body Prometheus asks for: a flood of plain
                    # requests must find a body to serve, not queue behind a second render
                    # (each queued request would hold a request slot).
                    bodies[openmetrics, False] = plain
                    self._newest[openmetrics, False] = (snap, plain)
                body = gzip.compress(plain, compresslevel=1) if gzipped else plain
                bodies[key] = body
                self._newest[key] = (snap, body)
        finally:
            self._lock.release()
        return content_type, body
