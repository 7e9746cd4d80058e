"""The waiting room: bounded in connections, bytes and descriptors, and it never spins or dies."""

from __future__ import annotations

import os
import resource
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from exporter.core.snapshot import AccountSnapshot, SnapshotStore
from exporter.web import waiting
from exporter.web.http import MetricsApp
from exporter.web.server import FD_RESERVE, Limits, WebServer, _room_size
from exporter.web.waiting import Waiting, WaitingRoom


@contextmanager
def serving(limits: Limits) -> Iterator[WebServer]:
    store = SnapshotStore([AccountSnapshot("openai", "main")])
    server = WebServer("127.0.0.1:0", MetricsApp(lambda: store.current), limits=limits)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def scrape(server: WebServer) -> int:
    return httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5).status_code


def closed(sock: socket.socket) -> bool:
    sock.settimeout(2)
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


def test_unfinished_heads_are_held_within_a_byte_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "HEAD_BUDGET", 100_000)
    with serving(Limits(header_timeout=5.0)) as server:
        partial = b"GET /metrics HTTP/1.1\r\nX-Pad: " + b"a" * 30_000
        socks = []
        for _ in range(5):  # 150 kB of unfinished heads against a 100 kB budget
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(partial)
            socks.append(sock)
            time.sleep(0.1)
        assert [closed(sock) for sock in socks[:2]] == [True, True]  # the oldest made room
        for sock in socks[2:]:
            sock.setblocking(False)
            with pytest.raises(BlockingIOError):
                sock.recv(10)
        assert scrape(server) == 200
        for sock in socks:
            sock.close()


def test_the_room_leaves_descriptors_to_the_rest_of_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Beside the room: 512 connections being served, as many responses being sent, 128 spare.
    monkeypatch.setattr(resource, "getrlimit", lambda _: (2048, 4096))
    assert _room_size(Limits()) == 2048 - 2 * 512 - FD_RESERVE
    assert _room_size(Limits(max_waiting=100)) == 100
    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 1024))
    assert _room_size(Limits()) == 64  # a floor: new connections can always come in
    monkeypatch.setattr(resource, "getrlimit", lambda _: (100_000, 100_000))
    assert _room_size(Limits()) == 1024
    with pytest.raises(ValueError, match="at least 1"):
        Limits(max_waiting=0)


