"""Live reload of the real exporter process: SIGHUP and POST /-/reload."""

from __future__ import annotations

import hashlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from exporter.simulator import Simulator

from .exporter_process import ExporterProcess, Labels
from .series import frozen_simulator

pytestmark = pytest.mark.integration

ACCOUNT = """
  - name: {name}
    provider: {provider}
    api_key: ${{{env}}}
    base_url: {url}
    poll_interval: 10s
    timeout: 5s
"""


def config_text(
    sim: Simulator, names: list[str], budget_limit: float = 100.0, extra: str = ""
) -> str:
    accounts = {
        "oai": ("openai", "K_OPENAI", sim.openai_base_url),
        "oai2": ("openai", "K_OPENAI", sim.openai_base_url),
        "ant": ("anthropic", "K_ANTHROPIC", sim.anthropic_base_url),
    }
    text = "accounts:\n"
    for name in names:
        provider, env, url = accounts[name]
        text += ACCOUNT.format(name=name, provider=provider, env=env, url=url) + extra
    text += (
        f"budgets:\n  - name: all\n    period: month\n    limit_usd: {budget_limit}\n"
        "    basis: estimated\n"
    )
    return text


@pytest.fixture
def sim(moment: int) -> Iterator[Simulator]:
    yield from frozen_simulator(seed=3, moment=moment)


def accounts_of(samples: dict[str, dict[Labels, float]]) -> set[str]:
    return {dict(labels)["account"] for labels in samples["aicost_collector_up"]}


def series_of(samples: dict[str, dict[Labels, float]], account: str) -> dict[Labels, float]:
    return {
        labels: v
        for labels, v in samples.get("aicost_tokens_total", {}).items()
        if ("account", account) in labels
    }


