from __future__ import annotations

import base64
import logging
import os
import ssl
import subprocess
from pathlib import Path

import bcrypt
import pytest

from exporter.web import webconfig
from exporter.web.webconfig import (
    BasicAuth,
    WebConfigError,
    WebConfigSource,
    load_web_state,
    parse_web_config,
)
from tests.integration.certs import Pki, make_pki

PASSWORD = "s3cret-Pa55"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
TLS = "tls_server_config:\n  cert_file: server.pem\n  key_file: server-key.pem\n"

# (name, file, valid for promtool 2.42, valid here). The two may differ only where the
# last column's comment says why (see docs/security.md).
ORACLE: list[tuple[str, str, bool, bool]] = [
    ("empty", "", True, True),
    ("users", f"basic_auth_users:\n  alice: {HASH}\n", True, True),
    ("users null", "basic_auth_users:\n", True, True),
    ("tls", TLS, True, True),
    ("tls absolute", TLS.replace(": server", ": {dir}/server"), True, True),
    ("tls and users", TLS + f"basic_auth_users:\n  alice: {HASH}\n", True, True),
    ("versions", TLS + "  min_version: TLS13\n  max_version: TLS13\n", True, True),
    ("tls10", TLS + "  min_version: TLS10\n", True, True),
    (
        "mtls",
        TLS + "  client_ca_file: ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n",
        True,
        True,
    ),
    (
        "verify if given",
        TLS + "  client_ca_file: ca.pem\n  client_auth_type: VerifyClientCertIfGiven\n",
        True,
        True,
    ),
    ("request cert", TLS + "  client_auth_type: RequestClientCert\n", True, True),
    ("verify, system roots", TLS + "  client_auth_type: RequireAndVerifyClientCert\n", True, True),
    (
        "ciphers",
        TLS
        + "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256]\n",
        True,
        True,
    ),
    ("curves", TLS + "  curve_preferences: [X25519, CurveP256]\n", True, True),
    ("prefer", TLS + "  prefer_server_cipher_suites: false\n", True, True),
    (
        "headers",
        "http_server_config:\n  http2: false\n  headers:\n"
        "    Strict-Transport-Security: max-age=31536000\n"
        "    X-Content-Type-Options: nosniff\n    X-Frame-Options: deny\n"
        "    X-XSS-Protection: '1; mode=block'\n"
        "    Content-Security-Policy: default-src 'none'\n",
        True,
        True,
    ),
    ("empty tls strings", "tls_server_config:\n  cert_file: ''\n  key_file: ''\n", True, True),
    # Invalid for both.
    ("unknown top key", "rate_limit:\n  interval: 1s\n", False, False),
    ("unknown tls key", TLS + "  client_allowed_sans: [a]\n", False, False),
    ("not a mapping", "- a\n", False, False),
    ("tls a list", "tls_server_config: []\n", False, False),
    ("missing key_file", "tls_server_config:\n  cert_file: server.pem\n", False, False),
    ("missing cert_file", "tls_server_config:\n  key_file: server-key.pem\n", False, False),
    ("auth only", "tls_server_config:\n  client_auth_type: NoClientCert\n", False, False),
    ("cert file absent", TLS.replace("server.pem", "absent.pem"), False, False),
    ("key mismatch", TLS.replace("server-key.pem", "client-key.pem"), False, False),
    ("garbage key", TLS.replace("server-key.pem", "garbage.pem"), False, False),
    ("bad version", TLS + "  min_version: TLS14\n", False, False),
    ("lower-case version", TLS + "  min_version: tls12\n", False, False),
    ("bad client auth", TLS + "  client_auth_type: Foo\n", False, False),
    ("ca without auth", TLS + "  client_ca_file: ca.pem\n", False, False),
    (
        "ca absent",
        TLS + "  client_ca_file: absent.pem\n  client_auth_type: RequireAndVerifyClientCert\n",
        False,
        False,
    ),
    ("openssl cipher name", TLS + "  cipher_suites: [ECDHE-RSA-AES128-GCM-SHA256]\n", False, False),
    ("insecure cipher", TLS + "  cipher_suites: [TLS_RSA_WITH_3DES_EDE_CBC_SHA]\n", False, False),
    ("bad curve", TLS + "  curve_preferences: [P256]\n", False, False),
    ("bad header", "http_server_config:\n  headers:\n    X-Foo: bar\n", False, False),
    (
        "header case",
        "http_server_config:\n  headers:\n    x-frame-options: deny\n",
        False,
        False,
    ),
    (
        "header value",
        "http_server_config:\n  headers:\n    X-Frame-Options: DENY\n",
        False,
        False,
    ),
    ("http2 not bool", "http_server_config:\n  http2: fast\n", False, False),
    ("plain password", "basic_auth_users:\n  alice: hunter2\n", False, False),
    ("null hash", "basic_auth_users:\n  alice:\n", False, False),
    ("cost 3", "basic_auth_users:\n  alice: $2a$03$" + "a" * 53 + "\n", False, False),
    ("version 3", "basic_auth_users:\n  alice: $3a$10$" + "a" * 53 + "\n", False, False),
    ("users a list", "basic_auth_users: [alice]\n", False, False),
    ("duplicate user", f"basic_auth_users:\n  alice: {HASH}\n  alice: {HASH}\n", False, False),
    # Valid for Go, refused here: Python's ssl cannot require a client certificate without
    # verifying it, and a client CA file without a certificate in it admits nobody.
    ("require any cert", TLS + "  client_auth_type: RequireAnyClientCert\n", True, False),
    ("require client cert", TLS + "  client_auth_type: RequireClientCert\n", True, False),
    (
        "garbage ca",
        TLS + "  client_ca_file: garbage.pem\n  client_auth_type: RequireAndVerifyClientCert\n",
        True,
        False,
    ),
]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    (directory / "garbage.pem").write_text("not a PEM file\n")
    return make_pki(directory)


