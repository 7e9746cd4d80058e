"""``--web.config.file``: TLS, basic auth and security headers, in Prometheus' format.

The file format is the exporter-toolkit's ``web-config.yml`` as Prometheus 2.42's
``promtool check web-config`` accepts it: unknown keys are errors, paths are
relative to the file, passwords are bcrypt hashes. Like the Go toolkit, the file
(and the certificate files it names) is re-read when it changes; a broken change
is logged and the last good configuration stays in force.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import ssl
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

log = logging.getLogger(__name__)

TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1,
    "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2,
    "TLS13": ssl.TLSVersion.TLSv1_3,
}
CLIENT_AUTH_TYPES = (
    "NoClientCert",
    "RequestClientCert",
    "RequireAnyClientCert",
    "RequireClientCert",  # the toolkit's older name of RequireAnyClientCert
    "VerifyClientCertIfGiven",
    "RequireAndVerifyClientCert",
)
# Go's tls.CipherSuites() names (what the toolkit accepts) -> OpenSSL names. TLS 1.3 suites
# are accepted and, as in Go, not configurable.
CIPHER_SUITES = {
    "TLS_RSA_WITH_AES_128_CBC_SHA": "AES128-SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA": "AES256-SHA",
    "TLS_RSA_WITH_AES_128_GCM_SHA256": "AES128-GCM-SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384": "AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_AES_128_GCM_SHA256": "",
    "TLS_AES_256_GCM_SHA384": "",
    "TLS_CHACHA20_POLY1305_SHA256": "",
}
CURVES = ("CurveP256", "CurveP384", "CurveP521", "X25519")
# The security headers the toolkit lets a user set, with their allowed values (None: any).
HEADERS: dict[str, tuple[str, ...] | None] = {
    "Strict-Transport-Security": None,
    "X-Content-Type-Options": ("nosniff",),
    "X-Frame-Options": ("deny", "sameorigin"),
    "X-XSS-Protection": None,
    "Content-Security-Policy": None,
}
_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users")
_TLS_KEYS = (
    "cert_file",
    "key_file",
    "client_auth_type",
    "client_ca_file",
    "cipher_suites",
    "curve_preferences",
    "min_version",
    "max_version",
    "prefer_server_cipher_suites",
)
_HTTP_KEYS = ("http2", "headers")
# Checked for unknown users too, so a wrong user name costs as much as a wrong password.
_AUTH_CACHE_SIZE = 100


class WebConfigError(Exception):
    """The web config file is invalid (the message names the file and the field)."""


@dataclass(frozen=True)
class TLSSettings:
    """``tls_server_config`` with paths resolved against the file's directory."""

    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    cipher_suites: tuple[str, ...] = ()
    curve_preferences: tuple[str, ...] = ()
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    prefer_server_cipher_suites: bool = True

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file the settings read (watched for changes)."""
        ca = (self.client_ca_file,) if self.client_ca_file is not None else ()
        return (self.cert_file, self.key_file, *ca)


@dataclass(frozen=True)
class WebConfig:
    """A validated web config; the empty one means plain HTTP without auth."""

    tls: TLSSettings | None = None
    http2: bool = True  # accepted for compatibility; this server speaks HTTP/1.x only
    headers: tuple[tuple[str, str], ...] = ()
    users: Mapping[str, str] = field(default_factory=dict, repr=False)


# --- parsing --------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, as Go's strict YAML does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} already set in map", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _section(data: Mapping[Any, Any], key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebConfigError(f"{key}: must be a mapping")
    for name in value:
        if name not in allowed:
            raise WebConfigError(f"{key}.{name}: unknown field (allowed: {', '.join(allowed)})")
    return value


def _string(section: Mapping[str, Any], where: str, key: str) -> str:
    value = section.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise WebConfigError(f"{where}.{key}: must be a string")
    return str(value)


def _string_list(section: Mapping[str, Any], where: str, key: str) -> list[str]:
    value = section.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise WebConfigError(f"{where}.{key}: must be a list of strings")
    return value


def _tls(section: Mapping[str, Any], base_dir: Path) -> TLSSettings | None:
    where = "tls_server_config"
    cert, key = _string(section, where, "cert_file"), _string(section, where, "key_file")
    auth, ca = (
        _string(section, where, "client_auth_type"),
        _string(section, where, "client_ca_file"),
    )
    if not (cert or key or auth or ca):
        return None
    if not cert:
        raise WebConfigError(f"{where}: missing cert_file")
    if not key:
        raise WebConfigError(f"{where}: missing key_file")
    auth = auth or "NoClientCert"
    if auth not in CLIENT_AUTH_TYPES:
        raise WebConfigError(
            f"{where}.client_auth_type: invalid {auth!r} (one of {', '.join(CLIENT_AUTH_TYPES)})"
        )
    if auth in ("RequireAnyClientCert", "RequireClientCert"):
        raise WebConfigError(
            f"{where}.client_auth_type: {auth} (require a certificate without verifying it) "
            "is not supported by Python's ssl module; use RequireAndVerifyClientCert "
            "with client_ca_file"
        )
    if ca and auth == "NoClientCert":
        raise WebConfigError(f"{where}: client_ca_file is set but client_auth_type is NoClientCert")
    versions = []
    for name, default in (("min_version", "TLS12"), ("max_version", "TLS13")):
        version = _string(section, where, name) or default
        if version not in TLS_VERSIONS:
            raise WebConfigError(
                f"{where}.{name}: unknown TLS version {version!r} "
                f"(one of {', '.join(TLS_VERSIONS)})"
            )
        versions.append(version)
    ciphers = _string_list(section, where, "cipher_suites")
    for cipher in ciphers:
        if cipher not in CIPHER_SUITES:
            raise WebConfigError(f"{where}.cipher_suites: unknown cipher {cipher!r}")
    curves = _string_list(section, where, "curve_preferences")
    for curve in curves:
        if curve not in CURVES:
            raise WebConfigError(
                f"{where}.curve_preferences: unknown curve {curve!r} (one of {', '.join(CURVES)})"
            )
    prefer = section.get("prefer_server_cipher_suites", True)
    if not isinstance(prefer, bool):
        raise WebConfigError(f"{where}.prefer_server_cipher_suites: must be true or false")
    return TLSSettings(
        cert_file=base_dir / cert,
        key_file=base_dir / key,
        client_auth_type=auth,
        client_ca_file=base_dir / ca if ca else None,
        cipher_suites=tuple(ciphers),
        curve_preferences=tuple(curves),
        min_version=versions[0],
        max_version=versions[1],
        prefer_server_cipher_suites=prefer,
    )


def _headers(section: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    where = "http_server_config.headers"
    value = section.get("headers")
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise WebConfigError(f"{where}: must be a mapping")
    headers = []
    for name, text in value.items():
        if name not in HEADERS:
            raise WebConfigError(
                f"{where}: header {name!r} can not be configured (allowed: {', '.join(HEADERS)})"
            )
        if not isinstance(text, str) or not text.isprintable():
            raise WebConfigError(f"{where}.{name}: must be a single-line string")
        allowed = HEADERS[name]
        if allowed is not None and text not in allowed:
            raise WebConfigError(f"{where}.{name}: expected one of {list(allowed)}, got {text!r}")
        headers.append((name, text))
    return tuple(headers)


def bcrypt_problem(hashed: str) -> str | None:
    """Why ``hashed`` is not a bcrypt hash, with the checks of Go's ``bcrypt.Cost``."""
    if len(hashed.encode()) < 59:
        return "too short to be a bcrypt hash"
    if hashed[0] != "$":
        return "a bcrypt hash must start with '$'"
    if hashed[1] > "2":
        return f"bcrypt version {hashed[1]!r} is newer than the supported version '2'"
    start = 3 if hashed[2] == "$" else 4
    cost_text = hashed[start : start + 2]
    if re.fullmatch(r"[+-]?\d+", cost_text) is None:
        return "the bcrypt cost is not a number"
    if not 4 <= int(cost_text) <= 31:
        return f"bcrypt cost {int(cost_text)} is outside the allowed range 4..31"
    return None