def test_reload_keeps_unchanged_accounts_without_a_gap_and_refuses_bad_files(
    sim: Simulator, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(config_text(sim, ["oai", "ant"]))
    env = {"K_OPENAI": sim.openai_key, "K_ANTHROPIC": sim.anthropic_key}
    # The exporter's clock runs (from the simulator's moment): reload timestamps must advance.
    with ExporterProcess(
        config,
        env,
        tmp_path / "reload.log",
        now=sim.now(),
        ticking=True,
        flags=("--web.enable-lifecycle",),
    ) as exporter:
        exporter.wait_ready()
        before = exporter.scrape()
        kept = series_of(before, "oai")
        assert kept and accounts_of(before) == {"oai", "ant"}
        assert before["aicost_config_last_reload_successful"][frozenset()] == 1.0
        loaded_at = before["aicost_config_last_reload_success_timestamp_seconds"][frozenset()]
        openai_calls = sim.request_count("openai")

        # Scrape non-stop while reloading: the unchanged account never disappears.
        gaps: list[str] = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                try:
                    if series_of(exporter.scrape(), "oai") != kept:
                        gaps.append("oai changed or vanished during the reload")
                except httpx.HTTPError as exc:
                    gaps.append(f"scrape failed: {exc}")

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            config.write_text(config_text(sim, ["oai", "oai2"], budget_limit=5.0))
            exporter.process.send_signal(signal.SIGHUP)
            after = exporter.wait_until(
                lambda s: accounts_of(s) == {"oai", "oai2"} and bool(series_of(s, "oai2")),
                timeout=30,
            )
        finally:
            done.set()
            watcher.join()
        assert gaps == []
        assert series_of(after, "oai2") and not series_of(after, "ant")
        limit = {dict(k)["budget"]: v for k, v in after["aicost_budget_limit_usd"].items()}
        assert limit == {"all": 5.0}
        assert after["aicost_config_last_reload_success_timestamp_seconds"][frozenset()] > loaded_at
        # The kept account was not polled again from scratch: only oai2's first poll hit the API
        # (seven usage/cost endpoints and project names), plus at most one regular poll of oai.
        assert sim.request_count("openai") - openai_calls <= 2 * 8

        # An invalid file is refused with its reasons; the running configuration stays.
        config.write_text(config_text(sim, ["oai"], extra="    settle_window: 1s\n"))
        refused = httpx.post(exporter.url + "/-/reload", timeout=30)
        assert refused.status_code == 500
        assert "accounts[0].settle_window: must be at least 1h" in refused.text
        state = exporter.scrape()
        assert state["aicost_config_last_reload_successful"][frozenset()] == 0.0
        assert accounts_of(state) == {"oai", "oai2"}
        assert "reload refused" in exporter.log

        assert httpx.get(exporter.url + "/-/reload").status_code == 405
        config.write_text(config_text(sim, ["oai"]))
        accepted = httpx.post(exporter.url + "/-/reload", timeout=30)
        assert accepted.status_code == 200, accepted.text
        state = exporter.scrape()
        assert state["aicost_config_last_reload_successful"][frozenset()] == 1.0
        assert accounts_of(state) == {"oai"}
        assert series_of(state, "oai") == kept
        assert exporter.stop() == 0
        assert sim.openai_key not in exporter.log


def test_http_reload_is_off_unless_the_lifecycle_api_is_enabled(
    sim: Simulator, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(config_text(sim, ["oai"]))
    env = {"K_OPENAI": sim.openai_key, "K_ANTHROPIC": sim.anthropic_key}
    with ExporterProcess(config, env, tmp_path / "reload.log", now=sim.now()) as exporter:
        exporter.wait_ready()
        config.write_text(config_text(sim, ["oai", "ant"]))
        refused = httpx.post(exporter.url + "/-/reload", timeout=30)
        assert refused.status_code == 403
        assert "--web.enable-lifecycle" in refused.text
        assert accounts_of(exporter.scrape()) == {"oai"}  # nothing was read again
        # SIGHUP still reloads: only the HTTP endpoint is off by default, as in Prometheus.
        exporter.process.send_signal(signal.SIGHUP)
        exporter.wait_until(lambda s: accounts_of(s) == {"oai", "ant"}, timeout=30)
        assert exporter.stop() == 0


PUSH_TOKEN = "reload-push-token"
PUSH_CONFIG = """accounts: []
push:
  database: {database}
  refresh_interval: 1s
  accounts: [{{name: team-a, provider: perplexity}}]
  tokens: [{{name: t, token_sha256: {digest}, accounts: [team-a]}}]
"""


def test_a_reload_to_an_unusable_push_database_is_refused_and_pushes_go_on(
    tmp_path: Path, moment: int
) -> None:
    config = tmp_path / "config.yaml"
    digest = hashlib.sha256(PUSH_TOKEN.encode()).hexdigest()
    config.write_text(PUSH_CONFIG.format(database="push.db", digest=digest))
    (tmp_path / "broken.db").write_bytes(b"this is not an SQLite database" * 100)
    headers = {"Authorization": f"Bearer {PUSH_TOKEN}"}

    def push(exporter: ExporterProcess, event_id: str) -> httpx.Response:
        event = {"id": event_id, "timestamp": moment - 60, "account": "team-a",
                 "model": "sonar", "tokens": {"input": 100}}  # fmt: skip
        return httpx.post(
            exporter.url + "/api/v1/usage", json={"events": [event]}, headers=headers, timeout=30
        )

    def tokens(samples: dict[str, dict[Labels, float]]) -> float:
        return sum(samples.get("aicost_tokens_total", {}).values())

    with ExporterProcess(
        config, {}, tmp_path / "reload.log", now=moment, flags=("--web.enable-lifecycle",)
    ) as exporter:
        exporter.wait_ready()
        assert push(exporter, "before").status_code == 200
        exporter.wait_until(lambda s: tokens(s) == 100, timeout=30)

        config.write_text(PUSH_CONFIG.format(database="broken.db", digest=digest))
        refused = httpx.post(exporter.url + "/-/reload", timeout=30)
        assert refused.status_code == 500
        assert "broken.db: file is not a database" in refused.text
        state = exporter.scrape()
        assert state["aicost_config_last_reload_successful"][frozenset()] == 0.0
        assert "reload refused" in exporter.log and "file is not a database" in exporter.log

        # The running push database is still open and written.
        assert push(exporter, "after").status_code == 200
        exporter.wait_until(lambda s: tokens(s) == 200, timeout=30)
        assert exporter.stop() == 0
