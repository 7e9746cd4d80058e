"""Dockerfile and docker-compose.yml, validated without a Docker engine."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
import yaml

from tests.conftest import real_binary
from tests.integration.exporter_process import free_port

from .assets import GRAFANA_DIR, PROMETHEUS_CONFIG, ROOT, load_yaml
from .conftest import tool
from .servers import Server

DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).parent / "schemas" / "compose-spec.json"
SCHEMA_SHA256 = "d549057ebc2925f39f62799eab0db7b9e2c18b35b6c00595199116da3ed10e64"
STACK_DOC = ROOT / "docs" / "stack.md"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines = [
        line for line in DOCKERFILE.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    out = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, args = line.strip().partition(" ")
            out.append((keyword.upper(), args.strip()))
    return out


def only(keyword: str) -> str:
    (args,) = [a for k, a in instructions() if k == keyword]
    return args


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_not_a_rubber_stamp(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nCMD python app.py\n")
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert {"DL3007", "DL3013", "DL3025"} <= set(re.findall(r"DL\d{4}", result.stdout))


def test_dockerfile_is_multi_stage_slim_and_non_root() -> None:
    froms = [args for keyword, args in instructions() if keyword == "FROM"]
    assert len(froms) >= 2
    assert all(re.match(r"python:3\.11-slim(-\w+)?( AS \w+)?$", f) for f in froms), froms
    user = only("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or gid.isdigit()), "fixed, numeric, non-root"
    # The last USER comes after every RUN: nothing runs as root at run time.
    keywords = [k for k, _ in instructions()]
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    assert only("EXPOSE") == "9877"


def test_dockerfile_entrypoint_is_exec_form_and_runs_the_exporter() -> None:
    assert json.loads(only("ENTRYPOINT")) == ["ai-cost-exporter"]
    command = json.loads(only("CMD"))
    assert command[0] == "run"


def healthcheck_command() -> list[str]:
    args = only("HEALTHCHECK")
    options, _, command = args.partition(" CMD ")
    assert re.search(r"--interval=\d+s", options) and re.search(r"--timeout=\d+s", options)
    parsed: list[str] = json.loads(command)
    return parsed


def test_healthcheck_uses_python_not_curl() -> None:
    command = healthcheck_command()
    assert command[0] == "python" and "http://127.0.0.1:9877/-/healthy" in command[-1]
    for _, args in instructions():
        assert not re.search(r"\b(curl|wget)\b", args), args


def ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics for the patterns used here: the last matching line wins."""
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.removeprefix("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(
            fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.removeprefix("**/"))
            for p in prefixes
            if pattern.startswith("**/") or p.count("/") == pattern.count("/")
        ):
            result = not negate
    return result


def test_dockerignore_keeps_exactly_what_the_build_copies() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = []
    for keyword, args in instructions():
        if keyword == "COPY" and "--from" not in args:
            copied.extend(args.split()[:-1])
    assert copied, "the build copies the project"
    for source in copied:
        assert (ROOT / source).exists(), source
        assert not ignored(source.rstrip("/"), patterns), f"{source} is excluded from the context"
    for source in ("exporter/cli.py", "pyproject.toml", "README.md"):
        assert not ignored(source, patterns), source
    for excluded in (
        ".git",
        ".venv",
        "tests/conftest.py",
        "exporter/__pycache__/cli.cpython-311.pyc",
    ):
        assert ignored(excluded, patterns), excluded


def compose() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(COMPOSE)
    return data


def validate_compose(document: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(document)


def test_vendored_schema_is_the_recorded_one() -> None:
    assert hashlib.sha256(SCHEMA.read_bytes()).hexdigest() == SCHEMA_SHA256


def test_compose_file_matches_the_compose_specification() -> None:
    validate_compose(compose())


def test_schema_validation_rejects_a_broken_compose_file() -> None:
    broken = compose()
    broken["services"]["exporter"]["ports"] = "9877:9877"  # must be a list
    with pytest.raises(jsonschema.ValidationError):
        validate_compose(broken)
    broken = compose()
    broken["services"]["prometheus"]["volumes_typo"] = []
    with pytest.raises(jsonschema.ValidationError):
        validate_compose(broken)


def bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> repository path of each bind mount (./ sources)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target] = ROOT / source
    return mounts


