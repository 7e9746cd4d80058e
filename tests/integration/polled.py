"""/metrics of every account of a configuration after one poll at a pinned moment, in-process."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from exporter.config.schema import parse_config
from exporter.core.snapshot import AccountSnapshot
from exporter.history.collect import pollers
from exporter.web.collector import SnapshotCollector


def exposition_after_first_poll(text: str, env: dict[str, str], moment: float) -> str:
    """The exposition of config ``text`` once every account has polled at ``moment`` (each
    poll must succeed)."""
    accounts, pseudo = pollers(parse_config(text, env=env), clock=lambda: moment)
    store = accounts[0]._store
    store.set_accounts(
        AccountSnapshot(provider=p.provider.name, account=p.account) for p in accounts
    )
    try:
        for index, poller in enumerate(accounts):
            asyncio.run(poller.poll_once())
            assert store.current.accounts[index].status.up, poller.account
    finally:
        pseudo.close()
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(lambda: store.current))
    return generate_latest(registry).decode()
