"""Groq provider: 5-minute rate series integrated into per-day counts; non-Enterprise keys."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from exporter.core.records import Dataset, Dims, Family, FetchResult
from exporter.sources.providers.base import ProviderError, ProviderSettings
from exporter.sources.providers.groq import CHUNK, GroqProvider

FIXTURES = Path(__file__).parent / "fixtures" / "groq"
KEY = "gsk_FAKEKEY_groq_do_not_leak_42"
BASE = "https://api.groq.com/v1/metrics/prometheus"
D1, D2 = 1767225600, 1767312000  # 2026-01-01, -02 00:00 UTC
END = D2 + 3_600 + 42  # poll at 2026-01-02 01:00:42 UTC
T, R = Family.TOKENS, Family.REQUESTS
LLAMA, PROJECT = "llama-3.3-70b-versatile", "project_01hx9k2m3n"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def matrix(*series: tuple[dict[str, str], list[list[Any]]]) -> dict[str, Any]:
    result = [{"metric": labels, "values": values} for labels, values in series]
    return {"status": "success", "data": {"resultType": "matrix", "result": result}}


LABELS = {"model": LLAMA, "project_id": PROJECT}
BODIES: dict[str, dict[str, Any]] = {
    "tokens_in": fixture("query_range_tokens_in"),
    "prompt_cache_hits": matrix((LABELS, [[D1 + 300, "1"]])),
    # 0.333… × 300 = 99.99999999: rounded to whole tokens per day.
    "tokens_out": matrix((LABELS, [[D2 + 600, "0.333333333333"], [D2 + 7200, "5"]])),
    "requests": matrix(
        ({**LABELS, "status_code": "200"}, [[D1 + 300, "0.1"]]),
        ({**LABELS, "status_code": "429"}, [[D1 + 300, "0.02"]]),
    ),
}


class Env:
    def __init__(self, router: respx.MockRouter) -> None:
        self.bodies = dict(BODIES)
        self.route = router.get("/api/v1/query_range").mock(side_effect=self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        promql = request.url.params["query"]
        for name, body in self.bodies.items():
            if f":{name}:" in promql:
                return httpx.Response(200, json=body)
        raise AssertionError(promql)

    def fetch(self, *, start: int = D1, end: int = END, **settings: Any) -> FetchResult:
        async def sleep(seconds: float) -> None:
            pass

        provider = GroqProvider(
            ProviderSettings(account="groq", api_key=lambda: KEY, **settings),
            observe=lambda endpoint, code: None,
            sleep=sleep,
        )

        async def run() -> FetchResult:
            try:
                return await provider.fetch(start, end)
            finally:
                await provider.aclose()

        return asyncio.run(run())

    def fail(self) -> ProviderError:
        """The error of the one dataset, which failed: no batch, no partial data."""
        result = self.fetch()
        assert result.batches == []
        assert list(result.failures) == [Dataset.USAGE]
        err = result.failures[Dataset.USAGE]
        assert isinstance(err, ProviderError)
        assert KEY not in str(err)
        return err

    def params(self, call: int) -> dict[str, str]:
        return dict(self.route.calls[call].request.url.params)


@pytest.fixture
def env() -> Iterator[Env]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield Env(router)


def test_rates_are_integrated_per_utc_day(env: Env) -> None:
    result = env.fetch()
    assert result.failures == {}
    (usage,) = result.batches
    d = Dims(PROJECT, LLAMA)
    assert (usage.dataset, usage.start, usage.end) == (Dataset.USAGE, D1, END)
    assert usage.days == {
        # 10/s over (D1, D1+5m] + 1.5/s over the day's last step, less 300 cached tokens;
        # the step ending at D2 still belongs to D1. NaN (no data) and zero rates add nothing.
        D1: {
            (T, d, ("input", "", "")): 3150.0,
            (T, d, ("input_cache_read", "", "")): 300.0,
            (R, d, ("", "200")): 30.0,  # requests by status code
            (R, d, ("", "429")): 6.0,
        },
        D2: {(T, d, ("input", "", "")): 600.0, (T, d, ("output", "", "")): 100.0},
    }
    # The sample at D2+7200 is after the queried end: a server ignoring `end` is not believed.
    assert usage.watermark == float(D2 + 3_600)
    assert [env.params(i)["query"] for i in range(4)] == [
        "sum by (project_id, model) (model_project_id:tokens_in:rate5m)",
        "sum by (project_id, model) (model_project_id:tokens_out:rate5m)",
        "sum by (project_id, model) (model_project_id:prompt_cache_hits:rate5m)",
        "sum by (project_id, model, status_code) (model_project_id_status_code:requests:rate5m)",
    ]
    assert env.params(0) | {"query": ""} == {
        "query": "",
        "start": str(D1 + 300),
        "end": str(D2 + 3_600),
        "step": "300",
    }
    assert env.route.calls[0].request.headers["authorization"] == f"Bearer {KEY}"


def test_ungrouped_query_and_long_windows_in_chunks(env: Env) -> None:
    end = D1 + 25 * 86_400 + 100
    env.fetch(end=end, group_by=())
    assert env.route.call_count == 4 * 3
    first = [env.params(i) for i in range(3)]
    assert [(p["start"], p["end"]) for p in first] == [
        (str(D1 + 300), str(D1 + CHUNK)),
        (str(D1 + CHUNK + 300), str(D1 + 2 * CHUNK)),
        (str(D1 + 2 * CHUNK + 300), str(D1 + 25 * 86_400)),
    ]
    assert first[0]["query"] == "sum(model_project_id:tokens_in:rate5m)"


def test_a_poll_within_the_first_step_queries_nothing(env: Env) -> None:
    (usage,) = env.fetch(start=D2, end=D2 + 299).batches
    assert (usage.days, usage.watermark, env.route.call_count) == ({}, None, 0)


@pytest.mark.parametrize("status", [403, 404])
def test_a_non_enterprise_key_is_unsupported_and_explained(
    env: Env, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    env.route.mock(return_value=httpx.Response(status, json=fixture("error_not_enterprise")))
    err = env.fail()
    assert err.reason == "unsupported"
    assert str(err) == (
        f"Groq's Prometheus metrics API answered HTTP {status}: it is available to Enterprise "
        "organizations only, and Groq has no other usage API. Use a key of an Enterprise "
        "organization, or remove this account."
    )
    assert env.route.call_count == 1  # not retried
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_a_wrong_key_stays_an_auth_error(env: Env) -> None:
    body = {"error": {"message": "Invalid API Key", "type": "invalid_request_error"}}
    env.route.mock(return_value=httpx.Response(401, json=body))
    err = env.fail()
    assert (err.reason, str(err)) == ("auth", "GET /api/v1/query_range: HTTP 401: Invalid API Key")
    assert env.route.call_count == 1


@pytest.mark.parametrize(
    ("response", "reason", "message"),
    [
        (
            httpx.Response(400, json=fixture("error_bad_data")),
            "http_4xx",
            'GET /api/v1/query_range: HTTP 400: 1:5: parse error: unexpected identifier "by"',
        ),
        (
            httpx.Response(200, json={**matrix(), "isPartial": True}),
            "http_5xx",
            "GET /api/v1/query_range: partial response",
        ),
        (
            httpx.Response(
                200, json={"status": "success", "data": {"resultType": "vector", "result": []}}
            ),
            "parse",
            "GET /api/v1/query_range: expected a matrix result",
        ),
        (
            httpx.Response(200, json=matrix((LABELS, [[D1 + 300, "-1"]]))),
            "parse",
            "GET /api/v1/query_range: sample value '-1' is not a rate",
        ),
        (
            httpx.Response(200, json=matrix((LABELS, [[D1 + 300, 1.0]]))),
            "parse",
            "GET /api/v1/query_range: bad sample [1767225900, 1.0]",
        ),
    ],
)
def test_bad_answers_fail_the_poll(
    env: Env, response: httpx.Response, reason: str, message: str
) -> None:
    env.route.mock(return_value=response)
    err = env.fail()
    assert (err.reason, str(err)) == (reason, message)


def test_a_bad_sample_in_a_later_query_fails_the_dataset_with_nothing_kept(env: Env) -> None:
    # The four metrics make one dataset: the tokens already integrated are not published alone.
    env.bodies["requests"] = matrix((LABELS, [[D1 + 300, "NaN"], [D1 + 600, "x"]]))
    err = env.fail()
    assert (err.reason, str(err)) == ("parse", "GET /api/v1/query_range: bad sample value 'x'")
    assert env.route.call_count == 4


def test_a_long_rate_limit_is_handed_to_the_scheduler(env: Env) -> None:
    env.route.mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
    err = env.fail()
    assert (err.reason, err.retry_after) == ("rate_limited", 3600.0)
    assert env.route.call_count == 1
