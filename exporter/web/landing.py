"""The landing page ``/``: spend, budgets and poll health of one snapshot, as one HTML page.

Rendered on the server from the snapshot /metrics serves, with inline CSS and no script. Every
figure sits in an element naming what it is (``data-account="openai/main"``, ``data-budget`` or
``data-limit="openai/main/<project>"``, ``data-figure``) and carrying the exact float in
``data-value``, so the page can be checked against /metrics.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime

from exporter.core.budgets import BudgetStatus
from exporter.core.records import Dims, Family, day_start
from exporter.core.snapshot import AccountSnapshot, Snapshot

DOCS_URL = "https://github.com/ai-cost-exporter/ai-cost-exporter/tree/main/docs"
DEMO_BANNER = "Demo: simulated providers, no real spend"
MAX_AGE = 60.0
"""Seconds a rendered page is served for the same snapshot, so the ages it shows stay current."""
ERROR_CHARS = 200
# No script, no external resource: even an escaping mistake could not run anything.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)

DaySpend = Mapping[int, Mapping[Dims, float]]
_PERIODS = {"day": "today", "week": "this week", "month": "this month"}


class LandingPage:
    """The page of the current snapshot of ``source``, rendered at most once per snapshot.

    Rendered again when the snapshot changes, when the UTC day changes, or after
    :data:`MAX_AGE` seconds.
    """

    def __init__(
        self,
        source: Callable[[], Snapshot],
        *,
        demo: bool = False,
        version: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._demo = demo
        self._version = version
        self._clock = clock
        # (snapshot, rendered at, body) in one attribute: a reader never mixes two renders. Two
        # requests racing on a new snapshot may both render it; that is rare and harmless.
        self._rendered: tuple[Snapshot | None, float, bytes] = (None, 0.0, b"")

    def body(self) -> bytes:
        """The HTML of the current snapshot."""
        snapshot, rendered_at, body = self._rendered
        current, now = self._source(), self._clock()
        if (
            snapshot is current
            and 0 <= now - rendered_at < MAX_AGE
            and day_start(now) == day_start(rendered_at)
        ):
            return body
        body = render_landing(current, now=now, demo=self._demo, version=self._version)
        self._rendered = (current, now, body)
        return body


def render_landing(snapshot: Snapshot, *, now: float, demo: bool, version: str) -> bytes:
    """The landing page of ``snapshot`` at ``now`` (Unix seconds: for "today" and ages)."""
    today = day_start(now)
    billed = _billed(snapshot.accounts)
    estimated = _sum_family(snapshot.accounts, Family.ESTIMATED_COST)
    estimated_today = _sum(
        _day(a.data.spend.estimated, today) for a in snapshot.accounts if a.data.spend is not None
    )
    banner = f'<p class="banner" data-banner="demo">{DEMO_BANNER}</p>\n' if demo else ""
    parts = [
        _HEAD.replace("{css}", _CSS),
        "<header><h1>AI Cost Exporter</h1><nav>"
        f'<a href="/metrics">Metrics</a><a href="{DOCS_URL}">Documentation</a>'
        '<a href="/-/healthy">Health</a><a href="/-/ready">Readiness</a></nav></header>\n',
        banner,
        '<main>\n<section class="tiles">',
        _tile("Billed this month", billed),
        _tile("Estimated this month", estimated),
        _tile("Estimated today", estimated_today),
        "</section>\n",
        _spend_section(snapshot, today),
        _budget_section(snapshot.budgets),
        _limits_section(snapshot),
        _accounts_section(snapshot, now),
        "</main>\n",
        f"<footer>ai-cost-exporter {_esc(version)} &middot; as of {_iso(now)} &middot; "
        "month to date and today are UTC calendar periods</footer>\n</body></html>\n",
    ]
    return "".join(parts).encode()


def usd(value: float) -> str:
    """Dollars with cents and thousands separators: ``$1,234.56``, ``-$0.50``."""
    text = f"{value:,.2f}"
    if text == "-0.00":
        text = "0.00"
    return "-$" + text[1:] if text.startswith("-") else "$" + text


def budget_state(budget: BudgetStatus) -> str:
    """``exceeded`` at 100 % of the limit, ``warning`` from the warning ratio, else ``ok``."""
    utilization = budget.utilization
    if utilization >= 1:
        return "exceeded"
    return "warning" if utilization >= budget.warning_ratio else "ok"


def _spend_section(snapshot: Snapshot, today: int) -> str:
    rows = []
    for account in snapshot.accounts:
        spend = account.data.spend
        cells = _money_cells(
            f"{account.provider}/{account.account}",
            _billed([account]),
            _sum_family([account], Family.ESTIMATED_COST),
            None if spend is None else _day(spend.billed, today),
            None if spend is None else _day(spend.estimated, today),
            _sum_family([account], Family.BILLED_COST_TODAY),
        )
        rows.append(f"<tr>{_name_cell(account)}{cells}</tr>")
    spends = [a.data.spend for a in snapshot.accounts if a.data.spend is not None]
    total = _money_cells(
        "total",
        _billed(snapshot.accounts),
        _sum_family(snapshot.accounts, Family.ESTIMATED_COST),
        _sum(_day(s.billed, today) for s in spends),
        _sum(_day(s.estimated, today) for s in spends),
        None,
    )
    rows.append(f'<tr class="total"><td data-label="">Total</td>{total}</tr>')
    return (
        '<section><h2>Spend</h2>\n<div class="scroll"><table class="cards">\n<thead><tr>'
        + "".join(f"<th>{label}</th>" for label in ("Account", *_MONEY))
        + "</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table></div>\n"
        '<p class="note">Billed: what the provider reports it charges. Estimated: tokens times '
        "list prices. &mdash; means the account reports no such figure (yet).</p></section>\n"
    )


_MONEY = ("Billed, month", "Estimated, month", "Billed today", "Estimated today")


def _money_cells(
    key: str,
    billed: float | None,
    estimated: float | None,
    billed_today: float | None,
    estimated_today: float | None,
    counter_today: float | None,
) -> str:
    """The four money cells of a row; ``counter_today``: the provider's own today counter."""
    today = _figure("account", key, "billed-today", billed_today)
    if counter_today is not None:
        counter = _figure("account", key, "billed-today-counter", counter_today)
        today = f"<span>{today}<br><small>provider counter {counter}</small></span>"
    figures = (
        _figure("account", key, "billed", billed),
        _figure("account", key, "estimated", estimated),
        today,
        _figure("account", key, "estimated-today", estimated_today),
    )
    return "".join(_td(label, f, "num") for label, f in zip(_MONEY, figures, strict=True))


