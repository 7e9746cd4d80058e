"""The landing page: exact figures, states, escaping, and one render per snapshot."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from html.parser import HTMLParser
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from exporter.core.budgets import AccountSpend, BudgetStatus
from exporter.core.records import DAY, Dataset, Dims, Family, SeriesKey
from exporter.core.snapshot import AccountSnapshot, AccountStatus, Snapshot, build_account_data
from exporter.web import landing
from exporter.web.collector import SnapshotCollector
from exporter.web.http import MetricsApp
from exporter.web.landing import DEMO_BANNER, LandingPage, render_landing, usd

NOV = 1793491200  # 2026-11-01T00:00:00Z
NOW = NOV + 9 * DAY + 13 * 3600 + 120  # 2026-11-10T13:02:00Z
TODAY = NOV + 9 * DAY
HOSTILE = "<script>alert(1)</script>"
LIMIT = ("hard", "month")
ERROR = "http 500: <img src=x onerror=alert(1)> " + "x" * 300


def snapshot() -> Snapshot:
    openai_totals: dict[SeriesKey, float] = {
        (Family.BILLED_COST, Dims("proj_a"), ("gpt-4.1, input",)): 3.4125,
        (Family.BILLED_COST, Dims("proj_b"), ("gpt-4.1, output",)): 1234.1,
        (Family.ESTIMATED_COST, Dims("proj_a", "gpt-4.1"), ("input", "default")): 2.0,
        (Family.ESTIMATED_COST, Dims("proj_a", "gpt-4.1"), ("output", "default")): 0.255,
        (Family.TOKENS, Dims("proj_a", "gpt-4.1"), ("input", "text", "default")): 1200.0,
    }
    spend = AccountSpend(
        "openai",
        "main",
        billed={TODAY - DAY: {Dims(): 9.0}, TODAY: {Dims("proj_a"): 0.5, Dims("proj_b"): 0.25}},
        estimated={TODAY: {Dims("proj_a", "gpt-4.1"): 1.125}},
        settled_before=TODAY,
        project_names={},
    )
    openai = build_account_data(
        "openai",
        "main",
        NOV,
        openai_totals,
        {"proj_a": "Search"},
        {Dataset.USAGE: NOW - 3600.0, Dataset.COST: NOW - 2 * DAY},
        0,
        {
            (Family.PROVIDER_LIMIT, Dims(), LIMIT): 5000.0,
            (Family.PROVIDER_LIMIT_FORECAST, Dims(), LIMIT): 3000.25,
            (Family.PROVIDER_LIMIT_ENFORCING, Dims(), LIMIT): 0.0,
            (Family.PROVIDER_LIMIT, Dims("proj_a"), LIMIT): 600.0,
            (Family.PROVIDER_LIMIT_FORECAST, Dims("proj_a"), LIMIT): 850.5,
            (Family.PROVIDER_LIMIT_ENFORCING, Dims("proj_a"), LIMIT): 0.0,
            (Family.PROVIDER_LIMIT, Dims("proj_b"), LIMIT): 100.0,
            (Family.PROVIDER_LIMIT_FORECAST, Dims("proj_b"), LIMIT): 180.0,
            (Family.PROVIDER_LIMIT_ENFORCING, Dims("proj_b"), LIMIT): 1.0,
        },
        spend=spend,
        expected_lags={Dataset.USAGE: 6 * 3600.0, Dataset.COST: 36 * 3600.0},
    )
    openrouter = build_account_data(
        "openrouter",
        HOSTILE,
        NOV,
        {(Family.BILLED_COST, Dims(), ("",)): 10.0},
        {},
        {},
        0,
        {(Family.BILLED_COST_TODAY, Dims(), ()): 0.75},
    )
    return Snapshot(
        (
            AccountSnapshot(
                "openai", "main", openai, AccountStatus(up=True, polled=True, last_success=NOW - 60)
            ),
            AccountSnapshot(
                "openrouter", HOSTILE, openrouter, AccountStatus(polled=True, last_error=ERROR)
            ),
            AccountSnapshot("anthropic", "later"),
        ),
        budgets=(
            BudgetStatus("calm", "month", 100.0, 0.8, 10.0, 31.0, NOV + 30 * DAY),
            BudgetStatus("close", "week", 100.0, 0.8, 85.0, 99.0, NOV + 14 * DAY),
            BudgetStatus("<b>over</b>", "day", 100.0, 0.8, 120.5, 150.0, TODAY + DAY),
        ),
    )


class Figures(HTMLParser):
    """Every ``data-figure`` element: (scope, key, figure) -> (data-value or None, text)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.found: dict[tuple[str, str, str], tuple[str | None, str]] = {}
        self.states: dict[tuple[str, str], str] = {}
        self._open: tuple[tuple[str, str, str], str | None] | None = None
        self._text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "data-dataset" in a:
            self.states[(a["data-account"] or "", a["data-dataset"] or "")] = a["data-state"] or ""
        if "data-budget" in a and "data-state" in a:
            self.states[("budget", a["data-budget"] or "")] = a["data-state"] or ""
        if "data-figure" in a:
            scope = next(s for s in ("account", "budget", "limit") if f"data-{s}" in a)
            key = (scope, a[f"data-{scope}"] or "", a["data-figure"] or "")
            self._open, self._text = (key, a.get("data-value")), []

    def handle_data(self, data: str) -> None:
        self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if self._open is not None:
            key, value = self._open
            self.found[key] = (value, "".join(self._text))
            self._open = None

    def value(self, scope: str, key: str, figure: str) -> float | None:
        raw = self.found[(scope, key, figure)][0]
        return None if raw is None else float(raw)

    def text(self, scope: str, key: str, figure: str) -> str:
        return self.found[(scope, key, figure)][1]


