"""The web server under hostile or clumsy clients, over real sockets, in bounded time."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest

from exporter.config.schema import parse_config
from exporter.core.snapshot import AccountSnapshot, SnapshotStore
from exporter.daemon import Daemon
from exporter.simulator import Simulator
from exporter.web.http import MetricsApp
from exporter.web.server import Limits, WebServer
from exporter.web.webconfig import WebConfigSource
from tests.integration.certs import Pki, make_pki

PASSWORD = "correct horse"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
FAST = Limits(header_timeout=1.0, write_timeout=2.0)


@contextmanager
def serving(
    app: Callable[..., Iterable[bytes]] | None = None,
    *,
    limits: Limits = FAST,
    web_config: WebConfigSource | None = None,
) -> Iterator[WebServer]:
    store = SnapshotStore([AccountSnapshot("openai", "main")])
    server = WebServer(
        "127.0.0.1:0",
        app or MetricsApp(lambda: store.current),
        web_config=web_config,
        limits=limits,
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def exchange(port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send ``data`` and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def test_concurrent_scrapes_all_succeed() -> None:
    with serving() as server:
        url = f"http://127.0.0.1:{server.port}/metrics"

        client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=30))

        def scrape(_: int) -> int:
            response = client.get(url)
            assert "aicost_build_info" in response.text
            return response.status_code

        with client, ThreadPoolExecutor(max_workers=30) as pool:
            codes = list(pool.map(scrape, range(150)))
    assert codes == [200] * 150


def test_slow_loris_and_idle_clients_do_not_hold_the_server() -> None:
    with serving() as server:
        slow = []
        for _ in range(40):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            slow.append(sock)
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(10)]
        started = time.monotonic()
        # Scrapes are served at once while the slow clients trickle their headers.
        for _ in range(5):
            for sock in slow:
                sock.sendall(b"X")
            scrape = time.monotonic()
            response = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
            assert response.status_code == 200
            assert time.monotonic() - scrape < 0.5
            time.sleep(0.15)
        # The header deadline is total, not per read: trickling does not extend it.
        for sock in [*slow, *idle]:
            data = b""
            try:
                while chunk := sock.recv(4096):
                    data += chunk
            except (ConnectionResetError, BrokenPipeError):
                pass
            assert data.startswith(b"HTTP/1.0 408"), data[:40]
            sock.close()
        assert time.monotonic() - started < FAST.header_timeout + 1.0


def test_over_the_request_limit_is_503_at_once_and_health_still_answers() -> None:
    release = threading.Event()
    entered = threading.Semaphore(0)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            entered.release()
            release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\n"]

    with serving(app, limits=Limits(max_requests=2, header_timeout=2.0)) as server:
        base = f"http://127.0.0.1:{server.port}"
        with ThreadPoolExecutor(max_workers=2) as pool:
            held = [pool.submit(httpx.get, base + "/slow", timeout=10) for _ in range(2)]
            assert entered.acquire(timeout=5) and entered.acquire(timeout=5)
            started = time.monotonic()
            over = httpx.get(base + "/metrics", timeout=5)
            assert over.status_code == 503
            assert over.headers["retry-after"] == "1"
            assert time.monotonic() - started < 0.5
            assert httpx.get(base + "/-/healthy", timeout=5).status_code == 200
            release.set()
            assert [f.result().status_code for f in held] == [200, 200]
        assert httpx.get(base + "/metrics", timeout=5).status_code == 200


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n", 431),
        (b"GET /metrics HTTP/1.1\r\n" + b"X-A: b\r\n" * 150 + b"\r\n", 431),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 10000000\r\n\r\n", 413),
        (b"GET /metrics HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 405),
        (b"DELETE /metrics HTTP/1.1\r\n\r\n", 405),
        (b"FOO / HTTP/1.1\r\n\r\n", 405),
        (b"GET /nope HTTP/1.1\r\n\r\n", 404),
        (b"GET /../../etc/passwd HTTP/1.1\r\n\r\n", 404),
        (b"garbage\r\n\r\n", 400),
        (b"GET /metrics HTTP/9.9\r\n\r\n", 505),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
        (b"GET /metrics\r\n\r\n", 400),  # HTTP/0.9: answered with a status line, refused
        (b"GET /metrics HTTP/1.1\r\nContent-Length: \xb2\r\n\r\n", 400),  # "²".isdigit()
    ],
    ids=[
        "long line",
        "big header",
        "many headers",
        "big body",
        "bad length",
        "post",
        "delete",
        "unknown method",
        "unknown path",
        "traversal",
        "garbage",
        "http 9.9",
        "h2 preface",
        "http 0.9",
        "non-ascii length",
    ],
)
def test_bad_requests_get_4xx_and_scrapes_go_on(request_bytes: bytes, status: int) -> None:
    with serving() as server:
        response = exchange(server.port, request_bytes)
        assert status_of(response) == status, response[:80]
        assert httpx.get(f"http://127.0.0.1:{server.port}/metrics").status_code == 200


def test_responses_carry_no_server_version_banner() -> None:
    with serving() as server:
        for path in ("/", "/metrics", "/-/healthy", "/nope"):
            response = httpx.get(f"http://127.0.0.1:{server.port}{path}")
            assert "server" not in response.headers, (path, response.headers)


def test_connection_cap_sheds_extra_connections_then_recovers() -> None:
    release = threading.Event()
    entered = threading.Semaphore(0)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            entered.release()
            release.wait(10)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\n"]

    limits = Limits(max_connections=3, max_requests=0, header_timeout=1.0)
    with serving(app, limits=limits) as server:
        base = f"http://127.0.0.1:{server.port}"
        with ThreadPoolExecutor(max_workers=3) as pool:
            held = [pool.submit(httpx.get, base + "/slow", timeout=10) for _ in range(3)]
            assert all(entered.acquire(timeout=5) for _ in range(3))
            shed = exchange(server.port, b"GET /metrics HTTP/1.1\r\n\r\n")
            assert shed.startswith(b"HTTP/1.0 503 Service Unavailable\r\n"), shed
            assert shed.endswith(b"\r\n\r\n503 Service Unavailable: too many connections\n")
            assert b"Retry-After: 1\r\n" in shed
            release.set()
            assert [f.result().status_code for f in held] == [200] * 3
        assert httpx.get(base + "/metrics", timeout=5).status_code == 200


def test_silent_connections_take_no_thread_and_the_oldest_make_room() -> None:
    # Far more silent connections than threads: scrapes are served at once. Past the waiting
    # room's size the longest-waiting connection is closed, never the new one.
    limits = Limits(max_connections=4, max_waiting=50, header_timeout=5.0)
    with serving(limits=limits) as server:
        silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(80)]
        for _ in range(5):
            started = time.monotonic()
            response = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
            assert response.status_code == 200
            assert time.monotonic() - started < 0.5
        for sock in silent[:30]:  # the oldest were closed to make room, without a reply
            sock.settimeout(2)
            assert sock.recv(10) == b""
        for sock in silent[31:]:  # the newest still wait (the deadline is 5 s)
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(10)
        for sock in silent:
            sock.close()


def test_a_client_that_does_not_read_its_response_holds_no_request_slot() -> None:
    big = b"x" * (8 << 20)  # more than the socket buffers hold

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(big)))]
        start_response("200 OK", headers)
        return [big]

    with serving(app, limits=Limits(max_requests=2, write_timeout=5.0)) as server:
        readers = []
        for _ in range(6):  # three times the request slots
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")  # and never reads
            readers.append(sock)
        time.sleep(0.3)
        for _ in range(3):
            response = httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
            assert (response.status_code, len(response.content)) == (200, len(big))
        for sock in readers:
            sock.close()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def web_config(pki: Pki, extra: str = "") -> WebConfigSource:
    path = pki.ca.parent / f"web-{abs(hash(extra))}.yml"
    path.write_text(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n"
        + extra
        + "http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
        + "    Strict-Transport-Security: max-age=60\n"
        + f"basic_auth_users:\n  prometheus: {HASH}\n"
    )
    return WebConfigSource(path)


def test_tls_basic_auth_and_headers(pki: Pki) -> None:
    with serving(web_config=web_config(pki)) as server:
        base = f"https://127.0.0.1:{server.port}"
        trusted = ssl.create_default_context(cafile=str(pki.ca))
        with httpx.Client(verify=trusted, timeout=5) as client:
            ok = client.get(base + "/metrics", auth=("prometheus", PASSWORD))
            assert ok.status_code == 200 and "aicost_build_info" in ok.text
            assert ok.headers["x-content-type-options"] == "nosniff"
            assert ok.headers["strict-transport-security"] == "max-age=60"
            for auth in (None, ("prometheus", "wrong"), ("root", PASSWORD)):
                denied = client.get(base + "/metrics", auth=auth)
                assert denied.status_code == 401
                assert denied.headers["www-authenticate"].startswith("Basic")
                assert denied.headers["x-content-type-options"] == "nosniff"
                assert "aicost" not in denied.text
            for path in ("/", "/-/ready", "/nope"):
                assert client.get(base + path).status_code == 401
            assert client.get(base + "/-/healthy").status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(base + "/metrics", verify=True)  # not a publicly trusted certificate
        plain = exchange(server.port, b"GET /metrics HTTP/1.1\r\n\r\n")
        assert b"aicost" not in plain


def test_stalled_tls_handshake_does_not_block_accepting(pki: Pki) -> None:
    with serving(web_config=web_config(pki)) as server:
        stalled = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
        started = time.monotonic()
        response = httpx.get(
            f"https://127.0.0.1:{server.port}/metrics",
            verify=ssl.create_default_context(cafile=str(pki.ca)),
            auth=("prometheus", PASSWORD),
            timeout=5,
        )
        assert response.status_code == 200
        assert time.monotonic() - started < 0.5
        for sock in stalled:
            sock.settimeout(FAST.header_timeout + 2)
            assert sock.recv(10) == b""  # closed by the server at the deadline
            sock.close()


def test_mutual_tls(pki: Pki) -> None:
    source = web_config(
        pki, "  client_ca_file: ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n"
    )
    with serving(web_config=source) as server:
        url = f"https://127.0.0.1:{server.port}/metrics"
        auth = ("prometheus", PASSWORD)

        def client_context(cert: Path | None, key: Path | None) -> ssl.SSLContext:
            context = ssl.create_default_context(cafile=str(pki.ca))
            if cert is not None and key is not None:
                context.load_cert_chain(cert, key)
            return context

        good = client_context(pki.client_cert, pki.client_key)
        assert httpx.get(url, verify=good, auth=auth, timeout=5).status_code == 200
        for context in (client_context(None, None), client_context(pki.rogue_cert, pki.rogue_key)):
            with pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)):
                httpx.get(url, verify=context, auth=auth, timeout=5)


def test_web_config_change_applies_to_the_next_connection(pki: Pki) -> None:
    path = pki.ca.parent / "live.yml"
    path.write_text(f"basic_auth_users:\n  prometheus: {HASH}\n")
    with serving(web_config=WebConfigSource(path)) as server:
        url = f"http://127.0.0.1:{server.port}/metrics"
        assert httpx.get(url, auth=("prometheus", PASSWORD)).status_code == 200
        new_hash = bcrypt.hashpw(b"rotated", bcrypt.gensalt(4)).decode()
        path.write_text(f"basic_auth_users:\n  prometheus: {new_hash}\n")
        assert httpx.get(url, auth=("prometheus", PASSWORD)).status_code == 401
        assert httpx.get(url, auth=("prometheus", "rotated")).status_code == 200
        path.write_text("basic_auth_users: [broken\n")
        assert httpx.get(url, auth=("prometheus", "rotated")).status_code == 200


def test_hostile_clients_block_neither_scrapes_nor_polling() -> None:
    sim = Simulator(seed=3)
    sim.start("127.0.0.1", 0)
    config = parse_config(
        f"""