def _budget_section(budgets: Iterable[BudgetStatus]) -> str:
    cards = []
    for b in budgets:
        state = budget_state(b)
        percent = b.utilization * 100
        spend, limit, forecast = (
            _figure("budget", b.name, figure, value)
            for figure, value in (
                ("spend", b.spend_usd), ("limit", b.limit_usd), ("forecast", b.forecast_usd)
            )
        )
        utilization = _figure("budget", b.name, "utilization", b.utilization, f"{percent:.1f}%")
        over = ' <span class="over">over the limit</span>' if b.forecast_usd > b.limit_usd else ""
        cards.append(
            f'<div class="budget {state}" data-budget="{_esc(b.name)}" data-period="{b.period}"'
            f' data-state="{state}">'
            f'<div class="row"><h3>{_esc(b.name)}</h3>'
            f'<span class="badge {state}">{state}</span></div>'
            f'<div class="row"><span>{spend} of {limit} {_PERIODS[b.period]}</span>'
            f"{utilization}</div>"
            f'<div class="bar"><div class="fill" style="width:{min(max(percent, 0), 100):.1f}%">'
            f'</div><div class="tick" style="left:{b.warning_ratio * 100:.1f}%"></div></div>'
            f'<div class="row small"><span>Forecast {forecast}{over}</span>'
            f"<span>ends {_iso(b.period_end)}</span></div></div>"
        )
    body = "\n".join(cards) if cards else '<p class="note">No budgets configured.</p>'
    return f'<section><h2>Budgets</h2>\n<div class="budgets">\n{body}\n</div></section>\n'


_LIMIT_FAMILIES = (
    Family.PROVIDER_LIMIT,
    Family.PROVIDER_LIMIT_FORECAST,
    Family.PROVIDER_LIMIT_SPEND,
    Family.PROVIDER_LIMIT_ENFORCING,
)


def limit_state(limit: float, forecast: float | None, enforcing: float | None) -> str:
    """``enforcing`` when the provider refuses requests, ``forecast-over`` when the forecast is
    above the limit, else ``ok``."""
    if enforcing == 1:
        return "enforcing"
    return "forecast-over" if forecast is not None and forecast > limit else "ok"


