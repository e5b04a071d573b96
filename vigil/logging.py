"""Structured logs (structlog): JSON lines for services, readable lines on a terminal.

Every logger a component takes from :func:`get_logger` carries ``component=<name>`` so mixed
logs of the streamer, trainer and CLI stay attributable.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog


class _CurrentStderr:
    """Whatever ``sys.stderr`` is when a line is written (test runners and tools swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure_logging(fmt: str = "auto", level: str = "info", stream: Any = None) -> None:
    """Set up structlog once per process. ``fmt``: ``json``, ``console`` or ``auto`` (console on a TTY)."""
    stream = stream or _CurrentStderr()
    if fmt == "auto":
        fmt = "console" if stream.isatty() else "json"
    renderer = structlog.dev.ConsoleRenderer() if fmt == "console" else structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(component: str, **context: Any) -> structlog.stdlib.BoundLogger:
    """A logger bound to ``component`` (e.g. ``streamer``, ``services.kafka``).

    Lazy: safe to create at import time, it renders with whatever :func:`configure_logging` set.
    """
    return structlog.get_logger(component=component, **context)
