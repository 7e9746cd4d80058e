"""The outbox: responses are sent by the accepting thread's selector, not by a thread each.

A connection thread makes the response (the app's work, a few milliseconds) and posts it here;
the waiting room's loop then sends it without blocking, half-closes and drains what the client
still sends (so that closing does not reset the connection before the client has read the
response), within one total deadline. A client that never reads its response thus holds a file
descriptor and a reference to bytes the exporter keeps anyway (the rendered exposition), never
a thread; when the outbox is full, a response already sent is closed, or else the one whose
client has gone longest without reading is cut off, for the new one.
"""

from __future__ import annotations

import fcntl
import logging
import selectors
import socket
import ssl
import struct
import termios
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus

log = logging.getLogger(__name__)

LINGER = 0.5
"""How long a sent connection is drained before it is closed."""
_LINGER_BYTES = 65536
SEND_BUFFER_BYTES = 128 * 1024
"""The kernel send buffer of a response's socket (Linux doubles it). Left to autotuning, each
client that does not read pins up to ``tcp_wmem``'s maximum (4 MiB) of kernel memory: 600 of
them pushed the kernel into TCP memory pressure and stalled every connection for 30 s. The
outbox sends the rest as the client reads."""


@dataclass(eq=False, slots=True)
class Outgoing:
    """A response on its way out: what is left to send, then the drain."""

    sock: socket.socket
    chunks: list[memoryview]
    deadline: float
    lingering: bool = False
    drained: int = 0
    events: int = selectors.EVENT_WRITE
    progressed: float = 0.0
    """When the client was last seen taking bytes (or the response was posted)."""
    queued: int = 0
    """Bytes the kernel held for the client at the last send."""


def plain_reply(status: int, detail: str = "", headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """A complete HTTP/1.0 text reply that closes the connection (errors the server answers
    itself: 408, 413, 503 ...)."""
    phrase = HTTPStatus(status).phrase
    body = f"{status} {phrase}{': ' + detail if detail else ''}\n".encode()
    lines = [
        f"HTTP/1.0 {status} {phrase}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _unsent(sock: socket.socket) -> int:
    """Bytes the kernel still holds to send on ``sock`` (Linux's SIOCOUTQ; 0 where unknown)."""
    try:
        return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0])
    except (OSError, ValueError):
        return 0


