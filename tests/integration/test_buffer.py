"""The rolling buffer against the real Redis: window semantics, idempotent replay, compaction, TTL."""

import uuid

import numpy as np
import pytest

from vigil.buffer import BufferLayout, EventBatch, RollingBuffer
from vigil.events.schema import SensorEvent

from tests.integration.streaming import snapshot

DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01


@pytest.fixture
def buffer(redis_client):
    prefix = f"it-buf-{uuid.uuid4().hex[:8]}"
    yield RollingBuffer(redis_client, BufferLayout(prefix, 2, 10 * DAY, chunks_per_window=10), "events")
    for key in redis_client.scan_iter(f"{prefix}:*"):
        redis_client.delete(key)


def batch_of(rows, partition=0, first_offset=0):
    batch = EventBatch(2)
    for i, (sid, ts, value) in enumerate(rows):
        batch.add(SensorEvent(sid, ts, (value, -value), None), partition, first_offset + i)
    return batch



def test_events_come_back_sorted_inside_the_window(buffer):
    rows = [("s", T0 + h * 3_600_000, float(h)) for h in range(0, 24 * 12, 3)]  # 12 days, every 3 h
    buffer.apply(batch_of(rows))
    state = buffer.state("s")
    window = buffer.read([state])[0]
    newest = rows[-1][1]
    expected = [(ts, v) for _, ts, v in rows if ts > newest - 10 * DAY]
    assert window.ts_ms.tolist() == [ts for ts, _ in expected]
    assert window.values[:, 0].tolist() == [v for _, v in expected]
    assert window.values[:, 1].tolist() == [-v for _, v in expected]
    assert state.newest_ms == newest and state.pending == len(rows)


def test_out_of_order_inside_the_window_is_kept_and_older_is_dropped(buffer):
    buffer.apply(batch_of([("s", T0 + 20 * DAY, 1.0)]))
    late_inside = ("s", T0 + 15 * DAY, 2.0)
    too_old = ("s", T0 + 9 * DAY, 3.0)
    result = buffer.apply(batch_of([late_inside, too_old], first_offset=1))
    assert (result.added, result.too_old) == (1, [(0, 2)])  # (partition, offset) of the dead letter
    window = buffer.read([buffer.state("s")])[0]
    assert window.ts_ms.tolist() == [T0 + 15 * DAY, T0 + 20 * DAY]


def test_a_replayed_too_old_event_is_reported_again_not_called_a_redelivery(buffer):
    """After a crash that lost its dead letter, the re-read event must reach the DLQ again."""
    buffer.apply(batch_of([("s", T0 + 20 * DAY, 1.0)]))
    batch = batch_of([("s", T0 + 19 * DAY, 2.0), ("s", T0 + 9 * DAY, 3.0)], first_offset=1)
    buffer.apply(batch)
    again = buffer.apply(batch)
    assert (again.added, again.duplicates, again.too_old) == (0, 1, [(0, 2)])


def test_a_resent_event_is_a_duplicate_however_far_back_in_the_window(buffer):
    rows = [("s", T0 + h * 3_600_000, float(h)) for h in range(48)]
    buffer.apply(batch_of(rows))
    # A gateway retries three old events and one brand-new one twice, at new offsets.
    resend = [rows[0], rows[17], rows[47], ("s", T0 + 50 * 3_600_000, 5.0), ("s", T0 + 50 * 3_600_000, 5.0)]
    result = buffer.apply(batch_of(resend, first_offset=48))
    assert (result.added, result.resent, result.duplicates) == (1, 4, 0)
    # Same time, other values: a distinct event (two readings may share a timestamp).
    assert buffer.apply(batch_of([("s", T0 + 17 * 3_600_000, -1.0)], first_offset=53)).added == 1
    window = buffer.read([buffer.state("s")])[0]
    assert len(window.ts_ms) == 50 and buffer.state("s").n_stored == 50


def test_a_sensor_arriving_on_a_second_partition_is_flagged(buffer):
    buffer.apply(batch_of([("s", T0 + 1000, 1.0), ("t", T0, 1.0)], partition=4))
    same = buffer.apply(batch_of([("s", T0 + 3000, 3.0)], partition=4, first_offset=2))
    other = buffer.apply(batch_of([("s", T0 + 2000, 2.0), ("u", T0, 1.0)], partition=0))
    assert same.other_partition == [] and other.other_partition == [("s", 0)]


