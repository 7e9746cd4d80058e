"""Shared HTTP layer of the provider clients: retries, error mapping, pagination, parsing."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
import respx

from exporter.sources.providers import PROVIDERS
from exporter.sources.providers.anthropic import AnthropicProvider
from exporter.sources.providers.base import (
    DEFAULT_MAX_RESPONSE_BYTES,
    NameCache,
    ProviderError,
    ProviderSettings,
)
from exporter.sources.providers.client import (
    ApiClient,
    ParamValue,
    check_base_url,
    encode_params,
    parse_retry_after,
    shared_tls_context,
)
from exporter.sources.providers.fields import (
    count,
    label,
    money,
    parse_rfc3339,
    query_end,
    rfc3339,
    watermark,
)
from exporter.sources.providers.openai import OpenAIProvider

T = TypeVar("T")
KEY = "sk-admin-FAKEKEY-do-not-leak-7f3a9c"
BASE = "https://api.example.test/v1"
URL = f"{BASE}/things"


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


class Harness:
    """An ApiClient with recorded observe() and sleep() calls."""

    def __init__(
        self,
        *,
        api_key: Callable[[], str] = lambda: KEY,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        **kwargs: Any,
    ) -> None:
        self.observed: list[tuple[str, str]] = []
        self.slept: list[float] = []
        settings = ProviderSettings(
            account="acct",
            api_key=api_key,
            base_url=BASE,
            timeout=5.0,
            max_response_bytes=max_response_bytes,
        )
        self.client = ApiClient(
            settings,
            default_base_url="https://unused.example.test",
            auth_headers=lambda key: {"Authorization": f"Bearer {key}"},
            observe=lambda endpoint, code: self.observed.append((endpoint, code)),
            sleep=self._sleep,
            rng=lambda: 0.5,
            **kwargs,
        )

    async def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)

    def get(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        async def go() -> dict[str, Any]:
            try:
                return await self.client.get_json("/things", params or {})
            finally:
                await self.client.aclose()

        return run(go())

    def fail(self, params: dict[str, Any] | None = None) -> ProviderError:
        with pytest.raises(ProviderError) as info:
            self.get(params)
        assert KEY not in str(info.value) and KEY not in repr(info.value)
        return info.value


def ok(body: Any) -> httpx.Response:
    return httpx.Response(200, json=body)


# --- get_json --------------------------------------------------------------------------------


@respx.mock
def test_success_sends_auth_user_agent_and_bracket_arrays() -> None:
    route = respx.get(URL).mock(return_value=ok({"a": 1}))
    h = Harness()
    body = h.get({"start_time": 10, "group_by": ("model", "project_id"), "flag": True})
    assert body == {"a": 1}
    request = route.calls.last.request
    assert request.url.params.multi_items() == [
        ("start_time", "10"),
        ("group_by[]", "model"),
        ("group_by[]", "project_id"),
        ("flag", "true"),
    ]
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["user-agent"] == "ai-cost-exporter/0.1.0"
    assert h.observed == [("/things", "200")]
    assert h.slept == []


@respx.mock
def test_a_response_declared_over_the_byte_cap_is_too_large() -> None:
    respx.get(URL).mock(return_value=httpx.Response(200, content=b"[" + b"0," * 600 + b"0]"))
    harness = Harness(max_response_bytes=1000)
    err = harness.fail()
    message = "GET /things: response of 1203 bytes (limit 1000)"
    assert (err.reason, str(err)) == ("too_large", message)
    assert harness.observed == [("/things", "200")]  # an answer, counted, never retried
    assert harness.slept == []


@respx.mock
def test_a_streamed_response_is_cut_off_at_the_byte_cap() -> None:
    sent = []

    async def endless() -> AsyncIterator[bytes]:  # no Content-Length: chunked, unbounded
        for i in range(100_000):
            sent.append(i)
            yield b" " * 100

    respx.get(URL).mock(return_value=httpx.Response(200, content=endless()))
    err = Harness(max_response_bytes=1000).fail()
    assert (err.reason, str(err)) == ("too_large", "GET /things: response over 1000 bytes")
    assert len(sent) <= 12  # read no further than the cap


@respx.mock
def test_a_redirect_is_never_followed_and_has_its_own_reason() -> None:
    route = respx.get(URL).mock(
        return_value=httpx.Response(302, headers={"Location": "https://evil.test/k?token=abc"})
    )
    elsewhere = respx.get(url__startswith="https://evil.test")
    harness = Harness()
    err = harness.fail()
    assert (err.reason, err.status) == ("redirect", 302)
    assert str(err) == "GET /things: HTTP 302 redirect to evil.test"  # the host only
    assert route.call_count == 1 and not elsewhere.called  # the key went nowhere else


@respx.mock
def test_a_body_nested_too_deep_is_a_parse_error() -> None:
    respx.get(URL).mock(return_value=httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000))
    err = Harness().fail()
    assert (err.reason, str(err)) == ("parse", "GET /things: response is not valid JSON")


@respx.mock
def test_an_error_message_echoing_the_key_near_its_cut_leaks_no_part_of_it() -> None:
    # The detail used to be cut to 300 characters before the key was scrubbed from it.
    message = "x " * 140 + KEY + " tail" * 60
    respx.get(URL).mock(return_value=httpx.Response(400, json={"error": {"message": message}}))
    err = Harness().fail()
    assert not [KEY[i : i + 12] for i in range(len(KEY) - 11) if KEY[i : i + 12] in str(err)]
    assert str(err).startswith("GET /things: HTTP 400: x x") and len(str(err)) < 340


@respx.mock
def test_key_is_read_on_every_request() -> None:
    keys = iter(["sk-one", "sk-two"])
    route = respx.get(URL).mock(return_value=ok({}))
    h = Harness(api_key=lambda: next(keys))

    async def go() -> None:
        await h.client.get_json("/things", {})
        await h.client.get_json("/things", {})
        await h.client.aclose()

    run(go())
    assert [c.request.headers["authorization"] for c in route.calls] == [
        "Bearer sk-one",
        "Bearer sk-two",
    ]


@pytest.mark.parametrize("status", [401, 403])
@respx.mock
def test_auth_errors_are_not_retried(status: int) -> None:
    body = {"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "invalid"}}
    respx.get(URL).mock(return_value=httpx.Response(status, json=body))
    h = Harness()
    err = h.fail()
    assert (err.reason, err.status) == ("auth", status)
    assert str(err) == f"GET /things: HTTP {status}: Incorrect API key provided: [redacted]."
    assert h.observed == [("/things", str(status))]
    assert h.slept == []


@respx.mock
def test_other_4xx_is_http_4xx_with_anthropic_message() -> None:
    body = {"type": "error", "error": {"type": "not_found_error", "message": "no such thing"}}
    respx.get(URL).mock(return_value=httpx.Response(404, json=body))
    h = Harness()
    err = h.fail()
    assert (err.reason, err.status) == ("http_4xx", 404)
    assert str(err) == "GET /things: HTTP 404: no such thing"
    assert h.observed == [("/things", "404")]


@respx.mock
def test_429_honours_retry_after_then_succeeds() -> None:
    route = respx.get(URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}, json={"error": {"message": "slow"}}),
            ok({"done": True}),
        ]
    )
    h = Harness()
    assert h.get() == {"done": True}
    assert h.slept == [7.0]
    assert h.observed == [("/things", "429"), ("/things", "200")]
    assert route.call_count == 2


@respx.mock
def test_429_with_long_retry_after_gives_up_at_once() -> None:
    respx.get(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
    h = Harness()
    err = h.fail()
    assert (err.reason, err.retry_after) == ("rate_limited", 3600.0)
    assert h.slept == []
    assert h.observed == [("/things", "429")]


@respx.mock
def test_429_without_retry_after_backs_off_and_finally_fails() -> None:
    respx.get(URL).mock(return_value=httpx.Response(429))
    h = Harness()
    err = h.fail()
    assert (err.reason, err.retry_after) == ("rate_limited", None)
    assert h.slept == [0.5, 1.0, 2.0]  # rng 0.5 × 1, 2, 4 s


@respx.mock
def test_5xx_four_times_is_http_5xx_with_jittered_backoff() -> None:
    respx.get(URL).mock(return_value=httpx.Response(500, json={"error": {"message": "oops"}}))
    h = Harness()
    err = h.fail()
    assert (err.reason, str(err), err.status) == ("http_5xx", "GET /things: HTTP 500: oops", 500)
    assert h.observed == [("/things", "500")] * 4
    assert h.slept == [0.5, 1.0, 2.0]


@respx.mock
def test_backoff_is_capped() -> None:
    respx.get(URL).mock(return_value=httpx.Response(503))
    h = Harness(attempts=6, backoff_base=10.0, backoff_cap=30.0)
    h.fail()
    assert h.slept == [5.0, 10.0, 15.0, 15.0, 15.0]


@respx.mock
def test_529_overloaded_is_retried_then_succeeds() -> None:
    respx.get(URL).mock(side_effect=[httpx.Response(529), httpx.Response(502), ok({})])
    h = Harness()
    assert h.get() == {}
    assert h.observed == [("/things", "529"), ("/things", "502"), ("/things", "200")]
    assert h.slept == [0.5, 1.0]


@respx.mock
def test_timeout() -> None:
    respx.get(URL).mock(side_effect=httpx.ReadTimeout("read timed out"))
    h = Harness()
    err = h.fail()
    assert (err.reason, str(err)) == ("timeout", "GET /things: no response within 5 s")
    assert h.observed == [("/things", "timeout")] * 4
    assert h.slept == [0.5, 1.0, 2.0]


@respx.mock
def test_connection_error_is_retried_and_scrubbed() -> None:
    respx.get(URL).mock(side_effect=[httpx.ConnectError(f"refused {KEY}"), ok({"x": 1})])
    h = Harness()
    assert h.get() == {"x": 1}
    assert h.observed == [("/things", "connection_error"), ("/things", "200")]
    respx.get(URL).mock(side_effect=httpx.ConnectError(f"refused {KEY}"))
    h = Harness()
    err = h.fail()
    assert (err.reason, str(err)) == ("connection", "GET /things: ConnectError: refused [redacted]")


@respx.mock
def test_malformed_json_is_parse_without_retry() -> None:
    respx.get(URL).mock(return_value=httpx.Response(200, text="{not json"))
    h = Harness()
    err = h.fail()
    assert (err.reason, str(err)) == ("parse", "GET /things: response is not valid JSON")
    assert h.observed == [("/things", "200")]


@respx.mock
def test_non_object_json_is_parse() -> None:
    respx.get(URL).mock(return_value=ok([1, 2]))
    err = Harness().fail()
    assert (err.reason, str(err)) == ("parse", "GET /things: expected a JSON object, got list")


@pytest.mark.parametrize("key", ["", "  ", "sk-bad\nkey", "sk bad", "sk-é"])
@respx.mock
def test_unusable_key_is_a_secret_error_without_request(key: str) -> None:
    route = respx.get(URL).mock(return_value=ok({}))
    err = Harness(api_key=lambda: key).fail()
    assert err.reason == "secret"
    assert key.strip() == "" or key not in str(err)
    assert route.call_count == 0


@respx.mock
def test_key_reader_error_propagates() -> None:
    def broken() -> str:
        raise ProviderError("secret", "key file /run/secrets/openai unreadable")

    err = Harness(api_key=broken).fail()
    assert (err.reason, str(err)) == ("secret", "key file /run/secrets/openai unreadable")


@respx.mock
def test_key_reader_crash_is_a_secret_error_without_its_message() -> None:
    def broken() -> str:
        raise OSError(f"cannot decrypt {KEY}")

    err = Harness(api_key=broken).fail()
    assert (err.reason, str(err)) == ("secret", "could not read the API key (OSError)")


def test_provider_error_rejects_unknown_reason() -> None:
    with pytest.raises(ValueError):
        ProviderError("weird", "x")


# --- pagination ------------------------------------------------------------------------------


def paged(h: Harness, coro: Callable[[ApiClient], Awaitable[T]]) -> T:
    async def go() -> T:
        try:
            return await coro(h.client)
        finally:
            await h.client.aclose()

    return run(go())


@respx.mock
def test_paginate_buckets_follows_next_page_with_same_query() -> None:
    route = respx.get(URL).mock(
        side_effect=[
            ok({"data": [{"n": 1}, {"n": 2}], "has_more": True, "next_page": "pg_2"}),
            ok({"data": [{"n": 3}], "has_more": False, "next_page": None}),
        ]
    )
    h = Harness()
    params: dict[str, ParamValue] = {"start_time": 5, "limit": 31, "group_by": ("model",)}
    buckets = paged(h, lambda c: c.paginate_buckets("/things", params))
    assert buckets == [{"n": 1}, {"n": 2}, {"n": 3}]
    first, second = (c.request.url.params.multi_items() for c in route.calls)
    assert first == [("start_time", "5"), ("limit", "31"), ("group_by[]", "model")]
    assert second == first + [("page", "pg_2")]


@respx.mock
def test_paginate_buckets_has_more_without_next_page_is_parse() -> None:
    respx.get(URL).mock(return_value=ok({"data": [], "has_more": True, "next_page": None}))
    with pytest.raises(ProviderError) as info:
        paged(Harness(), lambda c: c.paginate_buckets("/things", {}))
    assert (info.value.reason, str(info.value)) == (
        "parse",
        "GET /things: has_more without a next_page",
    )


@respx.mock
def test_paginate_buckets_page_cap_is_parse() -> None:
    route = respx.get(URL).mock(return_value=ok({"data": [], "has_more": True, "next_page": "p"}))
    with pytest.raises(ProviderError) as info:
        paged(Harness(), lambda c: c.paginate_buckets("/things", {}, page_cap=3))
    assert (info.value.reason, str(info.value)) == (
        "parse",
        "GET /things: still more pages after 3",
    )
    assert route.call_count == 3


@pytest.mark.parametrize(
    "body",
    [
        {"has_more": False},
        {"data": {"a": 1}, "has_more": False},
        {"data": [1], "has_more": False},
        {"data": []},
        {"data": [], "has_more": "no"},
    ],
)
@respx.mock
def test_paginate_buckets_wrong_shape_is_parse(body: dict[str, Any]) -> None:
    respx.get(URL).mock(return_value=ok(body))
    with pytest.raises(ProviderError) as info:
        paged(Harness(), lambda c: c.paginate_buckets("/things", {}))
    assert info.value.reason == "parse"


@respx.mock
def test_paginate_list_follows_last_id() -> None:
    route = respx.get(URL).mock(
        side_effect=[
            ok(
                {
                    "object": "list",
                    "data": [{"id": "a"}],
                    "first_id": "a",
                    "last_id": "a",
                    "has_more": True,
                }
            ),
            ok(
                {
                    "object": "list",
                    "data": [{"id": "b"}],
                    "first_id": "b",
                    "last_id": "b",
                    "has_more": False,
                }
            ),
        ]
    )
    h = Harness()
    items = paged(h, lambda c: c.paginate_list("/things", {"limit": 100}, cursor="after"))
    assert items == [{"id": "a"}, {"id": "b"}]
    assert [c.request.url.params.multi_items() for c in route.calls] == [
        [("limit", "100")],
        [("limit", "100"), ("after", "a")],
    ]


@respx.mock
def test_paginate_list_has_more_without_last_id_is_parse() -> None:
    respx.get(URL).mock(return_value=ok({"data": [], "has_more": True, "last_id": None}))
    with pytest.raises(ProviderError) as info:
        paged(Harness(), lambda c: c.paginate_list("/things", {}, cursor="after"))
    assert info.value.reason == "parse"


# --- base_url --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://api.openai.com/v1",
        "http://127.0.0.1:8080",
        "http://127.3.4.5/v1",
        "http://localhost:9000/v1",
        "http://[::1]:8080",
    ],
)
def test_base_url_accepted(url: str) -> None:
    check_base_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://api.openai.com/v1",
        "http://10.0.0.1",
        "http://localhost.evil.test",
        "ftp://x.test",
        "https://",
        "api.openai.com",
    ],
)
def test_base_url_refused(url: str) -> None:
    with pytest.raises(ValueError):
        check_base_url(url)


@pytest.mark.parametrize("cls", [OpenAIProvider, AnthropicProvider])
def test_providers_refuse_plain_http_base_url(
    cls: type[OpenAIProvider | AnthropicProvider],
) -> None:
    settings = ProviderSettings(account="a", api_key=lambda: KEY, base_url="http://example.test")
    with pytest.raises(ValueError, match="https"):
        cls(settings, observe=lambda e, c: None)


def test_settings_validate_group_by_and_hide_key() -> None:
    with pytest.raises(ValueError):
        ProviderSettings(account="a", api_key=lambda: KEY, group_by=("project", "team"))
    assert "api_key" not in repr(ProviderSettings(account="a", api_key=lambda: KEY))


def test_registry() -> None:
    assert PROVIDERS["openai"] is OpenAIProvider
    assert PROVIDERS["anthropic"] is AnthropicProvider
    assert all(cls.name == name for name, cls in PROVIDERS.items())  # type: ignore[attr-defined]


# --- values and time -------------------------------------------------------------------------


def test_money_accepts_numbers_and_strings() -> None:
    assert money(3.4125, "w") == Decimal("3.4125")
    assert money("1.02", "w") == Decimal("1.02")
    assert money(7, "w") == Decimal(7)
    assert money(" -0.5 ", "w") == Decimal("-0.5")


@pytest.mark.parametrize("value", [None, True, "abc", "NaN", "Infinity", float("inf"), {}, []])
def test_money_rejects_junk(value: Any) -> None:
    with pytest.raises(ProviderError) as info:
        money(value, "w")
    assert info.value.reason == "parse"


def test_count_and_label() -> None:
    row = {"a": 5, "b": None, "f": 3.0, "s": "x", "bad": "5", "neg": -1, "t": True, "n": 7}
    assert count(row, "a", "w") == 5
    assert count(row, "f", "w") == 3
    assert count(row, "b", "w", required=False) == 0
    assert count(row, "missing", "w", required=False) == 0
    for key in ("b", "missing", "bad", "neg", "t"):
        with pytest.raises(ProviderError):
            count(row, key, "w")
    assert label(row, "s", "w") == "x"
    assert label(row, "b", "w") is None
    with pytest.raises(ProviderError):
        label(row, "n", "w")
    # JSON may escape a lone surrogate, which no UTF-8 exposition or report can encode.
    decoded = json.loads('{"name": "Proj\\ud800 \u00fc\u6f22"}')
    assert label(decoded, "name", "w") == "Proj? \u00fc\u6f22"


def test_encode_params() -> None:
    assert encode_params({"a": "x", "b": 2, "c": False, "d": ["p", "q"], "e": ()}) == [
        ("a", "x"),
        ("b", "2"),
        ("c", "false"),
        ("d[]", "p"),
        ("d[]", "q"),
    ]


def test_retry_after_parsing() -> None:
    assert parse_retry_after(None) is None
    assert parse_retry_after("12") == 12.0
    assert parse_retry_after("junk") is None
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("Thu, 01 Jan 2026 00:01:40 GMT", now=1767225600.0) == 100.0


def test_time_helpers() -> None:
    day = 1767225600  # 2026-01-01T00:00:00Z
    assert query_end(day, day + 45_000) == day + 86_400
    assert query_end(day, day + 86_400) == day + 86_400
    assert query_end(day, day) == day + 86_400
    assert rfc3339(day) == "2026-01-01T00:00:00Z"
    assert parse_rfc3339("2026-01-01T00:00:00Z", "w") == day
    assert parse_rfc3339("2026-01-01T01:00:00+01:00", "w") == day
    for bad in ("2026-01-01T00:00:00", "yesterday", 5):
        with pytest.raises(ProviderError):
            parse_rfc3339(bad, "w")
    assert watermark(day + 100, []) is None
    assert watermark(day + 100, [day + 50, day + 20]) == day + 50
    assert watermark(day + 100, [day + 86_400]) == day + 100


# --- names cache -----------------------------------------------------------------------------


class Loader:
    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.names = {"p1": "One"}

    async def __call__(self) -> dict[str, str]:
        self.calls += 1
        if self.fail:
            raise ProviderError("http_5xx", "GET /names: HTTP 500")
        return dict(self.names)


def test_name_cache_refreshes_on_unseen_id_and_age(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    load = Loader()
    cache = NameCache(load, account="acct", clock=lambda: now[0])

    async def go() -> None:
        assert await cache.resolve({"p1"}) == {"p1": "One"}
        assert load.calls == 1
        now[0] += 3000
        assert await cache.resolve({"p1"}) == {"p1": "One"}
        assert load.calls == 1  # cached
        load.names = {"p1": "One", "p2": "Two"}
        assert await cache.resolve({"p1", "p2"}) == {"p1": "One", "p2": "Two"}
        assert load.calls == 2  # unseen id
        assert await cache.resolve({"p1", "gone"}) == {"p1": "One", "p2": "Two"}
        assert load.calls == 3  # another unseen id...
        assert await cache.resolve({"p1", "gone"}) == {"p1": "One", "p2": "Two"}
        assert load.calls == 3  # ...that the provider does not list: not asked again
        now[0] += 3600
        load.fail = True
        with caplog.at_level(logging.WARNING):
            assert await cache.resolve({"p1"}) == {"p1": "One", "p2": "Two"}  # stale: kept
        assert load.calls == 4
        load.fail = False
        assert await cache.resolve({"p1"}) == {"p1": "One", "p2": "Two"}
        assert load.calls == 5  # the failure did not count as fresh

    run(go())
    assert "account acct: could not load project names (http_5xx" in caplog.text


def test_name_cache_first_load_failure_gives_no_names() -> None:
    load = Loader()
    load.fail = True
    cache = NameCache(load, account="acct")
    assert run(cache.resolve({"p1"})) == {}


@pytest.mark.parametrize(
    ("headers", "wait"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "{reset}"}, 30.0),
    ],
)
def test_github_style_403_rate_limit_is_rate_limited_not_auth(
    headers: dict[str, str], wait: float
) -> None:
    reset = str(int(time.time()) + 30)
    headers = {k: v.format(reset=reset) for k, v in headers.items()}
    calls: list[tuple[str, str]] = []
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    responses = iter(
        [
            httpx.Response(
                403, headers=headers, json={"message": "API rate limit exceeded for org"}
            ),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    transport = httpx.MockTransport(lambda request: next(responses))
    settings = ProviderSettings(
        account="gh", api_key=lambda: "ghp_secretTOKEN", base_url="https://api.github.com"
    )
    client = ApiClient(
        settings,
        default_base_url="https://api.github.com",
        auth_headers=lambda key: {"Authorization": f"Bearer {key}"},
        observe=lambda e, c: calls.append((e, c)),
        transport=transport,
        sleep=sleep,
        rng=lambda: 0.5,
    )
    assert asyncio.run(client.get_json("/x", {})) == {"ok": True}
    assert calls == [("/x", "403"), ("/x", "200")]
    assert sleeps == [pytest.approx(wait, abs=2)]


def test_github_error_message_is_shown_and_plain_403_is_auth() -> None:
    transport = httpx.MockTransport(
        lambda request: httpx.Response(
            403, json={"message": "Resource not accessible by integration"}
        )
    )
    settings = ProviderSettings(
        account="gh", api_key=lambda: "ghp_x", base_url="https://api.github.com"
    )
    client = ApiClient(
        settings,
        default_base_url="https://api.github.com",
        auth_headers=lambda key: {"Authorization": f"Bearer {key}"},
        observe=lambda e, c: None,
        transport=transport,
    )
    with pytest.raises(ProviderError) as caught:
        asyncio.run(client.get_json("/x", {}))
    assert caught.value.reason == "auth"
    assert str(caught.value) == "GET /x: HTTP 403: Resource not accessible by integration"


@pytest.mark.parametrize("value", ["\ud800", "x" * 70_000])
def test_a_provider_value_no_url_can_carry_is_a_parse_error(value: str) -> None:
    # A page token from the answer sent back as it came: httpx refuses to build the URL.
    h = Harness()
    with respx.mock(base_url=BASE, assert_all_called=False), pytest.raises(ProviderError) as err:
        paged(h, lambda c: c.get_json("/things", {"page": value}))
    assert err.value.reason == "parse"
    assert "makes no valid request" in str(err.value)
    assert h.observed == []  # nothing was sent




def test_every_provider_client_verifies_tls_with_one_shared_context() -> None:
    """One CA bundle parsed for the process, not one per account; certificates and host
    names are still checked."""
    context = shared_tls_context()
    assert shared_tls_context() is context
    assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 50  # a CA bundle is loaded
