from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError

from exporter.config import schema as config_module
from exporter.config.schema import AccountConfig, Config, ConfigError, load_config, parse_config
from exporter.config.secrets import (
    SecretError,
    encrypt_secret,
    generate_master_key,
    parse_master_key,
)

FAKE_KEY = "sk-admin-FAKE-7f3a9c-DO-NOT-LEAK"
ENV = {"OPENAI_ADMIN_KEY": FAKE_KEY, "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-FAKE"}
LITERAL_WARNING = (
    "accounts[0].api_key: literal key in the config file; "
    "prefer ${ENV_VAR}, enc:v1: or api_key_file"
)


def account(**fields: str) -> str:
    """One YAML list item; defaults to a valid OpenAI account using ${OPENAI_ADMIN_KEY}."""
    values = {"name": "openai-main", "provider": "openai", "api_key": "${OPENAI_ADMIN_KEY}"}
    values.update(fields)
    lines = [f"{key}: {value}" for key, value in values.items() if value != "<omit>"]
    return "  - " + "\n    ".join(lines) + "\n"


def config_text(*accounts: str) -> str:
    return "accounts:\n" + "".join(accounts)


def problems_of(text: str, **kwargs: object) -> list[str]:
    kwargs.setdefault("env", ENV)
    with pytest.raises(ConfigError) as info:
        parse_config(text, **kwargs)  # type: ignore[arg-type]
    return info.value.problems


def one_problem(**fields: str) -> str:
    problems = problems_of(config_text(account(**fields)))
    assert len(problems) == 1, problems
    return problems[0]


# --- a valid file -------------------------------------------------------------------------------


def test_minimal_account_defaults() -> None:
    config = parse_config(config_text(account()), env=ENV)
    assert config.warnings == ()
    [acc] = config.accounts
    assert acc.name == "openai-main"
    assert acc.provider == "openai"
    assert acc.read_api_key() == FAKE_KEY
    assert acc.api_key_file is None
    assert acc.base_url is None
    assert acc.poll_interval == 300.0
    assert acc.timeout == 30.0
    assert acc.settle_window == 172_800.0
    assert acc.group_by == ("project", "model")


def test_full_account() -> None:
    text = config_text(
        account(
            base_url="https://api.openai.com/v1/",
            poll_interval="1h30m",
            timeout="500ms",
            settle_window="1w",
            group_by="[user, api_key, project]",
        ),
        account(name="claude.org_2", provider="anthropic", api_key="${ANTHROPIC_ADMIN_KEY}"),
    )
    config = parse_config(text, env=ENV)
    first, second = config.accounts
    assert first.base_url == "https://api.openai.com/v1"
    assert first.poll_interval == 5400.0
    assert first.timeout == 0.5
    assert first.settle_window == 604_800.0
    assert first.group_by == ("project", "api_key", "user")
    assert second.name == "claude.org_2"
    assert second.read_api_key() == "sk-ant-admin01-FAKE"


def test_models_are_frozen() -> None:
    config = parse_config(config_text(account()), env=ENV)
    with pytest.raises(ValueError):
        setattr(config.accounts[0], "name", "x")  # noqa: B010 -- type checkers may know it is frozen


def test_example_file_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "config.example.yaml"
    config = load_config(example, env=ENV)
    assert [(a.name, a.provider) for a in config.accounts] == [
        ("openai-main", "openai"),
        ("anthropic-main", "anthropic"),
    ]
    assert config.warnings == ()


def test_direct_construction_accepts_seconds() -> None:
    acc = AccountConfig(name="a", provider="openai", api_key=SecretStr("k"), poll_interval=60.0)
    assert acc.poll_interval == 60.0
    assert acc.read_api_key() == "k"


def test_direct_construction_error_hides_input() -> None:
    with pytest.raises(ValidationError) as info:
        AccountConfig(name="a", provider="openai", api_key=[FAKE_KEY])  # type: ignore[arg-type]
    assert FAKE_KEY not in str(info.value)
    assert "api_key\n  must be a string" in str(info.value)