def _users(data: Mapping[Any, Any]) -> dict[str, str]:
    value = data.get("basic_auth_users")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise WebConfigError("basic_auth_users: must be a mapping of user name to bcrypt hash")
    users = {}
    for user, hashed in value.items():
        if isinstance(user, dict | list) or user is None:
            raise WebConfigError("basic_auth_users: user names must be strings")
        name = str(user)
        # The hash itself is never echoed: it is password material.
        problem = bcrypt_problem(hashed) if isinstance(hashed, str) else "not a bcrypt hash"
        if problem:
            raise WebConfigError(f"basic_auth_users.{name}: {problem}")
        users[name] = hashed
    return users


def parse_web_config(text: str, base_dir: Path) -> WebConfig:
    """Validate web config ``text``; relative paths are resolved against ``base_dir``."""
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 -- a SafeLoader subclass
    except RecursionError:
        raise WebConfigError("invalid YAML (nested too deeply)") from None
    except yaml.YAMLError as exc:
        if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
            mark = exc.problem_mark
            raise WebConfigError(
                f"line {mark.line + 1}, column {mark.column + 1}: {exc.problem or 'invalid YAML'}"
            ) from None
        raise WebConfigError(f"invalid YAML ({type(exc).__name__})") from None
    if data is None:
        return WebConfig()
    if not isinstance(data, dict):
        raise WebConfigError("expected a mapping at the top level")
    for key in data:
        if key not in _TOP_KEYS:
            raise WebConfigError(f"{key}: unknown field (allowed: {', '.join(_TOP_KEYS)})")
    http = _section(data, "http_server_config", _HTTP_KEYS)
    http2 = http.get("http2", True)
    if not isinstance(http2, bool):
        raise WebConfigError("http_server_config.http2: must be true or false")
    return WebConfig(
        tls=_tls(_section(data, "tls_server_config", _TLS_KEYS), base_dir),
        http2=http2,
        headers=_headers(http),
        users=_users(data),
    )


