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


def test_a_new_event_makes_a_window_with_min_events_ready():
    ready = ReadySet(min_events=10)
    ready.offer({"a": state("a", 0), "b": state("b", 3), "c": state("c", 5, n=9)}, now=0.0)
    assert [s.sensor_id for s in ready.take()] == ["b"]


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
    ready = ReadySet()
    ready.offer({"a": SensorState("a", 1, 20, 1000, 1), "b": SensorState("b", 2, 20, 1000, 1)}, now=0.0)
    ready.drop_partitions({1})
    assert [s.sensor_id for s in ready.take()] == ["b"]


def test_resume_where_redis_is_behind_the_committed_offsets():
    from streamer.offsets import resume_offsets

    committed = {0: 100, 1: 50, 2: 70, 3: -1001}  # partition 3: the group never committed
    applied = {0: 99, 1: 40, 3: 12}  # partition 2: Redis lost it entirely
    starts, moved = resume_offsets(committed, applied)
    assert starts == {0: 100, 1: 41, 2: 0, 3: -1001}
    assert moved == [(1, 50, 41), (2, 70, 0)]


# -- the batch plan (streamer/records.py): records, journal entries and meta, no I/O -------------

def _policy(for_points=2):
    from datetime import timedelta

    from vigil.alerts import AlertPolicy
    from vigil.settings import AlertSettings

    settings = AlertSettings(warmup_fraction=0.2, for_points=for_points, for_duration=timedelta(0),
                             clear_ratio=0.8, clear_for=timedelta(hours=6), cooldown=timedelta(days=1))
    return AlertPolicy(settings, 10 * DAY, 10 * DAY // 240)


def _window(sid, end, score, meta=None):
    from vigil.alerts import ScoredWindow

    return ScoredWindow(sensor_id=sid, window_start=end - 10 * DAY, window_end=end, n_events=500, score=score,
                        history_ms=10 * DAY, meta=meta or {})


def _plan(windows, partitions, cycle=None, threshold=1.0, policy=None):
    import orjson

    from streamer.cycle import Cycle
    from streamer.records import plan_batch
    from vigil.settings import TopicSettings

    plan = plan_batch(windows, partitions, cycle or Cycle(), threshold=threshold, version="v1",
                      policy=policy or _policy(), topics=TopicSettings(), now_ms=123)
    return plan, [(r.topic, orjson.loads(r.value)) for r in plan.records]


def test_plan_sends_a_score_record_per_window_and_leaves_each_sensors_meta():
    from vigil.buffer import meta as sensor_meta

    plan, sent = _plan([_window("a", 20 * DAY, 0.2), _window("b", 20 * DAY + 5, 0.4)], {"a": 3, "b": 1})
    topics = {t for t, _ in sent}
    assert len(sent) == 2 and len(topics) == 1 and "alert" not in next(iter(topics))
    assert [(r["sensor_id"], r["score"], r["threshold"], r["model_version"], r["scored_at"]) for _, r in sent] == [
        ("a", 0.2, 1.0, "v1", 123), ("b", 0.4, 1.0, "v1", 123)]
    assert plan.journal == {} and plan.decided == []
    assert [(m.sensor_id, m.partition, m.window_end) for m in plan.scored] == [("a", 3, 20 * DAY), ("b", 1, 20 * DAY + 5)]
    assert all(m.meta[sensor_meta.SCORED_END] == m.window_end and m.meta[sensor_meta.PENDING] == 0 for m in plan.scored)


def test_plan_journals_an_alert_under_its_sensors_partition_before_it_is_sent():
    hour = 3_600_000
    above = {"above_n": "1", "above_since": str(20 * DAY)}  # one point above already in Redis
    plan, sent = _plan([_window("a", 20 * DAY + hour, 2.0, above), _window("b", 20 * DAY + hour, 2.0)],
                       {"a": 4, "b": 2})
    alerts = [r for t, r in sent if r.get("kind") == "alert"]
    assert [r["sensor_id"] for r in alerts] == ["a"]  # b has had one point above, a its second
    assert list(plan.journal) == [4]
    (pending,) = plan.journal[4]
    assert pending.alert_id == alerts[0]["alert_id"] and pending.sensor_id == "a" and pending.sent_ms == 123
    assert pending.fields["alert_id"] == alerts[0]["alert_id"]
    assert [(w.sensor_id, a.alert_id) for w, a in plan.decided] == [("a", alerts[0]["alert_id"])]
    meta = {m.sensor_id: m.meta for m in plan.scored}
    assert meta["a"]["alert_id"] == alerts[0]["alert_id"] and meta["b"]["above_n"] == "1"


def test_a_second_score_in_the_cycle_continues_from_the_meta_the_first_left():
    from streamer.cycle import Cycle

    hour = 3_600_000
    cycle = Cycle()
    first, _ = _plan([_window("a", 20 * DAY, 2.0)], {"a": 0}, cycle)
    assert first.decided == []  # one point above: not yet
    for m in first.scored:
        cycle.add_scored(m.sensor_id, m.partition, m.meta, m.window_end)
    second, _ = _plan([_window("a", 20 * DAY + hour, 2.0)], {"a": 0}, cycle)  # Redis' meta still empty
    assert [w.sensor_id for w, _ in second.decided] == ["a"]
    # The same within one batch: the second window of a sensor sees the first's meta.
    both, _ = _plan([_window("a", 20 * DAY, 2.0), _window("a", 20 * DAY + hour, 2.0)], {"a": 0})
    assert [w.window_end for w, _ in both.decided] == [20 * DAY + hour]


def _prepared(ids, ends, predict):
    """A stand-in for a PreparedBatch: what ModelThread reads of it."""
    from types import SimpleNamespace

    return SimpleNamespace(sensor_ids=list(ids), keep=np.arange(len(ids)),
                           batch=SimpleNamespace(newest_ms=np.array(ends, dtype=np.int64)), predict=predict)


def test_the_model_thread_runs_a_call_while_the_loop_goes_on_and_hands_batches_back_in_order():
    import threading

    from streamer.scoring import ModelThread

    calls = ModelThread(overlap=True)
    release, started = threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(30)
        return "first output"

    calls.submit(_prepared(["a", "b"], [10, 20], slow), context="first")
    assert started.wait(30)
    assert not calls.done()  # the call runs; this thread is free
    assert (calls.window_end("b"), calls.window_end("c")) == (20, None)
    with pytest.raises(AssertionError, match="take the batch in flight first"):
        calls.submit(_prepared(["c"], [5], lambda: "second"))
    release.set()
    prepared, output, context = calls.take()
    assert (prepared.sensor_ids, output, context) == (["a", "b"], "first output", "first")
    assert calls.take() is None and calls.window_end("a") is None

    def broken():
        raise RuntimeError("model failed")

    calls.submit(_prepared(["a"], [30], broken))
    with pytest.raises(RuntimeError, match="model failed"):
        calls.take()  # the call's error surfaces in the loop's thread
    calls.close()


def test_without_overlap_the_model_call_runs_when_submitted():
    from streamer.scoring import ModelThread

    calls, ran = ModelThread(overlap=False), []
    assert not calls.submit(_prepared(["a"], [10], lambda: ran.append(1) or "out"))
    assert ran == [1] and calls.done()
    assert calls.take()[1] == "out"


def test_a_batch_smaller_than_min_windows_is_called_in_the_loops_thread():
    import threading

    from streamer.scoring import ModelThread

    calls, threads = ModelThread(overlap=True, min_windows=3), []
    record = lambda: threads.append(threading.current_thread()) or "out"  # noqa: E731
    assert not calls.submit(_prepared(["a", "b"], [1, 2], record))
    assert threads == [threading.current_thread()] and calls.take()[1] == "out"
    assert calls.submit(_prepared(["a", "b", "c"], [1, 2, 3], record))
    assert calls.take()[1] == "out" and threads[-1] is not threading.current_thread()
    calls.close()
