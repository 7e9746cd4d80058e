"""Hostile provider responses through every registered provider's ``fetch``.

Table-driven over ``exporter.sources.providers.PROVIDERS``: a provider added to the
registry (with fixtures in ``tests/fixtures/<name>/``) is fuzzed without any
change here. Whatever a provider answers, ``fetch`` must return, every dataset
either read in finite data or failed with a classified ``ProviderError`` (never
another exception, never raised), and no error message may quote the API key.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.core.ledger import month_start
from exporter.core.records import FetchResult
from exporter.sources.providers import PROVIDERS
from exporter.sources.providers.base import REASONS, ProviderError, ProviderSettings
from exporter.sources.providers.client import HttpProvider

SECRET = "sk-admin-FUZZ-7f3c1e9a2b4d6f80-SECRET"
FIXTURES = Path(__file__).parent / "fixtures"
# Providers whose Options need values (the rest are fuzzed with their defaults).
OPTIONS: dict[str, dict[str, Any]] = {
    "github_copilot": {"organization": "acme"},
    "fireworks": {"account_id": "acme-ai"},
    "chatgpt": {"workspace_id": "ws-1"},
}
MAX_REQUESTS = 300  # per example: a parser looping on pages must still end

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        ["NaN", "Infinity", "-1", "1e400", "", "0x10", " 12 ", "null", "USD", "usd", "2026-01-01"]
    ),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
error_bodies = st.sampled_from(
    [
        {"error": {"message": f"Incorrect API key provided: {SECRET}", "type": "auth"}},
        {"error": f"invalid x-api-key {SECRET}"},
        {"message": f"Bad credentials for {SECRET}"},
        {"error": {"message": "Rate limit reached"}},
    ]
)


def _fixtures(provider: str) -> dict[str, Any]:
    directory = FIXTURES / provider
    if not directory.is_dir():
        return {}
    return {path.stem: json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))}


def _window(fixtures: dict[str, Any]) -> tuple[int, int]:
    """The month most of the provider's fixture timestamps fall in (else the current one)."""
    text = json.dumps(fixtures)
    stamps = [int(s) for s in re.findall(r"\b1[5-9]\d{8}\b", text)]
    stamps += [
        int(datetime.fromisoformat(d).replace(tzinfo=UTC).timestamp())
        for d in re.findall(r"\b(20\d\d-\d\d-\d\d)", text)
    ]
    months = Counter(month_start(stamp) for stamp in stamps)
    start = months.most_common(1)[0][0] if months else month_start(time.time())
    return start, start + 31 * 86_400


class Pages:
    """Serves each request the fixture that fits its path best; repeated requests to a path
    (pagination) get the next fitting fixture, so ``page1`` is followed by ``page2``."""

    def __init__(self, fixtures: dict[str, Any]) -> None:
        self._fixtures = fixtures
        self._seen: Counter[str] = Counter()

    def choices(self, path: str) -> list[str]:
        """Fitting fixture names, the one for this request first."""
        names = sorted(self._fixtures)
        words = set(re.split(r"[/_.\-]+", path.lower())) - {""}
        scores = {name: len(words & set(re.split(r"[_\-]+", name.lower()))) for name in names}
        best = max(scores.values(), default=0)
        fitting = [name for name in names if scores[name] == best] if best else names
        index = min(self._seen[path], len(fitting) - 1)
        self._seen[path] += 1
        return [fitting[index], *fitting[:index], *fitting[index + 1 :]]

    def __getitem__(self, name: str) -> Any:
        return self._fixtures[name]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(document: Any, data: st.DataObject) -> Any:
    document = json.loads(json.dumps(document))
    for _ in range(data.draw(st.integers(min_value=1, max_value=3), label="mutations")):
        paths = _paths(document)
        if not paths:
            return data.draw(json_values)
        path = data.draw(st.sampled_from(paths), label="path")
        parent = document
        for part in path[:-1]:
            parent = parent[part]
        if isinstance(parent, dict) and data.draw(st.booleans(), label="delete"):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(json_values, label="value")
    return document


HTTP_PROVIDERS = sorted(name for name, cls in PROVIDERS.items() if issubclass(cls, HttpProvider))
"""The providers that answer over HTTP (FOCUS files are fuzzed in test_provider_focus.py)."""


