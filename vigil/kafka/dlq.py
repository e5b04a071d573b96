"""Dead letters back to the events topic, once their cause is fixed (``vigil dlq replay``).

Idempotent twice over: each filter (reason or all) has its own consumer group on the DLQ topic,
whose offsets are committed once the re-published events are acknowledged, so a second run
re-publishes nothing; and if a run dies between the two, the events it published again carry the
same timestamp and values, which the buffer counts as resent duplicates instead of applying twice.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from vigil.kafka.clients import make_consumer, make_producer
from vigil.kafka.groups import commit_offsets, committed_offsets
from vigil.kafka.reading import header_text, partitions
from vigil.settings import VigilSettings

VIGIL_HEADER_PREFIX = "vigil."
REPLAYED_FROM = "vigil.replayed_from"  # on the re-published event: <dlq topic>/<partition>/<offset>


@dataclass
class ReplayResult:
    read: int = 0
    replayed: int = 0
    skipped_reason: int = 0
    skipped_before: int = 0
    truncated: int = 0  # kept only in part by the DLQ: cannot be replayed
    by_reason: Counter = field(default_factory=Counter)
    group: str = ""

    def as_dict(self) -> dict:
        return {"read": self.read, "replayed": self.replayed, "skipped_other_reason": self.skipped_reason,
                "skipped_before_since": self.skipped_before, "truncated_not_replayed": self.truncated,
                "replayed_by_reason": dict(self.by_reason), "group": self.group}


def replay_group(settings: VigilSettings, reason: str | None) -> str:
    return f"{settings.stream.group_id}-dlq-replay-{reason or 'all'}"


def replay_dead_letters(settings: VigilSettings, reason: str | None = None, since_ms: int | None = None,
                        dry_run: bool = False, on_progress: Callable[[int], None] | None = None) -> ReplayResult:
    """Re-publish the DLQ's records not yet replayed by this filter (key, value and the producer's
    own headers as they were) to the events topic."""
    topics = settings.topics
    group = replay_group(settings, reason)
    consumer = make_consumer(settings, group, **{"enable.partition.eof": True})
    result = ReplayResult(group=group)
    try:
        ends, starts = _range(consumer, topics.dlq)
        pending = {p for p in ends if starts[p] < ends[p]}
        producer = None if dry_run else make_producer(settings)
        if pending:
            consumer.assign([TopicPartition(topics.dlq, p, starts[p]) for p in sorted(pending)])
        positions = dict(starts)
        while pending:
            for msg in consumer.consume(1000, 1.0):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pending.discard(msg.partition())
                        continue
                    raise KafkaException(err)
                p = msg.partition()
                if msg.offset() >= ends[p]:
                    pending.discard(p)
                    continue
                positions[p] = msg.offset() + 1
                if positions[p] >= ends[p]:
                    pending.discard(p)
                result.read += 1
                _replay_one(msg, reason, since_ms, producer, topics.events, result)
                if on_progress is not None and result.read % 1000 == 0:
                    on_progress(result.read)
        if producer is not None:
            remaining = producer.flush(60)
            if remaining:
                raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, f"{remaining} replayed events unacknowledged"))
            done = [TopicPartition(topics.dlq, p, o) for p, o in sorted(positions.items()) if o > starts[p]]
            if done:
                commit_offsets(consumer, done, "recording the replayed dead letters")
    finally:
        consumer.close()
    return result


def _range(consumer: Consumer, topic: str) -> tuple[dict[int, int], dict[int, int]]:
    """Per partition: the end now, and where this group stopped last time (else the oldest record)."""
    parts = partitions(consumer, topic)
    ends, lows = {}, {}
    for p in parts:
        lows[p], ends[p] = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
    done = committed_offsets(consumer, [TopicPartition(topic, p) for p in parts], "reading the replay position")
    starts = {tp.partition: max(tp.offset, lows[tp.partition]) if tp.offset >= 0 else lows[tp.partition]
              for tp in done}
    return ends, starts


def _replay_one(msg: Message, reason: str | None, since_ms: int | None, producer, events_topic: str,
                result: ReplayResult) -> None:
    headers = header_text(msg)
    why = headers.get("vigil.reason", "?")
    if reason is not None and why != reason:
        result.skipped_reason += 1
        return
    if since_ms is not None and msg.timestamp()[1] < since_ms:
        result.skipped_before += 1
        return
    if "vigil.truncated_from" in headers:
        result.truncated += 1
        return
    result.replayed += 1
    result.by_reason[why] += 1
    if producer is None:
        return
    own = [(k, v) for k, v in (msg.headers() or []) if not k.startswith(VIGIL_HEADER_PREFIX)]
    origin = f"{msg.topic()}/{msg.partition()}/{msg.offset()}".encode()
    while True:
        try:
            producer.produce(events_topic, key=msg.key(), value=msg.value(), headers=[*own, (REPLAYED_FROM, origin)])
            break
        except BufferError:
            producer.poll(0.1)