def _write(pki: Pki, name: str, text: str) -> Path:
    path = pki.ca.parent / (name.replace(" ", "_").replace(",", "") + ".yml")
    path.write_text(text.replace("{dir}", str(pki.ca.parent)))
    return path


@pytest.mark.parametrize(
    ("name", "text", "promtool_ok", "ours_ok"), ORACLE, ids=[row[0] for row in ORACLE]
)
def test_promtool_is_the_oracle(
    promtool: str, pki: Pki, name: str, text: str, promtool_ok: bool, ours_ok: bool
) -> None:
    path = _write(pki, name, text)
    # From another directory: relative paths must resolve against the file, for both.
    result = subprocess.run(
        [promtool, "check", "web-config", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )
    assert (result.returncode == 0) == promtool_ok, result.stdout + result.stderr
    cwd = os.getcwd()
    os.chdir("/")
    try:
        load_web_state(path)
    except WebConfigError as exc:
        assert not ours_ok, str(exc)
        assert str(path) in str(exc)
        assert HASH not in str(exc)
    else:
        assert ours_ok
    finally:
        os.chdir(cwd)


def test_defaults_and_resolved_paths(tmp_path: Path) -> None:
    config = parse_web_config(TLS, tmp_path)
    assert config.tls is not None
    assert config.tls.cert_file == tmp_path / "server.pem"
    assert config.tls.key_file == tmp_path / "server-key.pem"
    assert (config.tls.min_version, config.tls.max_version) == ("TLS12", "TLS13")
    assert config.tls.client_auth_type == "NoClientCert"
    assert parse_web_config("", tmp_path) == webconfig.WebConfig()
    assert parse_web_config("basic_auth_users:\n  1: " + HASH, tmp_path).users == {"1": HASH}


def test_messages_name_the_field(tmp_path: Path) -> None:
    cases = {
        "foo: 1": "foo: unknown field",
        TLS + "  foo: 1": "tls_server_config.foo: unknown field",
        "basic_auth_users:\n  alice: hunter2": "basic_auth_users.alice: too short",
        TLS + "  min_version: TLS9": "tls_server_config.min_version: unknown TLS version 'TLS9'",
        "a: [": "line 1, column",
    }
    for text, expected in cases.items():
        with pytest.raises(WebConfigError, match=expected.replace("[", r"\[")) as info:
            parse_web_config(text, tmp_path)
        assert "hunter2" not in str(info.value)


def test_context_honours_versions_ciphers_and_client_auth(pki: Pki) -> None:
    text = (
        TLS
        + "  min_version: TLS13\n  client_ca_file: ca.pem\n"
        + "  client_auth_type: RequireAndVerifyClientCert\n"
    )
    state = load_web_state(_write(pki, "ctx", text))
    assert state.context is not None
    assert state.context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert state.context.verify_mode == ssl.CERT_REQUIRED
    given = load_web_state(
        _write(
            pki,
            "ctx2",
            TLS
            + "  client_ca_file: ca.pem\n  client_auth_type: VerifyClientCertIfGiven\n"
            + "  cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]\n",
        )
    )
    assert given.context is not None and given.context.verify_mode == ssl.CERT_OPTIONAL
    tls12 = [c["name"] for c in given.context.get_ciphers() if c["protocol"] == "TLSv1.2"]
    assert tls12 == ["ECDHE-ECDSA-AES256-GCM-SHA384"]


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_basic_auth_checks_and_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = bcrypt.checkpw

    def counting(password: bytes, hashed: bytes) -> bool:
        calls.append(hashed)
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", counting)
    auth = BasicAuth({"alice": HASH})
    assert auth.check(_basic("alice", PASSWORD))
    assert auth.check(_basic("alice", PASSWORD))
    assert len(calls) == 1  # the second check came from the cache
    assert not auth.check(_basic("alice", "wrong"))
    assert not auth.check(_basic("bob", PASSWORD))  # unknown user: still a bcrypt run
    assert len(calls) == 3
    for header in (None, "", "Bearer x", "Basic !!!", "Basic " + base64.b64encode(b"x").decode()):
        assert not auth.check(header)
    assert PASSWORD not in repr(auth) and HASH not in repr(auth)
    for i in range(150):  # the cache stays bounded
        auth.check(_basic("alice", f"guess{i}"))
    assert len(auth._refused) <= 100
    # ... and the flood of wrong passwords did not evict the valid login: no bcrypt for it.
    before = len(calls)
    assert auth.check(_basic("alice", PASSWORD))
    assert len(calls) == before


def test_an_unknown_user_costs_as_much_as_a_known_one() -> None:
    strong = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(6)).decode()
    auth = BasicAuth({"alice": HASH, "carol": strong})
    assert auth._dummy is None  # made at the first unknown user: loading (and reloading) is quick
    assert not auth.check(_basic("mallory", PASSWORD))
    assert auth._dummy is not None
    assert auth._dummy.split(b"$")[2] == b"06"  # the users' highest cost, not a fixed one


