"""``vigil``: entry point. Each subcommand module registers its parser and handler."""

from __future__ import annotations

import argparse
import os
import sys

from pydantic import ValidationError

from vigil import __version__, native_logs
from vigil.cli import (backtest_cmd, config_cmd, demo, dlq_cmd, evaluate_cmd, inspect_cmd, lag_cmd, models_cmd,
                       schema_cmd, services_cmd, simulate_cmd, stream_cmd, tail_cmd, train_cmd)
from vigil.errors import VigilError, describe_invalid
from vigil.logging import configure_logging
from vigil.settings import CONFIG_FILE_ENV, VigilSettings

COMMANDS = (services_cmd, config_cmd, simulate_cmd, train_cmd, evaluate_cmd, backtest_cmd, models_cmd, stream_cmd,
            inspect_cmd, tail_cmd, schema_cmd, lag_cmd, dlq_cmd, demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vigil",
        description=(
            "Vigil: streaming anomaly detection for sensor fleets. Events arrive on Kafka, each "
            "sensor's last 10 days live in Redis, an LSTM encoder-latent autoencoder scores them, "
            "and scores and alerts go back to Kafka."
        ),
        epilog=(
            "Configuration comes from VIGIL_* environment variables (nested with __, e.g. "
            "VIGIL_KAFKA__BOOTSTRAP_SERVERS), a .env file, or a YAML file (--config). "
            "`vigil config show` prints what is in effect."
        ),
    )
    parser.add_argument("--version", action="version", version=f"vigil {__version__}")
    parser.add_argument("--config", metavar="FILE", help=f"YAML configuration file (or set {CONFIG_FILE_ENV})")
    parser.add_argument("--log-format", choices=["auto", "json", "console"], help="log line format (default: auto)")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"],
                        help="default: info; debug also shows TensorFlow's own C++ log lines")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="debug logs, and TensorFlow's C++ log lines (hidden by default: they read like "
                             "failures and are none)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMANDS:
        module.register(sub)
    return parser


def load_settings(args: argparse.Namespace) -> VigilSettings:
    if args.config:
        os.environ[CONFIG_FILE_ENV] = args.config
    try:
        settings = VigilSettings()
    except ValidationError as exc:
        raise VigilError(f"invalid configuration:\n{describe_invalid(exc)}") from None
    except FileNotFoundError as exc:
        raise VigilError(str(exc)) from None
    level = "debug" if args.verbose else args.log_level
    overrides = {k: v for k, v in (("log_format", args.log_format), ("log_level", level)) if v}
    return settings.model_copy(update=overrides) if overrides else settings


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args)
        configure_logging(settings.log_format, settings.log_level)
        native_logs.quiet(settings.log_level != "debug")
        return int(args.handler(args, settings) or 0)
    except VigilError as exc:
        print(f"vigil: error: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:  # a command-line value that a setting refuses
        print(f"vigil: error: invalid option:\n{describe_invalid(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("vigil: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