def _limits_section(snapshot: Snapshot) -> str:
    rows = []
    for account in snapshot.accounts:
        by_scope: dict[tuple[tuple[str, str], ...], dict[Family, float]] = {}
        for family in _LIMIT_FAMILIES:
            series = account.data.families.get(family)
            if series is None:
                continue
            for pairs, value in zip(series.labels, series.values, strict=True):
                by_scope.setdefault(tuple(pairs), {})[family] = value
        for labels, values in by_scope.items():
            limit = values.get(Family.PROVIDER_LIMIT)
            if limit is None:
                continue
            named = dict(labels)
            scope = named.get("project") or named.get("user_id") or ""
            key = f"{account.provider}/{account.account}/{scope}"
            forecast = values.get(Family.PROVIDER_LIMIT_FORECAST)
            state = limit_state(limit, forecast, values.get(Family.PROVIDER_LIMIT_ENFORCING))
            kind = f"{named.get('limit', '')} per {named.get('period', '')}"
            badge = f'<span class="badge {state}" data-limit="{_esc(key)}" data-figure="state">'
            badge += f"{state.replace('-', ' ')}</span>"
            rows.append(
                f'<tr data-state="{state}">{_name_cell(account)}'
                f"{_td('Scope', _esc(scope) if scope else 'whole account', 'name')}"
                f"{_td('Kind', _esc(kind))}"
                f"{_td('Limit', _figure('limit', key, 'limit', limit), 'num')}"
                f"{_td('Forecast', _figure('limit', key, 'forecast', forecast), 'num')}"
                f"{_td('State', badge)}</tr>"
            )
    if not rows:
        return ""
    return (
        '<section><h2>Provider limits</h2>\n<div class="scroll"><table class="cards">\n<thead><tr>'
        + "".join(f"<th>{label}</th>" for label in
                  ("Account", "Scope", "Kind", "Limit", "Forecast", "State"))
        + "</tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table></div>\n"
        '<p class="note">Spend limits the provider enforces: beyond them it refuses requests. '
        "Forecast: the spend in the scope expected by the end of the period.</p></section>\n"
    )


def _accounts_section(snapshot: Snapshot, now: float) -> str:
    rows = []
    for account in snapshot.accounts:
        key = _esc(f"{account.provider}/{account.account}")
        status = account.status
        state = "up" if status.up else ("down" if status.polled else "pending")
        last = _iso(status.last_success) if status.last_success is not None else "never"
        freshness = []
        for dataset, watermark in sorted(account.data.watermarks.items()):
            age = max(now - watermark, 0.0)
            lag = account.data.expected_lags.get(dataset)
            fresh = "unknown" if lag is None else ("stale" if age > lag else "fresh")
            limit = "" if lag is None else f", may be {_duration(lag)}"
            freshness.append(
                f'<span class="dataset {fresh}" data-account="{key}" data-dataset="{_esc(dataset)}"'
                f' data-state="{fresh}">{_esc(dataset)}: {fresh} '
                f"<small>({_duration(age)} behind{limit})</small></span>"
            )
        error = status.last_error
        if len(error) > ERROR_CHARS:
            error = error[: ERROR_CHARS - 1] + "…"
        badge = f'<span class="badge {state}" data-account="{key}" data-figure="state">'
        badge += f"{state}</span>"
        data = f'<span>{"".join(freshness)}</span>' if freshness else "—"
        shown_error = f'<span data-account="{key}" data-figure="error">{_esc(error)}</span>'
        rows.append(
            f"<tr>{_name_cell(account)}{_td('Last poll', badge)}{_td('Last success', last)}"
            f"{_td('Data', data)}{_td('Last error', shown_error if error else '—', 'error')}</tr>"
        )
    return (
        '<section><h2>Accounts</h2>\n<div class="scroll"><table class="cards">\n<thead><tr>'
        "<th>Account</th><th>Last poll</th><th>Last success (UTC)</th>"
        "<th>Data freshness</th><th>Last error</th></tr></thead>\n<tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table></div></section>\n"
    )


def _sum_family(accounts: Iterable[AccountSnapshot], family: Family) -> float | None:
    # fsum: the exact sum, whatever the order the series are added in.
    found = [a.data.families[family].values for a in accounts if family in a.data.families]
    return math.fsum(v for values in found for v in values) if found else None


def _billed(accounts: Iterable[AccountSnapshot]) -> float | None:
    """Billed cost net of what the bill takes off (``aicost_billed_credit_usd_total``)."""
    accounts = list(accounts)
    billed = _sum_family(accounts, Family.BILLED_COST)
    credit = _sum_family(accounts, Family.BILLED_CREDIT)
    return billed if credit is None else (billed or 0.0) - credit


def _day(spend: DaySpend, day: int) -> float | None:
    usd_by_dims = spend.get(day)
    return None if usd_by_dims is None else math.fsum(usd_by_dims.values())


