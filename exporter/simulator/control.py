"""The :class:`Simulator`: clock, fault book, request log, oracle and server lifecycle."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from . import (
    anthropic_analytics_api,
    anthropic_api,
    chatgpt_api,
    claude_code_api,
    cursor_api,
    deepseek_api,
    fireworks_api,
    github_api,
    groq_api,
    mistral_api,
    openai_api,
    openrouter_api,
    xai_api,
)
from .catalog import ANTHROPIC, OPENAI, PROJECTS, WORKSPACES
from .claude_code_data import ClaudeCodeData
from .data import SyntheticData
from .faults import Fault, FaultBook
from .github_api import GITHUB
from .github_data import ENTERPRISE as GITHUB_ENTERPRISE
from .github_data import ORGS as GITHUB_ORGS
from .github_data import GitHubData
from .more_data import MoreData
from .more_oracle import expected_deepseek, expected_groq, expected_openrouter
from .oracle import Expected, expected_anthropic, expected_openai
from .query import ApiError, Query
from .server import HttpServer, Reply

_PREFIXES = ((f"/{OPENAI}/v1", OPENAI), (f"/{ANTHROPIC}", ANTHROPIC), (f"/{GITHUB}", GITHUB))
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
    (GITHUB, "429"): "API rate limit exceeded for installation.",
    (GITHUB, "500"): "Internal Error",
    (GITHUB, "503"): "Service unavailable",
    (GITHUB, "529"): "Service unavailable",
}
_BAD_GATEWAY = (
    b"<html><head><title>502 Bad Gateway</title></head><body>502 Bad Gateway</body></html>"
)
_TRUNCATED = {
    OPENAI: b'{"object": "page", "data": [{"object": "bucket", "start_time": 17',
    ANTHROPIC: b'{"data": [{"starting_at": "2026-03-02T00:00:00Z", "ending_at": "2026-03-0',
    GITHUB: b'{"usageItems": [{"date": "2026-03-02", "product": "Cop',
}
# OpenRouter, DeepSeek, Groq: each module brings its prefix, messages and truncated body.
_MORE_APIS: dict[str, Any] = {
    api.PROVIDER: api
    for api in (
        openrouter_api, deepseek_api, groq_api, cursor_api, fireworks_api, xai_api, mistral_api,
        chatgpt_api,
    )
}
_SEEDED_APIS = frozenset(
    api.PROVIDER for api in (cursor_api, fireworks_api, xai_api, mistral_api, chatgpt_api)
)
"""Providers whose data is a function of the seed alone, answered by ``handle(method, path,
query, body, now, seed)``: they take POST reports."""
_PREFIXES += tuple((api.PREFIX, name) for name, api in _MORE_APIS.items())
for _name, _api in _MORE_APIS.items():
    _FAULT_MESSAGES.update({(_name, kind): text for kind, text in _api.FAULT_MESSAGES.items()})
    _TRUNCATED[_name] = _api.TRUNCATED

LOG_SIZE = 10_000
"""Requests the query log keeps (counts are kept in full)."""


class Simulator:
    """Fake OpenAI and Anthropic admin usage/cost APIs over real HTTP.

    ``now=None`` follows the real clock; :meth:`set_now` freezes it or starts it at a moment.
    """

    def __init__(
        self,
        seed: int = 1,
        now: float | None = None,
        *,
        openai_key: str = "sk-admin-demo",
        anthropic_key: str = "sk-ant-admin01-demo",
        anthropic_analytics_key: str = "sk-ant-analytics-demo",
        github_token: str = "ghp_demo",
        openrouter_key: str = "sk-or-v1-demo",
        deepseek_key: str = "sk-deepseek-demo",
        groq_key: str = "gsk_demo",
        cursor_key: str = "key_cursor_demo",
        fireworks_key: str = "fw_demo",
        xai_key: str = "xai-mgmt-demo",
        mistral_key: str = "mistral-admin-demo",
        chatgpt_key: str = "sk-chatgpt-admin-demo",
    ) -> None:
        self.seed = seed
        self.data = SyntheticData(seed)
        self.github_data = GitHubData(seed)
        self.claude_code_data = ClaudeCodeData(seed)
        # (moment, monotonic time it started running at, or None when frozen); None: real clock
        self._clock: tuple[float, float | None] | None = None if now is None else (now, None)
        self._keys = {OPENAI: openai_key, ANTHROPIC: anthropic_key, GITHUB: github_token}
        self._analytics_key = anthropic_analytics_key
        self.more_data = MoreData(seed)
        self._keys.update(
            {
                openrouter_api.PROVIDER: openrouter_key,
                deepseek_api.PROVIDER: deepseek_key,
                groq_api.PROVIDER: groq_key,
                cursor_api.PROVIDER: cursor_key,
                fireworks_api.PROVIDER: fireworks_key,
                xai_api.PROVIDER: xai_key,
                mistral_api.PROVIDER: mistral_key,
                chatgpt_api.PROVIDER: chatgpt_key,
            }
        )
        self._faults = FaultBook()
        # Counts are kept in full; the log of queries only for the latest requests, because
        # the demo runs the simulator for as long as the user likes.
        self._counts: Counter[tuple[str, str]] = Counter()
        self._log: deque[tuple[str, str, str]] = deque(maxlen=LOG_SIZE)
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

    @property
    def anthropic_analytics_key(self) -> str:
        """The Analytics API key the fake Claude Enterprise organization accepts (not the admin
        key, which the Analytics API refuses, as it does the other way round)."""
        return self._analytics_key

    @property
    def github_token(self) -> str:
        """The token the fake GitHub billing API accepts (a demo value, not a secret)."""
        return self._keys[GITHUB]

    @property
    def github_organizations(self) -> tuple[str, ...]:
        """Organizations with Copilot seats (all owned by :attr:`github_enterprise`)."""
        return tuple(org.name for org in GITHUB_ORGS)

    @property
    def github_enterprise(self) -> str:
        """The simulated enterprise's slug."""
        return GITHUB_ENTERPRISE

    @property
    def openrouter_key(self) -> str:
        """The management key the fake OpenRouter accepts (a demo value, not a secret)."""
        return self._keys[openrouter_api.PROVIDER]

    @property
    def openrouter_inference_key(self) -> str:
        """An inference key: the management endpoints answer it 403."""
        return openrouter_api.INFERENCE_KEY

    @property
    def deepseek_key(self) -> str:
        """The API key the fake DeepSeek accepts (a demo value, not a secret)."""
        return self._keys[deepseek_api.PROVIDER]

    @property
    def groq_key(self) -> str:
        """The key of the fake Groq Enterprise organization (a demo value, not a secret)."""
        return self._keys[groq_api.PROVIDER]

    @property
    def groq_free_key(self) -> str:
        """A key of a non-Enterprise Groq organization: the metrics API answers 404."""
        return groq_api.FREE_KEY

    # ------------------------------------------------------------------ clock
    def now(self) -> float:
        """The simulated current time (Unix seconds)."""
        clock = self._clock  # one read: set_now may run in another thread
        if clock is None:
            return time.time()
        ts, running_since = clock
        return ts if running_since is None else ts + time.monotonic() - running_since

    def set_now(self, ts: float | None, *, running: bool = False) -> None:
        """Freeze the clock at ``ts``, or with ``running`` start it there and let it run
        (``None`` returns to the real clock)."""
        self._clock = None if ts is None else (ts, time.monotonic() if running else None)

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

    @property
    def github_base_url(self) -> str:
        """Base URL to configure as the GitHub REST API root (``…/github``)."""
        return f"{self.url}/{GITHUB}"

    @property
    def openrouter_base_url(self) -> str:
        """Base URL to configure as the OpenRouter API root (``…/openrouter/api/v1``)."""
        return self.url + openrouter_api.PREFIX

    @property
    def deepseek_base_url(self) -> str:
        """Base URL to configure as the DeepSeek API root (``…/deepseek``)."""
        return self.url + deepseek_api.PREFIX

    @property
    def groq_base_url(self) -> str:
        """Base URL standing for ``https://api.groq.com/v1/metrics/prometheus`` (``…/groq``)."""
        return self.url + groq_api.PREFIX

    @property
    def cursor_key(self) -> str:
        """The Cursor Admin API key the simulator accepts (as the Basic user name)."""
        return self._keys[cursor_api.PROVIDER]

    @property
    def cursor_base_url(self) -> str:
        """Base URL standing for ``https://api.cursor.com`` (``…/cursor``)."""
        return self.url + cursor_api.PREFIX

    @property
    def fireworks_key(self) -> str:
        """The Fireworks API key the simulator accepts."""
        return self._keys[fireworks_api.PROVIDER]

    @property
    def fireworks_base_url(self) -> str:
        """Base URL standing for ``https://api.fireworks.ai`` (``…/fireworks``)."""
        return self.url + fireworks_api.PREFIX

    @property
    def fireworks_account(self) -> str:
        """The Fireworks account id the simulator serves (``options.account_id``)."""
        return fireworks_api.ACCOUNT

    @property
    def xai_key(self) -> str:
        """The xAI management key the simulator accepts."""
        return self._keys[xai_api.PROVIDER]

    @property
    def xai_base_url(self) -> str:
        """Base URL standing for ``https://management-api.x.ai`` (``…/xai``)."""
        return self.url + xai_api.PREFIX

    @property
    def mistral_key(self) -> str:
        """The Mistral Admin API key the simulator accepts (in ``x-api-key``)."""
        return self._keys[mistral_api.PROVIDER]

    @property
    def mistral_base_url(self) -> str:
        """Base URL standing for ``https://api.mistral.ai/v1/admin`` (``…/mistral``)."""
        return self.url + mistral_api.PREFIX

    @property
    def chatgpt_key(self) -> str:
        """The workspace Admin key the fake Codex Analytics API accepts."""
        return self._keys[chatgpt_api.PROVIDER]

    @property
    def chatgpt_base_url(self) -> str:
        """Base URL standing for ``https://api.chatgpt.com`` (``…/chatgpt``)."""
        return self.url + chatgpt_api.PREFIX

    @property
    def chatgpt_workspace(self) -> str:
        """The ChatGPT workspace id the simulator serves (``options.workspace_id``)."""
        return chatgpt_api.WORKSPACE

    def endpoints(self) -> list[tuple[str, str, str]]:
        """(provider, base URL, demo key) of every simulated provider."""
        return [
            ("openai", self.openai_base_url, self.openai_key),
            ("anthropic", self.anthropic_base_url, self.anthropic_key),
            ("github_copilot", self.github_base_url, self.github_token),
            ("openrouter", self.openrouter_base_url, self.openrouter_key),
            ("deepseek", self.deepseek_base_url, self.deepseek_key),
            ("groq", self.groq_base_url, self.groq_key),
            ("cursor", self.cursor_base_url, self.cursor_key),
            ("fireworks", self.fireworks_base_url, self.fireworks_key),
            ("xai", self.xai_base_url, self.xai_key),
            ("mistral", self.mistral_base_url, self.mistral_key),
            ("chatgpt", self.chatgpt_base_url, self.chatgpt_key),
        ]

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
                n
                for (p, e), n in self._counts.items()
                if provider in (None, p) and endpoint in (None, e)
            )

    def request_log(self) -> list[tuple[str, str, str]]:
        """The latest requests received (up to ``LOG_SIZE``): (provider, endpoint, raw query)."""
        with self._log_lock:
            return list(self._log)

    def reset_counts(self) -> None:
        """Forget the request counts and log."""
        with self._log_lock:
            self._counts.clear()
            self._log.clear()

    # ----------------------------------------------------------------- oracle
    def expected_openai(self, start: int, end: int) -> Expected:
        """Ground truth for OpenAI over ``[start, min(end, now))``.

        Cost covers the UTC days that start in ``[start, end)``, priced up to now.
        """
        return expected_openai(self.data, start, end, self.now())

    def expected_anthropic_analytics(self, start: int, end: int) -> Expected:
        """Ground truth of the Analytics API over ``[start, end)`` at the simulated now."""
        return anthropic_analytics_api.expected(self.data, start, end, self.now())

    def expected_anthropic(self, start: int, end: int) -> Expected:
        """Ground truth for Anthropic, with the same ranges as :meth:`expected_openai`."""
        return expected_anthropic(self.data, start, end, self.now())

    def expected_github(self, owner: str, start: int, end: int) -> Expected:
        """Ground truth of a GitHub organization's (or the enterprise's) Copilot billing.

        ``cost``: net USD by (organization, sku); ``premium_requests``: by (model, sku);
        UTC days starting in ``[start, end)`` up to now.
        """
        return github_api.expected(self.github_data, owner, start, end, self.now())

    def expected_claude_code(self, start: int, end: int) -> dict[str, dict[Any, float]]:
        """Ground truth of the Claude Code report, days starting in ``[start, end)`` (see
        :func:`claude_code_api.expected` for the keys)."""
        return claude_code_api.expected(self.claude_code_data, start, end, self.now())

    def expected_openrouter(self, start: int, end: int) -> dict[str, Any]:
        """Ground truth for OpenRouter (see :func:`more_oracle.expected_openrouter`)."""
        return expected_openrouter(self.more_data, start, end, self.now())

    def expected_groq(self, start: int, end: int) -> dict[str, Any]:
        """Ground truth for Groq's integrated rates (see :func:`more_oracle.expected_groq`)."""
        return expected_groq(self.more_data, start, end, self.now())

    def expected_cursor(self, start: int, end: int) -> dict[str, dict[Any, float]]:
        """Ground truth for Cursor (see :func:`cursor_api.expected`)."""
        return cursor_api.expected(self.seed, start, end, self.now())

    def expected_fireworks(self, start: int, end: int) -> dict[str, dict[Any, float]]:
        """Ground truth for Fireworks (see :func:`fireworks_api.expected`)."""
        return fireworks_api.expected(self.seed, start, end, self.now())

    def expected_xai(self, start: int, end: int) -> dict[str, Any]:
        """Ground truth for xAI (see :func:`xai_api.expected`)."""
        return xai_api.expected(self.seed, start, end, self.now())

    def expected_mistral(self, start: int, end: int, eur_usd: float) -> dict[str, Any]:
        """Ground truth for Mistral (see :func:`mistral_api.expected`)."""
        return mistral_api.expected(self.seed, start, end, self.now(), eur_usd)

    def expected_chatgpt(self, start: int, end: int, rate: float | None) -> dict[str, Any]:
        """Ground truth for ChatGPT's Codex usage (see :func:`chatgpt_api.expected`)."""
        return chatgpt_api.expected(self.seed, start, end, self.now(), rate)

    def expected_deepseek(self) -> float | None:
        """DeepSeek's balance in dollars now, None when it is not in USD."""
        return expected_deepseek(self.more_data, self.now())

    def openai_project_names(self) -> dict[str, str]:
        """Project id -> display name (archived projects included)."""
        return {p.id: p.name for p in PROJECTS}

    def anthropic_workspace_names(self) -> dict[str, str]:
        """Workspace id -> display name (archived included; the default workspace has no id)."""
        return {w.id: w.name for w in WORKSPACES}

    # --------------------------------------------------------------- requests
    def _respond(
        self, method: str, path: str, raw_query: str, headers: Mapping[str, str], payload: bytes
    ) -> Reply:
        provider, endpoint = "", path
        for prefix, name in _PREFIXES:
            if path == prefix or path.startswith(prefix + "/"):
                provider, endpoint = name, path[len(prefix) :]
                break
        with self._log_lock:
            self._counts[provider, endpoint] += 1
            self._log.append((provider, endpoint, raw_query))
        if not provider:
            return _json(404, {"error": {"message": f"no simulated provider at {path}"}})
        apis: dict[str, Any] = {OPENAI: openai_api, ANTHROPIC: anthropic_api, GITHUB: github_api}
        api: Any = {**apis, **_MORE_APIS}[provider]
        extra = {"request-id": anthropic_api.new_request_id()} if provider == ANTHROPIC else {}
        fault = self._faults.take(provider, endpoint)
        if fault is not None and fault.kind != "slow":
            return self._fault_reply(api, provider, fault, extra)
        if fault is not None:
            time.sleep(fault.delay)
        try:
            if provider in _SEEDED_APIS:  # a pure function of the seed; POST reports
                api.check_headers(headers, self._keys[provider])
                query = Query(raw_query)
                body = api.handle(method, endpoint, query, payload, self.now(), self.seed)
                return _json(200, body, extra)
            if method != "GET":
                raise ApiError(405, f"method {method} not allowed")
            prefix = anthropic_analytics_api.PREFIX
            analytics = provider == ANTHROPIC and endpoint.startswith(prefix)
            api.check_headers(headers, self._analytics_key if analytics else self._keys[provider])
            query = Query(raw_query)
            if provider == OPENAI:
                body = openai_api.handle(endpoint, query, self.now(), self.data)
            elif provider == GITHUB:
                body = github_api.handle(endpoint, query, self.now(), self.github_data)
            elif provider in _MORE_APIS:
                body = api.handle(endpoint, query, self.now(), self.more_data)
            elif analytics:
                body = anthropic_analytics_api.handle(endpoint, query, self.now(), self.data)
            elif endpoint == claude_code_api.PATH:
                body = claude_code_api.handle(query, self.now(), self.claude_code_data)
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