# --- names and providers ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["-leading", "_x", "has space", "ümlaut", "a/b", "''"])
def test_bad_account_name(name: str) -> None:
    assert one_problem(name=f"'{name}'" if name != "''" else name) == (
        "accounts[0].name: must start with a letter or digit and contain only letters, digits, "
        "'_', '.' and '-'"
    )


def test_duplicate_account_name_points_at_second() -> None:
    text = config_text(account(), account(provider="anthropic"), account(name="other"))
    assert problems_of(text) == [
        "accounts[1].name: duplicate account name 'openai-main' (also accounts[0])"
    ]


def test_unknown_provider() -> None:
    from exporter.sources.providers import PROVIDERS

    supported = ", ".join(sorted(PROVIDERS))
    assert "anthropic, " in supported and "openai" in supported
    assert one_problem(provider="opneai") == (
        f"accounts[0].provider: unknown provider 'opneai'; supported: {supported}"
    )


def test_required_fields() -> None:
    problems = problems_of(config_text(account(name="<omit>", provider="<omit>")))
    assert problems == ["accounts[0].name: required", "accounts[0].provider: required"]


# --- structure ----------------------------------------------------------------------------------


def test_unknown_key_in_account_suggests() -> None:
    assert one_problem(pol_interval="5m") == (
        "accounts[0].pol_interval: unknown field (did you mean poll_interval?)"
    )


def test_unknown_top_level_key() -> None:
    text = config_text(account()) + "budget: []\nzzz: 1\n"
    assert problems_of(text) == [
        "budget: unknown field (did you mean budgets?)",
        "zzz: unknown field",
    ]


def test_warnings_key_is_not_accepted_from_file() -> None:
    assert problems_of(config_text(account()) + "warnings: []\n") == ["warnings: unknown field"]


def test_accounts_required_and_non_empty() -> None:
    assert problems_of("other: 1\n") == ["accounts: required", "other: unknown field"]
    assert problems_of("accounts: []\n") == ["accounts: at least one account is required"]


def test_account_must_be_mapping() -> None:
    assert problems_of("accounts:\n  - just-a-name\n") == ["accounts[0]: must be a mapping"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "config.yaml: the file is empty; expected a mapping with an 'accounts' list"),
        ("- a\n- b\n", "config.yaml: expected a mapping with an 'accounts' list at the top level"),
    ],
)
def test_top_level_shape(text: str, problem: str) -> None:
    assert problems_of(text, source="config.yaml") == [problem]


def test_yaml_syntax_error_location() -> None:
    text = f"accounts:\n  - name: a\n    api_key: {FAKE_KEY}: oops\n"
    with pytest.raises(ConfigError) as info:
        parse_config(text, source="config.yaml", env=ENV)
    assert info.value.problems == [
        "config.yaml: line 3, column 46: mapping values are not allowed here"
    ]
    assert FAKE_KEY not in str(info.value)


def test_yaml_tab_indentation_location() -> None:
    problems = problems_of("accounts:\n\t- name: a\n", source="config.yaml")
    assert problems == [
        "config.yaml: line 2, column 1: found character '\\t' that cannot start any token"
    ]


def test_duplicate_yaml_key() -> None:
    text = config_text(account(poll_interval="5m")) + "    poll_interval: 10m\n"
    assert problems_of(text, source="config.yaml") == [
        "config.yaml: line 6, column 5: duplicate key 'poll_interval'"
    ]


@pytest.mark.parametrize("key", ["{}", "[a, b]"])
def test_a_mapping_or_list_as_a_key_is_a_yaml_problem_not_a_crash(key: str) -> None:
    # Found by tests/test_fuzz_config.py: the duplicate-key check hashed every key.
    assert problems_of(f"? {key}\n: 1\n", source="c.yaml") == [
        "c.yaml: line 1, column 3: found unhashable key"
    ]


