"""``Cycle``: the work consumed and scored since the last commit, in one object.

What a crash must not half-keep lives here until the commit (docs/architecture.md, "A cycle"):
the offsets consumed, the sensor meta each score (or silence alert) will write once its records
are acknowledged, and the ids of the alerts put in the journal. The streamer starts a fresh ``Cycle`` after each
commit (like Quix Streams' ``Checkpoint``); a rebalance drops the partitions it lost; a
delivery protocol (``streamer/delivery.py``) commits it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import TopicPartition

from vigil.buffer import meta as sensor_meta


@dataclass
class Cycle:
    offsets: dict[int, int] = field(default_factory=dict)  # partition → last offset consumed
    record_ms: list[int] = field(default_factory=list)  # per apply: its newest Kafka record time
    scored: dict[str, dict] = field(default_factory=dict)  # sensor → meta to write once acknowledged
    scored_partition: dict[str, int] = field(default_factory=dict)  # sensor → its events partition
    window_ends: list[int] = field(default_factory=list)  # every scored window's end, for the lag metric
    journaled: dict[int, set[str]] = field(default_factory=dict)  # partition → alert ids in the journal
    silence: dict[str, dict] = field(default_factory=dict)  # sensor → silence state to write once acknowledged
    silence_partition: dict[str, int] = field(default_factory=dict)  # sensor → its events partition

    def add_ingested(self, last_offsets: dict[int, int], newest_record_ms: int | None) -> None:
        for partition, offset in last_offsets.items():
            self.offsets[partition] = max(offset, self.offsets.get(partition, -1))
        if newest_record_ms is not None:
            self.record_ms.append(newest_record_ms)

    def unsaved_meta(self, sensor_id: str) -> dict | None:
        """The meta a score of this cycle left for the sensor (a second score must start from it)."""
        return self.scored.get(sensor_id)

    def scored_end(self, sensor_id: str) -> int | None:
        """The window end of the sensor's latest score this cycle (None: not scored this cycle)."""
        return self.scored.get(sensor_id, {}).get(sensor_meta.SCORED_END)

    def add_scored(self, sensor_id: str, partition: int, meta: dict, window_end: int) -> None:
        self.scored[sensor_id] = {**self.scored.get(sensor_id, {}), **meta}
        self.scored_partition[sensor_id] = partition
        self.window_ends.append(window_end)

    def add_journaled(self, partition: int, alert_ids: list[str]) -> None:
        self.journaled.setdefault(partition, set()).update(alert_ids)

    def add_silence(self, sensor_id: str, partition: int, meta: dict) -> None:
        """A silence alert or its clear was sent; its state waits here like a score's (not scored:
        readiness and the event-time lag must not count it)."""
        self.silence[sensor_id] = {**self.silence.get(sensor_id, {}), **meta}
        self.silence_partition[sensor_id] = partition

    def meta_to_write(self) -> dict[str, dict]:
        """Every sensor's meta this cycle leaves to write, scores and silence merged (their fields differ)."""
        out = {sensor_id: dict(meta) for sensor_id, meta in self.scored.items()}
        for sensor_id, meta in self.silence.items():
            out[sensor_id] = {**out.get(sensor_id, {}), **meta}
        return out

    def drop_partitions(self, lost: set[int]) -> None:
        """Partitions gone to another member: their offsets, scored state and journal entries are
        the new owner's (it re-reads and re-scores them); nothing of theirs may be written here."""
        for partition in lost:
            self.offsets.pop(partition, None)
            self.journaled.pop(partition, None)
        for sensor_id, partition in list(self.scored_partition.items()):
            if partition in lost:
                self.scored.pop(sensor_id, None)
                del self.scored_partition[sensor_id]
        for sensor_id, partition in list(self.silence_partition.items()):
            if partition in lost:
                self.silence.pop(sensor_id, None)
                del self.silence_partition[sensor_id]

    def keep_partitions(self, assigned: set[int]) -> None:
        self.drop_partitions(set(self.offsets) - assigned)

    def offsets_to_commit(self, topic: str) -> list[TopicPartition]:
        return [TopicPartition(topic, p, o + 1) for p, o in sorted(self.offsets.items())]

    def next(self, committed: bool) -> "Cycle":
        """The cycle after this one: fresh, except for offsets whose commit a rebalance deferred."""
        return Cycle() if committed else Cycle(offsets=dict(self.offsets))
