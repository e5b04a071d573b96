"""Readiness and the record layout: pure logic, no services (the alert policy: test_alert_policy.py)."""

import numpy as np
import pytest

from streamer.readiness import ReadySet
from vigil.buffer import BufferLayout, EventBatch, SensorState
from vigil.events.outputs import alert_id
from vigil.events.schema import SensorEvent

DAY = 86_400_000


def state(sid, pending, n=20):
    return SensorState(sid, 0, n, 1000, pending)


def test_every_k_events_and_min_events():
    ready = ReadySet(every_events=3, min_events=10)
    ready.offer({"a": state("a", 2), "b": state("b", 3), "c": state("c", 5, n=9)}, now=0.0)
    assert [s.sensor_id for s in ready.take()] == ["b"]


def test_min_interval_defers_then_releases_without_new_events():
    ready = ReadySet(min_interval_s=10.0)
    ready.offer({"a": state("a", 1)}, now=0.0)
    ready.mark_scored([s.sensor_id for s in ready.take()], now=0.0)
    ready.offer({"a": state("a", 1)}, now=4.0)
    assert len(ready) == 0 and "a" in ready.deferred
    ready.release_due(now=9.0)
    assert len(ready) == 0
    ready.release_due(now=10.0)
    assert [s.sensor_id for s in ready.take()] == ["a"]


def test_the_longest_waiting_sensor_sets_the_batch_clock_and_goes_first():
    ready = ReadySet()
    ready.offer({"a": state("a", 1)}, now=5.0)
    ready.offer({"b": state("b", 1)}, now=7.0)
    ready.offer({"a": state("a", 2)}, now=8.0)  # a newer state keeps a's place and clock
    assert ready.first_ready_at == 5.0
    assert [(s.sensor_id, s.pending) for s in ready.take(1)] == [("a", 2)]
    assert ready.first_ready_at == 7.0
    ready.take()
    assert ready.first_ready_at is None


def test_alert_id_is_deterministic_and_specific():
    a = alert_id("s-1", 123, 50, "v1", "alert")
    assert a == alert_id("s-1", 123, 50, "v1", "alert")
    assert len({a, alert_id("s-2", 123, 50, "v1", "alert"), alert_id("s-1", 124, 50, "v1", "alert"),
                alert_id("s-1", 123, 51, "v1", "alert"), alert_id("s-1", 123, 50, "v2", "alert"),
                alert_id("s-1", 123, 50, "v1", "cleared")}) == 6


def test_layout_keys_share_one_hash_tag_even_for_awkward_ids():
    layout = BufferLayout("vigil", 2, 10 * DAY)
    for sid in ("plain", "}starts-with-brace", "has{braces}"):
        tags = {key[key.index("{") + 1 : key.index("}", key.index("{"))]
                for key in (layout.meta_key(sid), layout.bins_key(sid))}
        assert len(tags) == 1 and tags.pop()  # one non-empty tag: one Redis Cluster slot


def test_layout_is_a_fixed_ring_of_40_byte_bins_plus_the_resend_tail_and_decodes_in_time_order():
    layout = BufferLayout("vigil", 2, 10 * DAY, steps=240, resent_tail=16)
    assert layout.bin_ms == 3_600_000 and layout.record.itemsize == 40 and layout.bins_bytes == 240 * 40 + 16 * 12
    ring = np.zeros(240, dtype=layout.record)
    newest = 1000 * layout.bin_ms + 5  # bin 1000 in slot 1000 % 240 = 40; bin 761, the oldest kept, in slot 41
    ring[40]["n"], ring[41]["n"], ring[39]["n"] = 3, 1, 2
    data = ring.tobytes() + bytes(16 * 12)  # the ring, then the resend tail
    records = layout.decode_rings([data, None], np.array([newest, newest]))
    assert records.shape == (2, 240) and records["n"][0].tolist() == [1] + [0] * 237 + [2, 3]
    assert not records["n"][1].any()  # no buffer: an empty window


def test_layout_refuses_a_window_too_short_for_its_bins():
    with pytest.raises(ValueError, match="millisecond"):
        BufferLayout("vigil", 2, 100, steps=240)


def test_batch_groups_by_sensor_and_partition_in_offset_order():
    batch = EventBatch(1)
    for offset, (sid, part) in enumerate([("a", 0), ("b", 1), ("a", 0), ("a", 2)]):
        batch.add(SensorEvent(sid, 1000 + offset, (float(offset),), None), part, offset)
    assert batch.groups() == {("a", 0): [0, 2], ("b", 1): [1], ("a", 2): [3]}
    assert batch.last_offsets() == {0: 2, 1: 1, 2: 3}


def test_readiness_lists_every_open_problem_until_each_clears():
    from streamer.health import Health

    health = Health()
    assert health.ready() == (False, "startup: starting")
    health.set("startup", None)
    health.set("redis", "unavailable, retrying")
    health.set("model", "no model loaded yet")
    ok, why = health.ready()
    assert not ok and "redis: unavailable" in why and "model: no model" in why
    health.set("redis", None)
    health.set("model", None)
    assert health.ready() == (True, "ready") and health.alive()[0]


def test_sensors_of_lost_partitions_are_forgotten():
    ready = ReadySet(min_interval_s=10.0)
    ready.offer({"a": SensorState("a", 1, 20, 1000, 1), "b": SensorState("b", 2, 20, 1000, 1)}, now=0.0)
    ready.mark_scored(["a", "b"], now=0.0)
    ready.offer({"a": SensorState("a", 1, 20, 1000, 1), "b": SensorState("b", 2, 20, 1000, 1)}, now=1.0)
    ready.drop_partitions({1})
    assert set(ready.deferred) == {"b"}


def test_resume_where_redis_is_behind_the_committed_offsets():
    from streamer.offsets import resume_offsets

    committed = {0: 100, 1: 50, 2: 70, 3: -1001}  # partition 3: the group never committed
    applied = {0: 99, 1: 40, 3: 12}  # partition 2: Redis lost it entirely
    starts, moved = resume_offsets(committed, applied)
    assert starts == {0: 100, 1: 41, 2: 0, 3: -1001}
    assert moved == [(1, 50, 41), (2, 70, 0)]


def test_the_min_interval_memory_forgets_sensors_scored_longer_ago_than_the_interval():
    ready = ReadySet(min_interval_s=60.0)
    for minute in range(100):  # 100 minutes of a fleet whose 500 sensor ids are new each minute
        ready.mark_scored([f"s-{minute}-{i}" for i in range(500)], now=minute * 60.0)
    assert len(ready._last_scored) <= 2 * 1024 + 500
    ready.offer({"s-99-0": state("s-99-0", pending=1, n=10)}, now=99 * 60.0 + 1)
    assert len(ready) == 0 and "s-99-0" in ready.deferred  # the recent ones still defer