def test_yaml_nested_too_deeply_is_a_problem_not_a_crash() -> None:
    assert problems_of("accounts: " + "[" * 100_000, source="c.yaml") == [
        "c.yaml: invalid YAML: nested too deeply"
    ]


def test_python_tags_are_refused() -> None:
    [problem] = problems_of("accounts: !!python/object:os.system {}\n", source="c.yaml")
    assert problem.startswith("c.yaml: line 1, column 11: could not determine a constructor")


def test_many_problems_reported_at_once() -> None:
    text = config_text(
        account(poll_interval="5s", timeout="10m", group_by="[team]"),
        account(
            name="openai-main", api_key="${MISSING_VAR}", base_url="http://example.com", extra="1"
        ),
        account(name="third", api_key="<omit>"),
    )
    assert problems_of(text) == [
        "accounts[0].poll_interval: must be at least 10s",
        "accounts[0].timeout: must be at most 5m",
        "accounts[0].group_by: unknown dimension 'team'; allowed: project, model, api_key, user",
        "accounts[1].api_key: environment variable MISSING_VAR is not set",
        "accounts[1].base_url: http:// is allowed only to a loopback host "
        "(127.0.0.0/8, ::1, localhost); use https://",
        "accounts[1].extra: unknown field",
        "accounts[1].name: duplicate account name 'openai-main' (also accounts[0])",
        "accounts[2]: exactly one of api_key or api_key_file is required",
    ]


def test_config_error_str_lists_problems() -> None:
    error = ConfigError(["a: x", "b: y"])
    assert str(error) == "invalid configuration:\n  a: x\n  b: y"
    assert error.problems == ["a: x", "b: y"]


# --- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"poll_interval": "9s"}, "accounts[0].poll_interval: must be at least 10s"),
        ({"poll_interval": "9999ms"}, "accounts[0].poll_interval: must be at least 10s"),
        ({"timeout": "0s"}, "accounts[0].timeout: must be greater than 0s"),
        ({"timeout": "5m1s"}, "accounts[0].timeout: must be at most 5m"),
        ({"settle_window": "59m"}, "accounts[0].settle_window: must be at least 1h"),
        ({"settle_window": "32d"}, "accounts[0].settle_window: must be at most 31d"),
    ],
)
def test_duration_limits(fields: dict[str, str], problem: str) -> None:
    assert one_problem(**fields) == problem


@pytest.mark.parametrize(
    ("fields", "seconds"),
    [
        ({"poll_interval": "10s"}, ("poll_interval", 10.0)),
        ({"timeout": "5m"}, ("timeout", 300.0)),
        ({"timeout": "1ms"}, ("timeout", 0.001)),
        ({"settle_window": "1h"}, ("settle_window", 3600.0)),
        ({"settle_window": "31d"}, ("settle_window", 31 * 86_400.0)),
    ],
)
def test_duration_limits_inclusive(fields: dict[str, str], seconds: tuple[str, float]) -> None:
    [acc] = parse_config(config_text(account(**fields)), env=ENV).accounts
    assert getattr(acc, seconds[0]) == seconds[1]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("0", "accounts[0].max_response_bytes: Input should be greater than 0"),
        (
            "1073741825",
            "accounts[0].max_response_bytes: Input should be less than or equal to 1073741824",
        ),
        ('"64MiB"', "accounts[0].max_response_bytes: Input should be a valid integer"),
    ],
)
def test_max_response_bytes_limits(value: str, problem: str) -> None:
    assert one_problem(max_response_bytes=value) == problem


def test_max_response_bytes_reaches_the_provider_settings() -> None:
    from exporter.daemon import provider_settings

    [default] = parse_config(config_text(account()), env=ENV).accounts
    assert provider_settings(default).max_response_bytes == 64 * 1024 * 1024
    [small] = parse_config(config_text(account(max_response_bytes="1000")), env=ENV).accounts
    assert provider_settings(small).max_response_bytes == 1000


