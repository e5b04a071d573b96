"""argparse types whose errors say what was wrong and how to write it instead."""

from __future__ import annotations

import argparse
from datetime import timedelta
from pathlib import Path

from vigil.durations import parse_duration


def duration_arg(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0 to 65535 (0: off), got {value}")
    return value


def add_model_dir(parser: argparse.ArgumentParser, *, keep_earlier: bool = False) -> None:
    """``--model-dir``, the same on every command that reads or writes the model registry.

    ``keep_earlier``: on a sub-action (``vigil models list``) the option may also come before the
    action (``vigil models --model-dir D list``); then this one must not reset it to None.
    """
    parser.add_argument("--model-dir", type=Path, metavar="DIR",
                        default=argparse.SUPPRESS if keep_earlier else None,
                        help="model registry (default: settings model_dir, var/models)")
