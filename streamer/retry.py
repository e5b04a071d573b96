"""Wait out an unavailable Redis or Kafka: retry with capped exponential backoff, logged and counted."""

from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

import redis
from confluent_kafka import KafkaError, KafkaException

from vigil.errors import VigilError
from vigil.logging import get_logger

T = TypeVar("T")
log = get_logger("streamer")

# Redis failures that mean "down, busy or failing over", as opposed to a bug or bad data.
_REDIS_TRANSIENT = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError,
                    redis.exceptions.ReadOnlyError, redis.exceptions.OutOfMemoryError, redis.exceptions.TryAgainError)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (redis.AuthenticationError, redis.exceptions.NoPermissionError)):
        return False  # wrong credentials or ACL: waiting will not fix it
    if isinstance(exc, _REDIS_TRANSIENT):
        return True
    if isinstance(exc, redis.ResponseError):
        return str(exc).startswith(("BUSY", "MASTERDOWN", "CLUSTERDOWN"))
    if isinstance(exc, KafkaException):
        err = exc.args[0] if exc.args else None
        if err is None or err.fatal() or err.txn_requires_abort():
            return False  # a transaction that must be aborted is not waited out
        return err.retriable() or err.code() in _KAFKA_WAITABLE
    return False


_KAFKA_WAITABLE = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
                   KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.NOT_COORDINATOR,
                   KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError.REQUEST_TIMED_OUT,
                   KafkaError.NETWORK_EXCEPTION, KafkaError._WAIT_COORD}


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
        except (redis.RedisError, KafkaException) as exc:
            if isinstance(exc, (redis.AuthenticationError, redis.exceptions.NoPermissionError)):
                raise VigilError(f"{dependency} refused Vigil's credentials or permissions: {exc}; "
                                 "check redis.url and the ACL user (docs/security.md)") from None
            if not is_transient(exc):
                raise
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
