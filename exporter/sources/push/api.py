"""``POST /api/v1/usage``: authenticated, validated, idempotent, durable usage events.

Order of checks: bearer token (401), body size (411/413), JSON (400), batch size
(413), every event's fields (422) and the token's accounts (403). Only a batch
with no problem at all is stored, in one transaction, and acknowledged after
the commit reached the disk.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from exporter.sources.push.events import EventValidator, FieldError, UsageEvent
from exporter.sources.push.settings import PushConfig, PushToken

if TYPE_CHECKING:
    from exporter.sources.push.store import EventStore
from exporter.sources.push.errors import StoreError

log = logging.getLogger(__name__)

PUSH_PATH = "/api/v1/usage"
BODY_TIMEOUT = 30.0
"""Seconds a push body may take to arrive once the headers are in; later is 408."""
StartResponse = Callable[..., Any]


class PushApi:
    """The WSGI handler of :data:`PUSH_PATH`."""

    def __init__(
        self, config: PushConfig, store: EventStore, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.store = store
        self.validator = EventValidator(
            {a.name: a.provider for a in config.accounts}, max_clock_skew=config.max_clock_skew
        )
        self._clock = clock

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        status, body, headers = self._handle(environ)
        data = json.dumps(body, separators=(",", ":")).encode() + b"\n"
        start_response(
            status,
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(data))),
                ("Cache-Control", "no-store"),
                *headers,
            ],
        )
        return [data]

    def authenticate(self, header: str | None) -> PushToken | None:
        """The configured token presented as ``Bearer <token>``, or ``None``."""
        scheme, _, presented = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            return None
        digest = hashlib.sha256(presented.strip().encode("utf-8", "surrogateescape")).hexdigest()
        found = None
        for token in self.config.tokens:  # every token compared: no early exit to time
            if hmac.compare_digest(digest, token.token_sha256):
                found = token
        return found

    def _handle(self, environ: dict[str, Any]) -> tuple[str, Any, list[tuple[str, str]]]:
        if environ.get("REQUEST_METHOD") != "POST":
            return "405 Method Not Allowed", _error("use POST"), [("Allow", "POST")]
        token = self.authenticate(environ.get("HTTP_AUTHORIZATION"))
        if token is None:
            client = environ.get("REMOTE_ADDR", "")
            log.info("push rejected: missing or unknown bearer token", extra={"client": client})
            return (
                "401 Unauthorized",
                _error("missing or invalid bearer token"),
                [("WWW-Authenticate", 'Bearer realm="ai-cost-exporter"')],
            )
        body = self._read_body(environ)
        if isinstance(body, tuple):
            return (*body, [])
        try:
            document = json.loads(body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            return "400 Bad Request", _error(f"the body is not valid JSON: {_json_reason(exc)}"), []
        except RecursionError:
            return "400 Bad Request", _error("the body is not valid JSON: nested too deeply"), []
        if not isinstance(document, dict):
            return "400 Bad Request", _error('expected a JSON object {"events": [...]}'), []
        unknown = [FieldError(-1, str(k), "unknown field") for k in document if k != "events"]
        events = document.get("events")
        if not isinstance(events, list):
            problem = FieldError(-1, "events", "required: a list of events")
            return "422 Unprocessable Entity", _errors([*unknown, problem]), []
        if len(events) > self.config.max_events:
            message = f"{len(events)} events in one batch; at most {self.config.max_events}"
            return "413 Request Entity Too Large", _error(message), []
        now = self._clock()
        valid: list[UsageEvent] = []
        errors = list(unknown)
        for index, raw in enumerate(events):
            event, problems = self.validator.validate(raw, index, now)
            errors.extend(problems)
            if event is not None:
                valid.append(event)
        if errors:
            return "422 Unprocessable Entity", _errors(errors), []
        forbidden = [
            FieldError(index, "account", f"this token may not push to account {event.account!r}")
            for index, event in enumerate(valid)
            if event.account not in token.accounts
        ]
        if forbidden:
            return "403 Forbidden", _errors(forbidden), []
        try:
            result = self.store.insert(valid)
        except StoreError as exc:
            log.error("push could not be stored", extra={"err": str(exc)})
            return (
                "503 Service Unavailable",
                _error("the events could not be stored; retry"),
                [("Retry-After", "5")],
            )
        counts = {"accepted": result.accepted, "duplicates": result.duplicates}
        log.debug("push stored", extra={"token": token.name, **counts})
        return "200 OK", {"accepted": result.accepted, "duplicates": result.duplicates}, []

    def _read_body(self, environ: dict[str, Any]) -> bytes | tuple[str, Any]:
        declared = str(environ.get("CONTENT_LENGTH") or "").strip()
        if not (declared.isascii() and declared.isdigit()):
            return "411 Length Required", _error("a Content-Length header is required")
        length = int(declared)
        if length > self.config.max_body_bytes:
            return "413 Request Entity Too Large", _error(
                f"the body is {length} bytes; at most {self.config.max_body_bytes}"
            )
        stream = environ["wsgi.input"]
        chunks: list[bytes] = []
        remaining = length
        try:
            while remaining > 0:
                chunk = stream.read(remaining)
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        except TimeoutError:
            seconds = f"{BODY_TIMEOUT:g}"
            return "408 Request Timeout", _error(f"the body did not arrive within {seconds} s")
        except OSError:
            return "400 Bad Request", _error("could not read the request body")
        if remaining:
            return "400 Bad Request", _error("the body is shorter than its Content-Length")
        return b"".join(chunks)


def _error(message: str) -> dict[str, Any]:
    return {"error": message}


def _errors(errors: Iterable[FieldError]) -> dict[str, Any]:
    return {
        "errors": [{**e.as_json(), "event": None} if e.event < 0 else e.as_json() for e in errors]
    }


def _json_reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    return "not UTF-8"