def page(demo: bool = False, snap: Snapshot | None = None) -> str:
    return render_landing(snap or snapshot(), now=NOW, demo=demo, version="9.9.9").decode()


def test_month_to_date_sums_per_account_and_total() -> None:
    figures = Figures(page())
    assert figures.value("account", "openai/main", "billed") == 3.4125 + 1234.1
    assert figures.text("account", "openai/main", "billed") == "$1,237.51"
    assert figures.value("account", "openai/main", "estimated") == 2.255
    assert figures.text("account", "openai/main", "estimated") == "$2.25"  # 2.255 is 2.25499...
    assert figures.text("account", f"openrouter/{HOSTILE}", "billed") == "$10.00"
    assert figures.value("account", f"openrouter/{HOSTILE}", "estimated") is None
    assert figures.text("account", f"openrouter/{HOSTILE}", "estimated") == "—"
    assert figures.text("account", "anthropic/later", "billed") == "—"
    assert figures.value("account", "total", "billed") == math.fsum([3.4125, 1234.1, 10.0])
    assert figures.text("account", "total", "billed") == "$1,247.51"
    assert figures.value("account", "total", "estimated") == 2.255


def test_billed_figures_are_net_of_credits() -> None:
    aws = Dims("111", provider="aws")
    focus = build_account_data(
        "focus",
        "cloud",
        NOV,
        {
            (Family.BILLED_COST, aws, ("usage",)): 10.0,
            (Family.BILLED_CREDIT, aws, ("credit",)): 2.5,
        },
        {},
        {},
        0,
    )
    credits_only = build_account_data(
        "focus", "credits", NOV, {(Family.BILLED_CREDIT, aws, ("credit",)): 4.0}, {}, {}, 0
    )
    snap = Snapshot(
        (
            AccountSnapshot("focus", "cloud", focus, AccountStatus(up=True, polled=True)),
            AccountSnapshot("focus", "credits", credits_only, AccountStatus(up=True, polled=True)),
        )
    )
    figures = Figures(page(snap=snap))
    assert figures.text("account", "focus/cloud", "billed") == "$7.50"
    assert figures.text("account", "focus/credits", "billed") == "-$4.00"
    assert figures.value("account", "total", "billed") == 3.5


