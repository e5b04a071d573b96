"""Wait out an unavailable Redis or Kafka: retry with capped exponential backoff, logged and counted."""

from __future__ import annotations

import threading
import time
from typing import Callable, TypeVar

import redis
from confluent_kafka import KafkaError, KafkaException

from vigil.errors import VigilError
from vigil.kafka.clients import kafka_error
from vigil.kafka.groups import COORDINATOR_UNAVAILABLE
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
        err = kafka_error(exc)
        if err is None or err.fatal() or err.txn_requires_abort():
            return False  # a transaction that must be aborted is not waited out
        return err.retriable() or err.code() in _KAFKA_WAITABLE
    return False


_KAFKA_WAITABLE = COORDINATOR_UNAVAILABLE | {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._TIMED_OUT,
                                           KafkaError.REQUEST_TIMED_OUT, KafkaError.NETWORK_EXCEPTION}


class Stopped(Exception):
    """Shutdown was requested and the dependency stayed away through the grace period."""


# How long a shutdown still waits for Kafka to take the batch's records and its offset commit:
# longer than for Redis (retrying's default), as a broker's leader election takes seconds.
KAFKA_STOP_GRACE_S = 30.0


class StopGrace:
    """How long a shutdown may still wait for a dependency, so it can finish its batch: once
    ``stop`` is set, :meth:`check` says so, and raises :class:`Stopped` when ``grace_s`` have
    passed since it first saw the stop."""

    def __init__(self, stop: threading.Event, dependency: str, grace_s: float):
        self.stop, self.dependency, self.grace_s = stop, dependency, grace_s
        self._seen: float | None = None

    def check(self, cause: BaseException) -> bool:
        """False while no stop is asked for; True within the grace; else raises ``Stopped``."""
        if not self.stop.is_set():
            return False
        self._seen = self._seen or time.monotonic()
        if time.monotonic() - self._seen > self.grace_s:
            raise Stopped(self.dependency) from cause
        return True


def retrying(
    action: Callable[[], T],
    dependency: str,
    stop: threading.Event,
    waiting: Callable[[str], None] = lambda _dep: None,
    max_backoff_s: float = 30.0,
    stop_grace_s: float = 10.0,
) -> T:
    """``action()``, retried while it fails transiently. After ``stop`` is set it keeps trying
    for ``stop_grace_s`` (so a shutdown can still finish its batch), then raises :class:`Stopped`."""
    delay, attempt, grace = 0.1, 0, StopGrace(stop, dependency, stop_grace_s)
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
            waiting(dependency)
            log.warning("dependency unavailable, retrying", dependency=dependency, attempt=attempt,
                        wait_s=round(delay, 2), error=str(exc)[:200])
            if grace.check(exc):
                time.sleep(min(delay, 1.0))
            else:
                stop.wait(delay)
            delay = min(delay * 2, max_backoff_s)


KAFKA_QUIET_S = 15.0  # Kafka counts as back once librdkafka has reported no error for this long


class Retrier:
    """The streamer's one retry idea: ``retry(action, "redis")`` waits out an outage of that
    dependency, counting each wait in ``vigil_retries_total`` and in ``/readyz``.

    A Redis call that succeeds proves Redis is back. A Kafka call may succeed without the broker
    (a flush with nothing to send), so Kafka counts as back once librdkafka has been quiet for
    ``KAFKA_QUIET_S`` (:meth:`kafka_settled`).
    """

    def __init__(self, stop: threading.Event, health, retries_metric, max_backoff_s: float = 30.0):
        self.stop = stop
        self.health = health
        self.retries = retries_metric
        self.max_backoff_s = max_backoff_s
        self._kafka_error_at = -float("inf")

    def __call__(self, action: Callable[[], T], dependency: str) -> T:
        result = retrying(action, dependency, self.stop, self.waiting, self.max_backoff_s)
        if dependency == "redis":
            self.health.set(dependency, None)
        return result

    def kafka(self, action: Callable[[], T]) -> T:
        return self(action, "kafka")

    def waiting(self, dependency: str) -> None:
        """One wait for ``dependency`` (also librdkafka's own reconnects, via :meth:`kafka_error`)."""
        if dependency == "kafka":
            self._kafka_error_at = time.monotonic()
        self.retries.labels(dependency).inc()
        self.health.set(dependency, "unavailable, retrying")
        self.health.beat()

    def kafka_error(self, err: KafkaError) -> None:
        """librdkafka's ``error_cb``: it reconnects by itself; this makes the outage visible."""
        self._kafka_error_at = time.monotonic()
        self.retries.labels("kafka").inc()
        self.health.set("kafka", err.str())
        log.warning("kafka unavailable, librdkafka keeps retrying", error=err.str())

    def kafka_settled(self) -> None:
        if time.monotonic() - self._kafka_error_at > KAFKA_QUIET_S:
            self.health.set("kafka", None)
