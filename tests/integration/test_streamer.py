"""The streamer end to end against the real Kafka and Redis (docs/architecture.md)."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from confluent_kafka import TopicPartition

from streamer.app import Streamer
from vigil.kafka.groups import committed_offsets
from vigil.events import EventSchema
from vigil.events.frame import event_table
from vigil.alerts.backtest import scoring_points
from vigil.buffer import BufferLayout, Cadence
from vigil.features.dataset import build_windows
from vigil.kafka.clients import make_consumer, make_producer
from vigil.kafka.produce import produce_frame
from vigil.simulate import FleetSpec, generate_fleet

from vigil.model.explain import explain_scored, head_values
from tests.integration.streaming import (buffer_of, counter, isolated_settings, read_all, running, snapshot, stream_all,
                                         topics_of, values, wait_consumed, wait_for)

DAY = 86_400_000


def test_scores_equal_offline_scores_and_alerts_follow_them(settings, registry):
    cfg = isolated_settings(settings, model_dir=registry.root)
    fleet = generate_fleet(FleetSpec(sensors=60, days=11, alert_fraction=0.1, seed=202))
    with topics_of(cfg):
        produce_frame(make_producer(cfg), cfg.topics.events, fleet.events)
        with running(Streamer(cfg)) as streamer:
            wait_consumed(streamer, len(fleet.events))
        scores = values(read_all(cfg, cfg.topics.scores))
        alerts = values(read_all(cfg, cfg.topics.alerts))
        with buffer_of(cfg) as buffer:  # `vigil inspect` shows the latest score's explanation
            inspected = {s: buffer.inspect(s)["last_explanation"] for s in fleet.truth.sensor_id}

    # Offline: each sensor's window at its last scoring point (the cadence's: its open last span
    # waits for a later event), cut and scored as `vigil evaluate` does.
    model = registry.load()
    table = event_table(fleet.events, cfg.features, cfg.label_column)
    layout = BufferLayout.from_settings(cfg)
    points = scoring_points(Cadence.from_settings(cfg), cfg.window.min_events, layout.window_ms, layout.bin_ms)
    offline = build_windows(table, model.spec, model.stats, min_events=cfg.window.min_events,
                            points=lambda sensor, ts: points(sensor, ts)[-1:])
    scored = model.predict(offline.x, offline.head_stats)
    offline_scores = dict(zip(offline.sensor_id, scored.scores))
    offline_heads = dict(zip(offline.sensor_id, head_values(scored)))
    offline_why = dict(zip(offline.sensor_id, explain_scored(scored, offline.head_stats, model.spec, model.stats,
                                                             model.meta.features, offline.end_ms)))
    last_online = {}
    for record in scores:
        if record["window_end"] >= last_online.get(record["sensor_id"], {}).get("window_end", -1):
            last_online[record["sensor_id"]] = record
    assert set(last_online) == set(offline_scores)
    for sensor_id, end, n in zip(offline.sensor_id, offline.end_ms, offline.n_events):
        online = last_online[sensor_id]
        assert (online["window_end"], online["n_events"]) == (end, n)
        assert online["score"] == pytest.approx(offline_scores[sensor_id], rel=1e-5, abs=1e-7)
        assert online["model_version"] == model.version and online["threshold"] == model.threshold
        # Every head on the same scale online and offline; the score is the largest.
        assert online["heads"] == pytest.approx(offline_heads[sensor_id], rel=1e-4, abs=1e-4)
        assert online["score"] == pytest.approx(max(online["heads"].values()), abs=1e-3)
        # The explanation names the same head and says the same, feature for feature.
        why, expected = online["explanation"], offline_why[sensor_id]
        assert (why["head"], why["text"]) == (expected.head, expected.text)
        assert [f["feature"] for f in why["features"]] == [f.feature for f in expected.features]
        assert (why["span_start"], why["span_end"]) == (expected.span_start, expected.span_end)
        assert [f["share"] for f in why["features"]] == pytest.approx([f.share for f in expected.features], abs=1e-3)
        assert inspected[sensor_id] == why
    assert all(r["explanation"]["features"] for r in alerts)

    # Alerts follow the policy (tests/integration/test_alerts.py compares them with the backtest's):
    # each id once, and each cleared record clears an alert published before it.
    assert len({r["alert_id"] for r in alerts}) == len(alerts)
    opened = {r["alert_id"] for r in alerts if r["kind"] == "alert"}
    assert all(r["clears"] in opened for r in alerts if r["kind"] == "cleared")


def make_malformed(valid: dict) -> list[tuple[bytes, str]]:
    """100 invalid messages across every kind of mistake, with the reason each must get."""
    def js(**changes):
        data = {**valid, **changes}
        return json.dumps({k: v for k, v in data.items() if v is not ...}).encode()

    kinds = [
        (b"definitely not json", "not_json"),
        (b"\x00\x01\x02binary", "not_json"),
        (b'["a", "list"]', "not_object"),
        (js(sensor_id=...), "missing_field"),
        (js(timestamp=...), "missing_field"),
        (js(feature_2=...), "missing_field"),
        (js(feature_1=float("nan")), "not_finite"),
        (js(feature_1=1e39), "not_finite"),
        (js(timestamp=4_000_000_000_000), "future_timestamp"),
        (b"[" * 5000 + b"]" * 5000, "not_json"),
        (js(feature_1="12.5"), "not_numeric"),
        (js(feature_2=[1, 2]), "not_numeric"),
        (js(timestamp="the day after tomorrow"), "bad_timestamp"),
        (js(timestamp=1767225600), "bad_timestamp"),
        (js(sensor_id=""), "bad_sensor_id"),
        (js(**{"10_days_alert_label": 7}), "bad_label"),
        (js(padding="x" * 20_000), "oversized"),
        (b"", "empty"),
    ]
    return [kinds[i % len(kinds)] for i in range(100)]


def test_malformed_messages_go_to_the_dlq_with_reasons_while_valid_events_flow(settings):
    cfg = isolated_settings(settings, scoring=False)
    fleet = generate_fleet(FleetSpec(sensors=20, days=2, seed=303))
    schema = EventSchema(cfg.features, cfg.label_column)
    valid = [json.dumps(schema.to_record(schema.parse(r))).encode()
             for r in fleet.events.to_dict("records")]
    bad = make_malformed(json.loads(valid[0]))
    stride = len(valid) // len(bad)
    with topics_of(cfg):
        producer = make_producer(cfg)
        expected_reason = {}
        for i, value in enumerate(valid):
            producer.produce(cfg.topics.events, value, key=str(json.loads(value)["sensor_id"]).encode())
            if i % stride == 0 and i // stride < len(bad):
                raw, reason = bad[i // stride]
                producer.produce(cfg.topics.events, raw, key=f"bad-{i}".encode())
                expected_reason[raw] = reason
            producer.poll(0)
        assert producer.flush(30) == 0
        with running(Streamer(cfg)) as streamer:
            wait_consumed(streamer, len(valid) + len(bad))
        dead = read_all(cfg, cfg.topics.dlq)
        events = {(m.partition(), m.offset()): m.value() for m in read_all(cfg, cfg.topics.events)}

    assert counter(streamer, "vigil_buffer_writes_total", result="added") == len(valid)
    assert len(dead) == len(bad)
    reasons = {}
    for m in dead:
        headers = {k: v.decode() for k, v in m.headers()}
        source = (int(headers["vigil.source.partition"]), int(headers["vigil.source.offset"]))
        assert headers["vigil.source.topic"] == cfg.topics.events
        assert events[source] == m.value()  # the original bytes, traceable to their offset
        assert headers["vigil.reason"] == expected_reason.get(m.value(), "empty"), headers
        assert headers["vigil.detail"]
        reasons[headers["vigil.reason"]] = reasons.get(headers["vigil.reason"], 0) + 1
    assert len(reasons) >= 10
    for reason, n in reasons.items():
        assert counter(streamer, "vigil_events_dead_lettered_total", reason=reason) == n



def test_replaying_the_topic_from_offset_zero_leaves_every_buffer_unchanged(settings, redis_client):
    cfg = isolated_settings(settings, scoring=False)
    fleet = generate_fleet(FleetSpec(sensors=30, days=3, seed=404))
    with topics_of(cfg):
        first = stream_all(cfg, fleet.events)
        before = snapshot(redis_client, cfg.redis.key_prefix)
        replay = cfg.model_copy(update={"stream": cfg.stream.model_copy(update={"group_id": cfg.stream.group_id + "-replay"})})
        second = stream_all(replay)
        after = snapshot(redis_client, cfg.redis.key_prefix)
    assert counter(first, "vigil_buffer_writes_total", result="added") == len(fleet.events)
    assert counter(second, "vigil_buffer_writes_total", result="duplicate") == len(fleet.events)
    assert counter(second, "vigil_buffer_writes_total", result="added") == 0
    assert len(before) > 30 and after == before


def test_offsets_are_committed_after_the_batch_is_durable(settings, redis_client):
    cfg = isolated_settings(settings, scoring=False)
    fleet = generate_fleet(FleetSpec(sensors=10, days=2, seed=505))
    with topics_of(cfg):
        streamer = stream_all(cfg, fleet.events)
        applied = streamer.buffer.partition_offsets()  # after the drain on stop
        consumer = make_consumer(cfg, group_id=cfg.stream.group_id)
        committed = committed_offsets(consumer, [TopicPartition(cfg.topics.events, p) for p in range(6)], "test")
        consumer.close()
    assert {tp.partition: tp.offset - 1 for tp in committed if tp.offset >= 0} == applied
    assert sum(o + 1 for o in applied.values()) == len(fleet.events)


@contextmanager
def restored_pointer(registry):
    version = registry.current_version()
    try:
        yield
    finally:
        registry.promote(version)


def test_a_new_model_version_is_picked_up_without_a_restart(settings, registry):
    cfg = isolated_settings(settings, model_dir=registry.root)
    fleet = generate_fleet(FleetSpec(sensors=5, days=11, alert_fraction=0.0, seed=606))
    events = fleet.events.sort_values("timestamp")
    head, tail = events.iloc[: len(events) - 50], events.iloc[len(events) - 50 :]
    first_version = registry.current_version()
    with topics_of(cfg), restored_pointer(registry):
        with running(Streamer(cfg)) as streamer:
            produce_frame(make_producer(cfg), cfg.topics.events, head)
            wait_consumed(streamer, len(head))
            loaded = registry.load()
            new_version = registry.new_version()
            registry.save(loaded.model, loaded.meta.model_copy(update={"version": new_version}))
            registry.promote(new_version)
            wait_for(lambda: counter(streamer, "vigil_model_info", version=new_version) == 1, what="model swap")
            produce_frame(make_producer(cfg), cfg.topics.events, tail)
            wait_consumed(streamer, len(events))
        scores = values(read_all(cfg, cfg.topics.scores))
    versions = [r["model_version"] for r in sorted(scores, key=lambda r: r["scored_at"])]
    assert versions[0] == first_version and versions[-1] == new_version
    assert set(versions) == {first_version, new_version}
