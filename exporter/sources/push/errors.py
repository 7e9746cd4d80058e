"""The error of the push event store, apart from the store: catching it must not load SQLite
into a daemon that has no push configured."""

from __future__ import annotations


class StoreError(Exception):
    """The event database cannot be opened or written (message names the path, not data)."""