@pytest.mark.parametrize("value", ["300", "300.0", "5.5"])
def test_plain_number_duration_rejected(value: str) -> None:
    assert one_problem(poll_interval=value) == (
        "accounts[0].poll_interval: a plain number has no unit; use a duration such as 30s or 5m "
        "(units ms, s, m, h, d, w; combined: 1h30m)"
    )


def test_bad_duration_string() -> None:
    assert one_problem(timeout="30 seconds") == (
        "accounts[0].timeout: invalid duration '30 seconds'; use a duration such as 30s or 5m "
        "(units ms, s, m, h, d, w; combined: 1h30m)"
    )
    assert one_problem(timeout="-5s").startswith("accounts[0].timeout: negative duration '-5s'")
    assert one_problem(timeout="true") == (  # YAML boolean
        "accounts[0].timeout: must be a duration; use a duration such as 30s or 5m "
        "(units ms, s, m, h, d, w; combined: 1h30m)"
    )
    assert one_problem(timeout="'5'").startswith("accounts[0].timeout: invalid duration '5'; use")


# --- group_by -----------------------------------------------------------------------------------


def test_group_by_canonical_order() -> None:
    text = config_text(account(group_by="[user, model, api_key, project]"))
    [acc] = parse_config(text, env=ENV).accounts
    assert acc.group_by == ("project", "model", "api_key", "user")


def test_group_by_empty_allowed() -> None:
    [acc] = parse_config(config_text(account(group_by="[]")), env=ENV).accounts
    assert acc.group_by == ()


def test_group_by_duplicates() -> None:
    assert one_problem(group_by="[model, project, model]") == (
        "accounts[0].group_by: duplicate dimension 'model'"
    )


def test_group_by_unknown() -> None:
    assert one_problem(group_by="[project, team, org]") == (
        "accounts[0].group_by: unknown dimension 'team', 'org'; "
        "allowed: project, model, api_key, user"
    )


def test_group_by_must_be_list() -> None:
    assert one_problem(group_by="project") == "accounts[0].group_by: Input should be a valid tuple"


# --- base_url -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("https://api.openai.com/v1", "https://api.openai.com/v1"),
        ("https://proxy.internal:8443/openai/", "https://proxy.internal:8443/openai"),
        ("http://127.0.0.1:8080/v1", "http://127.0.0.1:8080/v1"),
        ("http://127.8.9.10", "http://127.8.9.10"),
        ("http://localhost:9000", "http://localhost:9000"),
        ("http://LOCALHOST:9000", "http://LOCALHOST:9000"),
        ("'http://[::1]:9000'", "http://[::1]:9000"),
    ],
)
def test_base_url_allowed(url: str, stored: str) -> None:
    [acc] = parse_config(config_text(account(base_url=url)), env=ENV).accounts
    assert acc.base_url == stored


HTTP_REMOTE = (
    "accounts[0].base_url: http:// is allowed only to a loopback host "
    "(127.0.0.0/8, ::1, localhost); use https://"
)
NOT_HTTPS = (
    "accounts[0].base_url: must be an https:// URL "
    "(http:// only to a loopback host: 127.0.0.0/8, ::1, localhost)"
)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://example.com", HTTP_REMOTE),
        ("http://10.0.0.1:8080", HTTP_REMOTE),
        ("http://128.0.0.1", HTTP_REMOTE),
        ("http://localhost.example.com", HTTP_REMOTE),
        ("ftp://example.com", NOT_HTTPS),
        ("api.openai.com/v1", NOT_HTTPS),
        ("https://", NOT_HTTPS),
        ("https://user:pw@example.com", "accounts[0].base_url: must not contain credentials"),
        (
            "https://example.com/v1?x=1",
            "accounts[0].base_url: must not contain a query or fragment",
        ),
        ("https://example.com:99999", "accounts[0].base_url: is not a valid URL"),
    ],
)
def test_base_url_rejected(url: str, problem: str) -> None:
    assert one_problem(base_url=url) == problem


