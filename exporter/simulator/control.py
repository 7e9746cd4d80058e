"""The :class:`Simulator`: clock, fault book, request log, oracle and server lifecycle."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from . import anthropic_api, openai_api
from .catalog import ANTHROPIC, OPENAI, PROJECTS, WORKSPACES
from .data import SyntheticData
from .faults import Fault, FaultBook
from .oracle import Expected, expected_anthropic, expected_openai
from .query import ApiError, Query
from .server import HttpServer, Reply

_PREFIXES = ((f"/{OPENAI}/v1", OPENAI), (f"/{ANTHROPIC}", ANTHROPIC))
_JSON = {"Content-Type": "application/json"}
_FAULT_MESSAGES = {
    (OPENAI, "429"): "Rate limit reached for organization admin requests.",
    (ANTHROPIC, "429"): "Number of requests has exceeded your rate limit.",
    (OPENAI, "500"): "The server had an error while processing your request.",
    (ANTHROPIC, "500"): "Internal server error",
    (OPENAI, "503"): "The server is overloaded or not ready yet.",
    (ANTHROPIC, "503"): "Service unavailable",
    (OPENAI, "529"): "The server is overloaded.",
    (ANTHROPIC, "529"): "Overloaded",
}
_BAD_GATEWAY = (
    b"<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
)
_TRUNCATED = {
    OPENAI: b'{"object": "page", "data": [{"object": "bucket", "start_time": 17',
    ANTHROPIC: b'{"data": [{"starting_at": "2026-03-02T00:00:00Z", "ending_at": "2026-03-0',
}


class Simulator:
    """Fake OpenAI and Anthropic admin usage/cost APIs over real HTTP.

    ``now=None`` follows the real clock; :meth:`set_now` freezes it.
    """

    def __init__(
        self,
        seed: int = 1,
        now: float | None = None,
        *,
        openai_key: str = "sk-admin-demo",
        anthropic_key: str = "sk-ant-admin01-demo",
    ) -> None:
        self.seed = seed
        self.data = SyntheticData(seed)
        self._now = now
        self._keys = {OPENAI: openai_key, ANTHROPIC: anthropic_key}
        self._faults = FaultBook()
        self._log: list[tuple[str, str, str]] = []
        self._log_lock = threading.Lock()
        self._http: HttpServer | None = None
        self._host = "127.0.0.1"

    def __repr__(self) -> str:
        state = f"url={self.url!r}" if self._http else "stopped"
        return f"Simulator(seed={self.seed}, {state})"

    @property
    def openai_key(self) -> str:
        """The admin key the fake OpenAI accepts (a demo value, not a secret)."""
        return self._keys[OPENAI]

    @property
    def anthropic_key(self) -> str:
        """The admin key the fake Anthropic accepts (a demo value, not a secret)."""
        return self._keys[ANTHROPIC]

    # ------------------------------------------------------------------ clock
    def now(self) -> float:
        """The simulated current time (Unix seconds)."""
        return time.time() if self._now is None else self._now

    def set_now(self, ts: float | None) -> None:
        """Freeze the clock at ``ts`` (``None`` returns to the real clock)."""
        self._now = ts

    # -------------------------------------------------------------- lifecycle
    def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host:port`` (0 = an ephemeral port) from a background thread."""
        if self._http is not None:
            raise RuntimeError("simulator already started")
        self._http = HttpServer(self._respond, host, port)
        self._host = "127.0.0.1" if host in ("", "0.0.0.0") else host

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        if self._http is not None:
            self._http.stop()
            self._http = None

    def __enter__(self) -> Simulator:
        if self._http is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._http is None:
            raise RuntimeError("simulator not started")
        return f"http://{self._host}:{self._http.address[1]}"

    @property
    def openai_base_url(self) -> str:
        """Base URL to configure as the OpenAI API root (``…/openai/v1``)."""
        return f"{self.url}/{OPENAI}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """Base URL to configure as the Anthropic API root (``…/anthropic``)."""
        return f"{self.url}/{ANTHROPIC}"

    # ----------------------------------------------------------------- faults
    def inject(
        self,
        provider: str,
        endpoint: str,
        kind: str,
        *,
        times: int = 1,
        after: int = 0,
        retry_after: int | None = 1,
        delay: float = 2.0,
    ) -> None:
        """Give the next ``times`` matching requests (after skipping ``after``) a fault."""
        self._faults.add(Fault(provider, endpoint, kind, times, after, retry_after, delay))

    def clear_faults(self) -> None:
        """Drop every scheduled fault."""
        self._faults.clear()

    # --------------------------------------------------------------- counting
    def request_count(self, provider: str | None = None, endpoint: str | None = None) -> int:
        """Requests received (including failed ones), optionally per provider/endpoint."""
        with self._log_lock:
            return sum(
                1 for p, e, _ in self._log if provider in (None, p) and endpoint in (None, e)
            )

    def request_log(self) -> list[tuple[str, str, str]]:
        """Every request received: (provider, endpoint, raw query string)."""
        with self._log_lock:
            return list(self._log)

    def reset_counts(self) -> None:
        """Forget the request log."""
        with self._log_lock:
            self._log.clear()

    # ----------------------------------------------------------------- oracle
    def expected_openai(self, start: int, end: int) -> Expected:
        """Ground truth for OpenAI over ``[start, min(end, now))``.

        Cost covers the UTC days that start in ``[start, end)``, priced up to now.
        """
        return expected_openai(self.data, start, end, self.now())

    def expected_anthropic(self, start: int, end: int) -> Expected:
        """Ground truth for Anthropic, with the same ranges as :meth:`expected_openai`."""
        return expected_anthropic(self.data, start, end, self.now())

    def openai_project_names(self) -> dict[str, str]:
        """Project id -> display name (archived projects included)."""
        return {p.id: p.name for p in PROJECTS}

    def anthropic_workspace_names(self) -> dict[str, str]:
        """Workspace id -> display name (archived included; the default workspace has no id)."""
        return {w.id: w.name for w in WORKSPACES}

    # --------------------------------------------------------------- requests
    def _respond(self, method: str, path: str, raw_query: str, headers: Mapping[str, str]) -> Reply:
        provider, endpoint = "", path
        for prefix, name in _PREFIXES:
            if path == prefix or path.startswith(prefix + "/"):
                provider, endpoint = name, path[len(prefix) :]
                break
        with self._log_lock:
            self._log.append((provider, endpoint, raw_query))
        if not provider:
            return _json(404, {"error": {"message": f"no simulated provider at {path}"}})
        api: Any = openai_api if provider == OPENAI else anthropic_api
        extra = {"request-id": anthropic_api.new_request_id()} if provider == ANTHROPIC else {}
        fault = self._faults.take(provider, endpoint)
        if fault is not None and fault.kind != "slow":
            return self._fault_reply(api, provider, fault, extra)
        if fault is not None:
            time.sleep(fault.delay)
        try:
            if method != "GET":
                raise ApiError(405, f"method {method} not allowed")
            api.check_headers(headers, self._keys[provider])
            query = Query(raw_query)
            if provider == OPENAI:
                body = openai_api.handle(endpoint, query, self.now(), self.data)
            else:
                body = anthropic_api.handle(endpoint, query, self.now(), self.data, headers)
        except ApiError as err:
            return _json(err.status, api.error_body(err), extra)
        return _json(200, body, extra)

    def _fault_reply(self, api: Any, provider: str, fault: Fault, extra: dict[str, str]) -> Reply:
        kind = fault.kind
        if kind == "reset":
            return Reply(reset=True)
        if kind == "malformed":
            return Reply(200, _TRUNCATED[provider], {**_JSON, **extra})
        if kind == "wrong_shape":
            return _json(200, {"data": "oops"}, extra)
        if kind == "502":
            return Reply(502, _BAD_GATEWAY, {"Content-Type": "text/html"})
        if kind == "401":
            try:
                api.check_headers({}, self._keys[provider])
            except ApiError as err:
                return _json(401, api.error_body(err), extra)
        status = int(kind)
        headers = dict(extra)
        if status == 429 and fault.retry_after is not None:
            headers["Retry-After"] = str(fault.retry_after)
        error = ApiError(status, _FAULT_MESSAGES[(provider, kind)])
        return _json(status, api.error_body(error), headers)


def _json(status: int, body: object, headers: Mapping[str, str] | None = None) -> Reply:
    return Reply(status, json.dumps(body).encode(), {**_JSON, **(headers or {})})
