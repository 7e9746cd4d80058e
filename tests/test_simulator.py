"""The provider simulator over real sockets: shapes, validation, paging, faults, oracle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from exporter.simulator import Simulator
from exporter.simulator.catalog import ARCHIVED_AT

DAY, HOUR = 86_400, 3_600


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


NOW = ts("2026-11-02T15:27:41")  # mid-hour: the current hour is prorated
TODAY = NOW // DAY * DAY
TOMORROW = TODAY + DAY
MONTH_SPAN = (ts("2026-10-27T00:00:00"), TOMORROW)  # crosses the Oct/Nov boundary
COMPLETIONS = "/organization/usage/completions"
MESSAGES = "/v1/organizations/usage_report/messages"
COST_REPORT = "/v1/organizations/cost_report"
COMPLETION_DIMS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")
ANTHROPIC_DIMS = (
    "api_key_id",
    "workspace_id",
    "account_id",
    "service_account_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
)
JSON = dict[str, Any]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(seed=1, now=float(NOW)) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def clean(sim: Simulator) -> Iterator[None]:
    sim.set_now(float(NOW))
    sim.clear_faults()
    sim.reset_counts()
    yield
    sim.set_now(float(NOW))
    sim.clear_faults()


@pytest.fixture(scope="module")
def oai(sim: Simulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {sim.openai_key}"}
    with httpx.Client(base_url=sim.openai_base_url, headers=headers, timeout=5) as client:
        yield client


@pytest.fixture(scope="module")
def ant(sim: Simulator) -> Iterator[httpx.Client]:
    headers = {"x-api-key": sim.anthropic_key, "anthropic-version": "2023-06-01"}
    with httpx.Client(base_url=sim.anthropic_base_url, headers=headers, timeout=5) as client:
        yield client


def get(client: httpx.Client, path: str, params: Any) -> JSON:
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    body: JSON = response.json()
    return body


def all_pages(client: httpx.Client, path: str, params: dict[str, Any]) -> tuple[list[JSON], int]:
    """Every bucket of a paginated query, and how many pages it took."""
    buckets: list[JSON] = []
    pages, cursor = 0, None
    while True:
        body = get(client, path, {**params, **({"page": cursor} if cursor else {})})
        pages += 1
        buckets.extend(body["data"])
        assert body["has_more"] is (body["next_page"] is not None)
        if not body["has_more"]:
            return buckets, pages
        cursor = body["next_page"]


# ----------------------------------------------------------------- OpenAI shapes


def test_completion_fields_satisfy_the_token_invariants(oai: httpx.Client) -> None:
    body = get(
        oai,
        COMPLETIONS,
        {
            "start_time": TODAY - 6 * DAY,
            "end_time": TOMORROW,
            "group_by": list(COMPLETION_DIMS),
            "limit": 7,
        },
    )
    assert body["object"] == "page" and len(body["data"]) == 7
    rows = [r for b in body["data"] for r in b["results"]]
    assert rows and {r["object"] for r in rows} == {"organization.usage.completions.result"}
    modalities = {"audio": 0, "image": 0}
    for r in rows:
        assert r["input_tokens"] == (
            r["input_cached_tokens"] + r["input_cache_write_tokens"] + r["input_uncached_tokens"]
        )
        assert r["input_uncached_tokens"] == (
            r["input_text_tokens"] + r["input_audio_tokens"] + r["input_image_tokens"]
        )
        assert r["input_cached_tokens"] == (
            r["input_cached_text_tokens"]
            + r["input_cached_audio_tokens"]
            + r["input_cached_image_tokens"]
        )
        assert r["output_tokens"] == (
            r["output_text_tokens"] + r["output_audio_tokens"] + r["output_image_tokens"]
        )
        assert all(isinstance(r[f], int) and r[f] >= 0 for f in r if f.endswith("tokens"))
        assert r["num_model_requests"] > 0
        assert isinstance(r["batch"], bool) and r["service_tier"] in ("default", "flex")
        modalities["audio"] += r["input_audio_tokens"] + r["output_audio_tokens"]
        modalities["image"] += r["input_image_tokens"]
    assert modalities["audio"] > 0 and modalities["image"] > 0
    assert {r["batch"] for r in rows} == {True, False}
    assert any(r["input_cache_write_tokens"] for r in rows)


def test_ungrouped_dimensions_are_null_and_sum_the_grouped_results(oai: httpx.Client) -> None:
    window = {"start_time": TODAY - 3 * DAY, "end_time": TOMORROW}
    flat = get(oai, COMPLETIONS, window)["data"]
    grouped = get(oai, COMPLETIONS, {**window, "group_by[]": list(COMPLETION_DIMS)})["data"]
    by_model = get(oai, COMPLETIONS, {**window, "group_by": "model"})["data"]
    assert len(flat) == len(grouped) == len(by_model) == 4
    for f, g, m in zip(flat, grouped, by_model, strict=True):
        assert len(f["results"]) == 1
        total = f["results"][0]
        assert all(total[d] is None for d in COMPLETION_DIMS)
        assert all(r[d] is None for r in m["results"] for d in COMPLETION_DIMS if d != "model")
        for field, value in total.items():
            if field.endswith("tokens") or field == "num_model_requests":
                assert (
                    value
                    == sum(r[field] for r in g["results"])
                    == sum(r[field] for r in m["results"])
                )


def test_other_usage_endpoints_have_their_value_fields(oai: httpx.Client) -> None:
    fields = {
        "embeddings": "input_tokens",
        "moderations": "input_tokens",
        "images": "images",
        "audio_speeches": "characters",
        "audio_transcriptions": "seconds",
    }
    for endpoint, field in fields.items():
        body = get(
            oai,
            f"/organization/usage/{endpoint}",
            {"start_time": TODAY - DAY, "group_by": ["project_id", "model"]},
        )
        rows = [r for b in body["data"] for r in b["results"]]
        assert rows, endpoint
        for r in rows:
            assert r["object"] == f"organization.usage.{endpoint}.result"
            assert r[field] > 0 and r["num_model_requests"] > 0
            assert r["user_id"] is None and r["api_key_id"] is None
    images = get(
        oai,
        "/organization/usage/images",
        {"start_time": TODAY - DAY, "group_by": ["size", "source"], "sizes": "1024x1792"},
    )
    rows = [r for b in images["data"] for r in b["results"]]
    assert {(r["size"], r["source"]) for r in rows} == {("1024x1792", "image.edit")}


def test_filters_select_only_matching_streams(sim: Simulator, oai: httpx.Client) -> None:
    project = next(iter(sim.openai_project_names()))
    window = {"start_time": TODAY - 2 * DAY, "group_by": ["project_id", "model", "batch"]}
    for encoding in ("project_ids", "project_ids[]"):
        rows = [
            r
            for b in get(oai, COMPLETIONS, {**window, encoding: project})["data"]
            for r in b["results"]
        ]
        assert rows and {r["project_id"] for r in rows} == {project}
    rows = [
        r
        for b in get(
            oai, COMPLETIONS, {**window, "models": "o4-mini-2025-04-16", "batch": "false"}
        )["data"]
        for r in b["results"]
    ]
    assert rows and {(r["model"], r["batch"]) for r in rows} == {("o4-mini-2025-04-16", False)}
    batch_only = [
        r for b in get(oai, COMPLETIONS, {**window, "batch": "true"})["data"] for r in b["results"]
    ]
    assert batch_only and {r["batch"] for r in batch_only} == {True}


def test_both_array_encodings_give_identical_pages(oai: httpx.Client, ant: httpx.Client) -> None:
    base = f"start_time={TODAY - 5 * DAY}&end_time={TOMORROW}&limit=7"
    brackets = oai.get(
        f"{COMPLETIONS}?{base}&group_by[]=model&group_by[]=project_id"
        "&models[]=gpt-4.1-2025-04-14&models[]=o4-mini-2025-04-16"
    )
    repeated = oai.get(
        f"{COMPLETIONS}?{base}&group_by=model&group_by=project_id"
        "&models=gpt-4.1-2025-04-14&models=o4-mini-2025-04-16"
    )
    assert brackets.status_code == 200 and brackets.json() == repeated.json()
    models = {r["model"] for b in brackets.json()["data"] for r in b["results"]}
    assert models == {"gpt-4.1-2025-04-14", "o4-mini-2025-04-16"}
    base = f"starting_at={iso(TODAY - 5 * DAY)}&ending_at={iso(TOMORROW)}"
    brackets = ant.get(
        f"{MESSAGES}?{base}&group_by[]=model&group_by[]=workspace_id"
        "&models[]=claude-haiku-4-5-20251001"
    )
    repeated = ant.get(
        f"{MESSAGES}?{base}&group_by=model&group_by=workspace_id&models=claude-haiku-4-5-20251001"
    )
    assert brackets.status_code == 200 and brackets.json() == repeated.json()
    models = {r["model"] for b in brackets.json()["data"] for r in b["results"]}
    assert models == {"claude-haiku-4-5-20251001"}


# ------------------------------------------------------------------ pagination


@pytest.mark.parametrize(
    ("client_name", "path", "params", "single_limit"),
    [
        (
            "oai",
            COMPLETIONS,
            {
                "start_time": TODAY - 20 * DAY,
                "end_time": TOMORROW,
                "group_by": ["project_id", "model"],
                "limit": 3,
            },
            31,
        ),
        (
            "oai",
            "/organization/costs",
            {
                "start_time": TODAY - 20 * DAY,
                "end_time": TOMORROW,
                "group_by": ["line_item"],
                "limit": 4,
            },
            180,
        ),
        (
            "oai",
            "/organization/usage/images",
            {"start_time": TODAY - 2 * DAY, "bucket_width": "1h", "limit": 10},
            168,
        ),
        (
            "ant",
            MESSAGES,
            {
                "starting_at": iso(TODAY - 20 * DAY),
                "ending_at": iso(TOMORROW),
                "group_by[]": ["workspace_id", "model"],
                "limit": 6,
            },
            31,
        ),
        (
            "ant",
            COST_REPORT,
            {
                "starting_at": iso(TODAY - 20 * DAY),
                "ending_at": iso(TOMORROW),
                "group_by[]": ["description"],
                "limit": 5,
            },
            31,
        ),
    ],
)
def test_pages_concatenate_to_the_single_page(
    request: pytest.FixtureRequest,
    client_name: str,
    path: str,
    params: dict[str, Any],
    single_limit: int,
) -> None:
    client: httpx.Client = request.getfixturevalue(client_name)
    paged, pages = all_pages(client, path, params)
    single = get(client, path, {**params, "limit": single_limit})
    assert single["has_more"] is False and single["next_page"] is None
    assert paged == single["data"]
    assert pages == -(-len(paged) // params["limit"]) and pages > 1


def test_default_limits_and_bad_page_tokens(oai: httpx.Client, ant: httpx.Client) -> None:
    body = get(oai, COMPLETIONS, {"start_time": TODAY - 20 * DAY})
    assert len(body["data"]) == 7 and body["has_more"]
    assert (
        len(get(oai, COMPLETIONS, {"start_time": TODAY - 5 * DAY, "bucket_width": "1h"})["data"])
        == 24
    )
    assert len(get(oai, "/organization/costs", {"start_time": TODAY - 20 * DAY})["data"]) == 7
    assert (
        len(get(ant, MESSAGES, {"starting_at": iso(TODAY - DAY), "bucket_width": "1m"})["data"])
        == 60
    )
    bad = oai.get(COMPLETIONS, params={"start_time": TODAY - 20 * DAY, "page": "garbage"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "page"


# ------------------------------------------------------------ buckets and time


def test_openai_buckets_snap_and_stop_at_end_time_and_now(oai: httpx.Client) -> None:
    body = get(oai, COMPLETIONS, {"start_time": TODAY - 2 * DAY + 5000, "end_time": TOMORROW})
    assert [b["start_time"] for b in body["data"]] == [TODAY - 2 * DAY, TODAY - DAY, TODAY]
    assert all(b["end_time"] - b["start_time"] == DAY for b in body["data"])
    default_end = get(oai, COMPLETIONS, {"start_time": TODAY - 2 * DAY})
    assert default_end["data"] == body["data"]
    hours = get(
        oai, COMPLETIONS, {"start_time": TODAY, "end_time": TODAY + 5 * HOUR, "bucket_width": "1h"}
    )
    assert [b["start_time"] for b in hours["data"]] == [TODAY + h * HOUR for h in range(5)]
    future = get(
        oai,
        COMPLETIONS,
        {"start_time": TODAY, "bucket_width": "1h", "limit": 168, "end_time": TOMORROW + DAY},
    )
    assert future["data"][-1]["start_time"] == NOW // HOUR * HOUR


def test_anthropic_buckets_end_at_or_before_ending_at(ant: httpx.Client) -> None:
    body = get(ant, MESSAGES, {"starting_at": iso(TODAY - 2 * DAY + 7), "ending_at": iso(TODAY)})
    assert [b["starting_at"] for b in body["data"]] == [iso(TODAY - 2 * DAY), iso(TODAY - DAY)]
    assert [b["ending_at"] for b in body["data"]] == [iso(TODAY - DAY), iso(TODAY)]
    with_today = get(
        ant, MESSAGES, {"starting_at": iso(TODAY - 2 * DAY), "ending_at": iso(TOMORROW)}
    )
    assert [b["starting_at"] for b in with_today["data"]][-1] == iso(TODAY)
    partial = get(
        ant, MESSAGES, {"starting_at": iso(TODAY - 2 * DAY), "ending_at": iso(TODAY + 3 * HOUR)}
    )
    assert partial["data"] == body["data"]


def test_hour_buckets_sum_to_the_day_bucket(oai: httpx.Client, ant: httpx.Client) -> None:
    day = TODAY - 3 * DAY

    def openai_sums(width: str, limit: int) -> dict[tuple[str, str], list[int]]:
        sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        body = get(
            oai,
            COMPLETIONS,
            {
                "start_time": day,
                "end_time": day + DAY,
                "limit": limit,
                "bucket_width": width,
                "group_by": ["project_id", "model"],
            },
        )
        for b in body["data"]:
            for r in b["results"]:
                acc = sums[(r["project_id"], r["model"])]
                acc[0] += r["input_tokens"]
                acc[1] += r["output_tokens"]
                acc[2] += r["num_model_requests"]
        return dict(sums)

    assert openai_sums("1h", 24) == openai_sums("1d", 1) != {}

    def anthropic_sums(width: str, limit: int) -> dict[tuple[str, str], list[int]]:
        sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * 5)
        body = get(
            ant,
            MESSAGES,
            {
                "starting_at": iso(day),
                "ending_at": iso(day + DAY),
                "bucket_width": width,
                "limit": limit,
                "group_by[]": ["workspace_id", "model"],
            },
        )
        assert len(body["data"]) == limit
        for b in body["data"]:
            for r in b["results"]:
                acc = sums[(r["workspace_id"], r["model"])]
                for i, v in enumerate(
                    (
                        r["uncached_input_tokens"],
                        r["cache_read_input_tokens"],
                        r["cache_creation"]["ephemeral_5m_input_tokens"],
                        r["cache_creation"]["ephemeral_1h_input_tokens"],
                        r["output_tokens"],
                    )
                ):
                    acc[i] += v
        return dict(sums)

    assert anthropic_sums("1h", 24) == anthropic_sums("1d", 1) != {}


def test_minute_buckets_spread_the_hour(oai: httpx.Client) -> None:
    hour = TODAY - 9 * HOUR
    minutes = get(
        oai,
        COMPLETIONS,
        {"start_time": hour, "end_time": hour + HOUR, "bucket_width": "1m", "limit": 60},
    )
    whole = get(
        oai, COMPLETIONS, {"start_time": hour, "end_time": hour + HOUR, "bucket_width": "1h"}
    )
    assert len(minutes["data"]) == 60
    total = whole["data"][0]["results"][0]
    for field in ("input_tokens", "output_tokens", "num_model_requests"):
        assert sum(r[field] for b in minutes["data"] for r in b["results"]) == total[field] > 0


def test_idle_periods_are_empty_buckets(
    sim: Simulator, oai: httpx.Client, ant: httpx.Client
) -> None:
    body = get(
        oai,
        COMPLETIONS,
        {"start_time": TODAY - 7 * DAY, "end_time": TODAY, "bucket_width": "1h", "limit": 168},
    )
    assert len(body["data"]) == 168
    empty = [b for b in body["data"] if b["results"] == []]
    assert empty and len(empty) < 168
    for b in empty:
        assert sim.expected_openai(b["start_time"], b["end_time"])["requests"] == {}
    body = get(
        ant,
        MESSAGES,
        {
            "starting_at": iso(TODAY - 7 * DAY),
            "ending_at": iso(TODAY),
            "bucket_width": "1h",
            "limit": 168,
        },
    )
    assert len(body["data"]) == 168 and any(b["results"] == [] for b in body["data"])
    # The archived project has no usage after it was archived: its days are empty buckets.
    legacy = "proj_Zx1Yw2Vu3Ts4Rq5Po6Nm7Lk8"
    body = get(
        oai,
        COMPLETIONS,
        {
            "start_time": ARCHIVED_AT - 3 * DAY,
            "limit": 6,
            "end_time": ARCHIVED_AT + 3 * DAY,
            "project_ids": legacy,
        },
    )
    assert [bool(b["results"]) for b in body["data"]] == [True] * 3 + [False] * 3


def test_current_hour_grows_and_past_hours_never_change(sim: Simulator, oai: httpx.Client) -> None:
    params = {
        "start_time": NOW // HOUR * HOUR - 3 * HOUR,
        "bucket_width": "1h",
        "end_time": TOMORROW,
    }
    before = get(oai, COMPLETIONS, params)["data"]
    sim.set_now(float(NOW + 600))
    after = get(oai, COMPLETIONS, params)["data"]
    assert before[:3] == after[:3]
    grew = before[3]["results"][0]["num_model_requests"]
    assert after[3]["results"][0]["num_model_requests"] >= grew
    assert after[3]["results"][0]["input_tokens"] > before[3]["results"][0]["input_tokens"]


def test_same_seed_same_pages_and_other_seed_differs() -> None:
    params: JSON = {
        "start_time": TODAY - 10 * DAY,
        "limit": 31,
        "group_by": ["project_id", "model", "batch", "service_tier"],
    }
    bodies = []
    for seed in (3, 3, 4):
        with Simulator(seed=seed, now=float(NOW)) as other:
            response = httpx.get(
                f"{other.openai_base_url}{COMPLETIONS}",
                params=params,
                headers={"Authorization": "Bearer sk-admin-demo"},
            )
            bodies.append(response.json())
    assert bodies[0] == bodies[1] != bodies[2]


def test_a_31_day_page_is_fast(sim: Simulator, oai: httpx.Client) -> None:
    params = {
        "start_time": TODAY - 30 * DAY,
        "end_time": TOMORROW,
        "limit": 31,
        "group_by[]": ["project_id", "model", "service_tier", "batch"],
    }
    get(oai, COMPLETIONS, params)
    started = time.perf_counter()
    body = get(oai, COMPLETIONS, params)
    assert time.perf_counter() - started < 0.1
    assert len(body["data"]) == 31


# ----------------------------------------------------------------------- costs


def test_openai_costs_mix_number_and_string_amounts(oai: httpx.Client) -> None:
    body = get(
        oai,
        "/organization/costs",
        {"start_time": TODAY - 3 * DAY, "group_by": ["project_id", "line_item"]},
    )
    rows = [r for b in body["data"] for r in b["results"]]
    kinds = {type(r["amount"]["value"]) for r in rows}
    assert kinds == {float, str}
    for b in body["data"]:
        for i, r in enumerate(b["results"]):
            assert isinstance(r["amount"]["value"], str) == (i % 3 == 2)
            assert r["object"] == "organization.costs.result"
            assert r["amount"]["currency"] == "usd" and r["api_key_id"] is None
            assert r["quantity"] > 0 and r["quantity_unit"] in (
                None,  # tool calls: no unit of the spec's list applies
                "tokens",
                "images",
                "characters",
                "duration_seconds",
            )
    ungrouped = get(oai, "/organization/costs", {"start_time": TODAY - 3 * DAY})
    for b, g in zip(ungrouped["data"], body["data"], strict=True):
        (total,) = b["results"]
        assert total["quantity"] is None and total["quantity_unit"] is None
        assert total["line_item"] is None and total["project_id"] is None
        assert Decimal(str(total["amount"]["value"])) == sum(
            Decimal(str(r["amount"]["value"])) for r in g["results"]
        )


def test_anthropic_cost_report_cents_strings_equal_the_oracle(
    sim: Simulator, ant: httpx.Client
) -> None:
    start = TODAY - 6 * DAY
    body = get(
        ant,
        COST_REPORT,
        {
            "starting_at": iso(start),
            "ending_at": iso(TOMORROW),
            "group_by[]": ["workspace_id", "description"],
        },
    )
    served: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    web_search_days = 0
    for b in body["data"]:
        web_search_days += any(r["cost_type"] == "web_search" for r in b["results"])
        for r in b["results"]:
            assert isinstance(r["amount"], str) and r["currency"] == "USD"
            assert len(r["amount"].split(".")[1]) == 4
            if r["cost_type"] == "tokens":
                assert r["model"] and r["token_type"] and r["context_window"]
                assert r["service_tier"] in ("standard", "batch")
            else:
                assert r["description"] == "Web Search Usage" and r["model"] is None
            key = (r["workspace_id"] or "default", r["model"] or "", r["description"])
            served[key] += Decimal(r["amount"])
    assert 0 < web_search_days
    expected = sim.expected_anthropic(start, TOMORROW)["cost"]
    assert {k: float(v / 100) for k, v in served.items()} == expected
    assert {k: v * 100 for k, v in expected.items()} == pytest.approx(
        {k: float(v) for k, v in served.items()}, rel=1e-12
    )
    flat = get(ant, COST_REPORT, {"starting_at": iso(start), "ending_at": iso(TOMORROW)})
    for b in flat["data"]:
        (total,) = b["results"]
        assert all(
            total[f] is None
            for f in (
                "workspace_id",
                "description",
                "cost_type",
                "model",
                "service_tier",
                "token_type",
            )
        )


# ------------------------------------------------------------------ the oracle


def served_openai(oai: httpx.Client, start: int, end: int) -> dict[str, dict[Any, float]]:
    """Sum what the OpenAI endpoints serve into the oracle's keys."""
    out: dict[str, dict[Any, Any]] = {
        name: defaultdict(int)
        for name in (
            "tokens",
            "requests",
            "images",
            "audio_speech_characters",
            "audio_transcription_seconds",
            "tool_calls",
        )
    }
    out["cost"] = defaultdict(Decimal)
    window = {"start_time": start, "end_time": end, "limit": 31}
    pairs = (
        ("input", "text", "input_text_tokens"),
        ("input", "audio", "input_audio_tokens"),
        ("input", "image", "input_image_tokens"),
        ("input_cache_read", "text", "input_cached_text_tokens"),
        ("input_cache_read", "audio", "input_cached_audio_tokens"),
        ("input_cache_read", "image", "input_cached_image_tokens"),
        ("input_cache_write", "text", "input_cache_write_tokens"),
        ("output", "text", "output_text_tokens"),
        ("output", "audio", "output_audio_tokens"),
        ("output", "image", "output_image_tokens"),
    )
    group = ["project_id", "model", "batch", "service_tier"]
    for b in all_pages(oai, COMPLETIONS, {**window, "group_by": group})[0]:
        for r in b["results"]:
            tier = "batch" if r["batch"] else r["service_tier"]
            for token_type, modality, field in pairs:
                if r[field]:
                    out["tokens"][(r["project_id"], r["model"], token_type, modality, tier)] += r[
                        field
                    ]
            out["requests"][(r["project_id"], r["model"], tier)] += r["num_model_requests"]
    families = {
        "embeddings": "tokens",
        "moderations": "tokens",
        "images": "images",
        "audio_speeches": "audio_speech_characters",
        "audio_transcriptions": "audio_transcription_seconds",
    }
    value_field = {
        "embeddings": "input_tokens",
        "moderations": "input_tokens",
        "images": "images",
        "audio_speeches": "characters",
        "audio_transcriptions": "seconds",
    }
    for endpoint, family in families.items():
        buckets = all_pages(
            oai, f"/organization/usage/{endpoint}", {**window, "group_by": ["project_id", "model"]}
        )[0]
        for b in buckets:
            for r in b["results"]:
                key: tuple[str, ...] = (r["project_id"], r["model"])
                if family == "tokens":
                    key = (*key, "input", "text", "default")
                out[family][key] += r[value_field[endpoint]]
                out["requests"][(r["project_id"], r["model"], "default")] += r["num_model_requests"]
    tools = {  # endpoint: (tool, group_by, the count field)
        "code_interpreter_sessions": ("code_interpreter", ["project_id"], "num_sessions"),
        "file_search_calls": ("file_search", ["project_id"], "num_requests"),
        "web_search_calls": ("web_search", ["project_id", "model"], "num_requests"),
    }
    for endpoint, (tool, group, field) in tools.items():
        path = f"/organization/usage/{endpoint}"
        buckets = all_pages(oai, path, {**window, "group_by": group})[0]
        for b in buckets:
            for r in b["results"]:
                out["tool_calls"][(r["project_id"], r.get("model") or "", tool)] += r[field]
    images = all_pages(
        oai,
        "/organization/usage/images",
        {**window, "group_by": ["project_id", "model", "size", "source"]},
    )[0]
    out["labelled_images"] = defaultdict(int)
    for b in images:
        for r in b["results"]:
            out["labelled_images"][(r["project_id"], r["model"], r["size"], r["source"])] += r[
                "images"
            ]
    stores = all_pages(
        oai, "/organization/usage/vector_stores", {**window, "group_by": ["project_id"]}
    )[0]
    latest = max(stores, key=lambda b: b["start_time"])  # a level: the latest day's bytes
    out["vector_store_bytes"] = {(r["project_id"],): r["usage_bytes"] for r in latest["results"]}
    costs = all_pages(
        oai, "/organization/costs", {**window, "group_by": ["project_id", "line_item"]}
    )[0]
    for b in costs:
        for r in b["results"]:
            line_item = r["line_item"]  # "<model>, <name>"
            key = (r["project_id"], line_item.split(", ", 1)[0], line_item)
            out["cost"][key] += Decimal(str(r["amount"]["value"]))
    out["cost"] = {k: float(v) for k, v in out["cost"].items()}
    return {name: dict(values) for name, values in out.items()}