def test_old_chunks_are_deleted_as_time_moves_on(buffer, redis_client):
    buffer.apply(batch_of([("s", T0 + d * DAY + 1000, float(d)) for d in range(5)]))
    buffer.apply(batch_of([("s", T0 + 30 * DAY, 9.0)], first_offset=5))
    state = buffer.state("s")
    chunk_keys = list(redis_client.scan_iter(f"{buffer.layout.chunk_prefix('s')}*"))
    assert len(chunk_keys) == 1 and state.n_stored == 1
    assert buffer.read([state])[0].ts_ms.tolist() == [T0 + 30 * DAY]


def test_replaying_a_batch_changes_nothing(buffer, redis_client):
    rng = np.random.default_rng(0)
    rows = [(f"s{rng.integers(5)}", T0 + int(t), float(v))
            for t, v in zip(np.sort(rng.integers(0, 12 * DAY, 500)), rng.normal(size=500))]
    first = batch_of(rows[:300], partition=3)
    buffer.apply(first)
    buffer.apply(batch_of(rows[300:], partition=3, first_offset=300))
    before = snapshot(redis_client, buffer.layout.prefix)
    again = buffer.apply(first)
    assert again.added == 0 and again.duplicates == 300
    assert snapshot(redis_client, buffer.layout.prefix) == before
    assert buffer.partition_offsets() == {3: 499}


def test_the_same_sensor_on_two_partitions_is_deduplicated_per_partition(buffer):
    buffer.apply(batch_of([("s", T0 + 1000, 1.0)], partition=0, first_offset=7))
    result = buffer.apply(batch_of([("s", T0 + 2000, 2.0)], partition=1, first_offset=7))
    assert result.added == 1  # offset 7 of partition 1 is another message than offset 7 of partition 0


def test_closed_chunks_are_rewritten_to_their_exact_size(buffer, redis_client):
    rows = [("s", T0 + i * 600_000, float(i)) for i in range(144)]  # one day, 10 minutes apart
    for i in range(0, 144, 4):  # many small appends grow the string with slack
        buffer.apply(batch_of(rows[i : i + 4], first_offset=i))
    open_key = buffer.layout.chunk_key("s", (T0 + 143 * 600_000) // DAY)
    grown = redis_client.memory_usage(open_key, samples=0)
    buffer.apply(batch_of([("s", T0 + 2 * DAY, 0.0)], first_offset=144))  # time moves on: the chunk closes
    exact = redis_client.memory_usage(open_key, samples=0)
    assert redis_client.strlen(open_key) == 144 * 12
    assert exact < grown


def test_keys_expire_after_the_window(buffer, redis_client):
    buffer.apply(batch_of([("s", T0, 1.0)]))
    for key in redis_client.scan_iter(f"{buffer.layout.tag('s')}:*"):
        ttl_ms = redis_client.pttl(key)
        assert 10 * DAY < ttl_ms <= buffer.layout.ttl_ms


def test_inspect_reports_counts_times_and_offsets(buffer):
    buffer.apply(batch_of([("s", T0 + i * 1000, float(i)) for i in range(5)], partition=2, first_offset=40))
    report = buffer.inspect("s")
    assert report["n_events"] == 5 and report["events_since_last_score"] == 5
    assert report["first_timestamp_ms"] == T0 and report["last_timestamp_ms"] == T0 + 4000
    assert report["applied_offsets"] == {"2": {"sensor": 44, "partition": 44}}
    assert report["memory_bytes"] > 0
    assert buffer.inspect("never-seen") is None


def test_the_latest_label_is_kept_and_replays_do_not_change_it(buffer):
    batch = EventBatch(2)
    batch.add(SensorEvent("s", T0, (1.0, 1.0), 0), 0, 0)
    batch.add(SensorEvent("s", T0 + 1, (1.0, 1.0), 1), 0, 1)
    batch.add(SensorEvent("s", T0 + 2, (1.0, 1.0), None), 0, 2)
    buffer.apply(batch)
    assert buffer.read([buffer.state("s")])[0].meta["label"] == "1"
    relabel = EventBatch(2)
    relabel.add(SensorEvent("s", T0 + 3, (1.0, 1.0), 0), 0, 3)
    buffer.apply(relabel)
    buffer.apply(batch)  # a replay of older offsets
    assert buffer.read([buffer.state("s")])[0].meta["label"] == "0"
