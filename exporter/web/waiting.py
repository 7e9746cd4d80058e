"""The waiting room: connections wait here, without a thread, until their request head is in.

A thread per connection is simple to reason about, but a thread spent waiting for a client that
sends nothing, or one byte at a time, is a thread a real scrape cannot have. So the accepting
thread itself holds every new connection in one selector, does the TLS handshake and collects the
request line and headers without blocking, and only then hands the connection to a thread. A
client that stays silent costs a file descriptor until the header deadline; when the room is full,
or the process is out of descriptors, the longest-waiting connection makes room for the new one,
so a flood of silent connections cannot keep a real scrape out.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from exporter.web.outbox import Outbox, Outgoing, plain_reply
from exporter.web.webconfig import WebConfigSource, WebState

log = logging.getLogger(__name__)

OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
TIMEOUT_REPLY = plain_reply(408)
_ACCEPTS_PER_WAKE = 64
_READ_SIZE = 16384
HEAD_BUDGET = 8 << 20
"""Bytes of unfinished request heads the room holds in all; past it, the oldest make room."""


@dataclass(eq=False, slots=True)
class Waiting:
    """One connection in the room: what has arrived of its request head so far."""

    sock: socket.socket
    address: Any
    accepted: float
    state: WebState | None
    head: bytearray = field(default_factory=bytearray)
    handshaking: bool = False
    events: int = selectors.EVENT_READ


Handoff = Callable[[Waiting], None]
"""Takes a connection whose head is in (or that will be answered with an error) to a thread."""


class WaitingRoom:
    """Accepts connections and holds them until their request head is complete.

    Runs in the accepting thread: :meth:`serve` returns when ``wake`` becomes readable.
    """

    def __init__(
        self,
        listener: socket.socket,
        handoff: Handoff,
        *,
        web_config: WebConfigSource | None,
        header_timeout: float,
        max_head_bytes: int,
        max_waiting: int,
        write_timeout: float,
        max_sending: int,
    ) -> None:
        self._listener = listener
        self._handoff = handoff
        self._web_config = web_config
        self._header_timeout = header_timeout
        self._max_head_bytes = max_head_bytes
        self._max_waiting = max_waiting
        self._waiting: OrderedDict[socket.socket, Waiting] = OrderedDict()  # oldest first
        self._buffered = 0  # bytes in the heads of waiting connections
        self._selector = selectors.DefaultSelector()
        self.outbox = Outbox(self._selector, write_timeout=write_timeout, size=max_sending)
        self._closed = False
        self._evicted_logged = float("-inf")
        self._bug_logged = float("-inf")
        self._exhausted_logged = float("-inf")

    def __len__(self) -> int:
        return len(self._waiting)

    def serve(self, wake: socket.socket) -> None:
        """Accept and wait until ``wake`` is readable; then close every waiting connection."""
        selector = self._selector
        selector.register(wake, selectors.EVENT_READ)
        selector.register(self.outbox.poke, selectors.EVENT_READ)
        listening = False
        pause, resume_at = 0.0, 0.0
        try:
            while True:
                now = time.monotonic()
                if listening != (now >= resume_at):
                    listening = not listening
                    if listening:
                        selector.register(self._listener, selectors.EVENT_READ)
                    else:  # out of descriptors: a readable listener must not wake us meanwhile
                        selector.unregister(self._listener)
                deadlines = [] if listening else [resume_at]
                if self._waiting:
                    deadlines.append(next(iter(self._waiting.values())).accepted
                                     + self._header_timeout)  # fmt: skip
                if (sending := self.outbox.next_deadline()) is not None:
                    deadlines.append(sending)
                timeout = max(0.0, min(deadlines) - now) if deadlines else None
                accept = False
                try:
                    for key, _ in selector.select(timeout):
                        if key.fileobj is wake:
                            return
                        if key.fileobj is self._listener:
                            accept = True
                        elif key.fileobj is self.outbox.poke:
                            self.outbox.take_posted()
                        elif isinstance(key.data, Outgoing):
                            self.outbox.progress(key.data)
                        elif key.fileobj in self._waiting:
                            self._progress_or_drop(key.data)
                    self._expire()
                    self.outbox.expire(time.monotonic())
                    if accept:
                        pause = self._accept(pause)
                        resume_at = time.monotonic() + pause if pause else 0.0
                except Exception:  # a bug must cost one connection, never the web server
                    self._log_bug("error in the accepting loop")
        finally:
            self.close()

    def close(self) -> None:
        """Close every connection, the outbox and the selector (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for waiting in list(self._waiting.values()):
            self._drop(waiting)
        self.outbox.close_all()
        self._selector.close()

    def _accept(self, pause: float) -> float:
        """Accept what is queued; how long to pause when out of descriptors (else 0)."""
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                sock, address = self._listener.accept()
            except BlockingIOError:
                return 0.0
            except OSError as exc:
                if exc.errno not in OUT_OF_RESOURCES:
                    log.debug("accept failed", extra={"err": str(exc)})
                    return 0.0
                if self._waiting:
                    self._evict("out of file descriptors")
                    continue
                # Nothing to give back: wait, doubling up to 1 s as Go's net/http does, instead
                # of retrying accept() at full speed (the connection stays queued).
                now = time.monotonic()
                if now - self._exhausted_logged > 60:  # a stranger sets the pace
                    self._exhausted_logged = now
                    log.warning("cannot accept connections: out of file descriptors or memory")
                return min(1.0, pause * 2 or 0.005)
            if len(self._waiting) >= self._max_waiting:
                self._evict("the waiting room is full")
            self._admit(sock, address)
        return 0.0

    def _admit(self, sock: socket.socket, address: Any) -> None:
        try:
            state = self._web_config.current() if self._web_config is not None else None
            sock.setblocking(False)
            waiting = Waiting(sock, address, time.monotonic(), state)
            if state is not None and state.context is not None:
                waiting.sock = state.context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
                waiting.handshaking = True
        except Exception as exc:  # a bad descriptor or TLS setup: this connection only
            log.debug("connection refused", extra={"err": str(exc)})
            sock.close()
            return
        self._waiting[waiting.sock] = waiting
        self._selector.register(waiting.sock, selectors.EVENT_READ, waiting)

    def _progress_or_drop(self, waiting: Waiting) -> None:
        try:
            self._progress(waiting)
        except Exception:  # a bug must cost this connection, never the web server
            self._log_bug("error reading a request head; closing the connection")
            if waiting.sock in self._waiting:
                self._drop(waiting)

    def _log_bug(self, message: str) -> None:
        # With a traceback, but at most once a minute: a stranger may be able to repeat it.
        now = time.monotonic()
        if now - self._bug_logged > 60:
            self._bug_logged = now
            log.exception(message)

    def _progress(self, waiting: Waiting) -> None:
        """Read what arrived; hand the connection over once its head is complete."""
        sock = waiting.sock
        try:
            if waiting.handshaking:
                assert isinstance(sock, ssl.SSLSocket)
                sock.do_handshake()
                waiting.handshaking = False
            while True:  # TLS may hold decrypted bytes the selector cannot see
                room = self._max_head_bytes + 1 - len(waiting.head)
                chunk = sock.recv(min(_READ_SIZE, room))
                if not chunk:
                    # Closed before its head was complete: no request to serve. (Served, the
                    # half-sent heads of a closing flood each took a request slot at once.)
                    self._drop(waiting)
                    return
                waiting.head += chunk
                self._buffered += len(chunk)
                if _head_complete(waiting.head) or len(waiting.head) > self._max_head_bytes:
                    self._hand_over(waiting)
                    return
                while self._buffered > HEAD_BUDGET:
                    self._evict("the unfinished request heads are over their byte budget")
                if waiting.sock not in self._waiting:
                    return  # it was the oldest
        except ssl.SSLWantWriteError:
            self._listen_for(waiting, selectors.EVENT_WRITE)
            return
        except (ssl.SSLWantReadError, BlockingIOError):
            pass
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            log.debug("connection ended before its request", extra={"err": str(exc)})
            self._drop(waiting)
            return
        # Waiting for the peer again: for bytes to read, whatever the last step waited for
        # (a socket left registered for writing would wake the loop at once, forever).
        self._listen_for(waiting, selectors.EVENT_READ)

    def _listen_for(self, waiting: Waiting, events: int) -> None:
        if waiting.events != events:
            waiting.events = events
            self._selector.modify(waiting.sock, events, waiting)

    def _expire(self) -> None:
        now = time.monotonic()
        while self._waiting:
            oldest = next(iter(self._waiting.values()))
            if oldest.accepted + self._header_timeout > now:
                return
            if not oldest.handshaking:
                try:  # best effort: the reply is small enough for an empty send buffer
                    oldest.sock.send(TIMEOUT_REPLY)
                except (OSError, ValueError):
                    pass
            self._drop(oldest)

    def _evict(self, why: str) -> None:
        oldest = next(iter(self._waiting.values()))
        now = time.monotonic()
        if now - self._evicted_logged > 60:
            self._evicted_logged = now
            log.warning(
                "closing the longest-waiting connection to accept a new one",
                extra={"reason": why, "waiting": len(self._waiting)},
            )
        self._drop(oldest)

    def _hand_over(self, waiting: Waiting) -> None:
        self._forget(waiting)
        self._handoff(waiting)

    def _drop(self, waiting: Waiting) -> None:
        self._forget(waiting)
        waiting.sock.close()

    def _forget(self, waiting: Waiting) -> None:
        del self._waiting[waiting.sock]
        self._buffered -= len(waiting.head)
        self._selector.unregister(waiting.sock)


def _head_complete(head: bytearray) -> bool:
    # The head ends with an empty line; the handler accepts CRLF and bare LF line ends.
    return b"\n\r\n" in head or b"\n\n" in head
