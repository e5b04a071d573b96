"""Read back what was produced: from recorded end offsets, so older data in a topic is skipped."""

from __future__ import annotations

import time
from typing import Iterator

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from vigil.errors import VigilError


def end_offsets(consumer: Consumer, topic: str, timeout_s: float = 10.0) -> dict[int, int]:
    """Each partition's high watermark: where the next produced message will land."""
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout_s)[1]
            for p in partitions(consumer, topic, timeout_s)}


def partitions(consumer: Consumer, topic: str, timeout_s: float = 10.0) -> list[int]:
    meta = consumer.list_topics(topic, timeout=timeout_s).topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        raise VigilError(f"topic {topic} does not exist; run `vigil services up` (or `vigil services topics`)")
    return sorted(meta.partitions)


def read_from(
    consumer: Consumer, topic: str, offsets: dict[int, int], expected: int, timeout_s: float = 60.0
) -> Iterator[Message]:
    """Yield up to ``expected`` messages starting at ``offsets``; stop early only at the timeout."""
    consumer.assign([TopicPartition(topic, p, o) for p, o in offsets.items()])
    deadline = time.monotonic() + timeout_s
    seen = 0
    while seen < expected and time.monotonic() < deadline:
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            if msg.error() is not None:
                raise VigilError(f"consuming {topic}: {msg.error()}")
            seen += 1
            yield msg


def read_since(consumer: Consumer, topic: str, since_ms: int, timeout_s: float = 30.0) -> Iterator[Message]:
    """Every record of ``topic`` stamped at or after ``since_ms``, up to the end as the consumer's
    isolation level sees it (a read_committed consumer stops at the last stable offset).

    The consumer needs ``enable.partition.eof``. Not reaching every end within ``timeout_s``
    raises a (transient) timed-out KafkaException, for the caller to retry.
    """
    wanted = [TopicPartition(topic, p, since_ms) for p in partitions(consumer, topic, timeout_s)]
    starts = [tp for tp in consumer.offsets_for_times(wanted, timeout=timeout_s) if tp.offset >= 0]
    if not starts:
        return  # no record that recent anywhere
    consumer.assign(starts)
    unfinished = {tp.partition for tp in starts}
    deadline = time.monotonic() + timeout_s
    while unfinished:
        if time.monotonic() > deadline:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, f"{topic}: end not reached in {timeout_s}s"))
        for msg in consumer.consume(num_messages=1000, timeout=0.5):
            err = msg.error()
            if err is None:
                yield msg
            elif err.code() == KafkaError._PARTITION_EOF:
                unfinished.discard(msg.partition())
            else:
                raise KafkaException(err)


def header_text(msg: Message) -> dict[str, str]:
    """A record's headers as name → UTF-8 text (headers without a value left out)."""
    return {k: v.decode(errors="replace") for k, v in (msg.headers() or []) if v is not None}
