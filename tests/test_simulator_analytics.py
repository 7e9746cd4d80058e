"""The simulator's Claude Enterprise Analytics API over real sockets: keys, ranges, refresh,
group cap, per-user paging, and its oracle."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from exporter.simulator import Simulator
from exporter.simulator.anthropic_analytics_api import CHAT_USER, CODE_USER

DAY = 86_400
NOW = int(datetime(2026, 11, 2, 15, 27, 41, tzinfo=UTC).timestamp())
TODAY = NOW - NOW % DAY
USAGE = "/v1/organizations/analytics/usage_report"
COST = "/v1/organizations/analytics/cost_report"
USERS = "/v1/organizations/analytics/user_cost_report"


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=3, now=float(NOW)) as simulator:
        yield simulator


def client(sim: Simulator, key: str) -> httpx.Client:
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    return httpx.Client(base_url=sim.anthropic_base_url, headers=headers, timeout=5)


@pytest.fixture(scope="module")
def ent(sim: Simulator) -> Iterator[httpx.Client]:
    with client(sim, sim.anthropic_analytics_key) as c:
        yield c


def window(days: int = 3, **extra: Any) -> dict[str, Any]:
    return {"starting_at": iso(TODAY - (days - 1) * DAY), "ending_at": iso(TODAY + DAY),
            "bucket_width": "1d", "limit": 31, **extra}


def test_each_key_type_opens_only_its_own_api(sim: Simulator, ent: httpx.Client) -> None:
    with client(sim, sim.anthropic_key) as admin:
        assert admin.get(COST, params=window()).status_code == 401
        assert admin.get("/v1/organizations/cost_report", params=window()).status_code == 200
    assert ent.get("/v1/organizations/cost_report", params=window()).status_code == 401
    assert ent.get(COST, params=window()).status_code == 200


@pytest.mark.parametrize(("params", "message"), [
    ({"starting_at": "2025-12-31T00:00:00Z"}, "no earlier than 2026-01-01"),
    ({"starting_at": iso(TODAY - 40 * DAY)}, "at most 31 days"),
    ({"bucket_width": "1w"}, "bucket_width"),
    ({"group_by[]": "workspace_id"}, "group_by"),
])
def test_bad_queries_are_refused(ent: httpx.Client, params: dict[str, str], message: str) -> None:
    response = ent.get(COST, params={**window(), **params})
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


def test_reports_are_served_up_to_the_last_refresh(sim: Simulator, ent: httpx.Client) -> None:
    body = ent.get(USAGE, params=window(group_by=["model"])).json()
    assert body["data_refreshed_at"] == iso(TODAY + 12 * 3600)  # 15:27 -> the 12:00 export
    assert [b["starting_at"] for b in body["data"]] == [iso(TODAY - 2 * DAY), iso(TODAY - DAY),
                                                        iso(TODAY)]
    truth = sim.expected_anthropic_analytics(TODAY, NOW)["tokens"]
    served: dict[str, int] = {}
    for row in body["data"][-1]["results"]:
        served[row["model"]] = served.get(row["model"], 0) + row["output_tokens"]
    expected: dict[str, float] = {}
    for (model, token_type, _, _), value in truth.items():
        if token_type == "output":
            expected[model] = expected.get(model, 0) + value
    assert served == expected and sum(served.values()) > 0


def test_costs_by_product_and_users_add_up(sim: Simulator, ent: httpx.Client) -> None:
    grouped = ent.get(COST, params=window(group_by=["product", "model"])).json()
    total = ent.get(COST, params=window()).json()
    for by_group, whole in zip(grouped["data"], total["data"], strict=True):
        assert len(whole["results"]) <= 1
        amount = sum(Decimal(r["amount"]) for r in by_group["results"])
        assert amount == sum(Decimal(r["amount"]) for r in whole["results"])
        assert {r["product"] for r in by_group["results"]} <= {"chat", "claude_code", None}
    rows, cursor = [], None
    while True:
        page = ent.get(USERS, params=window(group_by=["product", "model", "cost_type"], limit=2,
                                            **({"page": cursor} if cursor else {}))).json()
        rows.extend(page["data"])
        if not page["has_more"]:
            break
        cursor = page["next_page"]
    assert {r["actor"]["user_id"] for r in rows} == {CHAT_USER, CODE_USER}
    by_user: dict[tuple[str, str, str, str], float] = {}
    for r in rows:
        key = (r["actor"]["user_id"], r["product"], r["model"], r["cost_type"])
        by_user[key] = by_user.get(key, 0.0) + float(Decimal(r["amount"]) / 100)
    truth = sim.expected_anthropic_analytics(TODAY - 2 * DAY, NOW)["user_cost"]
    assert by_user.keys() == truth.keys()
    for key, value in truth.items():
        assert by_user[key] == pytest.approx(value, rel=1e-12)
    # The per-user report needs ending_at with a bucket width.
    unbounded = {"starting_at": iso(TODAY), "bucket_width": "1d"}
    assert ent.get(USERS, params=unbounded).status_code == 400
