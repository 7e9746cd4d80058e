"""The poll loop with the real OpenAI provider; provider HTTP mocked with respx."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
import respx

from exporter.core.budgets import AccountSpend
from exporter.core.records import DAY, Dataset, Dims
from exporter.core.snapshot import AccountSnapshot, DatasetStatus, Snapshot, SnapshotStore
from exporter.scheduler import AccountPoller, reconciliation
from exporter.sources.providers.base import ProviderSettings, RequestObserver
from exporter.sources.providers.openai import OpenAIProvider
from exporter.web.collector import SnapshotCollector
from exporter.web.metrics import FAMILY_METRICS

BASE = "https://api.openai.com/v1"
KEY = "sk-admin-poller-TEST-key"
NOV = 1793491200  # 2026-11-01T00:00:00Z
NOW = NOV + 25 * DAY + 13 * 3600  # 2026-11-26T13:00:00Z
USAGE_PATHS = (
    "completions",
    "embeddings",
    "moderations",
    "images",
    "audio_speeches",
    "audio_transcriptions",
    "vector_stores",
    "code_interpreter_sessions",
    "file_search_calls",
    "web_search_calls",
)


def page(buckets: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "page", "data": buckets, "has_more": False, "next_page": None}


def completion(day: int, tokens: int) -> dict[str, Any]:
    row = {
        "object": "organization.usage.completions.result",
        "input_tokens": tokens,
        "input_cached_tokens": 0,
        "input_cache_write_tokens": 0,
        "input_uncached_tokens": tokens,
        "output_tokens": tokens // 2,
        "num_model_requests": 1,
        "project_id": "proj_a",
        "model": "gpt-4.1",
        "user_id": None,
        "api_key_id": None,
        "batch": False,
        "service_tier": None,
    }
    return {"object": "bucket", "start_time": day, "end_time": day + DAY, "results": [row]}


def cost(day: int, dollars: str) -> dict[str, Any]:
    row = {
        "object": "organization.costs.result",
        "amount": {"value": dollars, "currency": "usd"},
        "line_item": "gpt-4.1, input",
        "project_id": "proj_a",
        "api_key_id": None,
        "quantity": None,
        "quantity_unit": None,
    }
    return {"object": "bucket", "start_time": day, "end_time": day + DAY, "results": [row]}


class Org:
    """A mocked OpenAI organization: daily input tokens and costs, by day."""

    def __init__(self, mock: respx.MockRouter) -> None:
        self.tokens = {NOV - DAY: 999_999, NOV: 100, NOV + 24 * DAY: 50, NOV + 25 * DAY: 7}
        self.dollars = {NOV - DAY: "99.0", NOV: "1.5", NOV + 25 * DAY: "0.25"}
        self.mock = mock
        self.completions = mock.get(f"{BASE}/organization/usage/completions")
        self.completions.side_effect = self._completions
        for path in USAGE_PATHS[1:]:
            mock.get(f"{BASE}/organization/usage/{path}").respond(json=page([]))
        self.costs = mock.get(f"{BASE}/organization/costs")
        self.costs.side_effect = self._costs
        mock.get(f"{BASE}/organization/projects").respond(
            json={
                "object": "list",
                "data": [
                    {
                        "id": "proj_a",
                        "object": "organization.project",
                        "name": "Search",
                        "created_at": 0,
                        "archived_at": None,
                        "status": "active",
                    }
                ],
                "first_id": "proj_a",
                "last_id": "proj_a",
                "has_more": False,
            }
        )

        # No organization limit; the project may spend $10 a month.
        mock.get(f"{BASE}/organization/spend_limit").respond(404)
        self.limit = mock.get(f"{BASE}/organization/projects/proj_a/spend_limit")
        self.limit.respond(json={
            "object": "project.spend_limit", "threshold_amount": 1000, "currency": "USD",
            "interval": "month", "enforcement": {"status": "inactive"}})

    def fail_all(self, response: httpx.Response) -> None:
        """Every endpoint but the project list answers ``response``."""
        for route in self.mock.routes:
            if not str(route.pattern).endswith("/projects')"):
                route.side_effect = None
                route.return_value = response

    @staticmethod
    def _window(request: httpx.Request) -> tuple[int, int]:
        return int(request.url.params["start_time"]), int(request.url.params["end_time"])

    def _completions(self, request: httpx.Request) -> httpx.Response:
        start, end = self._window(request)
        return httpx.Response(
            200,
            json=page(
                [completion(d, t) for d, t in sorted(self.tokens.items()) if start <= d < end]
            ),
        )

    def _costs(self, request: httpx.Request) -> httpx.Response:
        start, end = self._window(request)
        return httpx.Response(
            200,
            json=page([cost(d, v) for d, v in sorted(self.dollars.items()) if start <= d < end]),
        )


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def no_sleep(seconds: float) -> None:
    return None


def make_poller(clock: Clock, store: SnapshotStore) -> AccountPoller:
    settings = ProviderSettings(account="main", api_key=lambda: KEY, base_url=BASE, timeout=5.0)

    def factory(observe: RequestObserver) -> OpenAIProvider:
        return OpenAIProvider(settings, observe=observe, sleep=no_sleep)

    return AccountPoller(
        account="main",
        provider_factory=factory,
        store=store,
        poll_interval=300.0,
        settle_window=2 * DAY,
        clock=clock,
        rng=lambda: 0.5,
    )


SERIES_FAMILIES = {d.name for d in FAMILY_METRICS.values()}


def samples(snap: Snapshot, *, openmetrics: bool = False) -> list[Any]:
    """The usage and cost samples a scrape would expose."""
    families = SnapshotCollector(lambda: snap, openmetrics=openmetrics).collect()
    return [s for f in families if f.name in SERIES_FAMILIES for s in f.samples]


def values(snap: Snapshot) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for s in samples(snap)}


def tokens(snap: Snapshot, token_type: str) -> float:
    return sum(
        v
        for (name, labels), v in values(snap).items()
        if name == "aicost_tokens_total" and ("token_type", token_type) in labels
    )


def billed(snap: Snapshot) -> float:
    return sum(v for (name, _), v in values(snap).items() if name == "aicost_billed_cost_usd_total")


def status(snap: Snapshot) -> Any:
    return snap.accounts[0].status


@pytest.fixture
def store() -> SnapshotStore:
    return SnapshotStore([AccountSnapshot("openai", "main")])


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@respx.mock(assert_all_mocked=True)
def test_first_poll_publishes_month_to_date_including_today(
    respx_mock: respx.MockRouter, store: SnapshotStore
) -> None:
    org = Org(respx_mock)
    poller = make_poller(Clock(NOW), store)
    assert run(poller.poll_once()) == 300.0
    snap = store.current
    assert tokens(snap, "input") == 157  # October's 999999 excluded, today's 7 included
    assert tokens(snap, "output") == 50 + 25 + 3
    assert billed(snap) == 1.75
    assert status(snap).up and status(snap).last_success == NOW
    labels = {k for (name, k) in values(snap) if name == "aicost_billed_cost_usd_total"}
    assert labels == {
        frozenset(
            {
                "provider": "openai",
                "account": "main",
                "project_id": "proj_a",
                "project": "Search",
                "model": "gpt-4.1",  # the model the line item names
                "line_item": "gpt-4.1, input",
            }.items()
        )
    }
    # The month and the week before it (the series the month starts at 0, weekly budgets).
    first = org.completions.calls[0].request.url.params
    assert (first["start_time"], first["end_time"]) == (str(NOV - 7 * DAY), str(NOV + 26 * DAY))
    # Each dataset with a watermark carries the lag OpenAI's data may have while all is well.
    data = snap.accounts[0].data
    # (The other usage endpoints answer no bucket at all here: no watermark, no lag.)
    assert data.expected_lags == {Dataset.USAGE: 6 * 3600.0, Dataset.COST: 36 * 3600.0}
    assert data.expected_lags.keys() == data.watermarks.keys()


@respx.mock(assert_all_mocked=True)
def test_later_polls_read_only_the_unsettled_window(
    respx_mock: respx.MockRouter, store: SnapshotStore
) -> None:
    org = Org(respx_mock)
    clock = Clock(NOW)
    poller = make_poller(clock, store)
    run(poller.poll_once())
    clock.now += 300
    org.tokens[NOV + 25 * DAY] = 20  # today's usage grew
    run(poller.poll_once())
    second = org.completions.calls[-1].request.url.params
    assert second["start_time"] == str(NOV + 23 * DAY)  # last success minus 2 days, day aligned
    assert tokens(store.current, "input") == 170
    calls = len(respx_mock.calls)
    # Eleven endpoints per poll; project names and the two spend limits once (read hourly).
    assert calls == 2 * 11 + 1 + 2


@pytest.mark.parametrize(
    ("failure", "reason"),
    [
        (
            httpx.Response(
                401,
                json={
                    "error": {
                        "message": "bad key",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "invalid_api_key",
                    }
                },
            ),
            "auth",
        ),
        (
            httpx.Response(
                500,
                json={
                    "error": {
                        "message": "boom",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
            ),
            "http_5xx",
        ),
        (
            httpx.Response(
                200,
                content=b'{"object": "page", "data": [',
            ),
            "parse",
        ),
        (httpx.ReadTimeout("timed out"), "timeout"),
    ],
)
@respx.mock(assert_all_mocked=True)
def test_a_failed_dataset_keeps_its_last_good_values_and_the_others_publish(
    respx_mock: respx.MockRouter, store: SnapshotStore, failure: Any, reason: str
) -> None:
    org = Org(respx_mock)
    clock = Clock(NOW)
    poller = make_poller(clock, store)
    run(poller.poll_once())
    before = billed(store.current)
    org.costs.side_effect = failure
    clock.now += 300
    org.tokens[NOV + 25 * DAY] = 10_000
    org.dollars[NOV + 25 * DAY] = "9.75"  # would change the billed total if anything leaked
    delay = run(poller.poll_once())
    snap = store.current
    assert billed(snap) == before == 1.75
    assert tokens(snap, "input") == 100 + 50 + 10_000  # usage is read and published
    assert not status(snap).up and status(snap).last_success == NOW
    datasets = status(snap).datasets
    assert datasets[Dataset.COST] == DatasetStatus(up=False, last_success=NOW)
    assert datasets[Dataset.USAGE] == DatasetStatus(up=True, last_success=NOW + 300)
    # A 401 is the key's: nothing after it is tried (the limits are read after the costs).
    failed = {Dataset.COST, Dataset.LIMITS} if reason == "auth" else {Dataset.COST}
    assert {d for d, s in datasets.items() if not s.up} == failed
    assert dict(status(snap).errors)[reason] == len(failed)
    assert sum(dict(status(snap).errors).values()) == len(failed)
    assert status(snap).last_error.startswith(f"cost: {reason}: GET /organization/costs")
    assert delay == 300.0  # the datasets that were read stay on their interval
    assert KEY not in status(snap).last_error
    # The cost dataset's watermark stays where its last good read left it.
    assert snap.accounts[0].data.watermarks[Dataset.COST] == NOW
    # Recovery: the next poll reads the costs from the failed dataset's own last success.
    org.costs.side_effect = org._costs
    clock.now += 300
    run(poller.poll_once())
    assert billed(store.current) == 1.5 + 9.75
    assert status(store.current).up
    assert all(s.up for s in status(store.current).datasets.values())


@respx.mock(assert_all_mocked=True)
def test_a_dataset_failing_for_days_is_read_again_from_its_own_last_success(
    respx_mock: respx.MockRouter, store: SnapshotStore
) -> None:
    org = Org(respx_mock)
    clock = Clock(NOW)
    poller = make_poller(clock, store)
    run(poller.poll_once())  # 26 Nov 13:00: everything read
    down = httpx.Response(400, json={"error": {"message": "Invalid date range", "type": "x",
                                               "param": None, "code": None}})
    org.costs.side_effect = down
    for hours in (24, 48, 72):  # costs fail for three days while usage is polled
        clock.now = NOW + hours * 3600
        org.dollars[NOV + 25 * DAY + hours // 24 * DAY] = "1.0"
        run(poller.poll_once())
        assert billed(store.current) == 1.75
    org.costs.side_effect = org._costs
    clock.now = NOW + 73 * 3600
    run(poller.poll_once())
    # Costs from the last good read minus the settle window, usage with them: nothing lost,
    # nothing counted twice in the usage whose days had settled meanwhile.
    params = org.costs.calls[-1].request.url.params
    assert params["start_time"] == str(NOV + 23 * DAY)
    assert org.completions.calls[-1].request.url.params["start_time"] == str(NOV + 23 * DAY)
    assert billed(store.current) == 1.5 + 0.25 + 3 * 1.0
    assert tokens(store.current, "input") == 157
    assert status(store.current).up


@respx.mock(assert_all_mocked=True)
def test_a_poll_that_reads_no_dataset_keeps_everything(
    respx_mock: respx.MockRouter, store: SnapshotStore
) -> None:
    org = Org(respx_mock)
    clock = Clock(NOW)
    poller = make_poller(clock, store)
    run(poller.poll_once())
    before = values(store.current)
    org.fail_all(httpx.Response(401, json={"error": {"message": "bad key", "type": "x",
                                                     "param": None, "code": None}}))
    clock.now += 300
    org.tokens[NOV + 25 * DAY] = 10_000
    assert run(poller.poll_once()) == 300.0
    snap = store.current
    assert values(snap) == before
    assert not status(snap).up and status(snap).last_success == NOW
    assert not any(s.up for s in status(snap).datasets.values())
    assert len(status(snap).datasets) == 12
    assert dict(status(snap).errors)["auth"] == 12  # one 401, and every dataset failed by it
    assert run(poller.poll_once()) == 600.0  # nothing read: back off


@respx.mock(assert_all_mocked=True)
def test_429_then_success_within_one_poll(
    respx_mock: respx.MockRouter, store: SnapshotStore
) -> None:
    org = Org(respx_mock)
    limited = httpx.Response(
        429,
        headers={"Retry-After": "2"},
        json={
            "error": {
                "message": "Rate limit reached",
                "type": "requests",
                "param": None,
                "code": "rate_limit_exceeded",
            }
        },
    )
    org.costs.side_effect = [limited, org._costs]
    poller = make_poller(Clock(NOW), store)
    run(poller.poll_once())
    snap = store.current
    assert status(snap).up and billed(snap) == 1.75
    assert dict(status(snap).errors)["rate_limited"] == 0
    assert status(snap).api_requests[("/organization/costs", "429")] == 1
    assert status(snap).api_requests[("/organization/costs", "200")] == 1


@respx.mock(assert_all_mocked=True, assert_all_called=False)
def test_repeated_failures_back_off_and_honour_long_retry_after(
    respx_mock: respx.MockRouter, store: SnapshotStore
) -> None:
    org = Org(respx_mock)
    org.fail_all(
        httpx.Response(
            503, json={"error": {"message": "x", "type": "x", "param": None, "code": None}}
        )
    )
    poller = make_poller(Clock(NOW), store)
    assert [run(poller.poll_once()) for _ in range(3)] == [300.0, 600.0, 1200.0]
    org.fail_all(httpx.Response(
        429,
        headers={"Retry-After": "7200"},
        json={"error": {"message": "slow down", "type": "requests", "param": None, "code": None}},
    ))
    # Honoured up to the backoff cap (8 poll intervals here), never longer.
    assert run(poller.poll_once()) == 8 * 300.0
    for hint in ("86400", "Fri, 01 Jan 2100 00:00:00 GMT"):
        org.fail_all(httpx.Response(429, headers={"Retry-After": hint}, json={}))
        assert run(poller.poll_once()) == 8 * 300.0
    # A rate limit ends the poll: the other datasets are not tried, but are counted failed.
    assert dict(status(store.current).errors) == {
        "auth": 0,
        "rate_limited": 3 * 12,
        "http_5xx": 3 * 12,
        "http_4xx": 0,
        "timeout": 0,
        "connection": 0,
        "parse": 0,
        "secret": 0,
        "unsupported": 0,
        "too_large": 0,
        "redirect": 0,
        "internal": 0,
    }


@respx.mock(assert_all_mocked=True)
def test_restart_reproduces_the_same_values(respx_mock: respx.MockRouter) -> None:
    Org(respx_mock)
    results = []
    for _ in range(2):  # two processes' worth of pollers, each starting from nothing
        store = SnapshotStore([AccountSnapshot("openai", "main")])
        run(make_poller(Clock(NOW), store).poll_once())
        results.append(values(store.current))
    assert results[0] == results[1] and results[0]


@respx.mock(assert_all_mocked=True)
def test_new_month_resets_and_refetches_from_its_start(
    respx_mock: respx.MockRouter, store: SnapshotStore
) -> None:
    org = Org(respx_mock)
    clock = Clock(NOV + 29 * DAY + 23 * 3600)  # 2026-11-30T23:00Z
    poller = make_poller(clock, store)
    run(poller.poll_once())
    dec = NOV + 30 * DAY
    org.tokens = {dec - DAY: 5, dec: 3}
    org.dollars = {dec: "0.5"}
    clock.now = dec + 600
    run(poller.poll_once())
    # A first poll of the month also reads the week before it (weekly budgets, forecasts).
    assert org.completions.calls[-1].request.url.params["start_time"] == str(dec - 7 * DAY)
    assert tokens(store.current, "input") == 3 and billed(store.current) == 0.5
    created = {
        s.value for s in samples(store.current, openmetrics=True) if s.name.endswith("_created")
    }
    assert created == {float(dec)}


@respx.mock(assert_all_mocked=True, assert_all_called=False)
def test_backoff_is_capped_so_recovery_is_noticed(
    respx_mock: respx.MockRouter, store: SnapshotStore
) -> None:
    org = Org(respx_mock)
    org.fail_all(
        httpx.Response(
            500, json={"error": {"message": "x", "type": "x", "param": None, "code": None}}
        )
    )
    poller = make_poller(Clock(NOW), store)
    delays = [run(poller.poll_once()) for _ in range(6)]
    assert delays == [300.0, 600.0, 1200.0, 2400.0, 2400.0, 2400.0]  # 8 intervals at most


def spend_of(billed: dict[int, float], estimated: dict[int, float]) -> AccountSpend:
    dims = Dims("proj_a", "gpt-4.1")
    return AccountSpend(
        provider="openai",
        account="main",
        billed={day: {dims: usd} for day, usd in billed.items()},
        estimated={day: {dims: usd} for day, usd in estimated.items()},
        settled_before=NOV,
        project_names={},
    )


def test_reconciliation_is_over_the_settled_days_of_the_month_and_the_week_before() -> None:
    # 00:03 on the 1st with a 2-day settle window: only the week before the month has settled.
    settled_before = NOV - 2 * DAY
    spend = spend_of(
        billed={NOV - 7 * DAY: 10.0, NOV - 3 * DAY: 10.0, NOV - DAY: 99.0, NOV: 5.0},
        estimated={NOV - 7 * DAY: 9.0, NOV - 3 * DAY: 12.0, NOV - DAY: 1.0, NOV: 50.0},
    )
    assert reconciliation(spend, settled_before) == pytest.approx((9 + 12) / (10 + 10))
    # Mid-month the settled days of the month count as well.
    assert reconciliation(spend, NOV + DAY) == pytest.approx((9 + 12 + 1 + 50) / (10 + 10 + 99 + 5))
    # Nothing settled, or nothing billed or estimated: no ratio at all (not 0, not NaN).
    assert reconciliation(spend, NOV - 7 * DAY) is None
    assert reconciliation(spend_of({NOV - 3 * DAY: 1.0}, {}), NOV) is None
    assert reconciliation(spend_of({}, {NOV - 3 * DAY: 1.0}), NOV) is None


@respx.mock(assert_all_mocked=True, assert_all_called=False)
def test_a_key_the_provider_echoes_reaches_no_log_metric_or_page(
    respx_mock: respx.MockRouter, store: SnapshotStore, caplog: pytest.LogCaptureFixture
) -> None:
    from exporter.web.landing import render_landing

    org = Org(respx_mock)
    echoed = cost(NOV, "1.00")
    echoed["results"][0]["amount"]["currency"] = f"usd {KEY}"  # a provider echoing the key
    org.costs.side_effect = httpx.Response(200, json=page([echoed]))
    poller = make_poller(Clock(NOW), store)
    with caplog.at_level(logging.DEBUG):
        run(poller.poll_once())
    error = status(store.current).last_error
    assert error.startswith("cost: parse: every row is malformed (GET /organization/costs:")
    assert "unsupported currency 'usd " in error
    page_html = render_landing(store.current, now=NOW, demo=False, version="test").decode()
    for where, text in (("error", error), ("log", caplog.text), ("page", page_html)):
        # Not the key, nor any run of 12 of its characters.
        assert not any(KEY[i : i + 12] in text for i in range(len(KEY) - 11)), where


class Scripted:
    """A provider whose polls return the given results (or raise), in turn."""

    name = "scripted"
    expected_lag: dict[Dataset, float] = {}

    def __init__(self, results: list[Any]) -> None:
        self.results = results
        self.starts: list[int] = []

    async def fetch(self, start: int, end: int) -> Any:
        self.starts.append(start)
        result = self.results.pop(0)
        if isinstance(result, Exception):
            raise result
        return result

    async def aclose(self) -> None:
        return None

    def redact(self, text: str) -> str:
        return text


def scripted_poller(provider: Scripted, clock: Clock, store: SnapshotStore) -> AccountPoller:
    return AccountPoller(
        account="main",
        provider_factory=lambda observe: provider,
        store=store,
        poll_interval=300.0,
        settle_window=2 * DAY,
        clock=clock,
        rng=lambda: 0.5,
    )


def read(*datasets: Dataset, failed: dict[Dataset, Exception] | None = None) -> Any:
    from exporter.core.records import Batch, FetchResult

    return FetchResult([Batch(d, 0, 0) for d in datasets], failures=failed or {})


def test_a_dataset_the_provider_no_longer_reads_does_not_hold_the_window_open() -> None:
    # Copilot reads premium requests only for days before 2026-06-01: once the window has
    # passed that day the dataset is neither read nor failed, and must not pin the window.
    store = SnapshotStore([AccountSnapshot("scripted", "main")])
    clock = Clock(NOW)
    provider = Scripted([
        read(Dataset.COST, Dataset.PREMIUM_REQUESTS),
        read(Dataset.COST, Dataset.AI_CREDITS),
        read(Dataset.COST, Dataset.AI_CREDITS),
    ])
    poller = scripted_poller(provider, clock, store)
    for _ in range(3):
        run(poller.poll_once())
        clock.now += DAY
    assert provider.starts[2] == NOV + 24 * DAY  # the last read minus the settle window
    assert set(status(store.current).datasets) == {Dataset.COST, Dataset.AI_CREDITS}


def test_an_error_after_the_fetch_counts_nothing_of_the_poll_as_read(
    store: SnapshotStore,
) -> None:
    store = SnapshotStore([AccountSnapshot("scripted", "main")])
    clock = Clock(NOW)
    provider = Scripted([read(Dataset.USAGE), read(Dataset.USAGE), read(Dataset.USAGE)])
    poller = scripted_poller(provider, clock, store)
    run(poller.poll_once())
    clock.now += 3 * DAY

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    apply, poller.ledger.apply = poller.ledger.apply, broken  # type: ignore[method-assign]
    run(poller.poll_once())
    assert not status(store.current).up
    assert dict(status(store.current).errors)["internal"] == 1
    assert status(store.current).datasets[Dataset.USAGE].last_success == NOW
    poller.ledger.apply = apply  # type: ignore[method-assign]
    clock.now += 300
    run(poller.poll_once())
    # The failed poll's days are fetched again: from the last real read, not from the bug.
    assert provider.starts[2] == NOV + 23 * DAY


def test_a_rate_limit_that_ends_a_partial_poll_backs_off(store: SnapshotStore) -> None:
    from exporter.sources.providers.base import ProviderError

    store = SnapshotStore([AccountSnapshot("scripted", "main")])
    limited = ProviderError("rate_limited", "GET /x: HTTP 429")
    provider = Scripted([
        read(Dataset.USAGE, failed={Dataset.COST: limited}) for _ in range(3)
    ])
    poller = scripted_poller(provider, Clock(NOW), store)
    # The datasets read last would otherwise wait forever at the same interval.
    assert [run(poller.poll_once()) for _ in range(3)] == [300.0, 600.0, 1200.0]


def test_a_partial_poll_is_not_logged_as_a_success(caplog: pytest.LogCaptureFixture) -> None:
    from exporter.sources.providers.base import ProviderError

    store = SnapshotStore([AccountSnapshot("scripted", "main")])
    failed = {Dataset.COST: ProviderError("http_4xx", "GET /x: HTTP 400")}
    poller = scripted_poller(Scripted([read(Dataset.USAGE, failed=failed)]), Clock(NOW), store)
    with caplog.at_level(logging.INFO):
        run(poller.poll_once())
    messages = [record.getMessage() for record in caplog.records]
    assert "poll failed for some datasets" in messages and "poll succeeded" not in messages


@respx.mock(assert_all_mocked=True)
def test_a_provider_limit_is_published_with_its_forecast(
    respx_mock: respx.MockRouter, store: SnapshotStore
) -> None:
    org = Org(respx_mock)
    org.dollars[NOV + 20 * DAY] = "2.0"  # settled, and in the trailing 7 days
    run(make_poller(Clock(NOW), store).poll_once())
    labels = frozenset({
        ("provider", "openai"), ("account", "main"), ("project_id", "proj_a"),
        ("project", "Search"), ("limit", "hard"), ("period", "month"),
    })
    published = {name: v for (name, got), v in values(store.current).items() if got == labels}
    # Spend so far on the best basis: $3.50 billed on the settled days (the unsettled $0.25 of
    # today has no estimate without a pricer); the trailing 7 days (Nov 20 00:00 to now) spent
    # $2, a rate carried on to Dec 1.
    trailing, left = NOW - (NOV + 19 * DAY), NOV + 30 * DAY - NOW
    assert published == {
        "aicost_provider_limit_usd": 10.0,
        "aicost_provider_limit_enforcing": 0.0,
        "aicost_provider_limit_forecast_usd": pytest.approx(3.5 + 2.0 / trailing * left),
    }


def poll_echoing(key: str, series: dict[Any, float], gauges: dict[Any, float] | None = None,
                 names: dict[str, str] | None = None) -> SnapshotStore:
    """One poll of a provider that echoes ``key``: a day's ``series``, and the store it fed."""
    from exporter.config.secrets import redact
    from exporter.core.records import Batch, FetchResult

    class Echoing(Scripted):
        def redact(self, text: str) -> str:
            return redact(text, [key])

    batch = Batch(Dataset.COST, NOV, int(NOW))
    batch.days[NOV + 20 * DAY] = series
    batch.gauges.update(gauges or {})
    store = SnapshotStore([AccountSnapshot("scripted", "main")])
    poller = scripted_poller(Echoing([FetchResult([batch], names or {})]), Clock(NOW), store)
    run(poller.poll_once())
    return store


