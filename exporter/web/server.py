"""The hardened HTTP server for the exporter's WSGI app.

A threading WSGI server with per-connection deadlines, size limits, a
concurrency limit (``--web.max-requests``) and the ``--web.config.file`` (TLS,
basic auth, security headers), in the exporter-toolkit's manner.
"""

from __future__ import annotations

import io
import ipaddress
import logging
import resource
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer

from exporter.sources.push.api import BODY_TIMEOUT, PUSH_PATH
from exporter.web.outbox import plain_reply
from exporter.web.waiting import Waiting, WaitingRoom
from exporter.web.webconfig import WebConfigSource, WebState

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication
else:
    WSGIApplication = Callable[..., Iterable[bytes]]

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

DEFAULT_MAX_REQUESTS = 40
HEALTH_PATH = "/-/healthy"
BEARER_PATHS = (PUSH_PATH,)
"""Paths that check their own bearer tokens (the push API) instead of the basic auth."""


@dataclass(frozen=True)
class Limits:
    """What one client may cost the server; the defaults suit a scrape target."""

    max_requests: int = DEFAULT_MAX_REQUESTS
    """Requests served at once (``/-/healthy`` aside); more get 503 at once. 0: no limit."""
    max_connections: int = 512
    """Connections being served, a thread each; more are closed at once."""
    max_waiting: int = 1024
    """Connections whose request head is not in yet (no thread); past it, the oldest is closed.

    Never more than the file descriptors left beside ``max_connections`` and a reserve for the
    rest of the process (provider polls, the push database)."""

    def __post_init__(self) -> None:
        if self.max_waiting < 1 or self.max_connections < 1:
            raise ValueError("max_waiting and max_connections must be at least 1")
    header_timeout: float = 10.0
    """TLS handshake, request line and headers must all arrive within this, in total."""
    write_timeout: float = 30.0
    """Longest time for the client to take the whole response (sent without a thread)."""
    body_timeout: float = BODY_TIMEOUT
    """A request body (the push API's) must arrive within this once the headers are in."""
    max_request_line: int = 8192
    max_header_bytes: int = 32768
    max_headers: int = 100
    max_body_bytes: int = 65536
    """Largest declared request body (no endpoint reads one)."""


