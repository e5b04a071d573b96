"""Silence alerts: a sensor that stops sending is alerted (docs/architecture.md, stage 5).

A sensor is *silent* once its events partition's event time (the newest event time ingested from
that partition) has moved ``alerts.silent_bins`` bins past the sensor's newest event. Event time,
not the wall clock, so a replay or a lagging consumer alerts exactly as a live stream would, and
a partition that receives nothing alerts nobody: nothing says its time has moved. The sensor's next
event clears the alert.

:class:`SilenceWatch` is the pure part: it is fed (partition, sensor, newest event) observations
and answers which sensors went silent and which came back. It knows only the sensors seen since
the process started (or since their partition was assigned). Whether a sensor is already alerted
silent is kept in its meta (``SILENT_FIELDS``), written like a score's meta once the alert is in
Kafka, so it survives restarts: a sensor seen for the first time brings that state along
(:func:`read_silences`).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Iterable, Literal

import orjson
import redis

from vigil.buffer import BufferLayout, SensorState
from vigil.buffer import meta as sensor_meta
from vigil.events.outputs import AlertRecord, alert_id
from streamer.journal import PendingAlert
from streamer.publish import Outgoing

# The ids leave the model version out: silence is no model's decision, and a silence re-sent after
# a crash must carry the same id whichever model is loaded by then.
_NO_MODEL = ""
_ALERT_KIND, _CLEARED_KIND = "silent", "silent-cleared"  # never a score alert's kind: the ids cannot collide


@dataclass(frozen=True)
class SilenceChange:
    """A sensor went silent (kind ``alert``) or sent again (kind ``cleared``)."""

    kind: Literal["alert", "cleared"]
    sensor_id: str
    partition: int
    newest_ms: int  # alert: the sensor's last event before it stopped; cleared: its newest event since
    n_events: int  # events in its window at newest_ms
    alert_id: str
    clears: str | None = None  # cleared: the silence alert's id

    def meta(self) -> dict[str, str]:
        """The sensor's silence state once this record is delivered."""
        if self.kind == "alert":
            return {sensor_meta.SILENT_ID: self.alert_id, sensor_meta.SILENT_END: str(self.newest_ms)}
        return {sensor_meta.SILENT_ID: "", sensor_meta.SILENT_END: "0"}

    def record(self, threshold: float, model_version: str, window_ms: int, now_ms: int) -> AlertRecord:
        return AlertRecord(alert_id=self.alert_id, kind=self.kind, reason="silent", sensor_id=self.sensor_id,
                           window_start=self.newest_ms - window_ms, window_end=self.newest_ms,
                           n_events=self.n_events, score=0.0, threshold=threshold, model_version=model_version,
                           scored_at=now_ms, explanation=None, clears=self.clears)

    def outgoing(self, topic: str, threshold: float, model_version: str, window_ms: int, now_ms: int) -> Outgoing:
        record = self.record(threshold, model_version, window_ms, now_ms)
        return Outgoing(topic, self.sensor_id.encode(), orjson.dumps(record.model_dump()))

    def pending(self, sent_ms: int) -> PendingAlert:
        """Its alert journal entry: settling a dead owner's journal writes this state."""
        return PendingAlert(self.alert_id, self.sensor_id, sent_ms, self.meta())


@dataclass
class _Seen:
    partition: int
    newest_ms: int
    n_events: int
    silent_id: str = ""  # the open silence alert


