"""A pseudo-provider reading one pushed account's per-day sums from the event store.

It answers every fetch with the whole retention window (the month and the week
before it), so the ledger rebuilds the account from the durable store on every
poll: an event pushed for any day in the window shows up at the next poll, and
a restart reproduces the same totals.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from exporter.config.secrets import redact
from exporter.core.ledger import month_start
from exporter.core.records import DAY, Batch, Dataset, Dims, Family, FetchResult, day_start
from exporter.sources.push.events import TOKEN_TYPES, retention_start

if TYPE_CHECKING:
    from exporter.sources.push.store import EventStore

PUSHED_LINE_ITEM = "pushed"
MODALITY = "text"
PRUNE_EVERY = 3600.0
PRUNE_MARGIN = DAY
"""Events are deleted this long after they leave the retention window (no later use)."""

T = TypeVar("T")


def labelled(base: type[T], provider: str) -> type[T]:
    """A subclass of ``base`` whose ``name`` (the ``provider`` label) is ``provider``."""
    return cast("type[T]", type(f"{base.__name__}_{provider}", (base,), {"name": provider}))


class PushProvider:
    """Reads pushed usage; use :func:`labelled` to give it the configured provider label."""

    name: ClassVar[str] = "push"
    expected_lag: ClassVar[Mapping[Dataset, float]] = {}  # the data is as fresh as each poll

    def __init__(
        self, store: EventStore, account: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._account = account
        self._clock = clock
        self._pruned = float("-inf")

    async def fetch(self, start: int, end: int) -> FetchResult:
        """Tokens and requests (usage) and reported cost (cost) per day, whole window."""
        first = min(day_start(start), retention_start(end))
        if self._clock() - self._pruned >= PRUNE_EVERY:
            await asyncio.to_thread(self._store.prune, first - PRUNE_MARGIN)
            self._pruned = self._clock()
        rows, folded = await asyncio.to_thread(
            partial(self._store.sums, month=month_start(self._clock())), self._account, first, end
        )
        usage = Batch(Dataset.USAGE, first, end, watermark=float(end))
        cost = Batch(Dataset.COST, first, end, watermark=float(end))
        for row in rows:
            dims = Dims(project_id=row.project, model=row.model)
            for token_type, count in zip(TOKEN_TYPES, row.tokens, strict=True):
                key = (Family.TOKENS, dims, (token_type, MODALITY, row.service_tier))
                usage.add(row.day, key, count)
            usage.add(row.day, (Family.REQUESTS, dims, (row.service_tier,)), row.requests)
            if row.cost_events:
                cost.add(row.day, (Family.BILLED_COST, dims, (PUSHED_LINE_ITEM,)), row.cost_usd)
        return FetchResult([usage, cost], folded_label_sets=folded)

    async def aclose(self) -> None:
        """Nothing to release: the store belongs to the daemon."""

    def redact(self, text: str) -> str:
        """No key of ours is involved: only key-like text is scrubbed, and the length cut."""
        return redact(text)
