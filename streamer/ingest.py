"""Stage 1 (docs/architecture.md): Kafka messages → a columnar batch of valid events, and dead letters for the rest.

``PendingEvents`` holds the decoded events of several consume calls until they are applied to the
buffers together, so a sensor's events of many calls share one script call however small the
calls are (``stream.poll_events`` bounds the messages held at once; ``stream.apply_events``, and
``stream.apply_wait`` the time, bound the decoded events waiting). It keeps each event's source (key, value, headers), not the message: a Kafka
message holds on to its whole fetch buffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from confluent_kafka import KafkaError, Message

from vigil.buffer import EventBatch
from vigil.events.decode import EventDecoder
from streamer.publish import Outgoing

TRUNCATED_BYTES = 65_536  # what a dead letter keeps of a value too large for the DLQ topic
# Events per sensor at which gathering more stops paying: the buffer script's cost per event falls
# steeply up to about this many a sensor per call (its fixed cost per sensor is shared by more
# events), then no more than the noise (bench/README.md, apply.py).
EVENTS_PER_SENSOR = 16


class Source(NamedTuple):
    """What a dead letter needs of a message: where it came from and its key, value and headers."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: list | None

    @classmethod
    def of(cls, msg: Message, value: bytes | None = None) -> "Source":
        return cls(msg.topic() or "", msg.partition(), msg.offset(), msg.key(),
                   msg.value() if value is None else value, msg.headers())


@dataclass
class Sources:
    """Per event of a batch, its message's ``Source``, kept as columns: a tuple built per event
    cost more than the event's decode, and only the few that become dead letters are ever read."""

    topics: list[str] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)
    headers: list[list | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, i: int) -> Source:
        return Source(self.topics[i], self.partitions[i], self.offsets[i], self.keys[i], self.values[i],
                      self.headers[i])

    def _columns(self) -> tuple[list, ...]:
        return self.topics, self.partitions, self.offsets, self.keys, self.values, self.headers

    def extend(self, other: "Sources") -> None:
        for mine, theirs in zip(self._columns(), other._columns()):
            mine += theirs

    def rows(self, keep: list[int]) -> "Sources":
        return Sources(*([column[i] for i in keep] for column in self._columns()))

    def of_offsets(self, wanted: set[tuple[int, int]]) -> list[Source]:
        """The sources of these (partition, offset) pairs, in batch order."""
        return [self[i] for i, key in enumerate(zip(self.partitions, self.offsets)) if key in wanted]


@dataclass(frozen=True)
class DeadLetter:
    source: Source
    reason: str
    detail: str

    def record(self, topic: str, truncated: bool = False) -> Outgoing:
        """The DLQ record: the original key and value. ``truncated``: the DLQ topic refused the
        whole value; keep its head, and say how long the original was."""
        value, headers = self.source.value or b"", self.headers()
        if truncated:
            headers.append(("vigil.truncated_from", str(len(value)).encode()))
            value = value[:TRUNCATED_BYTES]
        return Outgoing(topic, self.source.key or b"", value, headers)

    def headers(self) -> list[tuple[str, bytes]]:
        """The original message's headers (trace ids...), then Vigil's."""
        m = self.source
        return [
            *(m.headers or []),
            ("vigil.reason", self.reason.encode()),
            ("vigil.detail", self.detail.encode()[:1024]),
            ("vigil.source.topic", m.topic.encode()),
            ("vigil.source.partition", str(m.partition).encode()),
            ("vigil.source.offset", str(m.offset).encode()),
        ]


@dataclass
class Ingested:
    batch: EventBatch
    sources: Sources = field(default_factory=Sources)  # per event of the batch
    dead: list[DeadLetter] = field(default_factory=list)
    last_offsets: dict[int, int] = field(default_factory=dict)  # every message counts, valid or not
    errors: list[KafkaError] = field(default_factory=list)  # consumer-level errors, not messages
    newest_record_ms: int | None = None  # the latest Kafka record timestamp among the messages


