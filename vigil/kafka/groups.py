"""Consumer-group calls that wait for the group coordinator instead of failing on a young broker.

A broker that has just started answers metadata requests before it can serve consumer groups:
the first group request creates ``__consumer_offsets`` and each of its partitions is then loaded,
so commits and offset fetches fail with NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or
COORDINATOR_LOAD_IN_PROGRESS for a few seconds. Those are retried here with a bounded wait; any
other error is raised at once.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from vigil.errors import VigilError
from vigil.kafka.clients import kafka_error
from vigil.kafka.reading import partitions

T = TypeVar("T")

# The group coordinator is moving or loading: the streamer's retry waits these out too.
COORDINATOR_UNAVAILABLE = frozenset({
    KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError._WAIT_COORD,
})
COORDINATOR_STARTING = COORDINATOR_UNAVAILABLE | {
    KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT, KafkaError._TRANSPORT,
    KafkaError.UNKNOWN_TOPIC_OR_PART,  # a topic created a moment ago, not yet in every cache
}


def coordinator_starting(exc: KafkaException) -> bool:
    err = kafka_error(exc)
    return err is not None and not err.fatal() and err.code() in COORDINATOR_STARTING


def with_coordinator(action: Callable[[], T], what: str, timeout_s: float = 120.0) -> T:
    """``action()``, retried while the group coordinator is still starting, for up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    delay = 0.2
    while True:
        try:
            return action()
        except KafkaException as exc:
            if not coordinator_starting(exc):
                raise
            if time.monotonic() + delay > deadline:
                raise VigilError(
                    f"{what}: Kafka's group coordinator was still unavailable after {timeout_s:.0f}s "
                    f"({kafka_error(exc).str()}); the broker may still be starting or short of memory: "
                    "check `vigil services status` and the broker log"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def commit_offsets(consumer: Consumer, offsets: list[TopicPartition], what: str, timeout_s: float = 120.0) -> None:
    """Commit ``offsets`` for the consumer's group (synchronously), waiting out a starting coordinator."""
    with_coordinator(lambda: consumer.commit(offsets=offsets, asynchronous=False), what, timeout_s)


def committed_offsets(consumer: Consumer, partitions: list[TopicPartition], what: str,
                      timeout_s: float = 120.0) -> list[TopicPartition]:
    """The group's committed offsets of ``partitions``, waiting out a starting coordinator."""
    return with_coordinator(lambda: consumer.committed(partitions, timeout=10), what, timeout_s)


def wait_group_ready(consumer: Consumer, topic: str, timeout_s: float) -> None:
    """Returns once the consumer's group can commit and fetch an offset on ``topic``'s partition 0."""
    probe = [TopicPartition(topic, 0, 0)]
    commit_offsets(consumer, probe, "waiting for consumer groups", timeout_s)
    committed_offsets(consumer, [TopicPartition(topic, 0)], "waiting for consumer groups", timeout_s)


def group_lag(consumer: Consumer, topic: str, timeout_s: float = 30.0) -> list[dict]:
    """Per partition of ``topic``: the consumer's group's committed offset, the end, the lag in
    messages and the Kafka timestamp of the oldest message not yet committed (None when caught up).
    ``consumer`` must belong to the group and not be subscribed (it is assigned here)."""
    parts = [TopicPartition(topic, p) for p in partitions(consumer, topic, timeout_s)]
    committed = committed_offsets(consumer, parts, f"reading {topic}'s committed offsets", timeout_s)
    rows = []
    for tp in committed:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=timeout_s)
        position = tp.offset if tp.offset >= 0 else low
        rows.append({"partition": tp.partition, "committed": tp.offset if tp.offset >= 0 else None,
                     "end": high, "lag": max(high - position, 0), "oldest_pending_ms": None,
                     "_position": position})
    behind = [r for r in rows if r["lag"] > 0]
    if behind:
        consumer.assign([TopicPartition(topic, r["partition"], r["_position"]) for r in behind])
        waiting = {r["partition"]: r for r in behind}
        deadline = time.monotonic() + timeout_s
        while waiting and time.monotonic() < deadline:
            for msg in consumer.consume(len(waiting), 0.5):
                row = waiting.pop(msg.partition(), None) if msg.error() is None else None
                if row is not None:
                    row["oldest_pending_ms"] = msg.timestamp()[1]
                    consumer.pause([TopicPartition(topic, msg.partition())])
    for row in rows:
        del row["_position"]
    return rows
