from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from exporter.config.secrets import decrypt_secret, parse_master_key

SECRET = "sk-admin-cliTESTsecretVALUE"


def cli(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        input=stdin,
        text=True,
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_check_valid_config(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"accounts:\n  - name: a\n    provider: openai\n    api_key: {SECRET}\n")
    result = cli("check", "--config.file", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{config}: OK (1 account)\n"
    assert "accounts[0].api_key: literal key" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_check_reports_every_problem_without_traceback_or_secret(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "accounts:\n"
        f"  - name: a\n    provider: openai\n    api_key: {SECRET}\n    poll_interval: 1s\n"
        f"  - name: b\n    provider: nope\n    api_key: {SECRET}\n"
        "    base_url: http://example.com/v1\n"
    )
    result = cli("check", "--config.file", str(config))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr
    for path in ("accounts[0].poll_interval", "accounts[1].provider", "accounts[1].base_url"):
        assert f"  {path}: " in result.stderr, result.stderr


def test_no_subcommand_means_run(tmp_path: Path) -> None:
    result = cli("--config.file", str(tmp_path / "missing.yaml"))
    assert result.returncode == 1
    assert "missing.yaml" in result.stderr and "Traceback" not in result.stderr


def test_keygen_and_encrypt_secret_round_trip() -> None:
    key = cli("keygen").stdout.strip()
    result = cli("encrypt-secret", stdin=SECRET + "\n", env={"AICOST_MASTER_KEY": key})
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("enc:v1:") and SECRET not in token
    assert decrypt_secret(token, parse_master_key(key)) == SECRET


def test_encrypt_secret_without_master_key_explains(tmp_path: Path) -> None:
    result = cli("encrypt-secret", stdin=SECRET, env={})
    assert result.returncode == 1
    assert "AICOST_MASTER_KEY" in result.stderr and SECRET not in result.stderr


def test_bad_listen_address_is_a_clear_error(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("accounts:\n  - name: a\n    provider: openai\n    api_key: ${K}\n")
    result = cli(
        "run", "--config.file", str(config), "--web.listen-address", "nonsense", env={"K": "x"}
    )
    assert result.returncode == 1
    assert "--web.listen-address" in result.stderr and "Traceback" not in result.stderr