# --- TLS ------------------------------------------------------------------------------------


def ssl_context(tls: TLSSettings) -> ssl.SSLContext:
    """A server context for ``tls``; loading the files proves they are usable."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():  # TLS 1.0/1.1 are deprecated, and the user's choice
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = TLS_VERSIONS[tls.min_version]
        context.maximum_version = TLS_VERSIONS[tls.max_version]
    try:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(
            f"tls_server_config: cannot load cert_file {tls.cert_file} / key_file "
            f"{tls.key_file}: {_reason(exc)}"
        ) from None
    names = [CIPHER_SUITES[c] for c in tls.cipher_suites if CIPHER_SUITES[c]]
    if names:
        try:
            context.set_ciphers(":".join(names))
        except ssl.SSLError:
            raise WebConfigError(
                "tls_server_config.cipher_suites: none of them is available in this OpenSSL"
            ) from None
    if tls.prefer_server_cipher_suites:
        context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE
    else:
        context.options &= ~ssl.OP_CIPHER_SERVER_PREFERENCE
    # RequestClientCert: Go asks for a certificate but neither requires nor verifies it, so
    # not asking at all grants the same access.
    modes = {
        "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
        "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
    }
    mode = modes.get(tls.client_auth_type)
    if mode is not None:
        context.verify_mode = mode
        if tls.client_ca_file is None:
            context.load_default_certs(ssl.Purpose.CLIENT_AUTH)  # Go: the system roots
        else:
            try:
                context.load_verify_locations(cafile=tls.client_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise WebConfigError(
                    f"tls_server_config.client_ca_file {tls.client_ca_file}: {_reason(exc)}"
                ) from None
    return context


def _reason(exc: OSError | ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or "invalid certificate or key"
    return exc.strerror or type(exc).__name__


# --- basic auth -----------------------------------------------------------------------------


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes, caching results like the toolkit.

    The cache key is an HMAC of (user, hash, password) under a per-process random
    key, so no password is kept in memory; bcrypt runs one at a time so a flood of
    wrong passwords costs one core at most. Successes and failures are cached apart:
    a flood of wrong passwords cannot evict a valid login, so real scrapes never wait
    behind it. An unknown user is checked against a hash of the users' highest cost,
    so the time taken does not tell which names exist.
    """

    _bcrypt_lock = threading.Lock()

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = {name: hashed.encode() for name, hashed in users.items()}
        self._key = secrets.token_bytes(32)
        self._accepted: dict[bytes, None] = {}
        self._refused: dict[bytes, None] = {}
        costs = [_bcrypt_cost(hashed) for hashed in self._users.values()]
        self._dummy_cost = max((c for c in costs if c is not None), default=10)
        self._dummy: bytes | None = None  # made at the first unknown user: a reload stays quick

    def __repr__(self) -> str:
        return f"BasicAuth(users={sorted(self._users)})"

    def _dummy_hash(self) -> bytes:
        import bcrypt  # here and in check(): a daemon without basic auth users never loads it

        if self._dummy is None:
            with self._bcrypt_lock:
                if self._dummy is None:
                    salt = bcrypt.gensalt(self._dummy_cost)
                    self._dummy = bcrypt.hashpw(secrets.token_bytes(16), salt)
        return self._dummy

    def check(self, header: str | None) -> bool:
        """Whether the ``Authorization`` header value names a user with the right password."""
        import bcrypt

        credentials = _basic_credentials(header)
        if credentials is None:
            return False
        user, password = credentials
        hashed = self._users.get(user.decode("utf-8", "replace"))
        known = hashed is not None
        hashed = hashed if hashed is not None else self._dummy_hash()
        key = hmac.new(self._key, b"\0".join((user, hashed, password)), hashlib.sha256).digest()
        if key in self._accepted:
            return True
        if key in self._refused:
            return False
        with self._bcrypt_lock:
            try:
                ok = bcrypt.checkpw(password, hashed)
            except ValueError:  # a hash Go accepts but this bcrypt cannot read
                ok = False
        ok = ok and known
        cache = self._accepted if ok else self._refused
        if len(cache) >= _AUTH_CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[key] = None
        return ok


