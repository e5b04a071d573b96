"""Wait out an unavailable Redis or Kafka: retry with capped exponential backoff, logged and counted."""

from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

import redis
from confluent_kafka import KafkaException

from vigil.logging import get_logger

T = TypeVar("T")
log = get_logger("streamer")

# Failures that mean "the service is down or busy", as opposed to a bug or bad data.
TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, KafkaException)


class Stopped(Exception):
    """Shutdown was requested and the dependency stayed away through the grace period."""


def retrying(
    action: Callable[[], T],
    dependency: str,
    stop: threading.Event,
    on_retry: Callable[[str], None] = lambda _dep: None,
    max_backoff_s: float = 30.0,
    stop_grace_s: float = 10.0,
) -> T:
    """``action()``, retried while it fails transiently. After ``stop`` is set it keeps trying
    for ``stop_grace_s`` (so a shutdown can still finish its batch), then raises :class:`Stopped`."""
    delay, attempt, stop_seen = 0.1, 0, None
    while True:
        try:
            return action()
        except TRANSIENT as exc:
            attempt += 1
            on_retry(dependency)
            log.warning("dependency unavailable, retrying", dependency=dependency, attempt=attempt,
                        wait_s=round(delay, 2), error=str(exc)[:200])
            if stop.is_set():
                stop_seen = stop_seen or time.monotonic()
                if time.monotonic() - stop_seen > stop_grace_s:
                    raise Stopped(dependency) from exc
                time.sleep(min(delay, 1.0))
            else:
                stop.wait(delay)
            delay = min(delay * 2, max_backoff_s)
