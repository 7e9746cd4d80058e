"""Hostile peers of the real exporter process, for the attack tests and ``bench/attacks.py``.

Every attack is loopback only and bounded in count and time; each helper returns what it
measured, so the tests assert on it and the bench prints it.
"""

from __future__ import annotations

import hashlib
import json
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

PROMETHEUS_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5",
    "Accept-Encoding": "gzip",
}


@dataclass(frozen=True)
class Scrapes:
    """How scrapes made like Prometheus's (gzip, 10 s timeout) fared."""

    ok: int
    total: int
    median_s: float
    worst_s: float
    failures: tuple[str, ...]
    """What the failed scrapes got (a status code or an exception's name)."""

    def __str__(self) -> str:
        return (
            f"{self.ok}/{self.total} scrapes succeeded, median {self.median_s * 1000:.1f} ms, "
            f"worst {self.worst_s * 1000:.1f} ms"
            + (f", failures: {', '.join(sorted(set(self.failures)))}" if self.failures else "")
        )


def scrapes(url: str, count: int, *, auth: tuple[str, str] | None = None) -> Scrapes:
    """``count`` scrapes of ``url`` one after another, each on a new connection."""
    ok, times, failures = 0, [], []
    for _ in range(count):
        started = time.monotonic()
        try:
            response = httpx.get(url, headers=PROMETHEUS_HEADERS, auth=auth, timeout=10)
            if response.status_code == 200 and b"aicost_build_info" in response.content:
                ok += 1
            else:
                failures.append(f"{response.status_code} {response.text[:60]!r}")
        except httpx.HTTPError as exc:
            failures.append(type(exc).__name__)
        times.append(time.monotonic() - started)
        time.sleep(0.02)
    return Scrapes(ok, count, statistics.median(times), max(times), tuple(failures))


@contextmanager
def never_readers(port: int, count: int) -> Iterator[list[socket.socket]]:
    """Connections that ask for the uncompressed exposition and never read a byte of it."""
    held = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up at once
            sock.connect(("127.0.0.1", port))
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            held.append(sock)
        time.sleep(0.5)  # the server has started writing to them
        yield held
    finally:
        for sock in held:
            sock.close()


@contextmanager
def silent_connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    """Connections that are opened and then send nothing (and those that send half a request)."""
    held = []
    try:
        for n in range(count):
            sock = socket.create_connection(("127.0.0.1", port))
            if n % 2:
                sock.sendall(b"GET /metrics HTTP/1.1\r\nHo")
            held.append(sock)
        yield held
    finally:
        for sock in held:
            sock.close()


@contextmanager
def _flooding(make: Callable[[int], Callable[[], int]], threads: int) -> Iterator[list[int]]:
    """``threads`` threads each calling its ``make(n)()`` until the block ends; yields the
    status codes they got (0 for a transport error), filled while the flood lasts."""
    stop = threading.Event()
    codes: list[int] = []

    def flood(request: Callable[[], int]) -> None:
        while not stop.is_set():
            try:
                codes.append(request())
            except httpx.HTTPError:
                codes.append(0)

    workers = [threading.Thread(target=flood, args=(make(n),)) for n in range(threads)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.5)
        yield codes
    finally:
        stop.set()
        for worker in workers:
            worker.join()


def wrong_passwords(url: str, user: str, *, threads: int = 4) -> ContextManager[list[int]]:
    """Threads sending wrong passwords (each a new one) as fast as they are answered."""

    def make(worker: int) -> Callable[[], int]:
        attempts = iter(range(1 << 62))
        return lambda: httpx.get(
            url, auth=(user, f"wrong-{worker}-{next(attempts)}"), timeout=10
        ).status_code

    return _flooding(make, threads)


def scrape_flood(url: str, *, threads: int = 16) -> ContextManager[list[int]]:
    """Threads scraping ``url`` as fast as they are answered (the uncompressed body, read whole)."""
    plain = {"Accept-Encoding": "identity"}
    return _flooding(
        lambda _: lambda: httpx.get(url, headers=plain, timeout=10).status_code, threads
    )


PUSH_TOKEN = "attack-push-token"


