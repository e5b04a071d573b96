"""Stage 1 (docs/architecture.md): Kafka messages → a columnar batch of valid events, and dead letters for the rest."""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import KafkaError, Message

from vigil.buffer import EventBatch
from vigil.events.decode import EventDecoder
from vigil.events.schema import EventError
from streamer.publish import Outgoing

TRUNCATED_BYTES = 65_536  # what a dead letter keeps of a value too large for the DLQ topic


@dataclass(frozen=True)
class DeadLetter:
    message: Message
    reason: str
    detail: str

    def record(self, topic: str, truncated: bool = False) -> Outgoing:
        """The DLQ record: the original key and value. ``truncated``: the DLQ topic refused the
        whole value; keep its head, and say how long the original was."""
        value, headers = self.message.value() or b"", self.headers()
        if truncated:
            headers.append(("vigil.truncated_from", str(len(value)).encode()))
            value = value[:TRUNCATED_BYTES]
        return Outgoing(topic, self.message.key() or b"", value, headers)

    def headers(self) -> list[tuple[str, bytes]]:
        """The original message's headers (trace ids...), then Vigil's."""
        m = self.message
        return [
            *(m.headers() or []),
            ("vigil.reason", self.reason.encode()),
            ("vigil.detail", self.detail.encode()[:1024]),
            ("vigil.source.topic", (m.topic() or "").encode()),
            ("vigil.source.partition", str(m.partition()).encode()),
            ("vigil.source.offset", str(m.offset()).encode()),
        ]


@dataclass
class Ingested:
    batch: EventBatch
    dead: list[DeadLetter] = field(default_factory=list)
    last_offsets: dict[int, int] = field(default_factory=dict)  # every message counts, valid or not
    errors: list[KafkaError] = field(default_factory=list)  # consumer-level errors, not messages
    newest_record_ms: int | None = None  # the latest Kafka record timestamp among the messages


def split_messages(messages: list[Message], decoder: EventDecoder, max_timestamp_ms: int) -> Ingested:
    """``max_timestamp_ms``: later events are dead letters (a clock far ahead would make the
    sensor's window drop everything real as too old)."""
    out = Ingested(EventBatch(len(decoder.schema.features)))
    add, dead, last = out.batch.add, out.dead, out.last_offsets
    decode = decoder.decode
    newest = -1
    for msg in messages:
        err = msg.error()
        if err is not None:
            out.errors.append(err)
            continue
        partition, offset = msg.partition(), msg.offset()
        last[partition] = offset
        record_ms = msg.timestamp()[1]
        if record_ms > newest:
            newest = record_ms
        try:
            event = decode(msg.value())
        except EventError as exc:
            dead.append(DeadLetter(msg, exc.reason, exc.detail))
            continue
        except Exception as exc:  # noqa: BLE001 - no message may stop the partition
            dead.append(DeadLetter(msg, "invalid", f"{type(exc).__name__}: {exc}"[:500]))
            continue
        if event.timestamp_ms > max_timestamp_ms:
            dead.append(DeadLetter(msg, "future_timestamp",
                                   f"timestamp {event.timestamp_ms} is after the allowed {max_timestamp_ms}"))
            continue
        add(event, partition, offset)
    out.newest_record_ms = newest if newest > 0 else None
    return out


def too_old_letters(messages: list[Message], offsets: list[tuple[int, int]], window_ms: int) -> list[DeadLetter]:
    """Dead letters for the events the buffer found older than the sensor's window."""
    wanted = set(offsets)
    return [DeadLetter(msg, "too_old", f"timestamp is more than the window ({window_ms // 3_600_000} h) older "
                                       "than the sensor's newest event")
            for msg in messages if msg.error() is None and (msg.partition(), msg.offset()) in wanted]