def _provider(name: str, transport: httpx.MockTransport) -> Any:
    provider_class = PROVIDERS[name]
    options_model = getattr(provider_class, "Options", None)
    options = options_model.model_validate(OPTIONS.get(name, {})) if options_model else None

    async def no_sleep(_: float) -> None:
        return None

    settings_ = ProviderSettings(
        account="fuzz",
        api_key=lambda: SECRET,
        timeout=5.0,
        group_by=("project", "model", "api_key", "user"),
        options=options,
    )
    return provider_class(
        settings_, observe=lambda endpoint, code: None, transport=transport, sleep=no_sleep
    )


def _run(name: str, handler: Any) -> None:
    start, end = _window(_fixtures(name))
    requests = 0

    def counted(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        if requests > MAX_REQUESTS:
            raise AssertionError(f"{name}: more than {MAX_REQUESTS} requests for one fetch")
        assert SECRET not in str(request.url)  # the key travels in headers only
        response: httpx.Response = handler(request)
        return response

    async def fetch() -> FetchResult:
        provider = _provider(name, httpx.MockTransport(counted))
        try:
            result: FetchResult = await provider.fetch(start, end)
            return result
        finally:
            await provider.aclose()

    result = asyncio.run(fetch())  # a dataset's ProviderError is in result.failures
    assert isinstance(result, FetchResult)
    read = [batch.dataset for batch in result.batches]
    assert len(read) == len(set(read)), (name, read)
    assert not set(read) & set(result.failures), (name, read, result.failures)
    assert read or result.failures, name
    for exc in result.failures.values():
        assert isinstance(exc, ProviderError), (name, exc)
        assert exc.reason in REASONS
        assert SECRET not in str(exc) and SECRET not in repr(exc), str(exc)
        assert exc.__cause__ is None or SECRET not in str(exc.__cause__)
    for batch in result.batches:
        for days in (batch.days, batch.long_context):
            for series in days.values():
                for key, value in series.items():
                    assert math.isfinite(value), (name, key, value)
        for key, value in batch.gauges.items():
            assert math.isfinite(value), (name, key, value)
        assert batch.skipped_rows >= 0
        assert bool(batch.skipped_rows) <= bool(batch.skipped_error), (name, batch)
        assert SECRET not in batch.skipped_error, batch.skipped_error


def _json_response(status: int, body: Any) -> httpx.Response:
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )


@pytest.mark.parametrize("name", HTTP_PROVIDERS)
@FUZZ
@given(data=st.data())
def test_mutated_fixture_pages(name: str, data: st.DataObject) -> None:
    fixtures = _fixtures(name)
    if not fixtures:
        pytest.fail(f"add recorded pages for provider {name!r} under tests/fixtures/{name}/")

    pages = Pages(fixtures)

    def handler(request: httpx.Request) -> httpx.Response:
        choices = pages.choices(request.url.path)
        # Mostly the fitting page (so parsing gets deep), sometimes any other.
        pick = data.draw(st.integers(0, 9), label="other fixture?")
        document = pages[choices[0] if pick < 8 else data.draw(st.sampled_from(choices))]
        if data.draw(st.integers(0, 9), label="mutate?") < 6:
            document = _mutate(document, data)
        return _json_response(200, document)

    _run(name, handler)


@pytest.mark.parametrize("name", HTTP_PROVIDERS)
@FUZZ
@given(data=st.data())
def test_random_responses(name: str, data: st.DataObject) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        status = data.draw(
            st.sampled_from([200, 200, 200, 204, 301, 400, 401, 403, 404, 429, 500, 503, 529]),
            label="status",
        )
        kind = data.draw(st.integers(0, 9), label="kind")
        if status >= 400 and kind < 4:
            return _json_response(status, data.draw(error_bodies, label="error"))
        if kind == 9:
            raw = data.draw(st.binary(max_size=64), label="raw")
            return httpx.Response(status, content=raw, headers={"Content-Type": "text/html"})
        headers = {"Content-Type": "application/json"}
        if status == 429:
            headers["Retry-After"] = data.draw(
                st.sampled_from(["1", "-5", "nan", "1e9", "Wed, 21 Oct 2015 07:28:00 GMT", ""]),
                label="retry-after",
            )
        body = json.dumps(data.draw(json_values, label="body")).encode()
        return httpx.Response(status, content=body, headers=headers)

    _run(name, handler)