accounts:
  - name: oai
    provider: openai
    api_key: ${{KEY}}
    base_url: {sim.openai_base_url}
    poll_interval: 10s
""",
        env={"KEY": sim.openai_key},
    )
    daemon = Daemon(config, "127.0.0.1:0")
    daemon.server = WebServer("127.0.0.1:0", MetricsApp(lambda: daemon.store.current), limits=FAST)
    for poller in daemon.pollers.values():
        poller.poll_interval = 0.3  # the config minimum is 10 s; the test has no time for that
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(daemon.serve(),))
    thread.start()
    port = daemon.server.port
    try:
        deadline = time.monotonic() + 10
        while sim.request_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = sim.request_count()
        attackers: list[socket.socket] = []
        end = time.monotonic() + 2.5
        scrapes = 0
        while time.monotonic() < end:
            for _ in range(10):  # a steady stream of slow and idle connections
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=1)
                    sock.sendall(b"GET /metrics HTTP/1.1\r\nHo")
                    attackers.append(sock)
                except OSError:
                    pass
            started = time.monotonic()
            response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
            assert response.status_code == 200
            assert time.monotonic() - started < 1.0
            scrapes += 1
            time.sleep(0.05)
        assert scrapes > 10
        # Polls went on: the provider kept being called during the attack.
        assert sim.request_count() - before >= 2 * 8
        for sock in attackers:
            sock.close()
    finally:
        loop.call_soon_threadsafe(daemon.stop)
        thread.join(10)
        loop.close()
        sim.stop()


def test_basic_auth_header_parsing_is_strict(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  prometheus: {HASH}\n")
    with serving(web_config=WebConfigSource(path)) as server:
        for header in (
            "Basic " + base64.b64encode(f"prometheus:{PASSWORD}x".encode()).decode(),
            "Basic " + base64.b64encode(b"prometheus").decode(),
            "Digest " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode(),
            "Basic",
        ):
            request = f"GET /metrics HTTP/1.1\r\nAuthorization: {header}\r\n\r\n"
            assert status_of(exchange(server.port, request.encode())) == 401
        good = "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
        request = f"GET /metrics HTTP/1.1\r\nAuthorization: {good}\r\n\r\n"
        assert status_of(exchange(server.port, request.encode())) == 200