def test_figures_equal_the_exposition() -> None:
    snap = snapshot()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(lambda: snap))
    sums: dict[tuple[str, str], list[float]] = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            if sample.name in ("aicost_billed_cost_usd_total", "aicost_estimated_cost_usd_total"):
                figure = "billed" if "billed" in sample.name else "estimated"
                key = f"{sample.labels['provider']}/{sample.labels['account']}"
                sums.setdefault((key, figure), []).append(sample.value)
    figures = Figures(page(snap=snap))
    assert sums
    for (key, figure), values in sums.items():
        assert figures.value("account", key, figure) == math.fsum(values)
        assert figures.text("account", key, figure) == usd(math.fsum(values))


def test_today_from_the_daily_spend_and_the_provider_counter() -> None:
    figures = Figures(page())
    assert figures.value("account", "openai/main", "billed-today") == 0.75
    assert figures.value("account", "openai/main", "estimated-today") == 1.125
    assert figures.text("account", "openai/main", "estimated-today") == "$1.12"
    # No daily spend for the account: no figure, not zero.
    assert figures.text("account", f"openrouter/{HOSTILE}", "billed-today") == "—"
    assert figures.value("account", f"openrouter/{HOSTILE}", "billed-today-counter") == 0.75
    assert ("account", "openai/main", "billed-today-counter") not in figures.found
    assert figures.value("account", "total", "billed-today") == 0.75
    # The next day has no entry yet.
    tomorrow = render_landing(snapshot(), now=TODAY + DAY + 5, demo=False, version="1").decode()
    assert Figures(tomorrow).text("account", "openai/main", "billed-today") == "—"


def test_budgets_spend_utilization_forecast_and_state() -> None:
    text = page()
    figures = Figures(text)
    assert figures.states[("budget", "calm")] == "ok"
    assert figures.states[("budget", "close")] == "warning"
    assert figures.states[("budget", "<b>over</b>")] == "exceeded"  # the parser unescapes
    assert figures.text("budget", "close", "utilization") == "85.0%"
    assert figures.value("budget", "close", "utilization") == 0.85
    assert figures.text("budget", "close", "spend") == "$85.00"
    assert figures.text("budget", "close", "limit") == "$100.00"
    assert figures.text("budget", "close", "forecast") == "$99.00"
    assert figures.text("budget", "<b>over</b>", "utilization") == "120.5%"
    assert "<b>over</b>" not in text and "&lt;b&gt;over&lt;/b&gt;" in text
    # The bar stops at the limit; the tick marks the warning ratio.
    assert 'style="width:85.0%"' in text and 'style="width:100.0%"' in text
    assert 'style="left:80.0%"' in text


def test_provider_limits_with_forecast_and_state() -> None:
    text = page()
    figures = Figures(text)
    assert figures.value("limit", "openai/main/", "limit") == 5000.0
    assert figures.text("limit", "openai/main/", "limit") == "$5,000.00"
    assert figures.text("limit", "openai/main/", "forecast") == "$3,000.25"
    assert figures.text("limit", "openai/main/", "state") == "ok"
    # A project by its name (or its id where it has none).
    assert figures.value("limit", "openai/main/Search", "forecast") == 850.5
    assert figures.text("limit", "openai/main/Search", "state") == "forecast over"
    assert figures.text("limit", "openai/main/proj_b", "state") == "enforcing"
    assert "whole account" in text and "hard per month" in text
    # Accounts without limits have no rows; a snapshot without any, no section.
    assert not [k for k in figures.found if k[0] == "limit" and "openrouter" in k[1]]
    assert "Provider limits" not in page(snap=Snapshot())


