"""The web endpoints: ``/``, ``/metrics``, ``/-/healthy`` and ``/-/ready``.

A small WSGI app served by the stdlib's threading WSGI server. Every endpoint
reads the current snapshot only; nothing here calls a provider.
"""

from __future__ import annotations

import gzip
import html
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import CollectorRegistry

from exporter import __version__
from exporter.collector import SnapshotCollector
from exporter.snapshot import Snapshot

StartResponse = Callable[..., Any]
Environ = dict[str, Any]


class MetricsApp:
    """WSGI application serving one snapshot source."""

    def __init__(self, source: Callable[[], Snapshot]) -> None:
        self._source = source
        self._text = CollectorRegistry(auto_describe=False)
        self._text.register(SnapshotCollector(source))
        self._openmetrics = CollectorRegistry(auto_describe=False)
        self._openmetrics.register(SnapshotCollector(source, openmetrics=True))

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/")
        routes: dict[str, Callable[[Environ], tuple[str, str, bytes]]] = {
            "/": self._landing,
            "/metrics": self._metrics,
            "/-/healthy": lambda _: ("200 OK", "text/plain; charset=utf-8", b"Healthy\n"),
            "/-/ready": self._ready,
        }
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
        if path == "/metrics" and "gzip" in environ.get("HTTP_ACCEPT_ENCODING", ""):
            body = gzip.compress(body, compresslevel=1)
            headers.append(("Content-Encoding", "gzip"))
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [] if method == "HEAD" else [body]

    def _metrics(self, environ: Environ) -> tuple[str, str, bytes]:
        encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT", ""))
        openmetrics = content_type.startswith("application/openmetrics-text")
        registry = self._openmetrics if openmetrics else self._text
        return "200 OK", content_type, encoder(registry)

    def _ready(self, environ: Environ) -> tuple[str, str, bytes]:
        if self._source().ready:
            return "200 OK", "text/plain; charset=utf-8", b"Ready\n"
        return (
            "503 Service Unavailable",
            "text/plain; charset=utf-8",
            b"Not ready: waiting for the first poll of every account\n",
        )

    def _landing(self, environ: Environ) -> tuple[str, str, bytes]:
        rows = []
        for account in self._source().accounts:
            status = account.status
            state = "up" if status.up else ("down" if status.polled else "pending")
            last = (
                datetime.fromtimestamp(status.last_success, UTC).isoformat(timespec="seconds")
                if status.last_success is not None
                else "never"
            )
            rows.append(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>".format(
                    *(
                        html.escape(v)
                        for v in (
                            account.account,
                            account.provider,
                            state,
                            last,
                            status.last_error or "",
                        )
                    )
                )
            )
        body = _LANDING.format(version=html.escape(__version__), rows="\n".join(rows))
        return "200 OK", "text/html; charset=utf-8", body.encode()


def _respond(
    start_response: StartResponse, status: str, content_type: str, body: bytes, method: str
) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [] if method == "HEAD" else [body]


_LANDING = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>AI Cost Exporter</title></head>
<body>
<h1>AI Cost Exporter</h1>
<p>Version {version}. <a href="/metrics">Metrics</a> &middot;
<a href="/-/healthy">Health</a> &middot; <a href="/-/ready">Readiness</a></p>
<table border="1" cellpadding="4">
<tr><th>Account</th><th>Provider</th><th>Last poll</th>
<th>Last success (UTC)</th><th>Last error</th></tr>
{rows}
</table>
</body></html>
"""


class _Handler(WSGIRequestHandler):
    timeout = 30  # a stalled client must not hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingServerV6(_ThreadingServer):
    address_family = socket.AF_INET6


def parse_listen_address(address: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``:PORT`` means every interface, ``[::1]:PORT`` for IPv6)."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"invalid listen address {address!r}: expected HOST:PORT, e.g. :9877")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port_text)


class WebServer:
    """The HTTP server in a background thread."""

    def __init__(self, address: str, app: MetricsApp) -> None:
        host, port = parse_listen_address(address)
        server_class = _ThreadingServer
        try:
            if ipaddress.ip_address(host).version == 6:
                server_class = _ThreadingServerV6
        except ValueError:
            pass  # a host name: IPv4 resolution is what the stdlib server does
        self._server = make_server(
            host, port, app, server_class=server_class, handler_class=_Handler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    @property
    def port(self) -> int:
        """The bound port (useful with port 0)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Start serving in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
