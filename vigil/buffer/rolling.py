"""``RollingBuffer``: each sensor's last window in Redis, as per-bin accumulators applied idempotently.

``apply`` writes a batch of events: the Lua script applies up to ``SENSORS_PER_CALL`` sensors' events
a call (on Redis Cluster, one slot's sensors), the calls streamed down one connection (on a cluster,
a pipeline split by slot), then the per-partition applied offsets. The script adds each event
to its bin (:mod:`vigil.buffer.bins`) and skips events at or below the offset it already applied
for that partition, so a batch re-consumed after a crash changes nothing. With a scoring cadence
(``ScoringPoints``) a sensor's events stop at each scoring point, its window is scored as it stands
there, and its remaining events follow in another round. ``read_batch`` fetches
the bins of many sensors in one pipeline of a few commands (``read_many`` and ``read_one`` as
per-sensor windows): a fixed few kilobytes per sensor, however many events.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import orjson
import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from vigil.buffer.batch import EventBatch
from vigil.buffer.cadence import Cadence
from vigil.buffer.bins import BinStats, SensorBins
from vigil.buffer import meta as sensor_meta
from vigil.buffer.layout import BufferLayout
from vigil.buffer.scripts import APPLY, RAISE_OFFSETS, READ_HASHES, WRITE_HASHES

# Sensors per call of the apply script: one call runs atomically and blocks Redis while it runs, so
# a call is kept to some tens of milliseconds at the events a sensor gathers (bench/README.md, apply.py).
SENSORS_PER_CALL = 256
# Sensors per command of a read or a meta write (the hashes' scripts, MGET): each runs atomically too.
SENSORS_PER_READ = 512


@dataclass(frozen=True)
class SensorState:
    """A sensor's buffer after an apply (what readiness and reads need)."""

    sensor_id: str
    partition: int  # of the events topic, where this state's events came from
    n_stored: int  # events in the window's bins
    newest_ms: int
    pending: int  # events since the last score


@dataclass
class ApplyResult:
    states: dict[str, SensorState]
    added: int = 0
    duplicates: int = 0  # Kafka redeliveries: offsets this partition had already applied
    resent: int = 0  # new offsets carrying an event already buffered (same timestamp and values)
    too_old: list[tuple[int, int]] = field(default_factory=list)  # (partition, offset): older than the window
    other_partition: list[tuple[str, int]] = field(default_factory=list)  # (sensor, partition) first seen elsewhere

    def add(self, items: list[tuple[tuple[str, int], list[int]]], replies: list) -> dict[tuple[str, int], list[int]]:
        """Fold the apply script's replies for ``items`` ((sensor, partition) and its rows, in the
        call's order) in; returns the rows of the sensors that stopped at a scoring point, still to
        apply."""
        stopped = {}
        for ((sensor_id, partition), rows), reply in zip(items, replies):
            added, dup, _old, n, newest, pending, resent, other = reply[:8]  # Redis integers: ints already
            self.added += added
            self.duplicates += dup
            self.resent += resent
            if reply[8]:
                self.too_old.extend((partition, int(offset)) for offset in reply[8])
            if other and (sensor_id, partition) not in self.other_partition:
                self.other_partition.append((sensor_id, partition))
            if newest >= 0:
                self.states[sensor_id] = SensorState(sensor_id, partition, n, newest, pending)
            taken = reply[9]
            if taken < len(rows):
                stopped[(sensor_id, partition)] = rows[taken:]
        return stopped


@dataclass(frozen=True)
class ScoringPoints:
    """What ``RollingBuffer.apply`` needs to stop at scoring points: the cadence, the fewest
    events a scored window holds, and what scores the windows standing at their points."""

    cadence: Cadence
    min_events: int
    score: Callable[[list[SensorState]], None]


