"""The rolling buffer against the real Redis: bins, window semantics, idempotent replay, TTL, migration."""

import uuid

import numpy as np
import pytest

from vigil.alerts.backtest import scoring_points
from vigil.buffer import BufferLayout, Cadence, EventBatch, RollingBuffer, ScoringPoints
from vigil.buffer.bins import accumulate
from vigil.events.schema import SensorEvent

from tests.integration.streaming import snapshot

DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01


@pytest.fixture
def buffer(redis_client):
    prefix = f"it-buf-{uuid.uuid4().hex[:8]}"
    yield RollingBuffer(redis_client, BufferLayout(prefix, 2, 10 * DAY, steps=240, resent_tail=16), "events")
    for key in redis_client.scan_iter(f"{prefix}:*"):
        redis_client.delete(key)


def batch_of(rows, partition=0, first_offset=0):
    batch = EventBatch(2)
    for i, (sid, ts, value) in enumerate(rows):
        batch.add(SensorEvent(sid, ts, (value, -value), None), partition, first_offset + i)
    return batch



def window_of(buffer, sensor="s"):
    return buffer.read_one(buffer.state_one(sensor))


def test_bins_equal_the_offline_accumulation_bit_for_bit(buffer):
    rng = np.random.default_rng(7)
    ts = np.sort(T0 + rng.integers(0, 12 * DAY, 3000)).astype(np.int64)  # 12 days: two leave the window
    x = (1000 + rng.normal(0, [5, 0.01], (3000, 2))).astype(np.float32)
    batch = EventBatch(2)
    for i, (t, v) in enumerate(zip(ts, x)):
        batch.add(SensorEvent("s", int(t), tuple(float(a) for a in v), None), 0, i)
        if len(batch) == 97:  # many batches: the records are read back and updated each time
            buffer.apply(batch)
            batch = EventBatch(2)
    buffer.apply(batch)
    window = window_of(buffer)
    offline, _ = accumulate(ts, x, buffer.layout.bin_ms)
    top = int(ts[-1]) // buffer.layout.bin_ms
    keep = offline.index > top - 240
    assert window.newest_ms == ts[-1] and window.n_events == int(offline.records["n"][keep].sum())
    assert window.bins.index.tolist() == offline.index[keep].tolist()
    assert window.bins.records.tobytes() == offline.records[keep].tobytes()
    assert buffer.state_one("s").n_stored == window.n_events


def _events(sensor, n, seed, spacing_ms):
    rng = np.random.default_rng(seed)
    ts = T0 + np.cumsum(rng.integers(1, spacing_ms, n)).astype(np.int64)
    return [(sensor, int(t), float(v)) for t, v in zip(ts, rng.normal(0, 1, n).astype(np.float32))]


def test_a_batch_stops_at_each_scoring_point_and_the_window_there_is_the_offline_one(buffer):
    # Two sensors, interleaved in one consume call, each crossing many spans of the cadence.
    cadence, min_events = Cadence(3 * 3_600_000), 5
    rows = sorted(_events("a", 300, 1, 40 * 60_000) + _events("b", 200, 2, 90 * 60_000), key=lambda r: r[1])
    seen: dict[str, list] = {"a": [], "b": []}

    def score(states):
        for state in states:
            window = buffer.read_one(state)
            seen[state.sensor_id].append((state.newest_ms, window.bins.records.tobytes()))

    buffer.apply(batch_of(rows), ScoringPoints(cadence, min_events, score))
    points = scoring_points(cadence, min_events, buffer.layout.window_ms, buffer.layout.bin_ms)
    for sensor in ("a", "b"):
        ts = np.array([t for s, t, _ in rows if s == sensor], dtype=np.int64)
        x = np.array([(v, -v) for s, _, v in rows if s == sensor], dtype=np.float32)
        expected = points(sensor, ts)
        assert [end for end, _ in seen[sensor]] == ts[expected].tolist() and len(expected) > 10
        for i, (_, records) in zip(expected, seen[sensor]):  # the window as it stood at its point
            offline, _ = accumulate(ts[: i + 1], x[: i + 1], buffer.layout.bin_ms)
            keep = offline.index > int(ts[i]) // buffer.layout.bin_ms - 240
            assert records == offline.records[keep].tobytes()
    assert window_of(buffer, "a").newest_ms == max(t for s, t, _ in rows if s == "a")  # then the rest


