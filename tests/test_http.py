from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest

from exporter.core.records import Dims, Family
from exporter.core.snapshot import (
    AccountSnapshot,
    AccountStatus,
    SnapshotStore,
    build_account_data,
)
from exporter.web.http import MetricsApp
from exporter.web.server import WebServer, parse_listen_address

NOV = 1793491200


@pytest.fixture
def store() -> SnapshotStore:
    return SnapshotStore(
        [AccountSnapshot("openai", "main"), AccountSnapshot("anthropic", "<b>acme</b>")]
    )


@pytest.fixture
def base_url(store: SnapshotStore) -> Iterator[str]:
    server = WebServer("127.0.0.1:0", MetricsApp(lambda: store.current))
    server.start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def test_parse_listen_address() -> None:
    assert parse_listen_address(":9877") == ("0.0.0.0", 9877)
    assert parse_listen_address("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_listen_address("[::1]:9877") == ("::1", 9877)
    for bad in ("9877", "host:", "host:port", ":70000"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_listen_address(bad)


def test_ready_only_after_every_account_polled(store: SnapshotStore, base_url: str) -> None:
    assert httpx.get(base_url + "/-/ready").status_code == 503
    store.update("main", status=AccountStatus(polled=True, up=False))
    assert httpx.get(base_url + "/-/ready").status_code == 503
    store.update("<b>acme</b>", status=AccountStatus(polled=True, up=True))
    assert httpx.get(base_url + "/-/ready").status_code == 200


def test_healthy_is_independent_of_providers(base_url: str) -> None:
    response = httpx.get(base_url + "/-/healthy")
    assert (response.status_code, response.text) == (200, "Healthy\n")


def test_metrics_content_negotiation(store: SnapshotStore, base_url: str) -> None:
    data = build_account_data(
        "openai", "main", NOV, {(Family.REQUESTS, Dims("p"), ("default",)): 3.0}, {}, {}, 0
    )
    store.update("main", data=data)
    text = httpx.get(base_url + "/metrics")
    assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert (
        'aicost_requests_total{account="main",project="p",project_id="p",provider="openai",'
        'service_tier="default"} 3.0' in text.text.splitlines()
    )
    prometheus_accept = (
        "application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
        "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
    )
    om = httpx.get(base_url + "/metrics", headers={"Accept": prometheus_accept})
    assert om.headers["content-type"].startswith("application/openmetrics-text; version=1.0.0")
    assert "aicost_requests_created{" in om.text
    assert om.text.endswith("# EOF\n")


def test_metrics_gzip(base_url: str) -> None:
    with httpx.Client() as client:
        request = client.build_request(
            "GET", base_url + "/metrics", headers={"Accept-Encoding": "gzip"}
        )
        response = client.send(request, stream=True)
        raw = b"".join(response.iter_raw())
    assert response.headers["content-encoding"] == "gzip"
    assert b"aicost_build_info" in gzip.decompress(raw)


def test_landing_page_escapes_and_links(store: SnapshotStore, base_url: str) -> None:
    store.update(
        "main", status=AccountStatus(polled=True, up=False, last_error="auth: invalid admin key")
    )
    page = httpx.get(base_url + "/")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<a href="/metrics">' in page.text
    assert "&lt;b&gt;acme&lt;/b&gt;" in page.text and "<b>acme</b>" not in page.text
    assert 'data-figure="state">down<' in page.text
    assert 'data-figure="state">pending<' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert "auth: invalid admin key" in page.text


def test_unknown_path_and_method(base_url: str) -> None:
    assert httpx.get(base_url + "/nope").status_code == 404
    response = httpx.post(base_url + "/metrics", content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    head = httpx.head(base_url + "/metrics")
    assert head.status_code == 200 and head.content == b""


def test_reload_without_a_configuration_file_is_refused_with_the_reason(base_url: str) -> None:
    # An app built without a reload callback (the demo, or lifecycle not enabled) says so.
    response = httpx.post(base_url + "/-/reload")
    assert response.status_code == 403
    assert response.text == "Reload is not available: no configuration to reload\n"
    assert httpx.get(base_url + "/-/reload").status_code == 405