class _TooLarge(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class _DeadlineReader(io.RawIOBase):
    """Socket reads that share one deadline, so a client trickling bytes cannot hold on.

    ``received`` is what the waiting room already read (the request head, maybe more)."""

    def __init__(
        self, sock: socket.socket, deadline: Callable[[], float], received: bytes = b""
    ) -> None:
        self._sock = sock
        self._deadline = deadline
        self._received = memoryview(received)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._received:
            size = min(len(buffer), len(self._received))
            buffer[:size] = self._received[:size]
            self._received = self._received[size:]
            return size
        remaining = self._deadline() - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("read deadline passed")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _Response(io.BufferedIOBase):
    """What the handler writes, kept for the outbox to send (the exposition is not copied)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(data if type(data) is bytes else bytes(data))
        return len(data)


class _ServerHandler(ServerHandler):
    """wsgiref's handler without its ``Server: WSGIServer/0.2 CPython/...`` banner."""

    server_software = None  # type: ignore[assignment]  # wsgiref sends no Server header then


class _Handler(WSGIRequestHandler):
    """One connection, one request (HTTP/1.0 semantics: the server closes)."""

    server: _Server

    def __init__(
        self,
        request: socket.socket,
        client_address: Any,
        server: _Server,
        *,
        state: WebState | None,
        deadline: float,
        received: bytes,
    ) -> None:
        self.state = state
        self.deadline = deadline
        self.received = received
        super().__init__(request, client_address, server)

    def setup(self) -> None:
        self.connection = self.request
        reader = _DeadlineReader(self.connection, lambda: self.deadline, self.received)
        self.rfile = io.BufferedReader(reader)
        self.wfile = _Response()

    def finish(self) -> None:
        # The server closes the socket. The reader's deadline refers back to this handler:
        # dropping it breaks the cycle, so both are freed when the request ends, not at the
        # next full collection (a collector paused for ingest moves them to the oldest
        # generation, and each holds an 8 KB buffer).
        del self.rfile

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The stdlib's version answers a bad request line in HTTP/0.9 style: no status line.
        self.close_connection = True
        self._reply(code)

    def handle(self) -> None:
        limits = self.server.limits
        try:
            head = self._read_head(limits)
        except TimeoutError:
            self._reply(408)
            return
        except _TooLarge as exc:
            self._reply(exc.status)
            return
        if head is None:
            return
        self.raw_requestline, header_lines = head
        reader, self.rfile = self.rfile, io.BufferedReader(io.BytesIO(header_lines))
        try:
            parsed = self.parse_request()
        finally:
            self.rfile = reader
        self.connection.settimeout(limits.write_timeout)
        self.deadline = time.monotonic() + limits.body_timeout  # for the body, if one is read
        if parsed and self.request_version == "HTTP/0.9":
            # A request line without a version: the stdlib would answer without a status line.
            self._reply(400, detail="HTTP/0.9 is not supported")
        elif parsed:
            self._dispatch(limits)

    def _read_head(self, limits: Limits) -> tuple[bytes, bytes] | None:
        line = self.rfile.readline(limits.max_request_line + 1)
        if not line:
            return None
        if len(line) > limits.max_request_line:
            raise _TooLarge(414)
        lines: list[bytes] = []
        size = 0
        while True:
            header = self.rfile.readline(limits.max_header_bytes - size + 1)
            size += len(header)
            if size > limits.max_header_bytes or len(lines) >= limits.max_headers:
                raise _TooLarge(431)
            lines.append(header)
            if header in (b"\r\n", b"\n", b""):
                return line, b"".join(lines)

    def _dispatch(self, limits: Limits) -> None:
        # The path the app routes on (wsgiref's PATH_INFO): "/api/v1/%75sage" is the push API.
        path = urllib.parse.unquote(self.path.split("?", 1)[0], "iso-8859-1")
        length = self.headers.get("Content-Length")
        if length is not None:
            # str.isdigit() also accepts "²" and other digits int() refuses: ASCII only.
            if not (length.isascii() and length.strip().isdigit()):
                self._reply(400)
                return
            if int(length) > limits.max_body_bytes:
                self._reply(413)
                return
        auth = self.state.auth if self.state is not None else None
        if auth is not None and path != HEALTH_PATH and path not in BEARER_PATHS:
            if not auth.check(self.headers.get("Authorization")):
                log.debug("unauthenticated request", extra={"client": self.client_address[0]})
                self._reply(401, [("WWW-Authenticate", 'Basic realm="ai-cost-exporter"')])
                return
        slots = None
        if path != HEALTH_PATH:  # pushes and scrapes have slots apart: neither starves the other
            slots = self.server.push_slots if path in BEARER_PATHS else self.server.request_slots
        if slots is not None and not slots.acquire(blocking=False):
            self._reply(503, [("Retry-After", "1")], detail="too many concurrent requests")
            return
        slot = _Slot(slots)
        try:
            handler = _ServerHandler(
                self.rfile,
                cast("IO[bytes]", self.wfile),
                self.get_stderr(),
                self.get_environ(),
                multithread=True,
            )
            handler.request_handler = self  # type: ignore[attr-defined]
            app = self.server.get_app()
            assert app is not None
            handler.run(slot.until_written(self._with_headers(app)))
        finally:
            slot.release()

    def _security_headers(self) -> list[tuple[str, str]]:
        return list(self.state.config.headers) if self.state is not None else []

    def _with_headers(self, app: WSGIApplication) -> WSGIApplication:
        extra = self._security_headers()
        if not extra:
            return app

        def wrapped(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            def start(status: str, headers: list[tuple[str, str]], *args: Any) -> Any:
                return start_response(status, headers + extra, *args)

            return app(environ, start)

        return wrapped

    def _reply(
        self, status: int, headers: Iterable[tuple[str, str]] = (), *, detail: str = ""
    ) -> None:
        reply = plain_reply(status, detail, [*headers, *self._security_headers()])
        self.connection.settimeout(self.server.limits.write_timeout)
        try:
            self.wfile.write(reply)
        except OSError:
            pass


def _slots(size: int) -> threading.BoundedSemaphore | None:
    return threading.BoundedSemaphore(size) if size > 0 else None


class _Slot:
    """A request slot, held while the app works and given back before the response is sent:
    a client that does not read its response holds a connection, not a slot."""

    def __init__(self, slots: threading.BoundedSemaphore | None) -> None:
        self._slots = slots

    def until_written(self, app: WSGIApplication) -> WSGIApplication:
        def held(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            result: Iterable[bytes] = ()
            try:
                result = app(environ, start_response)
                # wsgiref sends the status line with the first body piece, so this sends nothing.
                return list(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
                self.release()

        return held

    def release(self) -> None:
        if self._slots is not None:
            self._slots.release()
            self._slots = None


BUSY_REPLY = plain_reply(503, "too many connections", [("Retry-After", "1")])


class _Server(WSGIServer):
    """A thread per connection whose request head is in, bounded (see :mod:`.waiting`)."""

    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        app: WSGIApplication,
        *,
        limits: Limits,
        web_config: WebConfigSource | None,
        ipv6: bool,
    ) -> None:
        self.address_family = socket.AF_INET6 if ipv6 else socket.AF_INET
        # Connections are handed to _Handler by _serve_connection, not by the base class.
        super().__init__(address, WSGIRequestHandler)
        self.set_app(app)
        self.limits = limits
        self.web_config = web_config
        self.connection_slots = threading.BoundedSemaphore(limits.max_connections)
        self.request_slots = _slots(limits.max_requests)
        self.push_slots = _slots(limits.max_requests)
        self._refused_logged = 0.0
        self.post: Callable[[socket.socket, list[bytes]], None] = _unsent
        """Sends a response and closes the connection (the outbox's, set by WebServer)."""

    def hand_over(self, waiting: Waiting) -> None:
        """Serve a connection whose request head is in on a thread of its own."""
        if not self.connection_slots.acquire(blocking=False):
            now = time.monotonic()
            if now - self._refused_logged > 60:
                self._refused_logged = now
                log.warning(
                    "too many connections being served; answering 503",
                    extra={"limit": self.limits.max_connections},
                )
            self.post(waiting.sock, [BUSY_REPLY])
            return
        thread = threading.Thread(
            target=self._serve_connection, args=(waiting,), name="http-connection", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:  # no more threads: shed this connection
            self.connection_slots.release()
            self.shutdown_request(waiting.sock)

    def _serve_connection(self, waiting: Waiting) -> None:
        sock, client_address = waiting.sock, waiting.address
        deadline = waiting.accepted + self.limits.header_timeout
        chunks: list[bytes] = []
        try:
            sock.setblocking(True)
            received = bytes(waiting.head)
            handler = _Handler(sock, client_address, self, state=waiting.state,
                               deadline=deadline, received=received)  # fmt: skip
            chunks = cast(_Response, handler.wfile).chunks
        except OSError as exc:
            log.debug("connection ended", extra={"client": client_address[0], "err": str(exc)})
        except Exception:
            log.exception("error serving a connection")
        finally:
            self.connection_slots.release()
            if chunks:
                self.post(sock, chunks)  # the accepting thread sends it: this thread is done
            else:
                self.shutdown_request(sock)


def _unsent(sock: socket.socket, chunks: list[bytes]) -> None:
    sock.close()


FD_RESERVE = 128
"""File descriptors the web server leaves to the rest of the process."""
ROOM_MIN = 64


def _room_size(limits: Limits) -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return limits.max_waiting
    # Beside the room: the connections being served and as many responses being sent (both
    # rarely full at once: a thread is held only while the app works).
    spare = soft - 2 * limits.max_connections - FD_RESERVE
    return min(limits.max_waiting, max(ROOM_MIN, spare))


def raise_open_files_limit() -> None:
    """Raise this process's soft limit of open files to its hard limit, as Go programs do
    at start: the default soft limit (often 1024) is a relic of select()."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass  # the soft limit stays; the waiting room sizes itself to it


def parse_listen_address(address: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``:PORT`` means every interface, ``[::1]:PORT`` for IPv6)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"invalid listen address {address!r}: expected HOST:PORT, e.g. :9877")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


class WebServer:
    """The HTTP(S) server in a background thread."""

    def __init__(
        self,
        address: str,
        app: WSGIApplication,
        *,
        web_config: WebConfigSource | None = None,
        limits: Limits | None = None,
    ) -> None:
        host, port = parse_listen_address(address)
        try:
            ipv6 = ipaddress.ip_address(host).version == 6
        except ValueError:
            ipv6 = False  # a host name: IPv4 resolution is what the stdlib server does
        self._server = _Server(
            (host, port), app, limits=limits or Limits(), web_config=web_config, ipv6=ipv6
        )
        self.tls = web_config is not None and web_config.tls
        limits = self._server.limits
        self._server.socket.setblocking(False)  # a connection gone before accept() cannot block
        self._room = WaitingRoom(
            self._server.socket,
            self._server.hand_over,
            web_config=web_config,
            header_timeout=limits.header_timeout,
            max_head_bytes=limits.max_request_line + limits.max_header_bytes + 4,
            max_waiting=_room_size(limits),
            write_timeout=limits.write_timeout,
            max_sending=limits.max_connections,
        )
        self._server.post = self._room.outbox.post
        # Idle costs nothing: the thread sleeps in select() until a connection or stop() arrives,
        # instead of serve_forever's wake-up every poll interval to look for a shutdown flag.
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._thread = threading.Thread(
            target=self._room.serve, args=(self._wake_reader,), name="http", daemon=True
        )

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._wake_writer.fileno() == -1:
            return
        self._wake_writer.send(b"\0")
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        else:
            self._room.close()  # never started: nothing else closes its selector and outbox
        self._server.server_close()
        self._wake_reader.close()
        self._wake_writer.close()
