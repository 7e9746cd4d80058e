"""The YAML configuration file: pydantic models, env / encrypted / file key resolution.

Everything is validated and resolved once, at load; problems are collected (not just the first)
and reported as ``field.path: reason``. No problem, warning or repr ever contains a secret:
messages are built from pydantic's error ``loc``/``msg`` only, never its ``input``.
"""

from __future__ import annotations

import difflib
import importlib
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema

from exporter.config.durations import EXPECTED_FORM, format_duration, parse_duration
from exporter.config.names import Name, fail
from exporter.config.secrets import (
    MASTER_KEY_ENV,
    MASTER_KEY_FLAG,
    PREFIX,
    SecretError,
    decrypt_secret,
    mask_keys,
)
from exporter.core.budgets import BudgetConfig
from exporter.core.ledger import DEFAULT_MAX_LABEL_SETS, MAX_LABEL_SETS_LIMIT
from exporter.core.pricing import PricingConfig
from exporter.sources.providers.base import DEFAULT_MAX_RESPONSE_BYTES, MAX_RESPONSE_BYTES_LIMIT
from exporter.sources.providers.client import is_loopback_host
from exporter.sources.push.settings import PushConfig, push_problems
from exporter.sources.subscriptions import SubscriptionConfig, subscription_problems

GROUP_BY_DIMENSIONS: tuple[str, ...] = ("project", "model", "api_key", "user")
"""Allowed ``group_by`` values, in canonical order."""
DEFAULT_POLL_INTERVAL = 300.0
MIN_POLL_INTERVAL = 10.0
DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 300.0
DEFAULT_SETTLE_WINDOW = 2 * 86_400.0
MIN_SETTLE_WINDOW = 3_600.0
MAX_SETTLE_WINDOW = 31 * 86_400.0
LITERAL_KEY_WARNING = "literal key in the config file; prefer ${ENV_VAR}, enc:v1: or api_key_file"

_FALLBACK_PROVIDERS = frozenset({"openai", "anthropic"})
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CTX = "aicost_load"


def _mask_keys(text: str) -> str:
    # A key pasted in the wrong place (as a field name, as the provider) would otherwise be
    # quoted back in a problem; it is masked instead.
    return mask_keys(text, "<redacted>")