def push_config(directory: Path, label_sets: int) -> Path:
    """A configuration of one pushed account that keeps ``label_sets`` label sets."""
    config = directory / "config.yaml"
    digest = hashlib.sha256(PUSH_TOKEN.encode()).hexdigest()
    config.write_text(
        "accounts: []\npush:\n  database: push.db\n  refresh_interval: 5s\n"
        f"  accounts: [{{name: team-a, provider: perplexity, max_label_sets: {label_sets}}}]\n"
        f"  tokens: [{{name: t, token_sha256: {digest}, accounts: [team-a]}}]\n"
    )
    return config


def push_label_sets(url: str, label_sets: int, timestamp: float) -> None:
    """Push one event for each of ``label_sets`` new project names, 1000 a request."""
    headers = {"Authorization": f"Bearer {PUSH_TOKEN}"}
    with httpx.Client(headers=headers, timeout=60) as client:
        for start in range(0, label_sets, 1000):
            events = [
                {"id": f"e{i}", "timestamp": timestamp, "account": "team-a",
                 "project": f"project-number-{i:06d}", "model": "sonar", "tokens": {"input": 1}}
                for i in range(start, min(start + 1000, label_sets))
            ]  # fmt: skip
            response = client.post(url + "/api/v1/usage", json={"events": events})
            assert response.status_code == 200, response.text


def refusal_times(url: str, users: list[str], rounds: int = 5) -> dict[str, float]:
    """Median time to a 401 for each user name with a wrong password (a new one each time:
    a password refused before is answered from the cache)."""
    times: dict[str, list[float]] = {user: [] for user in users}
    for n in range(rounds):
        for user in users:
            started = time.monotonic()
            assert httpx.get(url, auth=(user, f"wrong-{n}"), timeout=10).status_code == 401
            times[user].append(time.monotonic() - started)
    return {user: statistics.median(values) for user, values in times.items()}


class HostileProvider:
    """A provider API on loopback whose answers :meth:`answer` makes, one thread per request."""

    def __init__(self) -> None:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                try:
                    outer.answer(self)
                except OSError:
                    pass  # the exporter hung up
                self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    def __enter__(self) -> HostileProvider:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


class OversizedProvider(HostileProvider):
    """Every answer is a JSON page of ``size`` bytes, sent chunked (no Content-Length to refuse
    it by), as a broken or hostile API could."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.sent = 0

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        request.send_response(200)
        request.send_header("Content-Type", "application/json")
        request.send_header("Transfer-Encoding", "chunked")
        request.end_headers()
        item = b'{"object": "padding", "value": "' + b"x" * 65000 + b'"},'
        chunk = b'{"object": "page", "data": ['
        while self.sent < self.size:
            request.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.sent += len(chunk)
            chunk = item
        request.wfile.write(b"0\r\n\r\n")


class EchoingProvider(HostileProvider):
    """OpenAI's admin API as a careless or hostile one, quoting the key it was called with.

    Under ``/refuse`` every endpoint refuses the key, quoting it whole; elsewhere the usage
    endpoints answer empty pages and the cost report names the key as its currency."""

    def answer(self, request: BaseHTTPRequestHandler) -> None:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        path, _, query = request.path.partition("?")
        empty = {"object": "page", "data": [], "has_more": False, "next_page": None}
        status, body = 200, empty
        if path.startswith("/refuse/"):
            message = (
                f"Incorrect API key provided: {key}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            error = {"message": message, "type": "invalid_request_error", "param": None,
                     "code": "invalid_api_key"}  # fmt: skip
            status, body = 401, {"error": error}
        elif path.endswith("/organization/costs"):
            start = int(parse_qs(query)["start_time"][0])
            result = {"object": "organization.costs.result",
                      "amount": {"value": 1.5, "currency": key}, "line_item": None,
                      "project_id": None}  # fmt: skip
            bucket = {"object": "bucket", "start_time": start, "end_time": start + 86400,
                      "results": [result]}  # fmt: skip
            body = {**empty, "data": [bucket]}
        elif path.endswith("/organization/projects"):
            body = {"object": "list", "data": [], "first_id": None, "last_id": None,
                    "has_more": False}  # fmt: skip
        data = json.dumps(body).encode()
        request.send_response(status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(data)))
        request.end_headers()
        request.wfile.write(data)