class Outbox:
    """Responses being sent; every method but :meth:`post` runs in the accepting thread."""

    def __init__(self, selector: selectors.BaseSelector, *, write_timeout: float, size: int):
        self._selector = selector
        self._write_timeout = write_timeout
        self._size = size
        self._sending: OrderedDict[socket.socket, Outgoing] = OrderedDict()  # oldest first
        self._lingering: OrderedDict[socket.socket, Outgoing] = OrderedDict()
        self._posted: list[tuple[socket.socket, list[bytes]]] = []
        self._lock = threading.Lock()
        self.poke, self._poker = socket.socketpair()  # wakes the loop when a response is posted
        self.poke.setblocking(False)
        # Never blocks: the accepting thread posts too, and it alone reads the pair. A full pair
        # is readable already, so a poke that does not fit is not needed.
        self._poker.setblocking(False)
        self._closed = False
        self._dropped_logged = float("-inf")

    def __len__(self) -> int:
        return len(self._sending) + len(self._lingering)

    def post(self, sock: socket.socket, chunks: list[bytes]) -> None:
        """Send ``chunks`` on ``sock`` and close it (from any thread)."""
        with self._lock:
            if self._closed:  # the server has stopped
                sock.close()
                return
            self._posted.append((sock, chunks))
            try:
                self._poker.send(b"\0")
            except BlockingIOError:
                pass  # the loop has pokes to read already

    def take_posted(self) -> None:
        """Start sending what the connection threads posted."""
        try:
            while self.poke.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            posted, self._posted = self._posted, []
        now = time.monotonic()
        for sock, chunks in posted:
            if len(self) >= self._size:
                self._make_room()
            entry = Outgoing(sock, [memoryview(c) for c in chunks if c], now + self._write_timeout,
                             progressed=now)  # fmt: skip
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
                sock.setblocking(False)
                self._selector.register(sock, selectors.EVENT_WRITE, entry)
            except (OSError, ValueError, KeyError):
                sock.close()
                continue
            self._sending[sock] = entry
            self.progress(entry)  # most responses fit the socket buffer: sent at once

    def progress(self, entry: Outgoing) -> None:
        """Send or drain what the socket takes now."""
        try:
            if entry.lingering:
                self._drain(entry)
            else:
                self._send(entry)
        except ssl.SSLWantReadError:
            self._wait_for(entry, selectors.EVENT_READ)
        except ssl.SSLWantWriteError:
            self._wait_for(entry, selectors.EVENT_WRITE)
        except BlockingIOError:
            wanted = selectors.EVENT_READ if entry.lingering else selectors.EVENT_WRITE
            self._wait_for(entry, wanted)
        except (OSError, ValueError) as exc:
            log.debug("connection ended while sending", extra={"err": str(exc)})
            self._close(entry)

    def _wait_for(self, entry: Outgoing, events: int) -> None:
        if entry.events != events:
            entry.events = events
            self._selector.modify(entry.sock, events, entry)

    def _send(self, entry: Outgoing) -> None:
        while entry.chunks:
            chunk = entry.chunks[0]
            sent = entry.sock.send(chunk)
            if sent:
                entry.progressed = time.monotonic()
            if sent < len(chunk):
                entry.chunks[0] = chunk[sent:]
                entry.queued = _unsent(entry.sock)
                raise BlockingIOError  # the rest when the socket is writable again
            entry.chunks.pop(0)
        # Sent: half-close, then read what the client still sends before closing.
        entry.sock.shutdown(socket.SHUT_WR)
        del self._sending[entry.sock]
        entry.lingering, entry.deadline = True, time.monotonic() + LINGER
        self._lingering[entry.sock] = entry
        self._wait_for(entry, selectors.EVENT_READ)
        self._drain(entry)

    def _drain(self, entry: Outgoing) -> None:
        while entry.drained < _LINGER_BYTES:
            chunk = entry.sock.recv(4096)
            if not chunk:
                break
            entry.drained += len(chunk)
        self._close(entry)

    def next_deadline(self) -> float | None:
        """The earliest deadline of a response being sent or drained."""
        firsts = [next(iter(d.values())).deadline for d in (self._sending, self._lingering) if d]
        return min(firsts) if firsts else None

    def expire(self, now: float) -> None:
        """Close the connections whose deadline has passed."""
        for entries in (self._sending, self._lingering):
            while entries and next(iter(entries.values())).deadline <= now:
                entry = next(iter(entries.values()))
                self._close(entry, abort=not entry.lingering)

    def close_all(self) -> None:
        """Close every connection (the server is stopping)."""
        for entries in (self._sending, self._lingering):
            for entry in list(entries.values()):
                self._close(entry)
        with self._lock:
            self._closed = True
            posted, self._posted = self._posted, []
            self._poker.close()
        for sock, _ in posted:
            sock.close()
        self.poke.close()

    def _make_room(self) -> None:
        # A response already sent loses nothing by closing now. Else the one whose client has
        # gone longest without taking a byte gives way: never a download that keeps reading.
        if self._lingering:
            self._close(next(iter(self._lingering.values())))
            return
        now = time.monotonic()
        for entry in self._sending.values():
            # The loop sends again only when the kernel's buffer has room, which for a
            # steady reader can be a long while: its own queue tells whether it is reading.
            queued = _unsent(entry.sock)
            if queued < entry.queued:
                entry.progressed, entry.queued = now, queued
        stalled = min(self._sending.values(), key=lambda entry: entry.progressed)
        if now - self._dropped_logged > 60:
            self._dropped_logged = now
            log.warning("too many responses waiting for their clients to read; cutting off "
                        "the longest stalled", extra={"limit": self._size})  # fmt: skip
        self._close(stalled, abort=True)

    def _close(self, entry: Outgoing, *, abort: bool = False) -> None:
        (self._lingering if entry.lingering else self._sending).pop(entry.sock, None)
        try:
            self._selector.unregister(entry.sock)
        except (KeyError, ValueError):
            pass
        if abort:  # a reset: what the kernel still buffers for this client is freed too
            try:
                entry.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        entry.sock.close()
