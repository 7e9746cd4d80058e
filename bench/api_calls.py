"""Provider API requests per poll, counted by the simulator: first poll and steady state."""

from __future__ import annotations

import asyncio
from collections import Counter

from exporter.config.schema import AccountConfig
from exporter.core.snapshot import AccountSnapshot, SnapshotStore
from exporter.daemon import provider_settings
from exporter.demo import demo_config
from exporter.scheduler import AccountPoller
from exporter.simulator import Simulator
from exporter.sources.providers import PROVIDERS
from exporter.sources.providers.base import Provider, RequestObserver


def count_calls() -> list[str]:
    simulator = Simulator(seed=1)
    simulator.start("127.0.0.1", 0)
    lines = []
    try:
        # The demo's accounts, and a Claude Enterprise one (Analytics API), which the demo has not.
        enterprise = AccountConfig.model_validate(
            {
                "name": "claude-enterprise",
                "provider": "anthropic",
                "api_key": simulator.anthropic_analytics_key,
                "base_url": simulator.anthropic_base_url,
                "group_by": ["model", "user"],
                "options": {"api": "analytics"},
            }
        )
        accounts = (*demo_config(simulator).accounts, enterprise)
        store = SnapshotStore(AccountSnapshot(a.provider, a.name) for a in accounts)
        pollers = []
        for account in accounts:
            settings = provider_settings(account)
            provider_class = PROVIDERS[account.provider]

            def factory(observe: RequestObserver, cls=provider_class, s=settings) -> Provider:
                return cls(s, observe=observe)

            pollers.append(
                AccountPoller(
                    account=account.name,
                    provider_factory=factory,
                    store=store,
                    poll_interval=account.poll_interval,
                    settle_window=account.settle_window,
                )
            )

        async def poll_all() -> None:
            for poller in pollers:
                await poller.poll_once()

        async def main() -> None:
            for label in ("first poll (whole month)", "steady-state poll"):
                simulator.reset_counts()
                await poll_all()
                per_endpoint = Counter((p, e) for p, e, _ in simulator.request_log())
                lines.append(f"api calls, {label}: {sum(per_endpoint.values())} requests")
                for provider in sorted({p for p, _ in per_endpoint}):
                    mine = {e: n for (p, e), n in per_endpoint.items() if p == provider}
                    if provider == "anthropic":  # the two APIs apart
                        analytics = {e: n for e, n in mine.items() if "/analytics/" in e}
                        admin = {e: n for e, n in mine.items() if e not in analytics}
                        lines.extend(_line("anthropic", admin) + _line("(analytics)", analytics))
                        continue
                    lines.extend(_line(provider, mine))
            for poller in pollers:
                await poller.provider.aclose()

        asyncio.run(main())
    finally:
        simulator.stop()
    return lines


def _line(provider: str, calls: dict[str, int]) -> list[str]:
    if not calls:
        return []
    worst = max(calls, key=lambda e: calls[e])
    return [
        f"  {provider:<11} {sum(calls.values()):>3} requests over {len(calls)} endpoints, "
        f"at most {calls[worst]} per endpoint ({worst})"
    ]


def main() -> None:
    for line in count_calls():
        print(line)


if __name__ == "__main__":
    main()