class _WantsWriteOnce:
    """A TLS socket whose next read wants to write first (a full send buffer mid-handshake),
    then has nothing to read."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.reads = 0

    def fileno(self) -> int:
        return self._sock.fileno()

    def recv(self, size: int) -> bytes:
        self.reads += 1
        if self.reads == 1:
            raise ssl.SSLWantWriteError()
        raise ssl.SSLWantReadError()

    def close(self) -> None:
        self._sock.close()


def test_a_socket_that_wanted_to_write_goes_back_to_waiting_for_reads() -> None:
    listener, peer = socket.socketpair()
    a, b = socket.socketpair()
    room = WaitingRoom(listener, lambda _: None, web_config=None, header_timeout=5.0,
                       max_head_bytes=1000, max_waiting=10, write_timeout=5.0,
                       max_sending=10)  # fmt: skip
    flaky = _WantsWriteOnce(a)
    entry = Waiting(flaky, ("127.0.0.1", 1), time.monotonic(), None)  # type: ignore[arg-type]
    room._waiting[flaky] = entry  # type: ignore[index]
    room._selector.register(flaky, selectors.EVENT_READ, entry)
    room._progress(entry)
    assert room._selector.get_key(flaky).events == selectors.EVENT_WRITE
    room._progress(entry)  # writable again, and now it wants to read
    # Left registered for writing, the always-writable socket would wake the loop forever.
    assert room._selector.get_key(flaky).events == selectors.EVENT_READ
    for sock in (listener, peer, a, b):
        sock.close()


def test_an_error_in_the_loop_costs_a_connection_not_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = WaitingRoom._progress
    calls = {"n": 0}

    def once_broken(self: WaitingRoom, entry: Waiting) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("a bug")
        return real(self, entry)

    monkeypatch.setattr(WaitingRoom, "_progress", once_broken)
    with serving(Limits(header_timeout=2.0)) as server:
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=3)
        assert scrape(server) == 200


def test_the_open_files_limit_is_raised_to_the_hard_limit() -> None:
    # In a child: the suite's own limit stays as it is.
    code = (
        "import resource; from exporter.web.server import raise_open_files_limit; "
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE); "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard)); raise_open_files_limit(); "
        "print(resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard))"
    )
    import subprocess
    import sys

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.stdout.strip() == "True", result.stderr


def never_reading(port: int) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(b"GET /big HTTP/1.1\r\n\r\n")
    return sock


@contextmanager
def serving_big(limits: Limits) -> Iterator[WebServer]:
    big = b"x" * (8 << 20)  # more than the socket buffers hold

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = big if environ["PATH_INFO"] == "/big" else b"ok\n"
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        start_response("200 OK", headers)
        return [body]

    server = WebServer("127.0.0.1:0", app, limits=limits)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_responses_nobody_reads_hold_no_thread_and_the_oldest_give_way() -> None:
    # Twice as many never-readers as threads, and more than the outbox holds.
    limits = Limits(max_connections=4, max_requests=2, write_timeout=10.0)
    with serving_big(limits) as server:
        readers = [never_reading(server.port) for _ in range(8)]
        time.sleep(0.5)
        for _ in range(3):
            started = time.monotonic()
            response = httpx.get(f"http://127.0.0.1:{server.port}/small", timeout=5)
            assert (response.status_code, response.content) == (200, b"ok\n")
            assert time.monotonic() - started < 1.0
        # The outbox holds 4: the oldest never-readers were cut off for the newer responses.
        assert all(cut_off(sock) for sock in readers[:3])
        for sock in readers:
            sock.close()


def cut_off(sock: socket.socket) -> bool:
    """Whether the response ends (EOF or reset) before its 8 MiB."""
    sock.settimeout(3)
    received = 0
    try:
        while chunk := sock.recv(65536):
            received += len(chunk)
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False  # still being sent
    return received < 8 << 20


def test_a_response_must_be_taken_within_the_write_timeout_in_total() -> None:
    with serving_big(Limits(write_timeout=1.0)) as server:
        sock = never_reading(server.port)
        time.sleep(1.5)  # past the deadline: the server has given up on it
        assert cut_off(sock)
        assert httpx.get(f"http://127.0.0.1:{server.port}/small", timeout=5).status_code == 200
        sock.close()


def test_a_burst_of_503s_from_the_accepting_thread_never_blocks_it() -> None:
    # Every connection thread is busy: each complete head gets a 503 posted by the accepting
    # thread itself, hundreds in one pass (its wake-up pair must never fill and block it).
    release = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/slow":
            release.wait(20)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\n"]

    server = WebServer("127.0.0.1:0", app, limits=Limits(max_connections=2, max_requests=0))
    server.start()
    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
    try:
        for sock in held:
            sock.sendall(b"GET /slow HTTP/1.1\r\n\r\n")
        time.sleep(0.3)
        burst = []
        for _ in range(400):  # heads without their last line, completed all at once below
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"GET /metrics HTTP/1.1\r\n")
            burst.append(sock)
        time.sleep(0.3)
        for sock in burst:
            sock.sendall(b"\r\n")
        answers = []
        for sock in burst:
            sock.settimeout(5)
            answers.append(sock.recv(12))
        assert set(answers) == {b"HTTP/1.0 503"}
        release.set()
        assert scrape(server) == 200
    finally:
        release.set()
        for sock in [*held, *burst]:
            sock.close()
        server.stop()


def test_a_download_that_keeps_reading_is_never_cut_off_for_stalled_ones() -> None:
    limits = Limits(max_connections=8, write_timeout=20.0)
    with serving_big(limits) as server:
        reader = socket.create_connection(("127.0.0.1", server.port))
        reader.sendall(b"GET /big HTTP/1.1\r\n\r\n")
        reader.settimeout(5)
        received = 0
        stalled = []
        while True:  # a slow, steady client; never-readers keep arriving meanwhile
            chunk = reader.recv(65536)
            if not chunk:
                break
            received += len(chunk)
            if len(stalled) < 30:
                stalled.append(never_reading(server.port))
            time.sleep(0.005)
        assert received > 8 << 20  # the whole body and its headers
        for sock in [reader, *stalled]:
            sock.close()


def test_a_response_posted_after_stop_is_closed_not_kept() -> None:
    server = WebServer("127.0.0.1:0", lambda environ, start: [], limits=Limits())
    server.start()
    server.stop()
    a, b = socket.socketpair()
    server._room.outbox.post(a, [b"late"])
    assert a.fileno() == -1 and server._room.outbox._posted == []
    b.close()


def test_a_head_cut_off_by_the_client_closing_is_not_served() -> None:
    served: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        served.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
        return [b"ok\n"]

    server = WebServer("127.0.0.1:0", app, limits=Limits(max_requests=2))
    server.start()
    try:
        for _ in range(20):  # more than the request slots, all closing at once
            sock = socket.create_connection(("127.0.0.1", server.port))
            sock.sendall(b"GET /half HTTP/1.1\r\nHo")
            sock.close()
        time.sleep(0.3)
        assert httpx.get(f"http://127.0.0.1:{server.port}/whole", timeout=5).status_code == 200
        assert served == ["/whole"]
    finally:
        server.stop()