def test_a_point_whose_score_was_never_written_is_found_again_when_its_events_are_re_read(buffer):
    cadence = Cadence(3_600_000)
    rows = _events("a", 40, 3, 30 * 60_000)
    calls = []

    def crash(states):
        calls.append([s.newest_ms for s in states])
        raise RuntimeError("the process dies before the score is written")

    with pytest.raises(RuntimeError):
        buffer.apply(batch_of(rows), ScoringPoints(cadence, 1, crash))
    again = []
    buffer.apply(batch_of(rows), ScoringPoints(cadence, 1, lambda states: again.append([s.newest_ms for s in states])))
    assert again[0] == calls[0]  # the same point, though the events before it were applied already
    # Once every event is applied, a redelivery stops nowhere.
    assert buffer.apply(batch_of(rows), ScoringPoints(cadence, 1, crash)).duplicates == len(rows)


def test_out_of_order_inside_the_window_lands_in_its_bin_and_older_is_dropped(buffer):
    buffer.apply(batch_of([("s", T0 + 20 * DAY, 1.0)]))
    late_inside = ("s", T0 + 15 * DAY, 2.0)
    too_old = ("s", T0 + 10 * DAY, 3.0)  # the window is the 240 hourly bins up to the newest one
    result = buffer.apply(batch_of([late_inside, too_old], first_offset=1))
    assert (result.added, result.too_old) == (1, [(0, 2)])  # (partition, offset) of the dead letter
    window = window_of(buffer)
    hour = buffer.layout.bin_ms
    assert window.bins.index.tolist() == [(T0 + 15 * DAY) // hour, (T0 + 20 * DAY) // hour]
    assert window.bins.records["min"][:, 0].tolist() == [2.0, 1.0]


def test_a_replayed_too_old_event_is_reported_again_not_called_a_redelivery(buffer):
    """After a crash that lost its dead letter, the re-read event must reach the DLQ again."""
    buffer.apply(batch_of([("s", T0 + 20 * DAY, 1.0)]))
    batch = batch_of([("s", T0 + 19 * DAY, 2.0), ("s", T0 + 9 * DAY, 3.0)], first_offset=1)
    buffer.apply(batch)
    again = buffer.apply(batch)
    assert (again.added, again.duplicates, again.too_old) == (0, 1, [(0, 2)])


def test_a_resent_recent_event_is_not_counted_twice(buffer):
    rows = [("s", T0 + m * 60_000, float(m)) for m in range(48)]
    buffer.apply(batch_of(rows))
    # A gateway retries three of its last 16 events and one brand-new one twice, at new offsets.
    resend = [rows[33], rows[40], rows[47], ("s", T0 + 50 * 60_000, 5.0), ("s", T0 + 50 * 60_000, 5.0)]
    result = buffer.apply(batch_of(resend, first_offset=48))
    assert (result.added, result.resent, result.duplicates) == (1, 4, 0)
    # Same time, other values: a distinct event (two readings may share a timestamp).
    assert buffer.apply(batch_of([("s", T0 + 40 * 60_000, -1.0)], first_offset=53)).added == 1
    # Older than the tail holds: counted again (the tail's size is the setting redis.resent_tail).
    assert buffer.apply(batch_of([rows[0]], first_offset=54)).added == 1
    assert window_of(buffer).n_events == 51 == buffer.state_one("s").n_stored


def test_a_resend_check_of_zero_events_counts_everything(redis_client):
    prefix = f"it-buf-{uuid.uuid4().hex[:8]}"
    buffer = RollingBuffer(redis_client, BufferLayout(prefix, 2, 10 * DAY, resent_tail=0), "events")
    try:
        buffer.apply(batch_of([("s", T0, 1.0)]))
        assert buffer.apply(batch_of([("s", T0, 1.0)], first_offset=1)).added == 1
        assert redis_client.strlen(buffer.layout.bins_key("s")) == 240 * buffer.layout.record.itemsize
    finally:
        for key in redis_client.scan_iter(f"{prefix}:*"):
            redis_client.delete(key)


def test_a_sensor_arriving_on_a_second_partition_is_flagged(buffer):
    buffer.apply(batch_of([("s", T0 + 1000, 1.0), ("t", T0, 1.0)], partition=4))
    same = buffer.apply(batch_of([("s", T0 + 3000, 3.0)], partition=4, first_offset=2))
    other = buffer.apply(batch_of([("s", T0 + 2000, 2.0), ("u", T0, 1.0)], partition=0))
    assert same.other_partition == [] and other.other_partition == [("s", 0)]


def test_bins_that_leave_the_window_are_dropped_whole(buffer, redis_client):
    buffer.apply(batch_of([("s", T0 + d * DAY + 1000, float(d)) for d in range(5)]))
    buffer.apply(batch_of([("s", T0 + 12 * DAY, 7.0)], first_offset=5))
    window = window_of(buffer)
    hour = buffer.layout.bin_ms
    assert window.bins.index.tolist() == [(T0 + d * DAY + 1000) // hour for d in (3, 4)] + [(T0 + 12 * DAY) // hour]
    assert buffer.state_one("s").n_stored == 3
    buffer.apply(batch_of([("s", T0 + 30 * DAY, 9.0)], first_offset=6))  # past the whole window at once
    assert window_of(buffer).bins.index.tolist() == [(T0 + 30 * DAY) // hour] and buffer.state_one("s").n_stored == 1
    assert redis_client.strlen(buffer.layout.bins_key("s")) == buffer.layout.bins_bytes


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


def test_the_bins_string_keeps_its_size_however_many_events(buffer, redis_client):
    rows = [("s", T0 + i * 60_000, float(i)) for i in range(3 * 1440)]  # three days, one a minute
    buffer.apply(batch_of(rows[:10]))
    key = buffer.layout.bins_key("s")
    first = redis_client.memory_usage(key, samples=0)
    for i in range(10, len(rows), 500):
        buffer.apply(batch_of(rows[i : i + 500], first_offset=i))
    assert redis_client.strlen(key) == buffer.layout.bins_bytes == 240 * 40 + 16 * 12
    assert redis_client.memory_usage(key, samples=0) == first


def test_keys_expire_after_the_window(buffer, redis_client):
    buffer.apply(batch_of([("s", T0, 1.0)]))
    for key in redis_client.scan_iter(f"{buffer.layout.tag('s')}:*"):
        ttl_ms = redis_client.pttl(key)
        assert 10 * DAY < ttl_ms <= buffer.layout.ttl_ms


def test_keys_get_their_ttl_again_only_once_it_was_set_a_bin_ago(buffer, redis_client):
    layout = buffer.layout
    meta, bins = layout.meta_key("s"), layout.bins_key("s")
    buffer.apply(batch_of([("s", T0, 1.0)]))
    assert int(redis_client.hget(meta, "ttl_at")) > 0

    def shorten() -> None:  # as if a day of the TTL had run
        for key in (meta, bins):
            redis_client.pexpire(key, DAY)

    def refreshed() -> bool:
        ttls = [redis_client.pttl(key) for key in (meta, bins)]
        assert all(0 < t <= layout.ttl_ms for t in ttls)
        return min(ttls) > DAY

    shorten()
    buffer.apply(batch_of([("s", T0 + 1000, 2.0)], first_offset=1))
    assert not refreshed()  # set moments ago: left as it is

    now_ms = int(redis_client.hget(meta, "ttl_at"))
    redis_client.hset(meta, "ttl_at", now_ms - layout.bin_ms)
    buffer.apply(batch_of([("s", T0 + 2000, 3.0)], first_offset=2))
    assert refreshed()  # set a bin ago: set again, and when is recorded
    assert int(redis_client.hget(meta, "ttl_at")) >= now_ms

    shorten()
    buffer.apply(batch_of([("s", T0 + 2000, 3.0)], first_offset=2))
    assert not refreshed()  # a replayed event changes nothing, the TTL included

    redis_client.hset(meta, "ttl_at", now_ms + DAY)  # a clock that went back (another Redis node)
    buffer.apply(batch_of([("s", T0 + 3000, 4.0)], first_offset=3))
    assert refreshed()


def test_inspect_reports_counts_times_and_offsets(buffer):
    buffer.apply(batch_of([("s", T0 + i * 1000, float(i)) for i in range(5)], partition=2, first_offset=40))
    report = buffer.inspect("s")
    assert report["n_events"] == 5 and report["events_since_last_score"] == 5
    assert report["first_bin_start_ms"] == T0 // 3_600_000 * 3_600_000 and report["last_timestamp_ms"] == T0 + 4000
    assert report["bins"] == 1 and report["bin_ms"] == 3_600_000
    assert report["applied_offsets"] == {"2": {"sensor": 44, "partition": 44}}
    assert report["memory_bytes"] > 0
    assert buffer.inspect("never-seen") is None


def test_the_latest_label_is_kept_and_replays_do_not_change_it(buffer):
    batch = EventBatch(2)
    batch.add(SensorEvent("s", T0, (1.0, 1.0), 0), 0, 0)
    batch.add(SensorEvent("s", T0 + 1, (1.0, 1.0), 1), 0, 1)
    batch.add(SensorEvent("s", T0 + 2, (1.0, 1.0), None), 0, 2)
    buffer.apply(batch)
    assert buffer.read_one(buffer.state_one("s")).meta["label"] == "1"
    relabel = EventBatch(2)
    relabel.add(SensorEvent("s", T0 + 3, (1.0, 1.0), 0), 0, 3)
    buffer.apply(relabel)
    buffer.apply(batch)  # a replay of older offsets
    assert buffer.read_one(buffer.state_one("s")).meta["label"] == "0"


def test_a_buffer_of_another_grid_or_the_raw_layout_is_rebuilt_keeping_the_alert_state(buffer, redis_client):
    meta = buffer.layout.meta_key("s")
    # What Vigil before per-bin buffers left: raw-event meta fields, offsets, an open alert.
    redis_client.hset(meta, mapping={"newest": T0, "first": 1, "open": 2, "n": 9, "pending": 3, "o:0": 99,
                                     "old:0": "5", "alert_id": "a1", "label": "0"})
    result = buffer.apply(batch_of([("s", T0 + 1000, 4.0)], first_offset=50))  # below the old offset 99
    assert result.added == 1
    fields = {k.decode(): v.decode() for k, v in redis_client.hgetall(meta).items()}
    assert fields["grid"] == buffer.layout.grid and fields["alert_id"] == "a1" and fields["o:0"] == "50"
    assert "old:0" not in fields  # the raw layout's own fields (first, open) are left alone, unread
    assert fields["n"] == "1" and fields["pending"] == "1"
    other = RollingBuffer(redis_client, BufferLayout(buffer.layout.prefix, 2, 10 * DAY, steps=480), "events")
    other.apply(batch_of([("s", T0 + 2000, 5.0)], first_offset=51))
    assert window_of(other).n_events == 1 and window_of(buffer).n_events == 0  # each reads only its own grid


def test_many_sensors_read_and_write_their_meta_in_chunks_as_one_by_one(buffer, redis_client):
    from vigil.buffer.rolling import SENSORS_PER_READ

    sensors = [f"s{i:04d}" for i in range(SENSORS_PER_READ + 90)]  # two chunks of each command
    buffer.apply(batch_of([(s, T0 + i * 60_000 + k * 3_600_000, float(i + k)) for k in range(3)
                           for i, s in enumerate(sensors)]))
    buffer.update_meta({s: {"alert_id": f"a-{s}", "alert_end": T0 + i} for i, s in enumerate(sensors) if i % 3})
    states = buffer.state_many([*sensors, "absent"])
    assert states[-1] is None and [s.sensor_id for s in states[:-1]] == sensors
    batch = buffer.read_batch(states[:-1])
    for i, sensor in enumerate(sensors):
        meta = {k.decode(): v.decode() for k, v in redis_client.hgetall(buffer.layout.meta_key(sensor)).items()}
        assert batch.metas[i] == meta and (meta.get("alert_id") == f"a-{sensor}") == bool(i % 3)
        assert states[i].n_stored == 3 and batch.newest_ms[i] == T0 + i * 60_000 + 2 * 3_600_000
        assert batch.records[i]["n"].sum() == 3
        one = buffer.read_one(states[i])
        assert one.bins.records.tobytes() == batch.sensor_bins(i).records.tobytes()


def _fleet_rows(sensors, per_sensor, seed):
    """``per_sensor`` events of each sensor, ten minutes apart, interleaved as a consume call holds them."""
    rng = np.random.default_rng(seed)
    return [(s, T0 + k * 600_000 + i, float(v)) for k in range(per_sensor)
            for i, (s, v) in enumerate(zip(sensors, rng.normal(size=len(sensors))))]


def test_a_batch_of_several_calls_equals_its_sensors_applied_one_at_a_time(buffer, redis_client):
    from vigil.buffer.rolling import SENSORS_PER_CALL

    sensors = [f"s{i:04d}" for i in range(2 * SENSORS_PER_CALL + 40)]  # three calls, streamed down one connection
    rows = _fleet_rows(sensors, 5, seed=3)
    result = buffer.apply(batch_of(rows, partition=2, first_offset=100))
    alone = RollingBuffer(redis_client, BufferLayout(f"{buffer.layout.prefix}-alone", 2, 10 * DAY, steps=240,
                                                     resent_tail=16), "events")
    for sensor in sensors:
        mine = [(i, row) for i, row in enumerate(rows) if row[0] == sensor]
        one = EventBatch(2)
        for i, (sid, ts, value) in mine:
            one.add(SensorEvent(sid, ts, (value, -value), None), 2, 100 + i)
        alone.apply(one)
    assert result.added == len(rows) and sorted(result.states) == sorted(sensors)
    states = buffer.state_many(sensors)
    assert [result.states[s] for s in sensors] == states == alone.state_many(sensors)
    assert buffer.read_batch(states).records.tobytes() == alone.read_batch(states).records.tobytes()
    assert buffer.partition_offsets() == {2: 100 + len(rows) - 1}


def test_the_apply_loads_its_script_again_when_redis_has_forgotten_it(buffer, redis_client):
    from vigil.buffer.rolling import SENSORS_PER_CALL

    sensors = [f"s{i:04d}" for i in range(SENSORS_PER_CALL + 10)]
    buffer.apply(batch_of(_fleet_rows(sensors, 2, seed=4), partition=1))
    redis_client.script_flush()  # as a restarted Redis: every EVALSHA of the round answers NOSCRIPT
    later = _fleet_rows(sensors, 2, seed=5)
    result = buffer.apply(batch_of([(s, ts + 2 * 600_000, v) for s, ts, v in later], partition=1,
                                   first_offset=2 * len(sensors)))
    assert result.added == len(later) and result.duplicates == 0
    assert [state.n_stored for state in buffer.state_many(sensors)] == [4] * len(sensors)
    assert buffer.partition_offsets() == {1: 4 * len(sensors) - 1}
