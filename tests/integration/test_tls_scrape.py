"""A real Prometheus scrapes the real exporter over mutual TLS with basic auth."""

from __future__ import annotations

import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pytest

from exporter.simulator import Simulator
from tests.conftest import real_binary

from .certs import Pki, make_pki
from .exporter_process import ExporterProcess, free_port

pytestmark = pytest.mark.integration

PASSWORD = "scrape-Pa55word"
CONFIG = """
accounts:
  - name: oai
    provider: openai
    api_key: ${{TLS_OPENAI_KEY}}
    base_url: {openai}
"""
WEB_CONFIG = """
tls_server_config:
  cert_file: server.pem
  key_file: server-key.pem
  client_ca_file: ca.pem
  client_auth_type: RequireAndVerifyClientCert
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
basic_auth_users:
  prometheus: {hash}
"""
PROMETHEUS = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
{jobs}
"""
JOB = """  - job_name: {name}
    scheme: https
    tls_config:
      ca_file: {pki.ca}
{client}    basic_auth:
      username: prometheus
      password: {password}
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""
CLIENT = "      cert_file: {pki.client_cert}\n      key_file: {pki.client_key}\n"


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def exporter(tmp_path: Path, pki: Pki) -> Iterator[int]:
    sim = Simulator(seed=5)
    sim.start("127.0.0.1", 0)
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG.format(openai=sim.openai_base_url))
    web = pki.ca.parent / "web.yml"
    web.write_text(
        WEB_CONFIG.format(hash=bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode())
    )
    exporter = ExporterProcess(
        config,
        {"TLS_OPENAI_KEY": sim.openai_key},
        tmp_path / "exporter.log",
        flags=("--web.config.file", str(web)),
        log_level="info",
    )
    try:
        with exporter:
            yield exporter.port
            assert exporter.stop() == 0
    finally:
        sim.stop()


def _query(api: str, expr: str) -> list[dict[str, Any]]:
    body = httpx.get(api + "/api/v1/query", params={"query": expr}, timeout=5).json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_prometheus_scrapes_over_mtls_with_basic_auth(
    tmp_path: Path, pki: Pki, exporter: int
) -> None:
    prometheus = real_binary("prometheus")
    jobs = "".join(
        JOB.format(name=name, pki=pki, client=client, password=password, port=exporter)
        for name, client, password in (
            ("good", CLIENT.format(pki=pki), PASSWORD),
            ("wrong_password", CLIENT.format(pki=pki), "guess"),
            ("no_client_cert", "", PASSWORD),
        )
    )
    (tmp_path / "prometheus.yml").write_text(PROMETHEUS.format(jobs=jobs))
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                up = {r["metric"]["job"]: r["value"][1] for r in _query(api, "up")}
                ingested = _query(api, 'count({__name__=~"aicost_.+", job="good"})')
                if len(up) == 3 and ingested and up["good"] == "1":
                    break
            except (httpx.TransportError, ValueError):  # still starting
                pass
            assert time.monotonic() < deadline, (tmp_path / "prometheus.log").read_text()[-3000:]
            time.sleep(0.5)
        assert up == {"good": "1", "wrong_password": "0", "no_client_cert": "0"}
        assert int(ingested[0]["value"][1]) > 10
        assert _query(api, 'aicost_collector_up{job="good",account="oai"}')
        targets = httpx.get(api + "/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        errors = {t["labels"]["job"]: t["lastError"] for t in targets}
        assert "401" in errors["wrong_password"]
        assert errors["good"] == ""
        assert errors["no_client_cert"] != ""
    finally:
        process.terminate()
        process.wait(timeout=15)
        log.close()
    # The same 401 seen directly, with a trusted client certificate.
    context = ssl.create_default_context(cafile=str(pki.ca))
    context.load_cert_chain(pki.client_cert, pki.client_key)
    url = f"https://127.0.0.1:{exporter}/metrics"
    denied = httpx.get(url, verify=context, auth=("prometheus", "guess"), timeout=5)
    assert denied.status_code == 401
    assert "aicost_" not in denied.text
    allowed = httpx.get(url, verify=context, auth=("prometheus", PASSWORD), timeout=5)
    assert allowed.status_code == 200 and allowed.headers["x-content-type-options"] == "nosniff"