def test_every_mounted_path_exists_and_is_wired_up() -> None:
    services = compose()["services"]
    assert set(services) == {"exporter", "prometheus", "alertmanager", "grafana"}
    for name, service in services.items():
        for target, source in bind_mounts(service).items():
            assert source.exists(), (
                f"{name}: {source} (mounted at {target}) is not in the repository"
            )

    def container_file(service: str, flag: str) -> Path:
        (arg,) = [a for a in services[service]["command"] if a.startswith(flag + "=")]
        path: str = arg.split("=", 1)[1]
        for target, source in bind_mounts(services[service]).items():
            if path.startswith(target + "/"):
                return source / path.removeprefix(target + "/")
        raise AssertionError(f"{service}: {path} is not mounted")

    assert container_file("prometheus", "--config.file") == PROMETHEUS_CONFIG
    assert (
        container_file("alertmanager", "--config.file")
        == ROOT / "deploy/alertmanager/alertmanager.yml"
    )
    grafana = bind_mounts(services["grafana"])
    assert grafana["/etc/grafana/provisioning"] == GRAFANA_DIR / "provisioning"
    (provider,) = load_yaml(next((GRAFANA_DIR / "provisioning/dashboards").glob("*.yml")))[
        "providers"
    ]
    assert grafana[provider["options"]["path"]] == GRAFANA_DIR / "dashboards"
    home = services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (GRAFANA_DIR / "dashboards" / Path(home).name).is_file()
    assert home.startswith(provider["options"]["path"] + "/")


def test_service_addresses_agree() -> None:
    """prometheus.yml scrapes the exporter service and alerts the alertmanager service by name."""
    services = compose()["services"]
    config = load_yaml(PROMETHEUS_CONFIG)
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == "ai-cost-exporter"]
    assert job["static_configs"][0]["targets"] == ["exporter:9877"]
    assert "9877:9877" in services["exporter"]["ports"]
    command = services["exporter"]["command"]
    assert command[command.index("--web.listen-address") + 1] == ":9877"
    am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"] and "9093:9093" in services["alertmanager"]["ports"]
    (source,) = load_yaml(next((GRAFANA_DIR / "provisioning/datasources").glob("*.yml")))[
        "datasources"
    ]
    assert (
        source["url"] == "http://prometheus:9090" and "9090:9090" in services["prometheus"]["ports"]
    )


def override_snippet() -> dict[str, Any]:
    """The docker-compose.override.yml that docs/stack.md gives for real accounts."""
    blocks = re.findall(
        r"```yaml\n(# docker-compose\.override\.yml\n.*?)```", STACK_DOC.read_text(), re.S
    )
    assert len(blocks) == 1, "docs/stack.md shows one docker-compose.override.yml"
    data: dict[str, Any] = yaml.safe_load(blocks[0])
    return data


def test_documented_override_for_real_accounts_is_valid() -> None:
    override = override_snippet()
    exporter = override["services"]["exporter"]
    merged = compose()
    merged["services"]["exporter"] = {**merged["services"]["exporter"], **exporter}
    validate_compose(merged)
    assert exporter["env_file"] and exporter["command"][0] == "run"
    targets = [volume.split(":")[1] for volume in exporter["volumes"]]
    config_flag = exporter["command"][exporter["command"].index("--config.file") + 1]
    assert config_flag in targets