def test_a_key_echoed_into_a_label_value_is_never_published() -> None:
    from exporter.core.records import Dims, Family

    key = "xai-FAKE-key-echoed-into-a-model-name-0123"
    cost = Family.BILLED_COST
    store = poll_echoing(
        key,
        {(cost, Dims(model="grok-4"), ("usage",)): 2.0,
         (cost, Dims(model=f"model {key[4:30]}"), ("usage",)): 5.0},
        {(Family.PROVIDER_LIMIT, Dims(user_id=key), ("hard", "month")): 100.0},
    )
    published = values(store.current)
    assert billed(store.current) == 2.0
    assert not [k for k in published if any(key[4:20] in str(part) for part in k)]
    # Both left out as malformed rows, with the account still up.
    assert status(store.current).errors["parse"] == 2
    assert status(store.current).up


def test_a_key_echoed_into_a_project_name_is_never_published() -> None:
    from exporter.core.records import Dims, Family

    key = "sk-admin-FAKE-key-echoed-into-a-project-name"
    cost = Family.BILLED_COST
    store = poll_echoing(
        key,
        {(cost, Dims(project_id="proj_a"), ("usage",)): 2.0,
         (cost, Dims(project_id="proj_b"), ("usage",)): 5.0},
        names={"proj_a": "Search", "proj_b": f"Bot {key[9:30]}"},
    )
    projects = {
        dict(labels)["project_id"]: dict(labels)["project"]
        for name, labels in values(store.current)
        if name == "aicost_billed_cost_usd_total"
    }
    # The spend stays, under the project's id instead of the name that held the key.
    assert projects == {"proj_a": "Search", "proj_b": "proj_b"}
    assert billed(store.current) == 7.0
    assert status(store.current).errors["parse"] == 1
    assert status(store.current).up


def test_a_negative_cost_becomes_a_credit_and_other_negative_amounts_are_left_out() -> None:
    from exporter.core.records import Batch, Dims, Family, FetchResult

    day = NOV + 20 * DAY
    batch = Batch(Dataset.COST, NOV, int(NOW))
    batch.days[day] = {
        (Family.BILLED_COST, Dims("p1"), ("usage",)): 5.0,
        (Family.BILLED_COST, Dims("p1"), ("credit",)): -1.25,  # an AWS credit
        (Family.TOKENS, Dims("p1", "nova"), ("input",)): -4000.0,  # a correction of tokens
        (Family.UNCONVERTED_COST, Dims("p1"), ("eur",)): -2.0,
    }
    store = SnapshotStore([AccountSnapshot("scripted", "main")])
    poller = scripted_poller(Scripted([FetchResult([batch])]), Clock(NOW), store)
    run(poller.poll_once())
    published = {name: v for (name, _), v in values(store.current).items()}
    assert published == {
        "aicost_billed_cost_usd_total": 5.0,
        "aicost_billed_credit_usd_total": 1.25,
    }
    assert status(store.current).errors["parse"] == 2
