"""Step 1: Kafka messages → a columnar batch of valid events, and dead letters for the rest."""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import KafkaError, Message

from vigil.buffer import EventBatch
from vigil.events.decode import EventDecoder
from vigil.events.schema import EventError


@dataclass(frozen=True)
class DeadLetter:
    message: Message
    reason: str
    detail: str

    def headers(self) -> list[tuple[str, bytes]]:
        m = self.message
        return [
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


def split_messages(messages: list[Message], decoder: EventDecoder) -> Ingested:
    out = Ingested(EventBatch(len(decoder.schema.features)))
    add, dead, last = out.batch.add, out.dead, out.last_offsets
    decode = decoder.decode
    for msg in messages:
        err = msg.error()
        if err is not None:
            out.errors.append(err)
            continue
        partition, offset = msg.partition(), msg.offset()
        last[partition] = offset
        try:
            event = decode(msg.value())
        except EventError as exc:
            dead.append(DeadLetter(msg, exc.reason, exc.detail))
            continue
        add(event, partition, offset)
    return out
