"""The running exporter: config in, pollers and web server running, clean stop on a signal."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable

from exporter.config.schema import AccountConfig, Config, ConfigError
from exporter.config.secrets import SecretError
from exporter.core.pricing import Pricer
from exporter.core.snapshot import AccountSnapshot, SnapshotStore
from exporter.scheduler import AccountPoller
from exporter.sources.providers import PROVIDERS
from exporter.sources.providers.base import (
    Provider,
    ProviderError,
    ProviderSettings,
    RequestObserver,
)
from exporter.sources.push.errors import StoreError
from exporter.sources.push.wiring import PseudoAccounts
from exporter.sources.subscriptions import evaluate_budgets
from exporter.web.http import MetricsApp
from exporter.web.server import DEFAULT_MAX_REQUESTS, Limits, WebServer
from exporter.web.webconfig import WebConfigSource

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
        max_response_bytes=account.max_response_bytes,
    )


def provider_factory(account: AccountConfig) -> Callable[[RequestObserver], Provider]:
    """How a poller of ``account`` builds its provider client."""
    provider_class = PROVIDERS[account.provider]
    settings = provider_settings(account)
    return lambda observe: provider_class(settings, observe=observe)


class Daemon:
    """Pollers for every configured account plus the web server; reloadable.

    ``loader`` reads the configuration again for a reload (SIGHUP, or
    ``POST /-/reload`` with ``enable_lifecycle``). A reload keeps the pollers, and so the data, of
    accounts whose configuration did not change; an invalid new configuration
    is refused and the running one stays. ``demo`` marks the landing page as the demo's.
    """

    def __init__(
        self,
        config: Config,
        listen_address: str,
        *,
        web_config: WebConfigSource | None = None,
        max_requests: int = DEFAULT_MAX_REQUESTS,
        loader: Callable[[], Config] | None = None,
        demo: bool = False,
        enable_lifecycle: bool = False,
    ) -> None:
        self.config = config
        self._loader = loader
        self.store = SnapshotStore()
        self.pricer = self._pricer(config)
        self.pseudo = PseudoAccounts(config)  # pushed usage and subscriptions
        self.pollers: dict[str, AccountPoller] = {}
        self._account_configs: dict[str, AccountConfig] = {}
        self._apply(config)
        self.store.set_reload(successful=True, when=time.time())
        reload, refusal = None, ""
        if loader is None:
            refusal = (
                "the exporter was not started with --config.file"
                " (the demo runs a built-in configuration)"
            )
        elif not enable_lifecycle:
            refusal = (
                "the lifecycle API is not enabled: start the exporter with"
                " --web.enable-lifecycle, or send it SIGHUP"
            )
        else:
            reload = self.reload_from_thread
        metrics_app = MetricsApp(
            lambda: self.store.current, reload=reload, reload_refusal=refusal, demo=demo
        )
        self._app = self.pseudo.app(metrics_app)
        self._metrics_app = metrics_app
        self.server = WebServer(
            listen_address,
            lambda environ, start_response: self._app(environ, start_response),
            web_config=web_config,
            limits=Limits(
                max_requests=max_requests,
                max_body_bytes=self.pseudo.max_body_bytes(Limits.max_body_bytes),
            ),
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @staticmethod
    def _pricer(config: Config) -> Pricer:
        pricer = Pricer(config.pricing)
        if config.pricing.auto_update:
            pricer.start_auto_update()
        return pricer

    def _apply(self, config: Config) -> tuple[list[AccountPoller], list[AccountPoller]]:
        """Make ``config`` current; return the (started, stopped) pollers."""
        old_pollers, old_configs = self.pollers, self._account_configs
        if config.pricing != self.config.pricing:
            self.pricer = self._pricer(config)
        pseudo_changed = (config.push, config.subscriptions) != (
            self.config.push,
            self.config.subscriptions,
        )
        self.config = config
        pollers: dict[str, AccountPoller] = {}
        for account in config.accounts:
            kept = old_pollers.get(account.name)
            if kept is not None and old_configs.get(account.name) == account:
                pollers[account.name] = kept
            else:
                pollers[account.name] = AccountPoller(
                    account=account.name,
                    provider_factory=provider_factory(account),
                    store=self.store,
                    poll_interval=account.poll_interval,
                    settle_window=account.settle_window,
                    on_publish=self.evaluate_budgets,
                    max_label_sets=account.max_label_sets,
                )
        pseudo_names = {name for name in old_pollers if name not in old_configs}
        if pseudo_changed or not pseudo_names:
            for poller in self.pseudo.pollers(self.store, self.pricer, self.evaluate_budgets):
                pollers[poller.account] = poller
        else:
            for name in pseudo_names:
                pollers[name] = old_pollers[name]
        for poller in pollers.values():
            poller.pricer = self.pricer
        started = [p for name, p in pollers.items() if old_pollers.get(name) is not p]
        stopped = [p for name, p in old_pollers.items() if pollers.get(name) is not p]
        previous = {a.account: a for a in self.store.current.accounts}
        self.store.set_accounts(
            previous[name]
            if name in previous and old_pollers.get(name) is poller
            else AccountSnapshot(provider=poller.provider.name, account=name)
            for name, poller in pollers.items()
        )
        self.pollers = pollers
        self._account_configs = {a.name: a for a in config.accounts}
        self.evaluate_budgets()
        return started, stopped

    def evaluate_budgets(self) -> None:
        """Recompute every budget from the accounts' latest data and publish it."""
        spends = [a.data.spend for a in self.store.current.accounts if a.data.spend is not None]
        self.store.set_budgets(
            evaluate_budgets(self.config.budgets, spends, self.config.subscriptions, time.time())
        )

    async def reload(self) -> tuple[bool, str]:
        """Load the configuration again and apply it; (success, message)."""
        if self._loader is None:
            return False, "no configuration file to reload"
        try:
            config = self._loader()
        except (ConfigError, SecretError, OSError) as exc:
            problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
            self.store.set_reload(successful=False)
            for problem in problems:
                log.error(
                    "reload refused, keeping the running configuration", extra={"problem": problem}
                )
            return False, "invalid configuration:\n" + "\n".join(problems)
        old_pseudo = self.pseudo
        if (config.push, config.subscriptions) != (self.config.push, self.config.subscriptions):
            try:
                self.pseudo = PseudoAccounts(config)
            except StoreError as exc:
                self.store.set_reload(successful=False)
                log.error(
                    "reload refused, keeping the running configuration", extra={"problem": str(exc)}
                )
                return False, f"invalid configuration:\n{exc}"
        started, stopped = self._apply(config)
        self._app = self.pseudo.app(self._metrics_app)
        for poller in stopped:
            task = self._tasks.pop(poller.account, None)
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            await poller.provider.aclose()
        if self.pseudo is not old_pseudo:
            old_pseudo.close()
        if self._stop is not None:
            for poller in started:
                self._start(poller)
        self.store.set_reload(successful=True, when=time.time())
        log.info("configuration reloaded", extra={"started": len(started), "stopped": len(stopped)})
        return True, f"reloaded: {len(started)} account(s) started, {len(stopped)} stopped"

    def reload_from_thread(self) -> tuple[bool, str]:
        """:meth:`reload` from another thread (the web server's); waits for the result."""
        loop = self._loop
        if loop is None:
            return False, "not running"
        return asyncio.run_coroutine_threadsafe(self.reload(), loop).result(timeout=60)

    def _start(self, poller: AccountPoller) -> None:
        assert self._stop is not None
        self._tasks[poller.account] = asyncio.create_task(
            poller.run(self._stop), name=poller.account
        )

    async def serve(self, on_started: Callable[[], None] | None = None) -> None:
        """Serve until :meth:`stop` is called or SIGTERM/SIGINT arrives; SIGHUP reloads."""
        self._stop = asyncio.Event()
        self._loop = loop = asyncio.get_running_loop()
        handlers: dict[signal.Signals, Callable[[], object]] = {
            signal.SIGTERM: self._stop.set,
            signal.SIGINT: self._stop.set,
            signal.SIGHUP: lambda: asyncio.ensure_future(self.reload()),
        }
        for sig, handler in handlers.items():
            try:
                loop.add_signal_handler(sig, handler)
            except (NotImplementedError, RuntimeError, ValueError):
                pass  # not the main thread (tests): stop() is the way out
        self.server.start()
        log.info("listening", extra={"port": self.server.port})
        if on_started is not None:
            on_started()
        for poller in self.pollers.values():
            self._start(poller)
        try:
            await self._stop.wait()
        finally:
            log.info("shutting down")
            tasks = list(self._tasks.values())
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.gather(
                *(p.provider.aclose() for p in self.pollers.values()), return_exceptions=True
            )
            self.server.stop()
            self.pseudo.close()

    def stop(self) -> None:
        """Ask :meth:`serve` to return (thread-safe only from the loop's thread)."""
        if self._stop is not None:
            self._stop.set()