class SilenceWatch:
    """Which of the sensors seen since the start went silent, and which came back (no I/O)."""

    def __init__(self, silent_bins: int, bin_ms: int, min_events: int = 0):
        self.after_ms = silent_bins * bin_ms
        # A sensor is watched once its window holds as many events as scoring needs (or while it
        # has an open silence alert): one that sent a handful (a gateway's flood of made-up ids)
        # costs no memory and is never alerted.
        self.min_events = min_events
        self.partition_ms: dict[int, int] = {}  # partition → newest event time ingested from it
        self._seen: dict[str, _Seen] = {}
        # Per partition, (newest_ms, sensor) with the oldest on top, one entry per sensor not silent.
        # An entry is refreshed lazily: only when it reaches the top does it learn of newer events,
        # so a check costs the sensors that fell behind, not the fleet.
        self._due: dict[int, list[tuple[int, str]]] = {}
        self._back: list[SilenceChange] = []

    @property
    def enabled(self) -> bool:
        return self.after_ms > 0

    def __len__(self) -> int:
        return len(self._seen)

    def unseen(self, states: dict[str, SensorState]) -> list[str]:
        """The sensors this watch does not know yet: their silence state is in their meta (a sensor
        alerted silent may come back with fewer events in its window than the watch needs)."""
        return [s for s in states if s not in self._seen] if self.enabled else []

    def observe(self, partition: int, sensor_id: str, newest_ms: int, n_events: int = 0,
                known: tuple[str, int] | None = None) -> None:
        """The sensor's newest event after an apply; ``known`` (silence alert id, its newest event)
        is the state its meta holds, used when the sensor is first seen."""
        if not self.enabled:
            return
        if newest_ms > self.partition_ms.get(partition, newest_ms - 1):
            self.partition_ms[partition] = newest_ms
        seen = self._seen.get(sensor_id)
        if seen is None:
            silent_id, silent_end = known or ("", 0)
            if not silent_id and n_events < self.min_events:
                return
            if not silent_id:
                self._seen[sensor_id] = _Seen(partition, newest_ms, n_events)
                self._push(partition, newest_ms, sensor_id)
                return
            seen = self._seen[sensor_id] = _Seen(partition, silent_end, n_events, silent_id)
        if newest_ms <= seen.newest_ms:
            return  # a replay, or an event older than its newest: the sensor has not come back
        moved = partition != seen.partition
        seen.partition, seen.newest_ms, seen.n_events = partition, newest_ms, n_events
        if seen.silent_id:
            self._back.append(SilenceChange("cleared", sensor_id, partition, newest_ms, n_events,
                                            alert_id(sensor_id, newest_ms, n_events, _NO_MODEL, _CLEARED_KIND),
                                            clears=seen.silent_id))
            seen.silent_id = ""
            self._push(partition, newest_ms, sensor_id)
        elif moved:
            self._push(partition, newest_ms, sensor_id)

    def observe_states(self, states: Iterable[SensorState], known: dict[str, tuple[str, int]]) -> None:
        for state in states:
            self.observe(state.partition, state.sensor_id, state.newest_ms, state.n_stored, known.get(state.sensor_id))

    def take(self) -> list[SilenceChange]:
        """What changed since the last call: the sensors that came back, then the ones gone silent
        (each alerted once, until it sends again)."""
        changes, self._back = self._back, []
        for partition, due in self._due.items():
            cutoff = self.partition_ms[partition] - self.after_ms
            while due and due[0][0] <= cutoff:
                key, sensor_id = heapq.heappop(due)
                seen = self._seen.get(sensor_id)
                if seen is None or seen.partition != partition or seen.silent_id:
                    continue  # forgotten, moved to another partition, or alerted already
                if seen.newest_ms > key:
                    heapq.heappush(due, (seen.newest_ms, sensor_id))  # it sent since: look again
                    continue
                seen.silent_id = alert_id(sensor_id, seen.newest_ms, seen.n_events, _NO_MODEL, _ALERT_KIND)
                changes.append(SilenceChange("alert", sensor_id, partition, seen.newest_ms, seen.n_events,
                                             seen.silent_id))
        return changes

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget the sensors of partitions this replica no longer owns (their new owner watches them)."""
        gone = set(partitions) & self.partition_ms.keys()
        if not gone:
            return
        for partition in gone:
            del self.partition_ms[partition]
            self._due.pop(partition, None)
        self._seen = {s: seen for s, seen in self._seen.items() if seen.partition not in gone}
        self._back = [c for c in self._back if c.partition not in gone]

    def keep_partitions(self, assigned: set[int]) -> None:
        self.drop_partitions(set(self.partition_ms) - set(assigned))

    def _push(self, partition: int, newest_ms: int, sensor_id: str) -> None:
        heapq.heappush(self._due.setdefault(partition, []), (newest_ms, sensor_id))


def read_silences(client: redis.Redis, layout: BufferLayout, sensor_ids: list[str]) -> dict[str, tuple[str, int]]:
    """sensor → (open silence alert id, its newest event) from the sensors' meta, one pipeline;
    sensors without an open silence alert are left out."""
    pipe = client.pipeline(transaction=False)
    for sensor_id in sensor_ids:
        pipe.hmget(layout.meta_key(sensor_id), list(sensor_meta.SILENT_FIELDS))
    out = {}
    for sensor_id, (silent_id, silent_end) in zip(sensor_ids, pipe.execute()):
        if silent_id:
            out[sensor_id] = (sensor_meta.text(silent_id), int(silent_end or 0))
    return out
