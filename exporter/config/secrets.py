"""AES-256-GCM encryption of API keys stored in the config file, and master key handling.

Encrypted values look like ``enc:v1:<base64url(nonce || ciphertext+tag)>``. Error messages
never contain any part of a token, a plaintext or a key.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PREFIX = "enc:v1:"
MASTER_KEY_ENV = "AICOST_MASTER_KEY"
MASTER_KEY_FLAG = "--secrets.master-key-file"
_AAD = b"ai-cost-exporter:enc:v1"
_NONCE_SIZE = 12
_TAG_SIZE = 16
_KEY_SIZE = 32


class SecretError(Exception):
    """A secret could not be decrypted, loaded or read; the message never contains it."""


MAX_MESSAGE_CHARS = 300
REDACTED = "[redacted]"
_FRAGMENT = 12
"""A run of this many characters of a known secret is redacted wherever it occurs (fewer tell
nothing of a random key, and would hit ordinary words)."""
KEY_LIKE = re.compile(
    r"(sk-ant-|sk-or-|sk-|ghp_|gho_|ghs_|ghu_|github_pat_|gsk_|xai-)[A-Za-z0-9_\-]{6,}"
)
"""The key formats of the supported providers (the prefix is group 1)."""
_OPAQUE = re.compile(r"[A-Za-z0-9_\-]{40,}")
"""An opaque token: no word, path or model name is that long unbroken."""


def mask_keys(text: str, marker: str = REDACTED) -> str:
    """``text`` with every key-shaped run cut to its prefix and ``marker``: ``sk-[redacted]``."""
    return KEY_LIKE.sub(lambda match: match.group(1) + marker, text)


def redact(text: str, secrets: Iterable[str] = (), *, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` fit for a log line, a metric or a page: without any run of 12 or more characters
    of ``secrets`` or anything that looks like a key, then cut to ``limit`` characters.

    Scrubbed before it is cut, so a cut never leaves the start of a key behind; fragments count
    because a provider may echo a key inside a value that an error message quotes shortened.
    """
    for secret in secrets:
        if len(secret) >= _FRAGMENT:
            text = _without_fragments(text, secret)
    text = _OPAQUE.sub(REDACTED, mask_keys(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _without_fragments(text: str, secret: str) -> str:
    # Every run of 12 or more characters of the secret is a chain of overlapping 12-character
    # fragments: mark where each fragment occurs, then redact each marked stretch once.
    marked = bytearray(len(text))
    for start in range(len(secret) - _FRAGMENT + 1):
        fragment = secret[start : start + _FRAGMENT]
        found = text.find(fragment)
        while found >= 0:
            marked[found : found + _FRAGMENT] = b"\1" * _FRAGMENT
            found = text.find(fragment, found + 1)
    if not any(marked):
        return text
    out: list[str] = []
    for i, ch in enumerate(text):
        if not marked[i]:
            out.append(ch)
        elif i == 0 or not marked[i - 1]:
            out.append(REDACTED)
    return "".join(out)


def generate_master_key() -> str:
    """Return a new random 32-byte master key, standard base64."""
    return base64.b64encode(os.urandom(_KEY_SIZE)).decode("ascii")


def parse_master_key(text: str) -> bytes:
    """Decode a base64 master key; it must be exactly 32 bytes."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != _KEY_SIZE:
        raise SecretError("master key must be 32 bytes, base64-encoded")
    return key


def _aesgcm(key: bytes) -> AESGCM:
    """The cipher for ``key``. cryptography is imported on use: it adds 6.6 MB to the RSS of
    every process, and one without an enc:v1: value never needs it."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:  # a broken install: a secret problem, not a traceback
        raise SecretError(f"cannot use encrypted secrets: {exc}") from None
    return AESGCM(_check_key(key))


def encrypt_secret(plaintext: str, key: bytes) -> str:
    """Encrypt ``plaintext`` with a fresh random nonce into an ``enc:v1:`` token."""
    nonce = os.urandom(_NONCE_SIZE)
    sealed = _aesgcm(key).encrypt(nonce, plaintext.encode("utf-8"), _AAD)
    return PREFIX + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")


def decrypt_secret(token: str, key: bytes) -> str:
    """Decrypt an ``enc:v1:`` token; raise ``SecretError`` on a bad format, key or tag."""
    if not token.startswith(PREFIX):
        raise SecretError(f"encrypted secret must start with {PREFIX!r}")
    body = token[len(PREFIX) :]
    try:
        # Pad back and decode strictly: urlsafe_b64decode alone would ignore stray characters.
        raw = base64.b64decode(body + "=" * (-len(body) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise SecretError("encrypted secret is not valid base64url") from None
    if len(raw) < _NONCE_SIZE + _TAG_SIZE:
        raise SecretError("encrypted secret is too short")
    from cryptography.exceptions import InvalidTag  # _aesgcm imported the package

    cipher = _aesgcm(key)
    try:
        plain = cipher.decrypt(raw[:_NONCE_SIZE], raw[_NONCE_SIZE:], _AAD)
    except InvalidTag:
        raise SecretError("cannot decrypt secret: wrong master key or corrupted value") from None
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretError("decrypted secret is not valid UTF-8") from None


def load_master_key(env: Mapping[str, str], key_file: Path | None) -> bytes | None:
    """Load the master key: ``--secrets.master-key-file`` wins over ``AICOST_MASTER_KEY``.

    Returns ``None`` when neither is set.
    """
    if key_file is not None:
        try:
            text = key_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = (
                exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            )
            raise SecretError(f"cannot read master key file {key_file}: {reason}") from None
        source = f"master key file {key_file}"
    else:
        text = env.get(MASTER_KEY_ENV, "").strip()
        if not text:
            return None
        source = MASTER_KEY_ENV
    try:
        return parse_master_key(text)
    except SecretError as exc:
        raise SecretError(f"{source}: {exc}") from None


def _check_key(key: bytes) -> bytes:
    if len(key) != _KEY_SIZE:
        raise SecretError("master key must be 32 bytes, base64-encoded")
    return key
