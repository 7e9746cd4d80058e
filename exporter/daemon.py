"""The running exporter: config in, pollers and web server running, clean stop on a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable

from exporter.config import AccountConfig, Config
from exporter.http import MetricsApp
from exporter.pricing import Pricer
from exporter.providers import PROVIDERS
from exporter.providers.base import Provider, ProviderError, ProviderSettings, RequestObserver
from exporter.push.wiring import PseudoAccounts
from exporter.scheduler import AccountPoller
from exporter.secrets import SecretError
from exporter.snapshot import AccountSnapshot, SnapshotStore
from exporter.subscriptions import evaluate_budgets
from exporter.webconfig import WebConfigSource
from exporter.webserver import DEFAULT_MAX_REQUESTS, Limits, WebServer

log = logging.getLogger(__name__)


def provider_settings(account: AccountConfig) -> ProviderSettings:
    """What a provider module needs to know of an account's configuration."""

    def api_key() -> str:
        try:
            return account.read_api_key()
        except SecretError as exc:
            raise ProviderError("secret", str(exc)) from None

    return ProviderSettings(
        account=account.name,
        api_key=api_key,
        base_url=account.base_url,
        timeout=account.timeout,
        group_by=account.group_by,
        options=account.options,
    )


def _factory(account: AccountConfig) -> Callable[[RequestObserver], Provider]:
    provider_class = PROVIDERS[account.provider]
    settings = provider_settings(account)
    return lambda observe: provider_class(settings, observe=observe)


class Daemon:
    """Pollers for every configured account plus the web server."""

    def __init__(
        self,
        config: Config,
        listen_address: str,
        *,
        web_config: WebConfigSource | None = None,
        max_requests: int = DEFAULT_MAX_REQUESTS,
    ) -> None:
        self.config = config
        self.pseudo = PseudoAccounts(config)  # pushed usage and subscriptions
        self.store = SnapshotStore(
            [
                *(AccountSnapshot(provider=a.provider, account=a.name) for a in config.accounts),
                *self.pseudo.snapshots(),
            ]
        )
        self.pricer = Pricer(config.pricing)
        if config.pricing.auto_update:
            self.pricer.start_auto_update()
        self.pollers = [
            AccountPoller(
                account=a.name,
                provider_factory=_factory(a),
                store=self.store,
                poll_interval=a.poll_interval,
                settle_window=a.settle_window,
                pricer=self.pricer,
                on_publish=self.evaluate_budgets,
            )
            for a in config.accounts
        ]
        self.pollers += self.pseudo.pollers(self.store, self.pricer, self.evaluate_budgets)
        self.evaluate_budgets()
        self.server = WebServer(
            listen_address,
            self.pseudo.app(MetricsApp(lambda: self.store.current)),
            web_config=web_config,
            limits=Limits(
                max_requests=max_requests,
                max_body_bytes=self.pseudo.max_body_bytes(Limits.max_body_bytes),
            ),
        )
        self._stop: asyncio.Event | None = None

    def evaluate_budgets(self) -> None:
        """Recompute every budget from the accounts' latest data and publish it."""
        spends = [a.data.spend for a in self.store.current.accounts if a.data.spend is not None]
        self.store.set_budgets(
            evaluate_budgets(self.config.budgets, spends, self.config.subscriptions, time.time())
        )

    async def serve(self, on_started: Callable[[], None] | None = None) -> None:
        """Serve until :meth:`stop` is called or SIGTERM/SIGINT arrives."""
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._stop.set)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests): stop() is the way out
        self.server.start()
        log.info("listening", extra={"port": self.server.port})
        if on_started is not None:
            on_started()
        tasks = [asyncio.create_task(p.run(self._stop), name=p.account) for p in self.pollers]
        try:
            await self._stop.wait()
        finally:
            log.info("shutting down")
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(
                *(p.provider.aclose() for p in self.pollers), return_exceptions=True
            )
            self.server.stop()
            self.pseudo.close()

    def stop(self) -> None:
        """Ask :meth:`serve` to return (thread-safe only from the loop's thread)."""
        if self._stop is not None:
            self._stop.set()