def test_source_reloads_on_change_and_keeps_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  alice: {HASH}\n")
    source = WebConfigSource(path)
    first = source.current()
    assert source.current() is first  # unchanged: no reload
    assert first.auth is not None and first.auth.check(_basic("alice", PASSWORD))
    other = bcrypt.hashpw(b"other", bcrypt.gensalt(4)).decode()
    path.write_text(f"basic_auth_users:\n  bob: {other}\n")
    second = source.current()
    assert second is not first
    assert second.auth is not None and second.auth.check(_basic("bob", "other"))
    assert not second.auth.check(_basic("alice", PASSWORD))
    with caplog.at_level(logging.ERROR, logger="exporter.web.webconfig"):
        path.write_text("basic_auth_users:\n  bob: plaintext\n")
        assert source.current() is second
        assert source.current() is second
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # logged once per change, not per connection
    assert "basic_auth_users.bob" in errors[0].getMessage()
    assert "plaintext" not in errors[0].getMessage()
    path.unlink()
    assert source.current() is second
    path.write_text("")
    assert source.current().auth is None


def test_source_refuses_to_toggle_tls_and_follows_certificate_rotation(pki: Pki) -> None:
    directory = pki.ca.parent / "rotation"
    rotated = make_pki(directory)
    path = directory / "web.yml"
    path.write_text(TLS)
    source = WebConfigSource(path)
    assert source.tls
    first = source.current()
    assert first.context is not None
    path.write_text("")
    assert source.current() is first  # TLS off needs a restart
    path.write_text(TLS)
    assert source.current() is not first
    fresh = source.current()
    make_pki(directory)  # new certificate and key at the same paths
    assert source.current() is not fresh
    assert rotated.server_cert.exists()


def test_invalid_file_at_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(WebConfigError, match="No such file"):
        WebConfigSource(tmp_path / "absent.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text(TLS)
    with pytest.raises(WebConfigError, match=r"bad\.yml: tls_server_config: cannot load"):
        WebConfigSource(bad)


def test_cli_refuses_an_invalid_web_config_with_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from exporter.cli import main

    config = tmp_path / "config.yaml"
    config.write_text("accounts:\n  - name: a\n    provider: openai\n    api_key: ${K}\n")
    web = tmp_path / "web.yml"
    web.write_text("basic_auth_users:\n  alice: hunter2\n")
    monkeypatch.setenv("K", "sk-test")
    for command in ("check", "run"):
        args = [command, "--config.file", str(config), "--web.config.file", str(web)]
        if command == "run":
            args += ["--web.listen-address", "127.0.0.1:0"]
        assert main(args) == 1
    web.write_text(f"basic_auth_users:\n  alice: {HASH}\n")
    assert main(["check", "--config.file", str(config), "--web.config.file", str(web)]) == 0


def test_a_file_nested_too_deeply_is_refused_and_the_last_good_one_kept(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(f"basic_auth_users:\n  alice: {HASH}\n")
    source = WebConfigSource(path)
    first = source.current()
    path.write_text("[" * 100_000)
    with pytest.raises(WebConfigError, match="nested too deeply"):
        load_web_state(path)
    assert source.current() is first