def _sum(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return math.fsum(present) if present else None


def _figure(scope: str, key: str, figure: str, value: float | None, text: str = "") -> str:
    attrs = f'data-{scope}="{_esc(key)}" data-figure="{figure}"'
    if value is None:
        return f"<span {attrs}>—</span>"
    return f'<span {attrs} data-value="{value!r}">{_esc(text or usd(value))}</span>'


def _tile(label: str, value: float | None) -> str:
    text = "—" if value is None else usd(value)
    return f'<div class="tile"><div class="label">{label}</div><div class="big">{text}</div></div>'


def _name_cell(account: AccountSnapshot) -> str:
    name = f"<strong>{_esc(account.account)}</strong> <small>{_esc(account.provider)}</small>"
    return _td("Account", name, "name")


def _td(label: str, content: str, css: str = "") -> str:
    cls = f' class="{css}"' if css else ""
    return f'<td data-label="{label}"{cls}>{content}</td>'


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m"


_HEAD = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AI Cost Exporter</title>
<style>{css}</style></head>
<body>
"""

_CSS = """
:root{--bg:#f6f7f9;--card:#fff;--fg:#1c2330;--muted:#5d6778;--line:#dde1e7;--ok:#1f8a4c;
--warn:#b7791f;--bad:#c53030;--accent:#2f5bd3}
@media (prefers-color-scheme:dark){:root{--bg:#12151b;--card:#1b2029;--fg:#e6e9ef;
--muted:#9aa4b5;--line:#2d3440;--accent:#7ea2ff}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header,main,footer{max-width:1200px;margin:0 auto;padding:0 16px}
header{display:flex;flex-wrap:wrap;align-items:baseline;justify-content:space-between;gap:8px}
h1{font-size:1.5rem;margin:20px 0 8px}h2{font-size:1.15rem;margin:24px 0 10px}
h3{font-size:1rem;margin:0;overflow-wrap:anywhere}
nav{display:flex;flex-wrap:wrap;gap:14px}a{color:var(--accent)}
.banner{max-width:1168px;margin:8px auto;padding:10px 14px;border-radius:8px;font-weight:600;
background:#fff4d6;color:#5c4200;border:1px solid #f0c36d}
@media (max-width:1200px){.banner{margin:8px 16px}}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,180px),1fr));gap:12px}
.tile,.budget{background:var(--card);border:1px solid var(--line);border-radius:10px;
padding:12px 14px}
.label,.note,small,footer{color:var(--muted)}.label{font-size:.85rem}
.big{font-size:1.6rem;font-weight:650;font-variant-numeric:tabular-nums}
.note{font-size:.85rem}
.scroll{overflow-x:auto;background:var(--card);border:1px solid var(--line);border-radius:10px}
table{border-collapse:collapse;width:100%}
th,td{padding:8px 12px;text-align:left;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:.8rem;color:var(--muted);font-weight:600;white-space:nowrap}
tbody tr:last-child td{border-bottom:0}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.name,td.error{overflow-wrap:anywhere}td.error{max-width:360px;font-size:.85rem}
tr.total td{font-weight:650;border-top:2px solid var(--line)}
.budgets{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,300px),1fr));gap:12px}
.row{display:flex;flex-wrap:wrap;justify-content:space-between;align-items:baseline;gap:6px}
.small{font-size:.85rem;color:var(--muted)}
.budget [data-figure=utilization]{font-weight:650;font-variant-numeric:tabular-nums}
.bar{position:relative;height:10px;margin:8px 0;border-radius:5px;background:var(--line)}
.fill{height:100%;border-radius:5px;background:var(--ok)}
.warning .fill{background:var(--warn)}.exceeded .fill{background:var(--bad)}
.tick{position:absolute;top:-3px;width:2px;height:16px;background:var(--muted)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.8rem;font-weight:600;
color:#fff;background:var(--muted)}
.badge.ok,.badge.up{background:var(--ok)}.badge.warning{background:var(--warn)}
.badge.exceeded,.badge.down,.badge.enforcing{background:var(--bad)}
.badge.forecast-over{background:var(--warn)}
.over{color:var(--bad);font-weight:600}
.dataset{display:block;white-space:nowrap}.dataset.stale{color:var(--bad);font-weight:600}
footer{margin:24px auto;font-size:.8rem}
@media (max-width:700px){
table.cards thead{display:none}
table.cards tr{display:block;padding:8px 0;border-bottom:1px solid var(--line)}
table.cards tbody tr:last-child{border-bottom:0}
table.cards td{display:flex;justify-content:space-between;gap:12px;border:0;padding:3px 12px;
text-align:right;max-width:none}
table.cards td::before{content:attr(data-label);color:var(--muted);font-size:.8rem;
text-align:left;white-space:nowrap}
table.cards td:first-child{display:block;text-align:left;padding-bottom:6px}
table.cards td:first-child::before{content:none}
.dataset{white-space:normal}
}
"""