def test_openai_oracle_equals_summed_responses_across_a_month_boundary(
    sim: Simulator, oai: httpx.Client
) -> None:
    start, end = MONTH_SPAN
    expected = sim.expected_openai(start, end)
    assert served_openai(oai, start, end) == expected
    assert all(expected[name] for name in expected)
    assert {k[4] for k in expected["tokens"]} == {"default", "flex", "batch"}
    assert {k[3] for k in expected["tokens"]} == {"text", "audio", "image"}
    month_cost = sum(
        sim.expected_openai(ts("2026-10-01T00:00:00"), ts("2026-11-01T00:00:00"))["cost"].values()
    )
    assert 100 < month_cost < 10_000


def test_anthropic_oracle_equals_summed_responses_across_a_month_boundary(
    sim: Simulator, ant: httpx.Client
) -> None:
    start, end = MONTH_SPAN
    buckets, _ = all_pages(
        ant,
        MESSAGES,
        {
            "starting_at": iso(start),
            "ending_at": iso(end),
            "group_by[]": ["workspace_id", "model", "service_tier"],
        },
    )
    assert len(buckets) == (end - start) // DAY
    tokens: dict[tuple[str, ...], float] = defaultdict(int)
    fields = (
        ("input", ("uncached_input_tokens",)),
        ("input_cache_read", ("cache_read_input_tokens",)),
        ("input_cache_write", ("cache_creation", "ephemeral_5m_input_tokens")),
        ("input_cache_write_1h", ("cache_creation", "ephemeral_1h_input_tokens")),
        ("output", ("output_tokens",)),
    )
    for b in buckets:
        for r in b["results"]:
            assert r["api_key_id"] is None and r["context_window"] is None
            assert set(ANTHROPIC_DIMS) <= set(r)
            for token_type, path in fields:
                value = r[path[0]] if len(path) == 1 else r[path[0]][path[1]]
                if value:
                    key = (
                        r["workspace_id"] or "default",
                        r["model"],
                        token_type,
                        "text",
                        r["service_tier"],
                    )
                    tokens[key] += value
    expected = sim.expected_anthropic(start, end)
    assert dict(tokens) == expected["tokens"]
    assert {k[4] for k in tokens} == {"standard", "batch", "priority"}
    assert {k[2] for k in tokens} == {
        "input",
        "input_cache_read",
        "input_cache_write",
        "input_cache_write_1h",
        "output",
    }
    month_cost = sum(
        sim.expected_anthropic(ts("2026-10-01T00:00:00"), ts("2026-11-01T00:00:00"))[
            "cost"
        ].values()
    )
    assert 100 < month_cost < 10_000


