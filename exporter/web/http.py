"""The web endpoints: ``/``, ``/metrics``, ``/-/healthy``, ``/-/ready`` and ``/-/reload``.

A small WSGI app (served by ``server.py``). Every endpoint reads the
current snapshot only; nothing here calls a provider.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from exporter import __version__
from exporter.core.snapshot import Snapshot
from exporter.web.exposition import Exposition
from exporter.web.landing import CONTENT_SECURITY_POLICY, LandingPage

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication
else:
    WSGIApplication = Callable[..., Iterable[bytes]]

log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class MetricsApp:
    """WSGI application serving one snapshot source; ``demo`` marks the landing page a demo."""

    def __init__(
        self,
        source: Callable[[], Snapshot],
        *,
        reload: Callable[[], tuple[bool, str]] | None = None,
        reload_refusal: str = "no configuration to reload",
        demo: bool = False,
    ) -> None:
        self._source = source
        self._reload = reload
        self._reload_refusal = reload_refusal
        self._exposition = Exposition(source)
        self._landing_page = LandingPage(source, demo=demo, version=__version__)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        routes: dict[str, Callable[[Environ], tuple[str, str, bytes]]] = {
            "/": self._landing,
            "/metrics": self._metrics,
            "/-/healthy": lambda _: ("200 OK", "text/plain; charset=utf-8", b"Healthy\n"),
            "/-/ready": self._ready,
        }
        if path == "/-/reload":
            return self._reload_endpoint(method, start_response)
        handler = routes.get(path)
        if handler is None:
            return _respond(
                start_response, "404 Not Found", "text/plain; charset=utf-8", b"Not Found\n", method
            )
        if method not in ("GET", "HEAD"):
            start_response(
                "405 Method Not Allowed",
                [("Allow", "GET, HEAD"), ("Content-Type", "text/plain; charset=utf-8")],
            )
            return [b"Method Not Allowed\n"]
        status, content_type, body = handler(environ)
        headers = [("Content-Type", content_type)]
        if path == "/metrics" and _wants_gzip(environ):
            headers.append(("Content-Encoding", "gzip"))
        if path == "/":
            headers.append(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [] if method == "HEAD" else [body]

    def _reload_endpoint(self, method: str, start_response: StartResponse) -> Iterable[bytes]:
        # Like Prometheus: POST or PUT reloads; 500 with the reasons when the new file is refused.
        if method not in ("POST", "PUT"):
            start_response(
                "405 Method Not Allowed",
                [("Allow", "POST, PUT"), ("Content-Type", "text/plain; charset=utf-8")],
            )
            return [b"Method Not Allowed: use POST to reload\n"]
        if self._reload is None:
            body = f"Reload is not available: {self._reload_refusal}\n".encode()
            content_type = "text/plain; charset=utf-8"
            return _respond(start_response, "403 Forbidden", content_type, body, method)
        ok, message = self._reload()
        status = "200 OK" if ok else "500 Internal Server Error"
        return _respond(
            start_response, status, "text/plain; charset=utf-8", (message + "\n").encode(), method
        )

    def _metrics(self, environ: Environ) -> tuple[str, str, bytes]:
        accept = environ.get("HTTP_ACCEPT", "")
        content_type, body = self._exposition.body(accept, gzipped=_wants_gzip(environ))
        return "200 OK", content_type, body

    def _ready(self, environ: Environ) -> tuple[str, str, bytes]:
        if self._source().ready:
            return "200 OK", "text/plain; charset=utf-8", b"Ready\n"
        return (
            "503 Service Unavailable",
            "text/plain; charset=utf-8",
            b"Not ready: waiting for the first poll of every account\n",
        )

    def _landing(self, environ: Environ) -> tuple[str, str, bytes]:
        return "200 OK", "text/html; charset=utf-8", self._landing_page.body()


def _wants_gzip(environ: Environ) -> bool:
    return "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "")


def _respond(
    start_response: StartResponse, status: str, content_type: str, body: bytes, method: str
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [] if method == "HEAD" else [body]
