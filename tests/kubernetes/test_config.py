"""The exporter configurations that become ConfigMaps: keys from the mounted Secret, and valid."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest
import yaml

from exporter.config.schema import ConfigError, parse_config

from .manifests import BASE, DOC, KEYS_MOUNT, KEYS_SECRET, ROOT, SIDECAR

CONFIGS = [BASE / "config.yaml", SIDECAR / "config.yaml"]
SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")


def key_files(path: Path) -> list[PurePosixPath]:
    return [
        PurePosixPath(account["api_key_file"])
        for account in yaml.safe_load(path.read_text())["accounts"]
    ]


def with_keys_at(path: Path, keys_dir: Path, write: bool = True) -> Path:
    """A copy of the config whose key paths point into ``keys_dir`` (files written there)."""
    text = path.read_text()
    rewritten, count = re.subn(re.escape(KEYS_MOUNT) + "/", f"{keys_dir}/", text)
    assert count == len(key_files(path))  # every key path was under the mount
    keys_dir.mkdir(exist_ok=True)
    if write:
        for key in key_files(path):
            (keys_dir / key.name).write_text(f"sk-admin-test-{key.name}\n")
    copy = keys_dir.parent / "config.yaml"
    copy.write_text(rewritten)
    return copy


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_every_key_is_a_file_of_the_mounted_secret(path: Path) -> None:
    accounts = yaml.safe_load(path.read_text())["accounts"]
    assert accounts
    for account in accounts:
        # Never api_key: an environment variable cannot be rotated without a restart.
        assert "api_key" not in account
        key = PurePosixPath(account["api_key_file"])
        assert key.parent == PurePosixPath(KEYS_MOUNT)
        assert SECRET_KEY.fullmatch(key.name)  # a valid Secret data key, so a file of its own
    names = [k.name for k in key_files(path)]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_config_is_valid_when_the_key_files_exist(path: Path, tmp_path: Path) -> None:
    copy = with_keys_at(path, tmp_path / "keys")
    config = parse_config(copy.read_text(), source=str(copy), env={})
    assert config.warnings == ()
    for account, key in zip(config.accounts, key_files(path), strict=True):
        assert account.api_key_file == tmp_path / "keys" / key.name
        assert account.read_api_key() == f"sk-admin-test-{key.name}"
        assert account.base_url is None  # the providers' public APIs
        assert account.poll_interval == 300


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_check_command_accepts_the_config(path: Path, tmp_path: Path) -> None:
    copy = with_keys_at(path, tmp_path / "keys")
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "check", "--config.file", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    count = len(key_files(path))
    assert result.stdout == f"{copy}: OK ({count} account{'' if count == 1 else 's'})\n"
    assert result.stderr == ""


def test_check_command_reports_a_missing_key_file(tmp_path: Path) -> None:
    copy = with_keys_at(BASE / "config.yaml", tmp_path / "keys")
    (tmp_path / "keys" / "anthropic-admin-key").unlink()
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "check", "--config.file", str(copy)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "accounts[1].api_key_file" in result.stderr
    with pytest.raises(ConfigError):
        parse_config(copy.read_text(), env={})


def secret_commands(text: str) -> list[set[str]]:
    """The data keys of every `create secret generic ai-cost-exporter-keys` command in ``text``."""
    joined = re.sub(r"\\\n\s*(#\s*)?", " ", text)
    commands = [
        line for line in joined.splitlines() if f"create secret generic {KEYS_SECRET}" in line
    ]
    return [set(re.findall(r"--from-(?:file|literal)=([-._a-zA-Z0-9]+)=", c)) for c in commands]


@pytest.mark.parametrize(
    "path", [DOC, BASE / "kustomization.yaml"], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_documented_secret_commands_create_the_configured_key_files(path: Path) -> None:
    commands = secret_commands(path.read_text())
    assert commands, f"no `create secret generic {KEYS_SECRET}` in {path}"
    configured = [{k.name for k in key_files(c)} for c in CONFIGS]
    assert commands[0] == configured[0]  # the first one is the standalone's
    for keys in commands:
        assert keys in configured