def test_oracle_stops_at_now(sim: Simulator) -> None:
    upto_now = sim.expected_openai(TODAY, TOMORROW)
    assert upto_now == sim.expected_openai(TODAY, NOW)
    assert sim.expected_openai(NOW, TOMORROW)["tokens"] == {}


# -------------------------------------------------------------- listing endpoints


def test_projects_list(sim: Simulator, oai: httpx.Client) -> None:
    active = get(oai, "/organization/projects", {})
    assert active["object"] == "list" and active["has_more"] is False
    assert {p["status"] for p in active["data"]} == {"active"}
    everything = get(oai, "/organization/projects", {"include_archived": "true"})
    assert {p["id"]: p["name"] for p in everything["data"]} == sim.openai_project_names()
    (archived,) = [p for p in everything["data"] if p["status"] == "archived"]
    assert archived["archived_at"] == ARCHIVED_AT
    assert archived["object"] == "organization.project"
    first = get(oai, "/organization/projects", {"include_archived": "true", "limit": 2})
    assert first["has_more"] is True and first["last_id"] == first["data"][-1]["id"]
    rest = get(
        oai,
        "/organization/projects",
        {"include_archived": "true", "limit": 2, "after": first["last_id"]},
    )
    assert first["data"] + rest["data"] == everything["data"] and rest["has_more"] is False
    sim.set_now(float(ARCHIVED_AT - DAY))  # before archiving, the project is still active
    assert len(get(oai, "/organization/projects", {})["data"]) == 4


