"""The exposition of a snapshot, rendered once per format and encoding.

A snapshot changes only when a poll publishes, so every scrape in between is served the bytes the
first one made: the scrape path does no per-series work.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Callable

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from exporter.collector import SnapshotCollector
from exporter.snapshot import Snapshot


class Exposition:
    """The rendered bodies of the current snapshot of ``source``."""

    def __init__(self, source: Callable[[], Snapshot]) -> None:
        self._source = source
        # One render at a time: scrapes that arrive during it wait for its bytes instead of
        # rendering the same snapshot again.
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._bodies: dict[tuple[str, bool], bytes] = {}

    def body(self, accept: str, *, gzipped: bool) -> tuple[str, bytes]:
        """The content type chosen for an ``Accept`` header and the current snapshot's body."""
        encoder, content_type = choose_encoder(accept)
        snap = self._source()
        with self._lock:
            if snap is not self._snapshot:
                self._snapshot, self._bodies = snap, {}
            body = self._bodies.get((content_type, gzipped))
            if body is None:
                # Only what was asked for is kept: Prometheus asks for gzip, and the plain body
                # is ten times its size.
                plain = self._bodies.get((content_type, False))
                if plain is None:
                    openmetrics = content_type.startswith("application/openmetrics-text")
                    registry = CollectorRegistry(auto_describe=False)
                    registry.register(SnapshotCollector(lambda: snap, openmetrics=openmetrics))
                    plain = encoder(registry)
                body = gzip.compress(plain, compresslevel=1) if gzipped else plain
                self._bodies[content_type, gzipped] = body
        return content_type, body
