"""Command line: ``ai-cost-exporter [run|check|demo|keygen|encrypt-secret]``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from exporter import __version__
from exporter.config.schema import Config, ConfigError, load_config
from exporter.config.secrets import (
    SecretError,
    encrypt_secret,
    generate_master_key,
    load_master_key,
)
from exporter.log import FORMATS, LEVELS, setup_logging
from exporter.sources.push.errors import StoreError
from exporter.web.server import DEFAULT_MAX_REQUESTS, raise_open_files_limit
from exporter.web.webconfig import WebConfigError, WebConfigSource

log = logging.getLogger("exporter")

COMMANDS = ("run", "check", "demo", "keygen", "encrypt-secret", "import", "report", "backfill")
DEFAULT_LISTEN = ":9877"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ai-cost-exporter",
        description="Prometheus exporter for AI providers' organization usage and cost.",
    )
    parser.add_argument("--version", action="version", version=f"ai-cost-exporter {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def config_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--config.file",
            dest="config_file",
            default="config.yaml",
            help="path of the YAML configuration (default: %(default)s)",
        )
        p.add_argument(
            "--secrets.master-key-file",
            dest="master_key_file",
            type=Path,
            help="file holding the master key for enc:v1: values "
            "(default: the AICOST_MASTER_KEY environment variable)",
        )

    def web_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--web.listen-address",
            dest="listen_address",
            default=DEFAULT_LISTEN,
            help="address to serve /metrics on (default: %(default)s)",
        )
        p.add_argument(
            "--log.level",
            dest="log_level",
            choices=LEVELS,
            default="info",
            help="log level (default: %(default)s)",
        )
        p.add_argument(
            "--log.format",
            dest="log_format",
            choices=FORMATS,
            default="logfmt",
            help="log format (default: %(default)s)",
        )

    def web_config_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--web.config.file",
            dest="web_config_file",
            type=Path,
            help="YAML file enabling TLS and/or basic auth, in the Prometheus exporter-toolkit "
            "format; re-read when it changes (see docs/security.md)",
        )

    run = sub.add_parser("run", help="run the exporter (the default command)")
    config_flags(run)
    web_flags(run)
    web_config_flag(run)
    run.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="allow reloading the configuration over HTTP (POST /-/reload), as in Prometheus; "
        "SIGHUP reloads either way",
    )
    run.add_argument(
        "--web.max-requests",
        dest="max_requests",
        type=_non_negative_int,
        default=DEFAULT_MAX_REQUESTS,
        help="requests served at once, pushes counted apart; more get 503 at once "
        "(0: no limit; default: %(default)s)",
    )
    check = sub.add_parser("check", help="validate the configuration and exit")
    config_flags(check)
    web_config_flag(check)
    demo = sub.add_parser("demo", help="run the exporter against the bundled provider simulator")
    web_flags(demo)
    sub.add_parser("keygen", help="print a new master key for encrypting stored API keys")
    encrypt = sub.add_parser(
        "encrypt-secret", help="read a secret on stdin and print it as enc:v1:..."
    )
    encrypt.add_argument("--secrets.master-key-file", dest="master_key_file", type=Path)
    imp = sub.add_parser(
        "import", help="store usage rows of a CSV file as pushed events (see docs/push.md)"
    )
    imp.add_argument("file", type=Path, help="the CSV file")
    imp.add_argument("--account", required=True, help="the push account the rows belong to")
    imp.add_argument(
        "--config.file",
        dest="config_file",
        type=Path,
        default=Path("config.yaml"),
        help="path of the YAML configuration (default: %(default)s)",
    )
    report = sub.add_parser(
        "report", help="write a month's daily spend per account, project and model (chargeback)"
    )
    config_flags(report)
    report.add_argument("--month", required=True, help="the UTC month, YYYY-MM")
    report.add_argument(
        "--format",
        dest="report_format",
        choices=("focus", "focus-1.0", "csv", "json"),
        default="focus",
        help="FOCUS 1.2 CSV (focus-1.0 adds the column names focus-validator 1.0.0 checks), "
        "plain CSV or JSON (default: %(default)s)",
    )
    report.add_argument("--out", type=Path, help="file to write (default: standard output)")
    backfill = sub.add_parser(
        "backfill",
        help="write the providers' history as OpenMetrics for promtool (see docs/backfill.md)",
    )
    config_flags(backfill)
    backfill.add_argument("--from", dest="first", required=True, help="first UTC day, YYYY-MM-DD")
    backfill.add_argument(
        "--to", dest="last", help="UTC day to stop before, YYYY-MM-DD (default: today)"
    )
    backfill.add_argument(
        "--out", type=Path, required=True, help="directory for the aicost-YYYY-MM.om files"
    )
    backfill.add_argument(
        "--step",
        type=_step,
        default="5m",
        help="time between samples; must divide a day (default: %(default)s)",
    )
    return parser


def _step(text: str) -> int:
    from exporter.config.durations import parse_duration

    try:
        return int(parse_duration(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _load_web_config(args: argparse.Namespace) -> tuple[bool, WebConfigSource | None]:
    """(ok, the web config source or None when no file is given); prints a problem."""
    if args.web_config_file is None:
        return True, None
    try:
        return True, WebConfigSource(args.web_config_file)
    except WebConfigError as exc:
        print(f"error: --web.config.file: {exc}", file=sys.stderr)
        return False, None


def _load(args: argparse.Namespace) -> Config | None:
    """The validated config, or ``None`` after printing every problem."""
    try:
        master_key = load_master_key(os.environ, args.master_key_file)
    except (SecretError, OSError) as exc:
        print(f"error: master key: {exc}", file=sys.stderr)
        return None
    try:
        return load_config(Path(args.config_file), master_key=master_key)
    except ConfigError as exc:
        print(f"error: invalid configuration {args.config_file}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return None


def _account_count(config: Config) -> int:
    """Polled, pushed and subscription accounts."""
    subscription_accounts = {s.account for s in config.subscriptions}
    return len(config.accounts) + len(config.push.accounts) + len(subscription_accounts)


def _reload_config(args: argparse.Namespace) -> Config:
    """The configuration read again for a reload (raises ConfigError or SecretError)."""
    master_key = load_master_key(os.environ, args.master_key_file)
    config = load_config(Path(args.config_file), master_key=master_key)
    for warning in config.warnings:
        log.warning(warning)
    return config


def _run(args: argparse.Namespace) -> int:
    from exporter.daemon import Daemon

    setup_logging(args.log_level, args.log_format)
    config = _load(args)
    if config is None:
        return 1
    for warning in config.warnings:
        log.warning(warning)
    web_ok, web_config = _load_web_config(args)
    if not web_ok:
        return 1
    raise_open_files_limit()
    try:
        daemon = Daemon(
            config,
            args.listen_address,
            web_config=web_config,
            max_requests=args.max_requests,
            loader=lambda: _reload_config(args),
            enable_lifecycle=args.enable_lifecycle,
        )
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"error: --web.listen-address: {exc}", file=sys.stderr)
        return 1
    log.info("starting", extra={"version": __version__, "accounts": _account_count(config)})
    asyncio.run(daemon.serve())
    return 0


def _check(args: argparse.Namespace) -> int:
    config = _load(args)
    if config is None:
        return 1
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    web_ok, web_config = _load_web_config(args)
    if not web_ok:
        return 1
    count = _account_count(config)
    print(f"{args.config_file}: OK ({count} account{'' if count == 1 else 's'})")
    if web_config is not None:
        print(f"{args.web_config_file}: OK")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    print(generate_master_key())
    return 0


def _encrypt(args: argparse.Namespace) -> int:
    try:
        key = load_master_key(os.environ, args.master_key_file)
    except (SecretError, OSError) as exc:
        print(f"error: master key: {exc}", file=sys.stderr)
        return 1
    if key is None:
        print(
            "error: no master key: set AICOST_MASTER_KEY or pass --secrets.master-key-file "
            "(create one with `ai-cost-exporter keygen`)",
            file=sys.stderr,
        )
        return 1
    secret = sys.stdin.read().strip()
    if not secret:
        print("error: no secret on standard input", file=sys.stderr)
        return 1
    print(encrypt_secret(secret, key))
    return 0


def _import(args: argparse.Namespace) -> int:
    from exporter.sources.csv_import import run_import

    return int(run_import(args.file, args.account, args.config_file))


def _report(args: argparse.Namespace) -> int:
    from exporter.history.report import run_report

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    config = _load(args)
    if config is None:
        return 1
    return run_report(config, args.month, args.report_format, args.out)


def _backfill(args: argparse.Namespace) -> int:
    from exporter.history.backfill import run_backfill

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    config = _load(args)
    if config is None:
        return 1
    return run_backfill(config, args.first, args.last, args.out, args.step)


def _demo(args: argparse.Namespace) -> int:
    from exporter.demo import run_demo

    setup_logging(args.log_level, args.log_format)
    return run_demo(args.listen_address)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ai-cost-exporter`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or (
        arguments[0] not in COMMANDS and arguments[0] not in ("-h", "--help", "--version")
    ):
        arguments.insert(0, "run")
    args = _parser().parse_args(arguments)
    handlers = {
        "run": _run,
        "check": _check,
        "demo": _demo,
        "keygen": _keygen,
        "encrypt-secret": _encrypt,
        "import": _import,
        "report": _report,
        "backfill": _backfill,
    }
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