def test_workspaces_list(sim: Simulator, ant: httpx.Client) -> None:
    everything = get(ant, "/v1/organizations/workspaces", {"include_archived": "true"})
    assert {w["id"]: w["name"] for w in everything["data"]} == sim.anthropic_workspace_names()
    assert all(
        w["type"] == "workspace" and w["display_color"].startswith("#") for w in everything["data"]
    )
    active = get(ant, "/v1/organizations/workspaces", {})
    assert len(active["data"]) == len(everything["data"]) - 1
    assert all(w["archived_at"] is None for w in active["data"])
    page = get(
        ant,
        "/v1/organizations/workspaces",
        {"include_archived": "true", "limit": 1, "after_id": everything["first_id"]},
    )
    assert page["data"] == everything["data"][1:2] and page["has_more"] is True


# ---------------------------------------------------------- validation and auth


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        (COMPLETIONS, {"start_time": TODAY, "bucket_width": "2h"}, "bucket_width"),
        (COMPLETIONS, {"start_time": TODAY, "limit": 32}, "limit"),
        (COMPLETIONS, {"start_time": TODAY, "limit": 0}, "limit"),
        (COMPLETIONS, {"start_time": TODAY, "bucket_width": "1h", "limit": 169}, "limit"),
        (COMPLETIONS, {"start_time": TODAY, "bucket_width": "1m", "limit": 1441}, "limit"),
        (COMPLETIONS, {"start_time": TODAY, "group_by": "size"}, "group_by"),
        (COMPLETIONS, {"end_time": TODAY}, "start_time"),
        (COMPLETIONS, {"start_time": "yesterday"}, "start_time"),
        (COMPLETIONS, {"start_time": TODAY, "batch": "maybe"}, "batch"),
        ("/organization/usage/embeddings", {"start_time": TODAY, "group_by": "batch"}, "group_by"),
        ("/organization/usage/images", {"start_time": TODAY, "sizes": "9x9"}, "sizes"),
        ("/organization/costs", {"start_time": TODAY, "bucket_width": "1h"}, "bucket_width"),
        ("/organization/costs", {"start_time": TODAY, "limit": 181}, "limit"),
        ("/organization/costs", {"start_time": TODAY, "group_by": "model"}, "group_by"),
        ("/organization/projects", {"limit": 101}, "limit"),
    ],
)
def test_openai_rejects_bad_queries(oai: httpx.Client, path: str, params: JSON, param: str) -> None:
    response = oai.get(path, params=params)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param


