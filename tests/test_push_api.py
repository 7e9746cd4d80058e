"""POST /api/v1/usage: auth, validation, limits, idempotency; concurrent pushers over sockets."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from exporter.core.records import DAY
from exporter.core.snapshot import Snapshot
from exporter.sources.push.api import PUSH_PATH, PushApi
from exporter.sources.push.settings import PushConfig
from exporter.sources.push.store import EventStore
from exporter.sources.push.wiring import PseudoAccounts
from exporter.web.http import MetricsApp
from exporter.web.server import Limits, WebServer

NOV = 1793491200  # 2026-11-01T00:00:00Z
NOW = NOV + 25 * DAY + 13 * 3600  # 2026-11-26T13:00:00Z
TOKEN = "push-token-DoNotLeak-1"
OTHER_TOKEN = "push-token-DoNotLeak-2"


def sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def push_config(tmp_path: Path, **overrides: Any) -> PushConfig:
    data: dict[str, Any] = {
        "database": tmp_path / "push.db",
        "accounts": [
            {"name": "team-a", "provider": "perplexity"},
            {"name": "team-b", "provider": "openai"},
        ],
        "tokens": [
            {"name": "gateway", "token_sha256": sha(TOKEN), "accounts": ["team-a", "team-b"]},
            {
                "name": "team-b-only",
                "token_sha256": sha(OTHER_TOKEN).upper(),
                "accounts": ["team-b"],
            },
        ],
    }
    data.update(overrides)
    return PushConfig.model_validate(data)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[PushApi]:
    config = push_config(tmp_path)
    assert config.database is not None
    store = EventStore(config.database)
    yield PushApi(config, store, clock=lambda: NOW)
    store.close()


def event(i: int = 1, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": f"evt-{i}",
        "timestamp": "2026-11-26T10:00:00Z",
        "provider": "perplexity",
        "account": "team-a",
        "project": "search",
        "model": "sonar-pro",
        "tokens": {"input": 1200, "input_cache_read": 0, "output": 300},
        "requests": 1,
        "cost_usd": 0.0123,
    }
    base.update(overrides)
    return base


def call(
    app: PushApi,
    body: bytes | dict[str, Any] | None,
    *,
    token: str | None = TOKEN,
    method: str = "POST",
    length: str | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    data = json.dumps(body).encode() if isinstance(body, dict) else (body or b"")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "PATH_INFO": PUSH_PATH,
        "wsgi.input": io.BytesIO(data),
        "CONTENT_LENGTH": str(len(data)) if length is None else length,
    }
    if token is not None:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    out = b"".join(app(environ, start_response))
    assert seen["headers"]["Content-Type"] == "application/json"
    assert int(seen["headers"]["Content-Length"]) == len(out)
    return int(seen["status"].split()[0]), json.loads(out), seen["headers"]


def stored(app: PushApi, account: str = "team-a") -> int:
    return sum(row.requests for row in app.store.daily(account, 0, NOW + DAY))


def test_accepted_then_duplicates(api: PushApi) -> None:
    assert call(api, {"events": [event(1), event(2)]})[:2] == (
        200, {"accepted": 2, "duplicates": 0})  # fmt: skip
    assert call(api, {"events": [event(2), event(3), event(3)]})[:2] == (
        200, {"accepted": 1, "duplicates": 2})  # fmt: skip
    assert stored(api) == 3


def test_an_empty_batch_is_fine(api: PushApi) -> None:
    assert call(api, {"events": []})[:2] == (200, {"accepted": 0, "duplicates": 0})


@pytest.mark.parametrize("token", [None, "", "wrong", TOKEN + "x", sha(TOKEN)])
def test_bad_or_missing_token_is_401_and_stores_nothing(
    api: PushApi, token: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    status, body, headers = call(api, {"events": [event()]}, token=token)
    assert (status, body) == (401, {"error": "missing or invalid bearer token"})
    assert headers["WWW-Authenticate"] == 'Bearer realm="ai-cost-exporter"'
    assert stored(api) == 0
    assert TOKEN not in caplog.text


def test_basic_scheme_is_not_a_bearer_token(api: PushApi) -> None:
    environ_token = "Basic " + TOKEN
    assert api.authenticate(environ_token) is None
    assert api.authenticate("bearer " + TOKEN) is not None  # the scheme is case-insensitive
    assert api.authenticate(None) is None


def test_a_token_writes_only_its_accounts(api: PushApi) -> None:
    batch = {"events": [event(1, account="team-b", provider="openai"), event(2)]}
    status, body, _ = call(api, batch, token=OTHER_TOKEN)
    assert (status, body) == (403, {"errors": [
        {"event": 1, "field": "account", "message": "this token may not push to account 'team-a'"}
    ]})  # fmt: skip
    assert stored(api, "team-b") == 0
    assert call(api, {"events": batch["events"][:1]}, token=OTHER_TOKEN)[0] == 200
    assert stored(api, "team-b") == 1


def test_a_batch_with_one_bad_event_stores_nothing(api: PushApi) -> None:
    batch = {"events": [event(1), event(2, tokens={"output": -3}), event(3, id=None), "x"]}
    status, body, _ = call(api, batch)
    assert status == 422
    assert body == {"errors": [
        {"event": 1, "field": "tokens.output", "message": "must not be negative"},
        {"event": 2, "field": "id", "message": "required"},
        {"event": 3, "field": "", "message": "must be a JSON object"},
    ]}  # fmt: skip
    assert stored(api) == 0


@pytest.mark.parametrize(
    ("body", "status", "expected"),
    [
        (b"{not json", 400, {"error": "the body is not valid JSON: Expecting property name "
                                      "enclosed in double quotes at line 1, column 2"}),
        (b"\xff\xfe", 400, {"error": "the body is not valid JSON: not UTF-8"}),
        (b"[]", 400, {"error": 'expected a JSON object {"events": [...]}'}),
        (b"{}", 422, {"errors": [
            {"event": None, "field": "events", "message": "required: a list of events"}]}),
        (b'{"events": [], "extra": 1}', 422, {"errors": [
            {"event": None, "field": "extra", "message": "unknown field"}]}),
        (b"[" * 100_000 + b"]" * 100_000, 400,
         {"error": "the body is not valid JSON: nested too deeply"}),
        (b'{"events": [{"id": "a", "model": "x\\ud800"}]}', 422, None),
    ],
)  # fmt: skip
def test_malformed_bodies(api: PushApi, body: bytes, status: int, expected: Any) -> None:
    got_status, got, _ = call(api, body)
    assert got_status == status
    if expected is None:  # an escaped lone surrogate: refused naming the event and field
        assert {"event": 0, "field": "model",
                "message": "must be valid Unicode (it contains a lone surrogate)"} in got["errors"]
    else:
        assert got == expected
    assert stored(api) == 0


def test_limits(tmp_path: Path) -> None:
    config = push_config(tmp_path, max_events=3, max_body_bytes=2048)
    assert config.database is not None
    app = PushApi(config, EventStore(config.database), clock=lambda: NOW)
    assert call(app, {"events": [event(i) for i in range(4)]})[:2] == (
        413, {"error": "4 events in one batch; at most 3"})  # fmt: skip
    big = {"events": [event(1, model="m" * 3000)]}
    status, body, _ = call(app, big)
    assert status == 413 and body["error"].endswith("bytes; at most 2048")
    assert call(app, b"", length="")[:2] == (411, {"error": "a Content-Length header is required"})
    assert call(app, {"events": []}, method="GET")[0] == 405
    assert call(app, {"events": [event(1, timestamp=NOW + 3600)]})[:2] == (422, {"errors": [
        {"event": 0, "field": "timestamp", "message": "is in the future"}]})  # fmt: skip
    assert stored(app) == 0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, PseudoAccounts]]:
    from exporter.config.schema import Config

    config = Config.model_validate({"accounts": [], "push": push_config(tmp_path).model_dump()})
    pseudo = PseudoAccounts(config)
    web = WebServer(
        "127.0.0.1:0",
        pseudo.app(MetricsApp(lambda: Snapshot())),
        limits=Limits(max_requests=0, max_body_bytes=pseudo.max_body_bytes(65536)),
    )
    web.start()
    try:
        yield f"http://127.0.0.1:{web.port}", pseudo
    finally:
        web.stop()
        pseudo.close()


def test_a_body_that_does_not_arrive_in_time_is_408(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exporter.config.schema import Config

    config = Config.model_validate({"accounts": [], "push": push_config(tmp_path).model_dump()})
    pseudo = PseudoAccounts(config)
    web = WebServer(
        "127.0.0.1:0",
        pseudo.app(MetricsApp(lambda: Snapshot())),
        limits=Limits(max_requests=0, body_timeout=0.5, max_body_bytes=65536),
    )
    monkeypatch.setattr("exporter.sources.push.api.BODY_TIMEOUT", 0.5)
    web.start()
    try:
        with socket.create_connection(("127.0.0.1", web.port), timeout=5) as sock:
            head = (
                "POST /api/v1/usage HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n"
            )
            sock.sendall(head.encode() + b'{"events": [')  # and then nothing
            response = b""
            while chunk := sock.recv(4096):  # the reply may come in several segments
                response += chunk
        assert response.startswith(b"HTTP/1.0 408"), response
        assert b"the body did not arrive within 0.5 s" in response
    finally:
        web.stop()
        pseudo.close()


def test_concurrent_pushers_over_http(server: tuple[str, PseudoAccounts]) -> None:
    url, pseudo = server
    results: list[dict[str, int]] = []
    lock = threading.Lock()
    now = time.time() - 60

    def pusher(worker: int) -> None:
        with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            for batch in range(10):
                # Every batch is sent twice (a client retry): the second is all duplicates.
                events = [event(worker * 1000 + batch * 10 + i, timestamp=now) for i in range(10)]
                for _ in range(2):
                    response = client.post(url + PUSH_PATH, json={"events": events}, timeout=30)
                    assert response.status_code == 200, response.text
                    with lock:
                        results.append(response.json())

    threads = [threading.Thread(target=pusher, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r["accepted"] for r in results) == 8 * 10 * 10
    assert sum(r["duplicates"] for r in results) == 8 * 10 * 10
    assert pseudo.store is not None
    rows = pseudo.store.daily("team-a", 0, int(now) + DAY)
    assert len(rows) == 1
    row = rows[0]
    assert row.requests == 800 and row.cost_events == 800
    assert row.cost_usd == pytest.approx(800 * 0.0123)


def test_other_paths_still_reach_the_metrics_app(server: tuple[str, PseudoAccounts]) -> None:
    url, _ = server
    assert httpx.get(url + "/-/healthy").text == "Healthy\n"
    assert (
        httpx.get(url + PUSH_PATH, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 405
    )


def test_push_uses_its_bearer_tokens_when_basic_auth_is_on(tmp_path: Path) -> None:
    import bcrypt

    from exporter.config.schema import Config
    from exporter.web.webconfig import WebConfigSource

    web_file = tmp_path / "web.yml"
    password_hash = bcrypt.hashpw(b"scrape-secret", bcrypt.gensalt(4)).decode()
    web_file.write_text(f"basic_auth_users:\n  prometheus: {password_hash}\n")
    config = Config.model_validate({"accounts": [], "push": push_config(tmp_path).model_dump()})
    pseudo = PseudoAccounts(config)
    web = WebServer(
        "127.0.0.1:0",
        pseudo.app(MetricsApp(lambda: Snapshot())),
        web_config=WebConfigSource(web_file),
        limits=Limits(max_body_bytes=pseudo.max_body_bytes(65536)),
    )
    web.start()
    try:
        url = f"http://127.0.0.1:{web.port}"
        body = {"events": [event(1, timestamp=time.time() - 60)]}
        ok = httpx.post(url + PUSH_PATH, json=body, headers={"Authorization": f"Bearer {TOKEN}"})
        assert (ok.status_code, ok.json()) == (200, {"accepted": 1, "duplicates": 0})
        # Basic credentials are not a push token; and the other paths still need them.
        basic = httpx.post(url + PUSH_PATH, json=body, auth=("prometheus", "scrape-secret"))
        assert basic.status_code == 401
        assert httpx.get(url + "/metrics").status_code == 401
        assert httpx.get(url + "/metrics", auth=("prometheus", "scrape-secret")).status_code == 200
    finally:
        web.stop()
        pseudo.close()


def test_a_full_disk_is_503_with_retry_after_and_its_real_cause_logged(
    api: PushApi, caplog: pytest.LogCaptureFixture
) -> None:
    assert call(api, {"events": [event(1)]})[0] == 200
    # SQLite's page limit fails a write exactly as a full disk does (SQLITE_FULL).
    pages = api.store._db.execute("PRAGMA page_count").fetchone()[0]
    api.store._db.execute(f"PRAGMA max_page_count = {pages}")
    big = [event(i, project=f"p{i}-" + "x" * 190) for i in range(2, 200)]
    status, body, headers = call(api, {"events": big})
    assert (status, headers.get("Retry-After")) == (503, "5"), body
    assert body == {"error": "the events could not be stored; retry"}
    [record] = [r for r in caplog.records if r.getMessage() == "push could not be stored"]
    assert "database or disk is full" in record.err
    assert "cannot rollback" not in record.err
    assert stored(api) == 1  # the batch is wholly absent, the earlier event intact
    api.store._db.execute("PRAGMA max_page_count = 1073741823")
    assert call(api, {"events": big})[:2] == (200, {"accepted": 198, "duplicates": 0})


def test_a_slow_push_holds_a_push_slot_not_a_scrape_slot(tmp_path: Path) -> None:
    from exporter.config.schema import Config

    config = Config.model_validate({"accounts": [], "push": push_config(tmp_path).model_dump()})
    pseudo = PseudoAccounts(config)
    web = WebServer(
        "127.0.0.1:0",
        pseudo.app(MetricsApp(lambda: Snapshot())),
        limits=Limits(max_requests=1, body_timeout=5.0, max_body_bytes=65536),
    )
    web.start()
    try:
        # The push path spelled with an escape, as the app decodes it: still a push.
        for path in (PUSH_PATH, PUSH_PATH.replace("u", "%75", 1)):
            with socket.create_connection(("127.0.0.1", web.port), timeout=5) as sock:
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {TOKEN}\r\nContent-Length: 100\r\n\r\n"
                )
                sock.sendall(head.encode() + b'{"events": [')  # the rest trickles later
                time.sleep(0.3)
                scrape = httpx.get(f"http://127.0.0.1:{web.port}/metrics", timeout=5)
                assert scrape.status_code == 200, (path, scrape.text)
    finally:
        web.stop()
        pseudo.close()