def test_poll_state_freshness_and_error() -> None:
    text = page()
    figures = Figures(text)
    assert figures.text("account", "openai/main", "state") == "up"
    assert figures.text("account", f"openrouter/{HOSTILE}", "state") == "down"
    assert figures.text("account", "anthropic/later", "state") == "pending"
    assert figures.states[("openai/main", "usage")] == "fresh"
    assert figures.states[("openai/main", "cost")] == "stale"
    assert "2026-11-10T13:01:00Z" in text  # last success, UTC
    error = figures.text("account", f"openrouter/{HOSTILE}", "error")
    assert error == ERROR[:199] + "…"
    assert "<img" not in text and "&lt;img src=x onerror=alert(1)&gt;" in text


def test_everything_interpolated_is_escaped() -> None:
    text = page()
    assert HOSTILE not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script" not in text.lower()


def test_demo_banner_only_in_demo_mode() -> None:
    assert DEMO_BANNER in page(demo=True)
    assert DEMO_BANNER not in page(demo=False)


def test_links_and_version() -> None:
    text = page()
    assert '<a href="/metrics">' in text and f'<a href="{landing.DOCS_URL}">' in text
    assert "ai-cost-exporter 9.9.9" in text
    assert not re.search(r"""(src|href)=["']?(https?:)?//(?!github\.com/ai-cost-exporter)""", text)


def test_an_empty_snapshot_renders() -> None:
    figures = Figures(page(snap=Snapshot()))
    assert figures.text("account", "total", "billed") == "—"
    assert "No budgets configured." in page(snap=Snapshot())


def test_usd() -> None:
    assert [usd(v) for v in (0, 1234.567, -0.5, -0.001, 1e6)] == [
        "$0.00", "$1,234.57", "-$0.50", "$0.00", "$1,000,000.00",
    ]


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[Snapshot]:
    """The snapshots the landing page renders, in order."""
    seen: list[Snapshot] = []
    real = landing.render_landing

    def counting(snap: Snapshot, **kwargs: Any) -> bytes:
        seen.append(snap)
        return real(snap, **kwargs)

    monkeypatch.setattr(landing, "render_landing", counting)
    return seen


def get(app: MetricsApp, path: str) -> tuple[str, dict[str, str], bytes]:
    response: dict[str, Any] = {}

    def start_response(status: str, headers: Iterable[tuple[str, str]]) -> None:
        response.update(status=status, headers=dict(headers))

    body = b"".join(app({"REQUEST_METHOD": "GET", "PATH_INFO": path}, start_response))
    return response["status"], response["headers"], body


def test_one_render_per_snapshot_and_never_on_the_scrape_path(renders: list[Snapshot]) -> None:
    current = [snapshot()]
    app = MetricsApp(lambda: current[0], demo=True)
    assert get(app, "/metrics")[0] == "200 OK"
    assert renders == []
    first, second = get(app, "/")[2], get(app, "/")[2]
    assert first == second and DEMO_BANNER.encode() in first
    assert renders == [current[0]]
    current[0] = snapshot()
    get(app, "/metrics")
    get(app, "/")
    assert len(renders) == 2 and renders[1] is current[0]


def test_rendered_again_after_a_minute_and_on_a_new_day(renders: list[Snapshot]) -> None:
    snap = snapshot()
    clock = [float(TODAY + DAY - 50)]
    page_ = LandingPage(lambda: snap, version="1", clock=lambda: clock[0])
    ticks: list[Callable[[], None]] = [
        lambda: None,  # same moment: cached
        lambda: clock.__setitem__(0, clock[0] + 30),  # 30 s later, same day: cached
        lambda: clock.__setitem__(0, clock[0] + 30),  # a new UTC day: rendered
        lambda: clock.__setitem__(0, clock[0] + 59),  # 59 s later: cached
        lambda: clock.__setitem__(0, clock[0] + 1),  # a minute after the last render
    ]
    counts = []
    for tick in ticks:
        tick()
        page_.body()
        counts.append(len(renders))
    assert counts == [1, 1, 2, 2, 3]