def test_documented_real_command_parses_with_the_cli(tmp_path: Path) -> None:
    """`check` with the override's flags, pointed at config.example.yaml instead of the mount."""
    command = override_snippet()["services"]["exporter"]["command"]
    args = list(command)
    args[0] = "check"
    args[args.index("--config.file") + 1] = str(ROOT / "config.example.yaml")
    env = {
        **os.environ,
        "OPENAI_ADMIN_KEY": "sk-admin-test",
        "ANTHROPIC_ADMIN_KEY": "sk-ant-admin01-test",
    }
    result = subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def run_healthcheck(port: int) -> int:
    command = healthcheck_command()
    command[0] = sys.executable
    command[-1] = command[-1].replace("127.0.0.1:9877", f"127.0.0.1:{port}")
    return subprocess.run(command, capture_output=True, timeout=30).returncode


@pytest.mark.integration
def test_compose_exporter_command_runs_and_the_healthcheck_sees_it() -> None:
    """The compose service's command, run as the image would (its ENTRYPOINT + command), on a free
    port; then the image's HEALTHCHECK command against it."""
    port = free_port()
    command = [
        a.replace(":9877", f"127.0.0.1:{port}")
        for a in compose()["services"]["exporter"]["command"]
    ]
    entrypoint = json.loads(only("ENTRYPOINT"))
    assert entrypoint == ["ai-cost-exporter"]
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()[0].decode()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/-/healthy", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the demo did not become healthy"
            time.sleep(0.1)
        assert run_healthcheck(port) == 0
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert "aicost_collector_up" in metrics
    finally:
        process.terminate()
        process.wait(timeout=15)
    assert run_healthcheck(port) != 0  # nothing listens any more


def test_compose_commands_are_plain_argument_lists() -> None:
    """Exec-form commands: no shell is needed in the image and arguments are not re-split."""
    for name, service in compose()["services"].items():
        if "command" in service:
            assert isinstance(service["command"], list), name
            assert shlex.join(service["command"]), name


def compose_flags(service: str, tmp_path: Path) -> list[str]:
    """The service's command with bind-mounted paths mapped to the repository and volumes to tmp."""
    spec = compose()["services"][service]
    mounts = bind_mounts(spec)
    volumes = {
        v.split(":")[1]: tmp_path / v.split(":")[0]
        for v in spec.get("volumes", [])
        if not v.startswith("./")
    }
    flags = []
    for arg in spec["command"]:
        flag, _, value = arg.partition("=")
        for target, source in {**mounts, **volumes}.items():
            if value == target or value.startswith(target + "/"):
                value = str(source) + value.removeprefix(target)
        flags.append(f"{flag}={value}" if value else arg)
    return flags


@pytest.mark.integration
def test_compose_prometheus_and_alertmanager_flags_run(tmp_path: Path) -> None:
    """The compose commands' flags are accepted by the real servers (web address on 127.0.0.1).

    Prometheus gets the shipped configuration with its targets on 127.0.0.1, so that it resolves no
    host names; Alertmanager gets the shipped configuration unchanged."""
    prom_flags = compose_flags("prometheus", tmp_path)
    config = load_yaml(PROMETHEUS_CONFIG)
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / "rules" / "*.yml")]
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{free_port()}"]}]
    config["alerting"]["alertmanagers"][0]["static_configs"] = [
        {"targets": [f"127.0.0.1:{free_port()}"]}
    ]
    local_config = tmp_path / "prometheus.yml"
    local_config.write_text(yaml.safe_dump(config))
    prom_flags = [
        f"--config.file={local_config}" if f.startswith("--config.file=") else f for f in prom_flags
    ]
    assert any(f.startswith("--storage.tsdb.retention.time=") for f in prom_flags)
    am_flags = compose_flags("alertmanager", tmp_path)
    assert f"--config.file={ROOT / 'deploy/alertmanager/alertmanager.yml'}" in am_flags
    servers = [
        ("prometheus", real_binary("prometheus"), prom_flags, []),
        (
            "alertmanager",
            real_binary("prometheus-alertmanager"),
            am_flags,
            ["--cluster.listen-address="],
        ),
    ]
    for name, binary, flags, extra in servers:
        port = free_port()
        command = [binary, *flags, *extra, f"--web.listen-address=127.0.0.1:{port}"]
        with Server(name, command, port, tmp_path / f"{name}.log") as server:
            server.wait_ready()
