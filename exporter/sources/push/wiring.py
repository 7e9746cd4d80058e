"""Pushed and subscription accounts as ordinary pollers of the daemon, plus the push route.

Each pushed account and each subscription account gets an
:class:`~exporter.scheduler.AccountPoller` whose provider reads the event store
(or the subscription list), so the ledger, pricing, budgets and self-metrics
treat them exactly like polled accounts.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from exporter.config.schema import Config
from exporter.core.pricing import Pricer
from exporter.core.records import DAY
from exporter.core.snapshot import AccountSnapshot, SnapshotStore
from exporter.scheduler import AccountPoller
from exporter.sources.providers.base import Provider, RequestObserver
from exporter.sources.push.api import PUSH_PATH, PushApi
from exporter.sources.push.provider import PushProvider, labelled
from exporter.sources.subscriptions import (
    SubscriptionConfig,
    SubscriptionProvider,
    subscription_accounts,
)

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

    from exporter.sources.push.store import EventStore
else:
    WSGIApplication = Callable[..., Iterable[bytes]]

SUBSCRIPTION_INTERVAL = 300.0
SETTLED_NOW = -float(DAY)
"""Settle window of pseudo-accounts: a stored event or a charge is final, so every day up to
today is settled (the budgets' ``best`` basis uses the reported cost) and the window is
re-read in full on every poll (their fetch always covers the month)."""


def _push_factory(
    store: EventStore, provider: str, account: str, clock: Callable[[], float]
) -> Callable[[RequestObserver], Provider]:
    cls = labelled(PushProvider, provider)
    return lambda _observe: cls(store, account, clock=clock)


def _subscription_factory(
    provider: str, subscriptions: tuple[SubscriptionConfig, ...]
) -> Callable[[RequestObserver], Provider]:
    cls = labelled(SubscriptionProvider, provider)
    return lambda _observe: cls(subscriptions)


class PseudoAccounts:
    """The configured pushed and subscription accounts of one daemon."""

    def __init__(self, config: Config, *, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self._clock = clock
        push = config.push
        self.store: EventStore | None = None
        self.api: PushApi | None = None
        if push.enabled and push.database is not None:
            # Imported here: a daemon without push does not load SQLite.
            from exporter.sources.push.store import EventStore

            caps = {account.name: account.max_label_sets for account in push.accounts}
            self.store = EventStore(push.database, max_label_sets=caps)
            self.api = PushApi(push, self.store, clock=clock)
        self._subscriptions = subscription_accounts(config.subscriptions)

    def snapshots(self) -> list[AccountSnapshot]:
        """Initial (empty) snapshots, after the polled accounts, in configuration order."""
        pushed = [AccountSnapshot(a.provider, a.name) for a in self.config.push.accounts]
        subs = [AccountSnapshot(p, name) for name, (p, _) in self._subscriptions.items()]
        return pushed + subs

    def pollers(
        self, store: SnapshotStore, pricer: Pricer, on_publish: Callable[[], None]
    ) -> list[AccountPoller]:
        """One poller per pseudo-account."""
        pollers = []
        event_store = self.store
        if event_store is not None:
            for account in self.config.push.accounts:
                pollers.append(
                    AccountPoller(
                        account=account.name,
                        provider_factory=_push_factory(
                            event_store, account.provider, account.name, self._clock
                        ),
                        store=store,
                        poll_interval=self.config.push.refresh_interval,
                        settle_window=SETTLED_NOW,
                        pricer=pricer,
                        on_publish=on_publish,
                        clock=self._clock,
                        max_label_sets=account.max_label_sets,
                    )
                )
        for name, (provider, subs) in self._subscriptions.items():
            pollers.append(
                AccountPoller(
                    account=name,
                    provider_factory=_subscription_factory(provider, subs),
                    store=store,
                    poll_interval=SUBSCRIPTION_INTERVAL,
                    settle_window=SETTLED_NOW,
                    pricer=pricer,
                    on_publish=on_publish,
                    clock=self._clock,
                )
            )
        return pollers

    def app(self, app: WSGIApplication) -> WSGIApplication:
        """``app`` with :data:`PUSH_PATH` routed to the push API (when push is configured)."""
        api = self.api
        if api is None:
            return app

        def route(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == PUSH_PATH:
                return api(environ, start_response)
            return app(environ, start_response)

        return route

    def max_body_bytes(self, default: int) -> int:
        """The web server's body limit: the push API's when it is larger."""
        return max(default, self.config.push.max_body_bytes) if self.api is not None else default

    def close(self) -> None:
        """Close the event database."""
        if self.store is not None:
            self.store.close()