def test_base_url_credentials_not_echoed() -> None:
    problems = problems_of(config_text(account(base_url=f"https://u:{FAKE_KEY}@example.com")))
    assert not any(FAKE_KEY in p for p in problems)


# --- api key sources ----------------------------------------------------------------------------


def test_env_var_resolution_uses_given_env() -> None:
    [acc] = parse_config(config_text(account()), env={"OPENAI_ADMIN_KEY": " k1 \n"}).accounts
    assert acc.read_api_key() == "k1"


def test_env_var_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AICOST_TEST_KEY", "from-os-environ")
    [acc] = parse_config(config_text(account(api_key="${AICOST_TEST_KEY}"))).accounts
    assert acc.read_api_key() == "from-os-environ"


@pytest.mark.parametrize("env", [{}, {"OPENAI_ADMIN_KEY": ""}, {"OPENAI_ADMIN_KEY": "  "}])
def test_env_var_unset_or_empty(env: dict[str, str]) -> None:
    problems = problems_of(config_text(account()), env=env)
    assert problems == ["accounts[0].api_key: environment variable OPENAI_ADMIN_KEY is not set"]


def test_partial_env_reference_rejected() -> None:
    assert one_problem(api_key="Bearer-${OPENAI_ADMIN_KEY}") == (
        "accounts[0].api_key: an environment variable reference must be the whole value, "
        "e.g. ${OPENAI_ADMIN_KEY}"
    )


def test_empty_api_key() -> None:
    assert one_problem(api_key="''") == "accounts[0].api_key: must not be empty"


def test_api_key_must_be_string() -> None:
    assert one_problem(api_key="12345") == "accounts[0].api_key: must be a string"


def test_literal_key_warns() -> None:
    config = parse_config(config_text(account(api_key=FAKE_KEY)), env=ENV)
    assert config.warnings == (LITERAL_WARNING,)
    assert config.accounts[0].read_api_key() == FAKE_KEY
    assert FAKE_KEY not in repr(config)
    assert FAKE_KEY not in str(config)
    assert FAKE_KEY not in config.model_dump_json()


def test_warnings_not_in_schema_or_dump() -> None:
    config = parse_config(config_text(account(api_key=FAKE_KEY)), env=ENV)
    assert "warnings" not in config.model_dump()
    assert "warnings" not in Config.model_json_schema()["properties"]


def test_both_key_sources() -> None:
    path_text = "/etc/hostname"
    assert one_problem(api_key_file=path_text) == (
        "accounts[0]: set only one of api_key or api_key_file"
    )


def test_no_key_source() -> None:
    assert one_problem(api_key="<omit>") == (
        "accounts[0]: exactly one of api_key or api_key_file is required"
    )


def test_null_api_key_counts_as_absent() -> None:
    assert one_problem(api_key="null") == (
        "accounts[0]: exactly one of api_key or api_key_file is required"
    )


# --- encrypted keys -----------------------------------------------------------------------------


@pytest.fixture
def master_key() -> bytes:
    return parse_master_key(generate_master_key())


def test_encrypted_key_round_trip(master_key: bytes) -> None:
    token = encrypt_secret(FAKE_KEY, master_key)
    config = parse_config(config_text(account(api_key=token)), env={}, master_key=master_key)
    assert config.accounts[0].read_api_key() == FAKE_KEY
    assert config.warnings == ()
    assert FAKE_KEY not in repr(config) and token not in repr(config)


def test_encrypted_key_from_env_var(master_key: bytes) -> None:
    token = encrypt_secret(FAKE_KEY, master_key)
    config = parse_config(
        config_text(account()), env={"OPENAI_ADMIN_KEY": token}, master_key=master_key
    )
    assert config.accounts[0].read_api_key() == FAKE_KEY