class ConfigError(Exception):
    """The configuration is invalid; ``problems`` holds every ``path: reason`` found."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: list[str] = [_mask_keys(problem) for problem in problems]
        super().__init__("invalid configuration:\n  " + "\n  ".join(self.problems))


@dataclass(frozen=True)
class _LoadContext:
    env: Mapping[str, str]
    master_key: bytes | None
    base_dir: Path | None


def _context(info: ValidationInfo) -> _LoadContext | None:
    ctx = info.context.get(_CTX) if isinstance(info.context, dict) else None
    return ctx if isinstance(ctx, _LoadContext) else None


def _provider_registry() -> Mapping[str, Any]:
    # Imported at first use; each provider module loads at the first lookup of its name.
    try:
        module = importlib.import_module("exporter.sources.providers")
    except ImportError:
        return dict.fromkeys(_FALLBACK_PROVIDERS)
    registry = getattr(module, "PROVIDERS", None)
    return registry if registry is not None else dict.fromkeys(_FALLBACK_PROVIDERS)


def _known_providers() -> frozenset[str]:
    return frozenset(_provider_registry())


def _resolve_api_key(value: str, ctx: _LoadContext | None) -> str:
    """``${VAR}`` from the environment, then ``enc:v1:`` decryption; a literal stays as is."""
    env: Mapping[str, str] = ctx.env if ctx is not None else os.environ
    master_key = ctx.master_key if ctx is not None else None
    text = value.strip()
    if not text:
        fail("must not be empty")
    ref = _ENV_REF.fullmatch(text)
    if ref is not None:
        text = env.get(ref.group(1), "").strip()
        if not text:
            fail(f"environment variable {ref.group(1)} is not set")
    elif "${" in text:
        fail("an environment variable reference must be the whole value, e.g. ${OPENAI_ADMIN_KEY}")
    if text.startswith(PREFIX):
        if master_key is None:
            fail(
                "encrypted value (enc:v1:) needs the master key: "
                f"set {MASTER_KEY_ENV} or pass {MASTER_KEY_FLAG}"
            )
        try:
            text = decrypt_secret(text, master_key)
        except SecretError as exc:
            fail(str(exc))
        if not text.strip():
            fail("the decrypted key is empty")
    return text


def _is_literal_key(value: object) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    text = value.strip()
    return _ENV_REF.fullmatch(text) is None and "${" not in text and not text.startswith(PREFIX)


def _check_bounds(seconds: float, minimum: float, maximum: float | None) -> float:
    if not math.isfinite(seconds):
        fail(f"must be a finite duration; {EXPECTED_FORM}")
    if seconds < minimum:
        fail(f"must be at least {format_duration(minimum)}")
    if maximum is not None and seconds > maximum:
        fail(f"must be at most {format_duration(maximum)}")
    return seconds


class AccountConfig(BaseModel):
    """One provider organisation to poll; ``name`` becomes the ``account`` label."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    name: Name
    provider: str
    api_key: SecretStr | None = None
    api_key_file: Path | None = None
    base_url: str | None = None
    poll_interval: float = DEFAULT_POLL_INTERVAL
    timeout: float = DEFAULT_TIMEOUT
    settle_window: float = DEFAULT_SETTLE_WINDOW
    group_by: tuple[str, ...] = ("project", "model")
    max_response_bytes: int = Field(
        default=DEFAULT_MAX_RESPONSE_BYTES, gt=0, le=MAX_RESPONSE_BYTES_LIMIT, strict=True
    )
    """A provider response larger than this fails the poll (reason ``too_large``)."""
    max_label_sets: int = Field(
        default=DEFAULT_MAX_LABEL_SETS, gt=0, le=MAX_LABEL_SETS_LIMIT, strict=True
    )
    """Distinct grouping label sets a month; more are counted under ``(other)``."""
    options: Any = None
    """Provider-specific settings, validated by the provider class's ``Options`` model."""

    def read_api_key(self) -> str:
        """The resolved key, or ``api_key_file``'s stripped content read now (rotation)."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_file is None:  # excluded by validation; kept for type narrowing
            raise SecretError(f"account {self.name}: no api_key or api_key_file")
        try:
            content = self.api_key_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = (
                exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
            )
            raise SecretError(
                f"account {self.name}: cannot read api_key_file {self.api_key_file}: {reason}"
            ) from None
        if not content:
            raise SecretError(f"account {self.name}: api_key_file {self.api_key_file} is empty")
        return content

    @field_validator("provider")
    @classmethod
    def _check_provider(cls, value: str) -> str:
        known = _known_providers()
        if value not in known:
            fail(f"unknown provider {value!r}; supported: {', '.join(sorted(known))}")
        return value

    @field_validator("api_key", mode="before")
    @classmethod
    def _resolve_key(cls, value: object, info: ValidationInfo) -> object:
        if value is None or isinstance(value, SecretStr):
            return value
        if not isinstance(value, str):
            fail("must be a string")
        return SecretStr(_resolve_api_key(value, _context(info)))

    @field_validator("api_key_file")
    @classmethod
    def _check_key_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        ctx = _context(info)
        path = value.expanduser()
        if not path.is_absolute() and ctx is not None and ctx.base_dir is not None:
            path = ctx.base_dir / path
        try:
            content = path.read_text(encoding="utf-8")
        except OSError as exc:
            fail(f"cannot read {path}: {exc.strerror or type(exc).__name__}")
        except UnicodeDecodeError:
            fail(f"{path} is not UTF-8 text")
        if not content.strip():
            fail(f"{path} is empty")
        return path

    @field_validator("base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        url = value.strip()
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 -- raises ValueError on a bad port
        except ValueError:
            fail("is not a valid URL")
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not host:
            fail(
                "must be an https:// URL "
                "(http:// only to a loopback host: 127.0.0.0/8, ::1, localhost)"
            )
        if parts.username is not None or parts.password is not None:
            fail("must not contain credentials")
        if parts.query or parts.fragment:
            fail("must not contain a query or fragment")
        if scheme == "http" and not is_loopback_host(host):
            fail(
                "http:// is allowed only to a loopback host (127.0.0.0/8, ::1, localhost); use https://"
            )
        return url.rstrip("/")

    @field_validator("poll_interval", "timeout", "settle_window", mode="before")
    @classmethod
    def _parse_duration(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str):
            try:
                return parse_duration(value)
            except ValueError as exc:
                fail(str(exc))
        if isinstance(value, bool) or not isinstance(value, int | float):
            fail(f"must be a duration; {EXPECTED_FORM}")
        if (
            _context(info) is not None
        ):  # from a file: a unit is required (Python callers pass seconds)
            fail(f"a plain number has no unit; {EXPECTED_FORM}")
        return value

    @field_validator("poll_interval")
    @classmethod
    def _check_poll_interval(cls, value: float) -> float:
        return _check_bounds(value, MIN_POLL_INTERVAL, None)

    @field_validator("timeout")
    @classmethod
    def _check_timeout(cls, value: float) -> float:
        if value <= 0:
            fail("must be greater than 0s")
        return _check_bounds(value, 0.0, MAX_TIMEOUT)

    @field_validator("settle_window")
    @classmethod
    def _check_settle_window(cls, value: float) -> float:
        return _check_bounds(value, MIN_SETTLE_WINDOW, MAX_SETTLE_WINDOW)

    @field_validator("group_by")
    @classmethod
    def _check_group_by(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [dim for dim in value if dim not in GROUP_BY_DIMENSIONS]
        if unknown:
            listed = ", ".join(repr(dim) for dim in unknown)
            fail(f"unknown dimension {listed}; allowed: {', '.join(GROUP_BY_DIMENSIONS)}")
        duplicates = [dim for dim in GROUP_BY_DIMENSIONS if value.count(dim) > 1]
        if duplicates:
            fail(f"duplicate dimension {', '.join(repr(dim) for dim in duplicates)}")
        return tuple(dim for dim in GROUP_BY_DIMENSIONS if dim in value)

    @model_validator(mode="before")
    @classmethod
    def _provider_defaults(cls, data: Any) -> Any:
        """A provider that asks to be polled less often (Cursor: hourly) sets the default
        ``poll_interval``, one whose days are revised for longer (ChatGPT's Codex analytics)
        the default ``settle_window``; a configured one wins."""
        if not isinstance(data, dict):
            return data
        provider_class = _provider_registry().get(data.get("provider"))  # type: ignore[arg-type]
        for key in ("poll_interval", "settle_window"):
            default = getattr(provider_class, f"default_{key}", None)
            if key not in data and isinstance(default, str):
                data = {**data, key: default}
        return data

    @model_validator(mode="after")
    def _check_options(self, info: ValidationInfo) -> AccountConfig:
        provider_class = _provider_registry().get(self.provider)
        model = getattr(provider_class, "Options", None)
        if model is None:
            if self.options:
                fail(f"options: provider {self.provider!r} takes no options")
            return self
        raw = self.options if self.options is not None else {}
        if isinstance(raw, BaseModel):
            return self
        try:
            ctx = _context(info)
            validated = model.model_validate(
                raw, context={"base_dir": ctx.base_dir if ctx is not None else None}
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in ("options", *error["loc"]))
            fail(f"{where}: {error['msg']}")
        object.__setattr__(self, "options", validated)
        return self

    @model_validator(mode="after")
    def _check_key_source(self) -> AccountConfig:
        problem = _key_source_problem(
            self.api_key is not None, self.api_key_file is not None, _needs_key(self.provider)
        )
        if problem:
            fail(problem)
        return self


class Config(BaseModel):
    """The whole configuration file."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    accounts: tuple[AccountConfig, ...]
    pricing: PricingConfig = PricingConfig()
    budgets: tuple[BudgetConfig, ...] = ()
    push: PushConfig = PushConfig()
    subscriptions: tuple[SubscriptionConfig, ...] = ()
    warnings: SkipJsonSchema[tuple[str, ...]] = Field(default=(), exclude=True)

    @field_validator("push")
    @classmethod
    def _resolve_push_database(cls, value: PushConfig, info: ValidationInfo) -> PushConfig:
        ctx = _context(info)
        database = value.database
        if database is None or ctx is None or ctx.base_dir is None:
            return value
        database = database.expanduser()
        if not database.is_absolute():
            database = ctx.base_dir / database
        return value.model_copy(update={"database": database})

    @model_validator(mode="after")
    def _check_pseudo_accounts(self) -> Config:
        problems = _pseudo_account_problems(self.model_dump())
        if problems:
            fail(problems[0])  # already carries its field path
        return self

    @model_validator(mode="after")
    def _check_unique_names(self) -> Config:
        problems = _duplicate_name_problems([account.name for account in self.accounts])
        if problems:
            fail(problems[0])  # already carries its field path
        return self

    @model_validator(mode="after")
    def _check_budgets(self) -> Config:
        accounts = [(a.name, a.provider) for a in self.accounts]
        accounts += [(a.name, a.provider) for a in self.push.accounts]
        accounts += [(s.account, s.provider) for s in self.subscriptions]
        problems = _budget_problems([b.model_dump() for b in self.budgets], accounts)
        if problems:
            fail(problems[0])  # already carries its field path
        return self


def load_config(
    path: Path, *, env: Mapping[str, str] | None = None, master_key: bytes | None = None
) -> Config:
    """Read, validate and resolve the config file; raise ``ConfigError`` with every problem.

    Relative ``api_key_file`` paths are resolved against the config file's directory.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: {exc.strerror or type(exc).__name__}"]) from None
    except UnicodeDecodeError:
        raise ConfigError([f"{path}: not UTF-8 text"]) from None
    return parse_config(
        text, source=str(path), env=env, master_key=master_key, base_dir=path.parent.absolute()
    )


def parse_config(
    text: str,
    *,
    source: str = "config",
    env: Mapping[str, str] | None = None,
    master_key: bytes | None = None,
    base_dir: Path | None = None,
) -> Config:
    """Validate and resolve config ``text``; ``source`` names it in YAML syntax problems."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 -- a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_problem(source, exc)]) from None
    except RecursionError:
        raise ConfigError([f"{source}: invalid YAML: nested too deeply"]) from None
    if data is None:
        raise ConfigError(
            [f"{source}: the file is empty; expected a mapping with an 'accounts' list"]
        )
    if not isinstance(data, dict):
        raise ConfigError(
            [f"{source}: expected a mapping with an 'accounts' list at the top level"]
        )
    ctx = _LoadContext(env if env is not None else os.environ, master_key, base_dir)
    problems: list[str] = []
    if "warnings" in data:  # a real field, but computed here and never read from the file
        data = {key: value for key, value in data.items() if key != "warnings"}
        problems.append("warnings: unknown field")
    config: Config | None = None
    try:
        config = Config.model_validate(data, context={_CTX: ctx})
    except ValidationError as exc:
        problems.extend(_format_errors(exc.errors(include_input=False, include_url=False)))
    problems.extend(_cross_account_problems(data))
    problems.extend(_raw_budget_problems(data))
    problems.extend(_pseudo_account_problems(data))
    if problems or config is None:
        raise ConfigError(sorted(dict.fromkeys(problems), key=_account_index))
    return config.model_copy(update={"warnings": tuple(_warnings(data))})


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str | int | float | bool):
                continue  # a mapping or list as a key: SafeLoader refuses it as unhashable
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(source: str, exc: yaml.YAMLError) -> str:
    # Only problem and position: str(exc) quotes the offending line, which may hold a key.
    if isinstance(exc, yaml.MarkedYAMLError) and exc.problem_mark is not None:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}"
        return f"{source}: {where}: {exc.problem or 'invalid YAML'}"
    return f"{source}: invalid YAML ({type(exc).__name__})"