def test_openai_accepts_the_limit_maxima(oai: httpx.Client) -> None:
    maxima: list[JSON] = [
        {"limit": 31},
        {"bucket_width": "1h", "limit": 168},
        {"bucket_width": "1m", "limit": 1440},
    ]
    for params in maxima:
        assert oai.get(COMPLETIONS, params={"start_time": TODAY, **params}).status_code == 200
    assert (
        oai.get("/organization/costs", params={"start_time": TODAY, "limit": 180}).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("path", "params"),
    [
        (MESSAGES, {"starting_at": iso(TODAY), "bucket_width": "1w"}),
        (MESSAGES, {"starting_at": iso(TODAY), "limit": 32}),
        (MESSAGES, {"starting_at": iso(TODAY), "bucket_width": "1h", "limit": 169}),
        (MESSAGES, {"starting_at": iso(TODAY), "group_by[]": "project_id"}),
        (MESSAGES, {"starting_at": iso(TODAY), "group_by[]": "speed"}),
        (MESSAGES, {"starting_at": iso(TODAY), "service_tiers[]": "gold"}),
        (MESSAGES, {"starting_at": "not-a-time"}),
        (MESSAGES, {"ending_at": iso(TODAY)}),
        (MESSAGES, {"starting_at": iso(TODAY), "ending_at": iso(TODAY - DAY)}),
        (COST_REPORT, {"starting_at": iso(TODAY), "bucket_width": "1h"}),
        (COST_REPORT, {"starting_at": iso(TODAY), "limit": 32}),
        (COST_REPORT, {"starting_at": iso(TODAY), "group_by[]": "model"}),
        ("/v1/organizations/workspaces", {"limit": 1001}),
    ],
)
def test_anthropic_rejects_bad_queries(ant: httpx.Client, path: str, params: JSON) -> None:
    response = ant.get(path, params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"] and body["request_id"].startswith("req_")
    assert response.headers["request-id"].startswith("req_")


def test_anthropic_filters_and_fast_mode_header(ant: httpx.Client) -> None:
    window = {"starting_at": iso(TODAY - DAY), "ending_at": iso(TODAY)}
    body = get(
        ant,
        MESSAGES,
        {
            **window,
            "group_by[]": ["service_tier", "workspace_id"],
            "service_tiers[]": "priority",
            "workspace_ids[]": "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ",
        },
    )
    rows = body["data"][0]["results"]
    assert [(r["service_tier"], r["workspace_id"]) for r in rows] == [
        ("priority", "wrkspc_01JwQvzr7rXLA5AGx3HKfFUJ")
    ]
    fast = ant.get(
        MESSAGES,
        params={**window, "group_by[]": "speed"},
        headers={"anthropic-beta": "fast-mode-2026-02-01"},
    )
    assert fast.status_code == 200
    assert {r["speed"] for b in fast.json()["data"] for r in b["results"]} == {"standard"}


def test_wrong_or_missing_keys_get_401_envelopes(sim: Simulator) -> None:
    for headers in ({}, {"Authorization": "Bearer sk-admin-wrong"}, {"Authorization": "Basic x"}):
        response = httpx.get(
            f"{sim.openai_base_url}{COMPLETIONS}?start_time={TODAY}", headers=headers
        )
        assert response.status_code == 401
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "invalid_api_key"
        assert "sk-admin" not in response.text
    for headers in (
        {"anthropic-version": "2023-06-01"},
        {"x-api-key": "sk-ant-admin01-wrong", "anthropic-version": "2023-06-01"},
    ):
        response = httpx.get(
            f"{sim.anthropic_base_url}{MESSAGES}",
            params={"starting_at": iso(TODAY)},
            headers=headers,
        )
        assert response.status_code == 401
        assert response.json()["error"]["type"] == "authentication_error"
    response = httpx.get(
        f"{sim.anthropic_base_url}{MESSAGES}",
        params={"starting_at": iso(TODAY)},
        headers={"x-api-key": sim.anthropic_key},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert "anthropic-version" in response.json()["error"]["message"]


def test_unknown_paths_are_404(sim: Simulator, oai: httpx.Client, ant: httpx.Client) -> None:
    assert oai.get("/organization/usage/nothing").status_code == 404
    response = ant.get("/v1/organizations/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    assert httpx.get(f"{sim.url}/elsewhere").status_code == 404


def test_repr_does_not_show_keys(sim: Simulator) -> None:
    assert sim.openai_key not in repr(sim) and sim.anthropic_key not in repr(sim)


# ------------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("kind", "status", "openai_type", "anthropic_type"),
    [
        ("429", 429, "requests", "rate_limit_error"),
        ("500", 500, "server_error", "api_error"),
        ("503", 503, "server_error", "api_error"),
        ("529", 529, "server_error", "overloaded_error"),
        ("401", 401, "invalid_request_error", "authentication_error"),
    ],
)
def test_error_faults_use_each_providers_envelope(
    sim: Simulator,
    oai: httpx.Client,
    ant: httpx.Client,
    kind: str,
    status: int,
    openai_type: str,
    anthropic_type: str,
) -> None:
    sim.inject("openai", COMPLETIONS, kind, retry_after=7)
    sim.inject("anthropic", "*", kind)
    response = oai.get(COMPLETIONS, params={"start_time": TODAY})
    assert response.status_code == status
    assert response.json()["error"]["type"] == openai_type
    assert response.headers.get("retry-after") == ("7" if kind == "429" else None)
    response = ant.get(COST_REPORT, params={"starting_at": iso(TODAY)})
    assert response.status_code == status
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == anthropic_type
    assert response.headers.get("retry-after") == ("1" if kind == "429" else None)
    # Each fault was used once: the next requests succeed.
    assert oai.get(COMPLETIONS, params={"start_time": TODAY}).status_code == 200
    assert ant.get(COST_REPORT, params={"starting_at": iso(TODAY)}).status_code == 200


def test_429_without_retry_after_and_502_html(sim: Simulator, oai: httpx.Client) -> None:
    sim.inject("openai", "*", "429", retry_after=None)
    response = oai.get(COMPLETIONS, params={"start_time": TODAY})
    assert response.status_code == 429 and "retry-after" not in response.headers
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    sim.inject("openai", "*", "502")
    response = oai.get(COMPLETIONS, params={"start_time": TODAY})
    assert response.status_code == 502 and response.headers["content-type"] == "text/html"


def test_times_and_after_select_which_requests_fail(sim: Simulator, oai: httpx.Client) -> None:
    sim.inject("openai", "/organization/costs", "500", times=2, after=1)
    codes = [
        oai.get("/organization/costs", params={"start_time": TODAY}).status_code for _ in range(4)
    ]
    assert codes == [200, 500, 500, 200]
    # Other endpoints are unaffected by an endpoint-specific fault.
    sim.inject("openai", "/organization/costs", "503")
    assert oai.get(COMPLETIONS, params={"start_time": TODAY}).status_code == 200
    sim.clear_faults()
    assert oai.get("/organization/costs", params={"start_time": TODAY}).status_code == 200


def test_slow_malformed_wrong_shape_and_reset(
    sim: Simulator, oai: httpx.Client, ant: httpx.Client
) -> None:
    sim.inject("openai", COMPLETIONS, "slow", delay=0.3)
    started = time.perf_counter()
    response = oai.get(COMPLETIONS, params={"start_time": TODAY})
    assert response.status_code == 200 and response.json()["object"] == "page"
    assert time.perf_counter() - started >= 0.3
    sim.inject("anthropic", MESSAGES, "malformed")
    response = ant.get(MESSAGES, params={"starting_at": iso(TODAY)})
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)
    sim.inject("openai", "*", "wrong_shape")
    response = oai.get(COMPLETIONS, params={"start_time": TODAY})
    assert response.status_code == 200 and response.json() == {"data": "oops"}
    sim.inject("anthropic", "*", "reset")
    with pytest.raises(httpx.TransportError):
        ant.get(MESSAGES, params={"starting_at": iso(TODAY)})
    assert ant.get(MESSAGES, params={"starting_at": iso(TODAY)}).status_code == 200


def test_unknown_fault_kind_is_refused(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        sim.inject("openai", "*", "418")


# ---------------------------------------------------------------- request counts


def test_requests_are_counted_and_logged(
    sim: Simulator, oai: httpx.Client, ant: httpx.Client
) -> None:
    sim.inject("openai", "/organization/costs", "500")
    oai.get(COMPLETIONS, params={"start_time": TODAY, "group_by[]": "model"})
    oai.get("/organization/costs", params={"start_time": TODAY})
    oai.get("/organization/costs", params={"start_time": TODAY})
    ant.get(MESSAGES, params={"starting_at": iso(TODAY)}, headers={"x-api-key": "wrong"})
    assert sim.request_count() == 4
    assert sim.request_count("openai") == 3
    assert sim.request_count("openai", "/organization/costs") == 2
    assert sim.request_count(endpoint=MESSAGES) == 1
    log = sim.request_log()
    assert log[0] == ("openai", COMPLETIONS, f"start_time={TODAY}&group_by%5B%5D=model")
    assert [entry[:2] for entry in log[1:]] == [
        ("openai", "/organization/costs"),
        ("openai", "/organization/costs"),
        ("anthropic", MESSAGES),
    ]
    sim.reset_counts()
    assert sim.request_count() == 0 and sim.request_log() == []


# ------------------------------------------------------------------- lifecycle


def test_stop_releases_the_port_and_drops_kept_alive_connections() -> None:
    simulator = Simulator(seed=1, now=float(NOW))
    simulator.start()
    url = simulator.openai_base_url
    with httpx.Client(headers={"Authorization": "Bearer sk-admin-demo"}, timeout=2) as client:
        assert client.get(f"{url}/organization/projects").status_code == 200
        simulator.stop()
        with pytest.raises(httpx.TransportError):
            client.get(f"{url}/organization/projects")
    simulator.stop()  # idempotent
    with pytest.raises(RuntimeError):
        _ = simulator.url


def test_command_line_runs_until_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "exporter.simulator",
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "2",
            "--now",
            "2026-11-02T12:00:00Z",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.path.dirname(os.path.dirname(__file__)),
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        second = process.stdout.readline()
        assert first.startswith("openai ") and second.startswith("anthropic ")
        base = first.split()[1]
        assert base.endswith("/openai/v1")
        response = httpx.get(
            f"{base}/organization/projects", headers={"Authorization": "Bearer sk-admin-demo"}
        )
        assert response.status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
