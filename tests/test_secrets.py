from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from exporter.config.secrets import (
    SecretError,
    decrypt_secret,
    encrypt_secret,
    generate_master_key,
    load_master_key,
    parse_master_key,
    redact,
)
from exporter.sources.providers.fields import quote

PLAINTEXT = "sk-admin-FAKE-0123456789abcdef"


@pytest.fixture
def key() -> bytes:
    return parse_master_key(generate_master_key())


def test_generate_master_key_is_32_random_bytes() -> None:
    first, second = generate_master_key(), generate_master_key()
    assert len(base64.b64decode(first, validate=True)) == 32
    assert first != second


def test_round_trip(key: bytes) -> None:
    token = encrypt_secret(PLAINTEXT, key)
    assert token.startswith("enc:v1:")
    assert PLAINTEXT not in token
    assert decrypt_secret(token, key) == PLAINTEXT


def test_round_trip_unicode(key: bytes) -> None:
    assert decrypt_secret(encrypt_secret("clé-ünïcode", key), key) == "clé-ünïcode"


def test_token_format(key: bytes) -> None:
    token = encrypt_secret(PLAINTEXT, key)
    body = token.removeprefix("enc:v1:")
    assert "=" not in body and "+" not in body and "/" not in body
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    # 12-byte nonce + ciphertext (same length as plaintext) + 16-byte tag
    assert len(raw) == 12 + len(PLAINTEXT.encode()) + 16


def test_random_nonce(key: bytes) -> None:
    first, second = encrypt_secret(PLAINTEXT, key), encrypt_secret(PLAINTEXT, key)
    assert first != second
    assert decrypt_secret(first, key) == decrypt_secret(second, key) == PLAINTEXT


def test_wrong_key(key: bytes) -> None:
    token = encrypt_secret(PLAINTEXT, key)
    other = parse_master_key(generate_master_key())
    with pytest.raises(SecretError) as info:
        decrypt_secret(token, other)
    message = str(info.value)
    assert message == "cannot decrypt secret: wrong master key or corrupted value"
    assert token[7:] not in message and PLAINTEXT not in message


def test_tampered(key: bytes) -> None:
    token = encrypt_secret(PLAINTEXT, key)
    body = bytearray(base64.urlsafe_b64decode(token[7:] + "=" * (-len(token[7:]) % 4)))
    body[20] ^= 0x01
    tampered = "enc:v1:" + base64.urlsafe_b64encode(bytes(body)).rstrip(b"=").decode()
    with pytest.raises(SecretError, match="wrong master key or corrupted value"):
        decrypt_secret(tampered, key)


def test_associated_data_is_bound(key: bytes) -> None:
    # A token sealed without the associated data must not decrypt.
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, PLAINTEXT.encode(), None)
    token = "enc:v1:" + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()
    with pytest.raises(SecretError):
        decrypt_secret(token, key)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("enc:v2:abcdef", "encrypted secret must start with 'enc:v1:'"),
        ("sk-admin-FAKE", "encrypted secret must start with 'enc:v1:'"),
        ("enc:v1:not*base64!", "encrypted secret is not valid base64url"),
        ("enc:v1:QUJD", "encrypted secret is too short"),
        ("enc:v1:", "encrypted secret is too short"),
    ],
)
def test_bad_format(key: bytes, token: str, message: str) -> None:
    with pytest.raises(SecretError) as info:
        decrypt_secret(token, key)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(b"x" * 16).decode(),
        base64.b64encode(b"x" * 33).decode(),
        "",
        "not base64!!",
    ],
)
def test_bad_master_key(text: str) -> None:
    with pytest.raises(SecretError) as info:
        parse_master_key(text)
    assert str(info.value) == "master key must be 32 bytes, base64-encoded"


def test_parse_master_key_strips_whitespace() -> None:
    text = generate_master_key()
    assert parse_master_key(f"  {text}\n") == base64.b64decode(text)