def _account_index(problem: str) -> int:
    """Sort key grouping problems by account (stable sort keeps field order within one)."""
    match = re.match(r"accounts\[(\d+)\]", problem)
    return int(match.group(1)) if match else -1


def _format_path(loc: Iterable[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _format_errors(errors: Iterable[Any]) -> list[str]:
    problems = []
    for error in errors:
        loc: tuple[int | str, ...] = tuple(error["loc"])
        kind = error["type"]
        if kind == "missing":
            reason = "required"
        elif kind == "extra_forbidden":
            reason = "unknown field" + _suggestion(loc)
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            reason = "must be a mapping"
        else:
            reason = str(error["msg"])
        path = _format_path(loc)
        problems.append(f"{path}: {reason}" if path else reason)
    return problems


def _suggestion(loc: tuple[int | str, ...]) -> str:
    fields = (
        AccountConfig.model_fields
        if len(loc) >= 3 and loc[0] == "accounts"
        else Config.model_fields
    )
    names = [name for name in fields if name != "warnings"]
    close = difflib.get_close_matches(str(loc[-1]), names, n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _needs_key(provider: object) -> bool:
    """Whether accounts of ``provider`` need an API key (a FOCUS directory does not)."""
    provider_class = _provider_registry().get(provider)  # type: ignore[call-overload]
    return bool(getattr(provider_class, "needs_api_key", True))


def _key_source_problem(has_key: bool, has_file: bool, needed: bool = True) -> str | None:
    if not needed:
        return "this provider reads no API key: remove api_key/api_key_file" if (
            has_key or has_file
        ) else None
    if has_key and has_file:
        return "set only one of api_key or api_key_file"
    if not has_key and not has_file:
        return "exactly one of api_key or api_key_file is required"
    return None


def _duplicate_name_problems(names: Sequence[object]) -> list[str]:
    first: dict[str, int] = {}
    problems = []
    for index, name in enumerate(names):
        if not isinstance(name, str):
            continue
        if name in first:
            problems.append(
                f"accounts[{index}].name: duplicate account name {name!r} "
                f"(also accounts[{first[name]}])"
            )
        else:
            first[name] = index
    return problems


def _raw_accounts(data: Mapping[Any, Any]) -> list[tuple[int, Mapping[Any, Any]]]:
    accounts = data.get("accounts")
    if not isinstance(accounts, list):
        return []
    return [(index, account) for index, account in enumerate(accounts) if isinstance(account, dict)]


def _cross_account_problems(data: Mapping[Any, Any]) -> list[str]:
    """Checks pydantic skips when a field of the same model already failed."""
    problems = []
    for index, account in _raw_accounts(data):
        problem = _key_source_problem(
            account.get("api_key") is not None,
            account.get("api_key_file") is not None,
            _needs_key(account.get("provider")),
        )
        if problem:
            problems.append(f"accounts[{index}]: {problem}")
    accounts = data.get("accounts")
    if isinstance(accounts, list):
        names = [account.get("name") if isinstance(account, dict) else None for account in accounts]
        problems.extend(_duplicate_name_problems(names))
    return problems


def _budget_problems(
    budgets: Sequence[Mapping[str, Any]], accounts: Sequence[tuple[str, str]]
) -> list[str]:
    """Duplicate budget names, and matchers that can never match a configured account."""
    problems = []
    names = [budget.get("name") for budget in budgets]
    for index, name in enumerate(names):
        if name is not None and names.index(name) != index:
            problems.append(f"budgets[{index}].name: duplicate budget name {name!r}")
    providers = {label for _, provider in accounts for label in _labels_of(provider)}
    by_name = dict(accounts)
    for index, budget in enumerate(budgets):
        match = budget.get("match") or {}
        if not isinstance(match, Mapping):
            continue
        provider, account = match.get("provider"), match.get("account")
        where = f"budgets[{index}].match"
        if isinstance(provider, str) and provider not in providers:
            problems.append(f"{where}.provider: no configured account uses provider {provider!r}")
        if isinstance(account, str) and account not in by_name:
            problems.append(f"{where}.account: no configured account is named {account!r}")
        elif isinstance(account, str) and provider not in (None, *_labels_of(by_name[account])):
            problems.append(
                f"{where}: account {account!r} is a {by_name[account]} account, not {provider}"
            )
    return problems


def _labels_of(provider: str) -> tuple[str, ...]:
    """The ``provider`` labels an account of ``provider`` publishes (a FOCUS account: the
    clouds whose exports it reads)."""
    provider_class = _provider_registry().get(provider)
    return (provider, *getattr(provider_class, "provider_labels", ()))


def _raw_budget_problems(data: Mapping[Any, Any]) -> list[str]:
    """Budget checks on the raw file, so they are reported next to other fields' problems."""
    budgets, accounts = data.get("budgets"), data.get("accounts")
    if not isinstance(budgets, list) or not isinstance(accounts, list):
        return []
    pairs = [
        (str(a.get("name")), str(a.get("provider"))) for a in accounts if isinstance(a, Mapping)
    ]
    push = data.get("push")
    pushed = push.get("accounts") if isinstance(push, Mapping) else None
    subscriptions = data.get("subscriptions")
    pairs += [
        (str(a.get("name")), str(a.get("provider")))
        for a in (pushed if isinstance(pushed, list) else [])
        if isinstance(a, Mapping)
    ]
    pairs += [
        (str(s.get("account")), str(s.get("provider")))
        for s in (subscriptions if isinstance(subscriptions, list) else [])
        if isinstance(s, Mapping)
    ]
    return _budget_problems([b for b in budgets if isinstance(b, Mapping)], pairs)


def _pseudo_account_problems(data: Mapping[Any, Any]) -> list[str]:
    """At least one account of any kind; push and subscription cross-checks on the raw file."""
    accounts = data.get("accounts")
    polled = [
        a.get("name") for a in (accounts if isinstance(accounts, list | tuple) else [])
        if isinstance(a, Mapping)
    ]
    push = data.get("push")
    pushed_raw = push.get("accounts") if isinstance(push, Mapping) else None
    pushed = [
        a.get("name") for a in (pushed_raw if isinstance(pushed_raw, list | tuple) else [])
        if isinstance(a, Mapping)
    ]
    subscriptions = data.get("subscriptions")
    problems = []
    if isinstance(accounts, list | tuple) and not accounts and not pushed and not subscriptions:
        problems.append("accounts: at least one account is required")
    if isinstance(push, Mapping):
        problems.extend(push_problems({**push, "accounts": list(pushed_raw or [])}))
    for index, name in enumerate(pushed):
        if isinstance(name, str) and name in polled:
            problems.append(
                f"push.accounts[{index}].name: {name!r} is already the name of a polled account"
            )
    problems.extend(
        subscription_problems(
            list(subscriptions) if isinstance(subscriptions, list | tuple) else None,
            [n for n in polled if isinstance(n, str)],
            [n for n in pushed if isinstance(n, str)],
        )
    )
    return problems


def _warnings(data: Mapping[Any, Any]) -> list[str]:
    return [
        f"accounts[{index}].api_key: {LITERAL_KEY_WARNING}"
        for index, account in _raw_accounts(data)
        if _is_literal_key(account.get("api_key"))
    ]