@dataclass(frozen=True)
class WindowBatch:
    """Sensors' windows as read in one pipeline: ``records[i]`` are sensor i's ``steps`` bins in
    time order, ending at the bin of ``newest_ms[i]`` (what the streamer featurises at once)."""

    sensor_ids: list[str]
    newest_ms: np.ndarray  # [B] int64
    records: np.ndarray  # [B, steps] bin records (vigil.buffer.bins.record_dtype), zero where empty
    metas: list[dict[str, str]]
    bin_ms: int  # the buffer's grid

    def sensor_bins(self, i: int) -> SensorBins:
        """Sensor i's non-empty bins."""
        keep = np.flatnonzero(self.records[i]["n"] > 0)
        steps = self.records.shape[1]
        return SensorBins(self.bin_ms, int(self.newest_ms[i]) // self.bin_ms - steps + 1 + keep, self.records[i][keep])

    def windows(self, bin_ms: int, steps: int) -> BinStats:
        """Each sensor's window of ``steps`` bins of ``bin_ms`` ending at its newest event's: the
        buffer's last bins as they are when the grids match (the default, one array operation),
        else the buffer's bins merged into the coarser ones (SensorBins.window)."""
        first = self.newest_ms // bin_ms - steps + 1
        if bin_ms == self.bin_ms and steps <= self.records.shape[1]:
            return BinStats.of(first, bin_ms, self.records[:, self.records.shape[1] - steps:], self.newest_ms)
        return BinStats.stack([self.sensor_bins(i).window(int(end) // bin_ms, steps, bin_ms, end_ms=int(end))
                               for i, end in enumerate(self.newest_ms)])


@dataclass(frozen=True)
class SensorWindow:
    """A sensor's window as read: its non-empty bins (the last one is the bin of ``newest_ms``,
    as far as it has come), its newest event time and its meta hash."""

    sensor_id: str
    bins: SensorBins
    newest_ms: int
    meta: dict[str, str]

    @property
    def n_events(self) -> int:
        return self.bins.n_events


class RollingBuffer:
    def __init__(self, client: redis.Redis, layout: BufferLayout, topic: str):
        self.client = client
        self.layout = layout
        self.topic = topic
        self._apply = client.register_script(APPLY)
        self._raise_offsets = client.register_script(RAISE_OFFSETS)
        self._read_hashes = client.register_script(READ_HASHES)
        self._write_hashes = client.register_script(WRITE_HASHES)
        # Redis Cluster: one sensor's keys share a slot (hash tag), so its script runs on one node.
        self.cluster = isinstance(client, RedisCluster)

    def apply(self, batch: EventBatch, points: ScoringPoints | None = None) -> ApplyResult:
        """Apply a consume call's events. With ``points``, a sensor's events stop at each scoring
        point they cross (vigil/buffer/cadence.py): the windows standing there are handed to
        ``points.score``, then the sensors' remaining events are applied, until none is left."""
        result = ApplyResult({})
        if not len(batch):
            return result
        packed = batch.packed(self.layout.input_dtype)
        groups, just_scored = batch.groups(), {}
        offsets = [x for pair in sorted(batch.last_offsets().items()) for x in pair]
        while True:
            stopped = self._apply_rows(result, batch, packed, groups, points, just_scored)
            if not stopped:
                break
            points.score([result.states[sensor_id] for sensor_id, _ in stopped])
            just_scored = {key: result.states[key[0]].newest_ms for key in stopped}
            groups = stopped
        # The topic's applied offsets follow the last round's replies, so they never run ahead of
        # the sensors: a Redis that loses its latest writes loses the raise first.
        self._raise(offsets)
        return result

    def _apply_rows(self, result: ApplyResult, batch: EventBatch, packed: np.ndarray,
                    groups: dict[tuple[str, int], list[int]], points: ScoringPoints | None,
                    just_scored: dict[tuple[str, int], int]) -> dict[tuple[str, int], list[int]]:
        """One round: the script over ``groups``, many sensors a call, its replies folded into
        ``result``. Returns the rows of the sensors that stopped at a scoring point."""
        stopped: dict[tuple[str, int], list[int]] = {}

        def fold(items: list, replies: list) -> None:
            stopped.update(result.add(items, replies))

        calls = self._calls(batch, packed, groups, points, just_scored)
        if self.cluster:
            calls = list(calls)
            for (_, _, items), replies in zip(calls, self._cluster_scripts(self._apply, [c[:2] for c in calls])):
                fold(items, replies)
        else:
            self._stream_calls(calls, fold)
        return stopped

    def _calls(self, batch: EventBatch, packed: np.ndarray, groups: dict[tuple[str, int], list[int]],
               points: ScoringPoints | None, just_scored: dict[tuple[str, int], int]):
        """The script's calls over ``groups``, as (keys, args, items) with items the calls'
        ((sensor, partition), rows) in order: up to ``SENSORS_PER_CALL`` sensors a call, on Redis
        Cluster one slot's sensors. A call is yielded once full, so it can go to Redis while the
        next is packed."""
        layout = self.layout
        order = np.fromiter((i for rows in groups.values() for i in rows), dtype=np.intp,
                            count=sum(len(rows) for rows in groups.values()))
        blob = packed[order].tobytes()
        size = layout.input_dtype.itemsize
        every = points.cadence.every_ms if points is not None else 0
        shared = [layout.bin_ms, layout.steps, layout.ttl_ms, layout.n_features, layout.resent_tail, layout.grid,
                  every, points.min_events if points is not None else 0]
        filling: dict[int, tuple[list, list, list]] = {}  # slot (0 off a cluster) → the call being filled
        # Keys and arguments go as bytes: redis-py's encoder returns bytes at its first check,
        # and at one event a sensor it was a third of the apply's Python time.
        start = 0
        for key, rows in groups.items():
            sensor_id, partition = key
            end = start + len(rows) * size
            meta_key, bins_key = layout.sensor_keys(sensor_id)
            slot = key_slot(meta_key) if self.cluster else 0
            call = filling.get(slot)
            if call is None:
                call = filling[slot] = ([], list(shared), [])
            keys, args, items = call
            keys += (meta_key, bins_key)
            scored = just_scored.get(key)
            args += (b"%d" % partition, blob[start:end], _label_arg(batch.last_label(rows)),
                     b"%d" % points.cadence.phase(sensor_id) if every else b"0",
                     b"" if scored is None else b"%d" % scored)
            items.append((key, rows))
            start = end
            if len(items) == SENSORS_PER_CALL:
                yield filling.pop(slot)
        yield from filling.values()

    def _stream_calls(self, calls, fold: Callable[[list, list], None]) -> None:
        """Off a cluster: the calls down one connection, each sent as soon as it is packed, their
        replies read in order and folded as they come. Redis runs one call while Python packs the
        next or folds the one before; a MULTI/EXEC would hold every reply until the last call ran.
        Each call is atomic and skips the events it already applied, so a round cut short (a lost
        connection) is applied again whole by the caller's retry."""
        pool = self.client.connection_pool
        connection = pool.get_connection()
        sent, missing = [], []
        try:
            for keys, args, items in calls:
                connection.send_packed_command(
                    connection.pack_command("EVALSHA", self._apply.sha, len(keys), *keys, *args), check_health=not sent)
                sent.append((keys, args, items))
            for call in sent:
                try:
                    replies = connection.read_response()
                except redis.exceptions.NoScriptError:
                    missing.append(call)
                else:
                    fold(call[2], replies)
        except BaseException:
            connection.disconnect()  # replies still on their way must not be read as the next command's
            raise
        finally:
            pool.release(connection)
        if missing:  # Redis restarted (or flushed its scripts) since the last call: load it again
            self.client.script_load(APPLY)
            self._stream_calls(missing, fold)

    def _raise(self, offsets: list) -> None:
        """Raise the topic's applied offsets (partition, offset pairs) on their own."""
        call = ([self.layout.offsets_key(self.topic)], offsets)
        if self.cluster:
            self._cluster_scripts(self._raise_offsets, [call])
        else:
            self._raise_offsets(keys=call[0], args=call[1])

    def _cluster_scripts(self, script, calls: list[tuple[list, list]]) -> list:
        """EVALSHA calls in a cluster pipeline (split by slot); a node that lost its script cache
        (restart, failover) gets the scripts again and the calls are repeated: they are idempotent."""
        def run() -> list:
            pipe = self.client.pipeline(transaction=False)
            for keys, args in calls:
                pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *args)
            return pipe.execute()

        try:
            return run()
        except redis.exceptions.NoScriptError:
            for each in (self._apply, self._raise_offsets):
                self.client.script_load(each.script)  # on every primary
            return run()

    def read_batch(self, states: list[SensorState]) -> WindowBatch:
        """The sensors' windows and meta hashes in one pipeline. A sensor whose bins are on
        another grid (a changed setting, an older Vigil) reads as empty until its next event."""
        hashes, strings = self._fetch([s.sensor_id for s in states], bins=True)
        metas = [sensor_meta.text_fields(m) for m in hashes]
        newest = np.array([sensor_meta.int_field(m, sensor_meta.NEWEST, s.newest_ms) for m, s in zip(metas, states)],
                          dtype=np.int64)
        strings = [data if m.get(sensor_meta.GRID) == self.layout.grid else None for m, data in zip(metas, strings)]
        return WindowBatch([s.sensor_id for s in states], newest, self.layout.decode_rings(strings, newest), metas,
                           self.layout.bin_ms)

    def _fetch(self, sensor_ids: list[str], bins: bool) -> tuple[list[dict], list]:
        """Each sensor's meta hash (raw) and, with ``bins``, its bins string (None where absent),
        in one pipeline. Off a cluster that is a few commands for many sensors (the hashes' script
        and MGET) rather than a command or two a sensor, whose packing and parsing in redis-py
        took most of a read's time. On a cluster, where one command's keys share a slot, it is
        HGETALL and GET a sensor, routed by slot."""
        layout = self.layout
        pipe = self.client.pipeline(transaction=False)
        if self.cluster:
            for sensor_id in sensor_ids:
                pipe.hgetall(layout.meta_key(sensor_id))
                if bins:
                    pipe.get(layout.bins_key(sensor_id))
            replies = pipe.execute()
            return (replies[0::2], replies[1::2]) if bins else (replies, [])
        for start in range(0, len(sensor_ids), SENSORS_PER_READ):
            chunk = sensor_ids[start:start + SENSORS_PER_READ]
            self._read_hashes(keys=[layout.meta_key(s) for s in chunk], client=pipe)
            if bins:
                pipe.mget([layout.bins_key(s) for s in chunk])
        replies = pipe.execute() if sensor_ids else []
        step = 2 if bins else 1
        hashes = [dict(zip(flat[0::2], flat[1::2])) for reply in replies[0::step] for flat in reply]
        return hashes, [data for reply in replies[1::2] for data in reply] if bins else []

    def read_one(self, state: SensorState) -> SensorWindow:
        return self.read_many([state])[0]

    def read_many(self, states: list[SensorState]) -> list[SensorWindow]:
        """Each sensor's non-empty bins in its window, plus its meta hash (``read_batch`` gives
        the same as arrays, for scoring)."""
        batch = self.read_batch(states)
        return [SensorWindow(sensor_id, batch.sensor_bins(i), int(batch.newest_ms[i]), batch.metas[i])
                for i, sensor_id in enumerate(batch.sensor_ids)]

    def state_one(self, sensor_id: str) -> SensorState | None:
        return self.state_many([sensor_id])[0]

    def state_many(self, sensor_ids: list[str]) -> list[SensorState | None]:
        """Each sensor's state from its meta hash (None where Redis holds nothing), one pipeline."""
        hashes, _ = self._fetch(sensor_ids, bins=False)
        return [_state(sensor_id, sensor_meta.text_fields(meta)) for sensor_id, meta in zip(sensor_ids, hashes)]

    def update_meta(self, fields: dict[str, dict[str, str | int]]) -> None:
        """Write per-sensor meta fields (scored marks, alert state) in one pipeline: off a cluster,
        a script call per ``SENSORS_PER_READ`` sensors (as :meth:`_fetch` reads), on one an HSET
        a sensor."""
        if not fields:
            return
        pipe = self.client.pipeline(transaction=False)
        if self.cluster:
            for sensor_id, mapping in fields.items():
                pipe.hset(self.layout.meta_key(sensor_id), mapping=mapping)
        else:
            items = list(fields.items())
            for start in range(0, len(items), SENSORS_PER_READ):
                chunk = items[start:start + SENSORS_PER_READ]
                rows = [[x for name, value in mapping.items() for x in (name, value if type(value) is str else str(value))]
                        for _, mapping in chunk]
                self._write_hashes(keys=[self.layout.meta_key(sensor_id) for sensor_id, _ in chunk],
                                   args=[orjson.dumps(rows)], client=pipe)
        pipe.execute()

    def partition_offsets(self) -> dict[int, int]:
        raw = self.client.hgetall(self.layout.offsets_key(self.topic))
        return {int(k): int(v) for k, v in raw.items()}

    def inspect(self, sensor_id: str) -> dict | None:
        """The sensor's buffer, meta and offsets as data (``vigil inspect --sensor`` shows it); None when
        Redis holds nothing for the sensor."""
        state = self.state_one(sensor_id)
        if state is None:
            return None
        window = self.read_one(state)
        meta = window.meta
        first = int(window.bins.index[0]) * self.layout.bin_ms if len(window.bins.index) else None
        partitions = sensor_meta.applied_offsets(meta)
        topic_offsets = self.partition_offsets()
        return {
            "sensor_id": sensor_id,
            "n_events": window.n_events,
            "first_bin_start_ms": first,
            "last_timestamp_ms": state.newest_ms,
            "window_ms": self.layout.window_ms,
            "bin_ms": self.layout.bin_ms,
            "bins": len(window.bins.index),
            "memory_bytes": self.memory_usage(sensor_id),
            "events_since_last_score": state.pending,
            "last_scored_window_end_ms": sensor_meta.int_field(meta, sensor_meta.SCORED_END) or None,
            "open_alert_id": meta.get(sensor_meta.ALERT_ID) or None,
            "last_explanation": json.loads(meta[sensor_meta.EXPLANATION]) if meta.get(sensor_meta.EXPLANATION) else None,
            "applied_offsets": {
                str(p): {"sensor": off, "partition": topic_offsets.get(p)} for p, off in sorted(partitions.items())
            },
            "topic": self.topic,
        }

    def memory_usage(self, sensor_id: str) -> int:
        """Bytes Redis reports for all of the sensor's keys (``MEMORY USAGE``, exact)."""
        keys = [self.layout.meta_key(sensor_id), self.layout.bins_key(sensor_id)]
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        return sum(x or 0 for x in pipe.execute())


def _state(sensor_id: str, meta: dict[str, str]) -> SensorState | None:
    if sensor_meta.NEWEST not in meta:
        return None
    return SensorState(sensor_id, max(sensor_meta.applied_offsets(meta), default=-1), int(meta[sensor_meta.STORED]),
                       int(meta[sensor_meta.NEWEST]), int(meta[sensor_meta.PENDING]))


def _label_arg(label: int | None) -> bytes:
    return b"" if label is None else b"%d" % label