def test_encrypt_rejects_short_key() -> None:
    with pytest.raises(SecretError, match="master key must be 32 bytes"):
        encrypt_secret(PLAINTEXT, b"short")


def test_load_master_key_from_env() -> None:
    text = generate_master_key()
    assert load_master_key({"AICOST_MASTER_KEY": text + "\n"}, None) == base64.b64decode(text)


def test_load_master_key_none() -> None:
    assert load_master_key({}, None) is None
    assert load_master_key({"AICOST_MASTER_KEY": "  "}, None) is None


def test_load_master_key_file_wins_over_env(tmp_path: Path) -> None:
    from_file, from_env = generate_master_key(), generate_master_key()
    path = tmp_path / "master.key"
    path.write_text(f"\n{from_file}\n")
    key = load_master_key({"AICOST_MASTER_KEY": from_env}, path)
    assert key == base64.b64decode(from_file)


def test_load_master_key_bad_env_value() -> None:
    with pytest.raises(SecretError) as info:
        load_master_key({"AICOST_MASTER_KEY": "c2hvcnQ="}, None)
    assert str(info.value) == "AICOST_MASTER_KEY: master key must be 32 bytes, base64-encoded"


def test_load_master_key_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.key"
    with pytest.raises(SecretError) as info:
        load_master_key({}, path)
    assert str(info.value) == f"cannot read master key file {path}: No such file or directory"


def test_load_master_key_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.key"
    path.write_text("\n")
    with pytest.raises(SecretError) as info:
        load_master_key({"AICOST_MASTER_KEY": generate_master_key()}, path)
    assert str(info.value) == f"master key file {path}: master key must be 32 bytes, base64-encoded"


# --- redacting error messages -----------------------------------------------------------------

SECRET = "sk-admin-FAKE-Q7vXr2LmN9pT-4wYz8KcB3hJf6-DsA1eGu"


def fragments(text: str, secret: str = SECRET) -> list[str]:
    """Runs of 12 characters of ``secret`` that occur in ``text``."""
    return [secret[i : i + 12] for i in range(len(secret) - 11) if secret[i : i + 12] in text]


def test_redact_removes_the_key_and_its_fragments() -> None:
    assert redact(f"currency 'usd{SECRET}'", [SECRET]) == "currency 'usd[redacted]'"
    assert redact(f"quoted {SECRET[:20]}…", [SECRET]) == "quoted [redacted]…"
    assert redact(f"{SECRET[5:30]} and {SECRET[-14:]}", [SECRET]) == "[redacted] and [redacted]"


def test_redact_scrubs_before_it_cuts() -> None:
    # A key starting 20 characters before the cut used to leave its first 20 characters behind.
    message = "x " * 140 + SECRET + " y" * 100
    out = redact(message, [SECRET], limit=300)
    assert fragments(out) == [] and len(out) <= 300 and out.endswith("…")


def test_redact_removes_what_looks_like_any_key() -> None:
    text = "a ghp_0123456789abcdef, sk-ant-api03-abcdefgh and gsk_zyxwvut9 b"
    assert redact(text) == "a ghp_[redacted], sk-ant-[redacted] and gsk_[redacted] b"
    assert redact("token " + "f3" * 24 + " end") == "token [redacted] end"  # opaque, 48 chars


def test_redact_leaves_ordinary_messages_alone() -> None:
    for text in (
        "GET /organizations/octo-demo/settings/billing/premium_request/usage: HTTP 500",
        "GET /v1/organizations/usage_report/messages: 'cache_creation' is not an object",
        "model claude-sonnet-4-5-20250929 has no price; ft:gpt-4.1-mini:org:custom:abc",
    ):
        assert redact(text) == text


def test_quote_shortens_what_a_provider_sends() -> None:
    assert quote("usd") == "'usd'"
    assert quote(7) == "7"
    long = quote("x" * 100)
    assert len(long) == 40 and long.endswith("…")