def test_encrypted_key_without_master_key(master_key: bytes) -> None:
    token = encrypt_secret(FAKE_KEY, master_key)
    with pytest.raises(ConfigError) as info:
        parse_config(config_text(account(api_key=token)), env={})
    assert info.value.problems == [
        "accounts[0].api_key: encrypted value (enc:v1:) needs the master key: "
        "set AICOST_MASTER_KEY or pass --secrets.master-key-file"
    ]
    assert token not in str(info.value)


def test_encrypted_key_wrong_master_key(master_key: bytes) -> None:
    token = encrypt_secret(FAKE_KEY, master_key)
    other = parse_master_key(generate_master_key())
    with pytest.raises(ConfigError) as info:
        parse_config(config_text(account(api_key=token)), env={}, master_key=other)
    assert info.value.problems == [
        "accounts[0].api_key: cannot decrypt secret: wrong master key or corrupted value"
    ]
    text = str(info.value) + repr(info.value)
    assert token not in text and token[7:20] not in text and FAKE_KEY not in text


def test_encrypted_key_bad_token(master_key: bytes) -> None:
    problems = problems_of(config_text(account(api_key="enc:v1:@@@")), master_key=master_key)
    assert problems == ["accounts[0].api_key: encrypted secret is not valid base64url"]


# --- key files ----------------------------------------------------------------------------------


def test_api_key_file_reread_after_rotation(tmp_path: Path) -> None:
    key_file = tmp_path / "openai.key"
    key_file.write_text("sk-admin-FAKE-first\n")
    text = config_text(account(api_key="<omit>", api_key_file=str(key_file)))
    [acc] = parse_config(text, env=ENV).accounts
    assert acc.api_key is None
    assert acc.api_key_file == key_file
    assert acc.read_api_key() == "sk-admin-FAKE-first"
    key_file.write_text("  sk-admin-FAKE-rotated  \n")
    assert acc.read_api_key() == "sk-admin-FAKE-rotated"
    assert "rotated" not in repr(acc) and "first" not in repr(acc)