def _bcrypt_cost(hashed: bytes) -> int | None:
    """The cost of a ``$2?$NN$...`` hash, None if it has none to read."""
    parts = hashed.split(b"$")
    return int(parts[2]) if len(parts) > 3 and parts[2].isdigit() else None


def _basic_credentials(header: str | None) -> tuple[bytes, bytes] | None:
    if header is None:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


# --- the live file --------------------------------------------------------------------------


@dataclass(frozen=True)
class WebState:
    """What one connection is served with: the config, its TLS context and authenticator."""

    config: WebConfig
    context: ssl.SSLContext | None
    auth: BasicAuth | None


Signature = tuple[tuple[int, int, int] | None, ...]


def _stat(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def load_web_state(path: Path) -> WebState:
    """Read, validate and prepare ``path``; raise :class:`WebConfigError` naming the file."""
    try:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise WebConfigError(exc.strerror or type(exc).__name__) from None
        except UnicodeDecodeError:
            raise WebConfigError("not UTF-8 text") from None
        config = parse_web_config(text, path.absolute().parent)
        context = ssl_context(config.tls) if config.tls is not None else None
    except WebConfigError as exc:
        raise WebConfigError(f"{path}: {exc}") from None
    auth = BasicAuth(config.users) if config.users else None
    return WebState(config, context, auth)


class WebConfigSource:
    """The web config file, re-read when it or a file it names changes.

    :meth:`current` costs a few ``stat`` calls, so the server calls it for every
    connection. An invalid change is logged once and the last good state stays.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._state, self._signature_value = self._load()
        self._failed: Signature | None = None
        self._lock = threading.Lock()
        tls = self._state.config.tls
        if tls is not None and tls.curve_preferences:
            log.warning("tls_server_config.curve_preferences is accepted but not applied")

    def _load(self) -> tuple[WebState, Signature]:
        before = _stat(self.path)  # taken first: a change during the load is seen next time
        state = load_web_state(self.path)
        return state, (before, *self._signature(state)[1:])

    def _signature(self, state: WebState) -> Signature:
        files = state.config.tls.files if state.config.tls is not None else ()
        return tuple(_stat(p) for p in (self.path, *files))

    @property
    def tls(self) -> bool:
        """Whether the server speaks TLS (fixed at start: switching needs a restart)."""
        return self._state.context is not None

    def current(self) -> WebState:
        """The state to serve the next connection with, reloaded if a file changed."""
        state = self._state
        signature = self._signature(state)
        if signature == self._signature_value or signature == self._failed:
            return state
        with self._lock:
            if self._state is not state:
                return self._state
            try:
                new, new_signature = self._load()
                if (new.context is None) != (state.context is None):
                    raise WebConfigError(f"{self.path}: turning TLS on or off needs a restart")
            except Exception as exc:  # whatever the file holds, the server keeps serving
                self._failed = signature
                log.error("web config not reloaded; keeping the last good one: %s", exc)
                return state
            self._state, self._signature_value, self._failed = new, new_signature, None
            log.info("web config reloaded", extra={"file": str(self.path)})
            return new