def split_messages(messages: list[Message], decoder: EventDecoder, max_timestamp_ms: int) -> Ingested:
    """``max_timestamp_ms``: later events are dead letters (a clock far ahead would make the
    sensor's window drop everything real as too old)."""
    out = Ingested(EventBatch(len(decoder.schema.features)))
    kept = []
    for msg in messages:
        err = msg.error()
        if err is None:
            kept.append(msg)
        else:
            out.errors.append(err)
    if not kept:
        return out
    partitions = [msg.partition() for msg in kept]
    offsets = [msg.offset() for msg in kept]
    values = [msg.value() for msg in kept]
    out.last_offsets.update(zip(partitions, offsets))  # in Kafka order: the last offset per partition wins
    newest = max([msg.timestamp()[1] for msg in kept])
    out.newest_record_ms = newest if newest > 0 else None

    got = decoder.decode_many(values)
    rows, dead = got.rows, {i: (exc.reason, exc.detail) for i, exc in got.errors.items()}
    if got.timestamps and max(got.timestamps) > max_timestamp_ms:
        for i, ts in zip(rows, got.timestamps):
            if ts > max_timestamp_ms:
                dead[i] = ("future_timestamp", f"timestamp {ts} is after the allowed {max_timestamp_ms}")
    out.batch = EventBatch(out.batch.n_features, got.sensor_ids, [partitions[i] for i in rows],
                           [offsets[i] for i in rows], got.timestamps, got.values, got.labels)
    if len(dead) > len(got.errors):  # future events leave the batch too
        keep = [j for j, i in enumerate(rows) if i not in dead]
        rows = [rows[j] for j in keep]
        out.batch = out.batch.rows(keep)
    out.sources = Sources([kept[i].topic() or "" for i in rows], out.batch.partitions[:], out.batch.offsets[:],
                          [kept[i].key() for i in rows], [values[i] for i in rows], [kept[i].headers() for i in rows])
    out.dead = [DeadLetter(Source.of(kept[i], values[i]), *dead[i]) for i in sorted(dead)]
    return out


def too_old_letters(sources: Sources, offsets: list[tuple[int, int]], window_ms: int) -> list[DeadLetter]:
    """Dead letters for the events the buffer found older than the sensor's window."""
    return [DeadLetter(src, "too_old", f"timestamp is more than the window ({window_ms // 3_600_000} h) older "
                                       "than the sensor's newest event")
            for src in sources.of_offsets(set(offsets))]


class PendingEvents:
    """Decoded events of consume calls not yet applied, with their sources and offsets."""

    def __init__(self, n_features: int):
        self.n_features = n_features
        self.clear()

    def clear(self) -> None:
        self.batch = EventBatch(self.n_features)
        self.sources = Sources()
        self.last_offsets: dict[int, int] = {}  # every message counts, valid or not
        self.newest_record_ms: list[int] = []  # per consume call
        self.since: float | None = None  # when the oldest of them was taken
        self.sensors: set[str] = set()

    def __bool__(self) -> bool:
        return bool(self.last_offsets)

    def __len__(self) -> int:
        return len(self.batch)

    def add(self, got: Ingested, now: float) -> None:
        if not got.last_offsets:
            return
        self.batch.extend(got.batch)
        self.sensors.update(got.batch.sensor_ids)
        self.sources.extend(got.sources)
        for partition, offset in got.last_offsets.items():
            self.last_offsets[partition] = max(offset, self.last_offsets.get(partition, -1))
        if got.newest_record_ms is not None:
            self.newest_record_ms.append(got.newest_record_ms)
        if self.since is None:
            self.since = now

    def due(self, now: float, *, limit: int, wait_s: float, behind: bool) -> bool:
        """Apply now: the consumer has caught up, or enough events wait (in all, or per sensor), or
        the oldest waited long enough, or as many sensors wait as `limit` events would fill at the
        per-sensor rule: what gathering holds grows with the sensors, so a flood of new ids, one
        event each, must not pile up until `limit`."""
        return bool(self) and (not behind or self.enough(len(self), len(self.sensors), limit)
                               or now - self.since >= wait_s)

    @staticmethod
    def enough(events: int, sensors: int, limit: int) -> bool:
        """Events of this many sensors are worth applying together at once (see :meth:`due`)."""
        return events >= min(limit, EVENTS_PER_SENSOR * sensors) or EVENTS_PER_SENSOR * sensors >= limit

    def drop_partitions(self, lost: set[int]) -> None:
        """Forget the events of partitions gone elsewhere (their new owner reads them again)."""
        keep = [i for i, p in enumerate(self.batch.partitions) if p not in lost]
        self.batch = self.batch.rows(keep)
        self.sources = self.sources.rows(keep)
        self.last_offsets = {p: o for p, o in self.last_offsets.items() if p not in lost}
        self.sensors = set(self.batch.sensor_ids)
        if not self:
            self.clear()