def test_api_key_file_missing_at_load(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    assert one_problem(api_key="<omit>", api_key_file=str(missing)) == (
        f"accounts[0].api_key_file: cannot read {missing}: No such file or directory"
    )


def test_api_key_file_empty_at_load(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_text(" \n")
    assert one_problem(api_key="<omit>", api_key_file=str(empty)) == (
        f"accounts[0].api_key_file: {empty} is empty"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_api_key_file_unreadable_at_load(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.write_text("k")
    locked.chmod(0)
    assert one_problem(api_key="<omit>", api_key_file=str(locked)) == (
        f"accounts[0].api_key_file: cannot read {locked}: Permission denied"
    )


def test_api_key_file_is_directory(tmp_path: Path) -> None:
    assert one_problem(api_key="<omit>", api_key_file=str(tmp_path)) == (
        f"accounts[0].api_key_file: cannot read {tmp_path}: Is a directory"
    )


def test_api_key_file_removed_after_load(tmp_path: Path) -> None:
    key_file = tmp_path / "openai.key"
    key_file.write_text(FAKE_KEY)
    [acc] = parse_config(
        config_text(account(api_key="<omit>", api_key_file=str(key_file))), env=ENV
    ).accounts
    key_file.unlink()
    with pytest.raises(SecretError) as info:
        acc.read_api_key()
    assert str(info.value) == (
        f"account openai-main: cannot read api_key_file {key_file}: No such file or directory"
    )
    key_file.write_text("\n")
    with pytest.raises(SecretError) as info:
        acc.read_api_key()
    assert str(info.value) == f"account openai-main: api_key_file {key_file} is empty"


def test_relative_api_key_file_is_relative_to_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "key").write_text("sk-admin-FAKE-rel")
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config_text(account(api_key="<omit>", api_key_file="secrets/key")))
    monkeypatch.chdir("/")
    [acc] = load_config(config_file, env=ENV).accounts
    assert acc.api_key_file == tmp_path / "secrets" / "key"
    assert acc.read_api_key() == "sk-admin-FAKE-rel"


# --- load_config --------------------------------------------------------------------------------


def test_load_config_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    with pytest.raises(ConfigError) as info:
        load_config(path, env=ENV)
    assert info.value.problems == [f"{path}: No such file or directory"]


def test_load_config_yaml_error_names_path(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("accounts:\n  - name: [a\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env=ENV)
    [problem] = info.value.problems
    assert problem.startswith(f"{path}: line 3, column 1: ")


def test_load_config_passes_master_key(tmp_path: Path, master_key: bytes) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(config_text(account(api_key=encrypt_secret("sk-enc", master_key))))
    config = load_config(path, env={}, master_key=master_key)
    assert config.accounts[0].read_api_key() == "sk-enc"


# --- secrets never leak -------------------------------------------------------------------------


def test_secret_never_in_any_problem(tmp_path: Path) -> None:
    """Every failing field of an account holding a literal key: nothing echoes the key."""
    text = textwrap.dedent(
        f"""\
        accounts:
          - name: "{FAKE_KEY} name"
            provider: {FAKE_KEY}
            api_key: {FAKE_KEY}
            api_key_file: /nonexistent/{FAKE_KEY}x
            base_url: ftp://{FAKE_KEY}
            poll_interval: {FAKE_KEY}s
            group_by: [{FAKE_KEY}]
            {FAKE_KEY}: 1
          - name: b
            provider: openai
            api_key: [{FAKE_KEY}]
        """
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, env=ENV)
    error = info.value
    # No chained pydantic ValidationError (its text would include input values).
    assert error.__cause__ is None and error.__context__ is None
    # The api_key value itself is never echoed; other fields may quote what the user wrote.
    api_key_problems = [p for p in error.problems if ".api_key:" in p or "]: " in p]
    assert api_key_problems == [
        "accounts[0]: set only one of api_key or api_key_file",
        "accounts[1].api_key: must be a string",
    ]
    assert "accounts[0].api_key:" not in str(error)


def test_secret_never_in_config_error_text() -> None:
    token_key = parse_master_key(generate_master_key())
    token = encrypt_secret(FAKE_KEY, token_key)
    texts = [
        config_text(account(api_key=FAKE_KEY, api_key_file="/nonexistent")),
        config_text(account(api_key=FAKE_KEY, poll_interval="1")),
        config_text(account(api_key=token)),
        config_text(account(), account(api_key=FAKE_KEY)),
    ]
    env = {"OPENAI_ADMIN_KEY": FAKE_KEY}
    for text in texts:
        with pytest.raises(ConfigError) as info:
            parse_config(text, env=env, master_key=parse_master_key(generate_master_key()))
        rendered = str(info.value) + repr(info.value) + "".join(info.value.problems)
        assert FAKE_KEY not in rendered
        assert token[7:] not in rendered


class _OptionsProvider:
    """A provider class with provider-specific options (as issue 7's providers have)."""

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        organization: str
        include_seats: bool = True


def test_provider_options_are_validated_by_the_provider_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        config_module, "_provider_registry", lambda: {"copilot": _OptionsProvider, "openai": None}
    )
    base = "accounts:\n  - name: a\n    provider: copilot\n    api_key: ${K}\n"
    ok = parse_config(base + "    options: {organization: acme}\n", env={"K": "x"})
    assert ok.accounts[0].options == _OptionsProvider.Options(organization="acme")
    with pytest.raises(ConfigError) as missing:
        parse_config(base + "    options: {}\n", env={"K": "x"})
    assert missing.value.problems == ["accounts[0]: options.organization: Field required"]
    with pytest.raises(ConfigError) as stray:
        parse_config(
            "accounts:\n  - name: a\n    provider: openai\n    api_key: ${K}\n"
            "    options: {organization: acme}\n",
            env={"K": "x"},
        )
    assert stray.value.problems == ["accounts[0]: options: provider 'openai' takes no options"]


# --- budgets and pricing ------------------------------------------------------------------------

BUDGET_ACCOUNTS = (
    "accounts:\n"
    "  - {name: oai, provider: openai, api_key: '${K}'}\n"
    "  - {name: ant, provider: anthropic, api_key: '${K}'}\n"
)


def budget_problems(budgets: str, pricing: str = "") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(BUDGET_ACCOUNTS + budgets + pricing, env={"K": "x"})
    return caught.value.problems


def test_budgets_and_pricing_load() -> None:
    config = parse_config(
        BUDGET_ACCOUNTS
        + "budgets:\n"
        "  - {name: all, period: month, limit_usd: 500}\n"
        "  - {name: oai-week, period: week, limit_usd: 50, warning_ratio: 0.5, basis: billed,\n"
        "     match: {provider: openai, account: oai, project: Search, model: gpt-4.1}}\n"
        "pricing:\n"
        "  overrides: [{provider: openai, model: 'ft:*', input: 1, output: 2}]\n"
        "  discounts: [{provider: anthropic, ratio: 0.1}]\n",
        env={"K": "x"},
    )
    assert [(b.name, b.period, b.warning_ratio, b.basis) for b in config.budgets] == [
        ("all", "month", 0.8, "best"), ("oai-week", "week", 0.5, "billed")]
    assert config.pricing.discounts[0].ratio == 0.1 and not config.pricing.auto_update


def test_budget_field_paths() -> None:
    problems = budget_problems(
        "budgets:\n"
        "  - {name: a, period: month, limit_usd: 0}\n"
        "  - {name: a, period: fortnight, limit_usd: 5, warning_ratio: 1.5}\n"
    )
    assert problems[0].startswith("budgets[0].limit_usd: ")
    assert "budgets[1].name: duplicate budget name 'a'" in problems
    assert any(p.startswith("budgets[1].period: ") for p in problems)
    assert any(p.startswith("budgets[1].warning_ratio: ") for p in problems)


def test_budget_matchers_that_can_never_match_are_errors() -> None:
    assert sorted(budget_problems(
        "budgets:\n"
        "  - {name: a, period: day, limit_usd: 1, match: {provider: groq}}\n"
        "  - {name: b, period: day, limit_usd: 1, match: {account: nope}}\n"
        "  - {name: c, period: day, limit_usd: 1, match: {provider: openai, account: ant}}\n"
        "  - {name: d, period: day, limit_usd: 1, match: {team: x}}\n"
    )) == [
        "budgets[0].match.provider: no configured account uses provider 'groq'",
        "budgets[1].match.account: no configured account is named 'nope'",
        "budgets[2].match: account 'ant' is a anthropic account, not openai",
        "budgets[3].match.team: unknown field",
    ]


def test_pricing_problems_name_the_field() -> None:
    problems = budget_problems("", "pricing:\n  discounts: [{ratio: 0.2}]\n"
                                   "  overrides: [{model: x, input: -1, output: 1}]\n")
    assert any(p.startswith("pricing.discounts[0]: ") and "exactly one" in p for p in problems)
    assert any(p.startswith("pricing.overrides[0].input: ") for p in problems)


def test_a_key_pasted_in_the_wrong_place_is_masked_in_problems() -> None:
    key = "sk-admin-MISPLACED-key-0123"
    with pytest.raises(ConfigError) as caught:
        parse_config(f"accounts:\n  - name: a\n    provider: {key}\n    api_key: x\n"
                     f"    {key}: 1\n")
    text = str(caught.value)
    assert key not in text and "MISPLACED" not in text
    assert "sk-<redacted>" in text
