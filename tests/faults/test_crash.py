"""kill -9 mid-stream, several times: no event lost or applied twice, no alert published twice.

The streamer runs as a real process (``vigil stream``) against the suite's Kafka and Redis; it is
killed at random points of a stream of a synthetic fleet with alerting sensors and restarted each
time. Afterwards every buffer equals the reference computed from the produced events, and
``sensor-alerts`` holds each alert_id once. In exactly-once mode, a read_committed consumer also
sees every score record once.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from streamer.app import Streamer
from streamer.journal import AlertJournal, PendingAlert
from vigil.alerts import AlertState
from vigil.buffer import BufferLayout
from vigil.settings import AlertSettings
from vigil.kafka.clients import make_producer
from vigil.kafka.produce import produce_frame
from vigil.simulate import FleetSpec, generate_fleet

from tests.faults.reference import buffer_mismatches
from tests.integration.streaming import (alerting_copy, end_offsets_of, isolated_settings, read_all, running, topics_of, values,
                                         wait_for)
from tests.integration.test_streamer_lifecycle import committed, env_of

KILLS = 3
LEAD, CHUNK = 3000, 1000


def produce_paced(cfg, frame, applied_now) -> None:
    producer = make_producer(cfg)
    for start in range(0, len(frame), CHUNK):
        wait_for(lambda: applied_now() >= start - LEAD, timeout_s=300, what="the streamer to catch up")
        produce_frame(producer, cfg.topics.events, frame.iloc[start:start + CHUNK])


def applied(client: redis.Redis, cfg) -> int:
    """Events the buffer has applied so far (sum over partitions of the last applied offset + 1)."""
    raw = client.hgetall(BufferLayout.from_settings(cfg).offsets_key(cfg.topics.events))
    return sum(int(v) + 1 for v in raw.values())


def streamer_process(cfg, model_dir, log: Path) -> subprocess.Popen:
    env = env_of(cfg)
    env.update(VIGIL_STREAM__DELIVERY=cfg.stream.delivery, VIGIL_STREAM__INSTANCE_ID=cfg.stream.instance_id,
               VIGIL_STREAM__POLL_EVENTS=str(cfg.stream.poll_events), VIGIL_MODEL_DIR=str(model_dir))
    for key, value in cfg.alerts.model_dump(mode="json").items():
        env[f"VIGIL_ALERTS__{key.upper()}"] = str(value)
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "vigil.cli.main", "stream"], env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def tail(log: Path) -> str:
    """The streamer's structured log lines (not TensorFlow's), last 6000 characters."""
    return "\n".join(line for line in log.read_text(errors="replace").splitlines()
                     if '"event"' in line)[-6000:]


@pytest.mark.slow
@pytest.mark.parametrize("delivery", ["at-least-once", "exactly-once"])
def test_kill_9_mid_stream_loses_nothing_and_publishes_no_alert_twice(settings, registry, redis_client, delivery,
                                                                      tmp_path):
    rng = random.Random(4242)
    # Small consume calls: many cycles, so the kills land between the steps of one.
    cfg = isolated_settings(settings, delivery=delivery, poll_events=400, instance_id=f"crash-{uuid.uuid4().hex[:6]}")
    # A policy that alerts and clears often, however the backlog coalesces the scoring points:
    # the kills must land among alert state changes.
    cfg = cfg.model_copy(update={"alerts": AlertSettings(**{
        **cfg.alerts.model_dump(), "warmup_fraction": 0.5, "for_points": 1, "for_duration": timedelta(0),
        "clear_for": timedelta(0)})})
    fleet = generate_fleet(FleetSpec(sensors=40, days=11, alert_fraction=0.15, seed=5151))
    models = alerting_copy(registry, tmp_path / "models", fleet.events, cfg)  # alerts and clears to crash on
    cfg = cfg.model_copy(update={"model_dir": models.root})
    total = len(fleet.events)
    log = tmp_path / "streamer.log"
    targets = sorted(rng.uniform(0.1, 0.9) * total for _ in range(KILLS))
    with topics_of(cfg):
        # Production stays at most LEAD events ahead of the buffer, so every kill lands mid-stream
        # with a backlog to work on, whatever this machine's speed.
        producing = threading.Thread(target=produce_paced, daemon=True,
                                     args=(cfg, fleet.events, lambda: applied(redis_client, cfg)))
        producing.start()
        for target in targets:
            proc = streamer_process(cfg, models.root, log)
            try:
                wait_for(lambda: applied(redis_client, cfg) >= target or proc.poll() is not None,
                         what=f"{target:.0f} events applied")
                assert proc.poll() is None, f"the streamer exited before it was killed:\n{tail(log)}"
                time.sleep(rng.uniform(0, 0.3))  # anywhere in the cycle, not just after an apply
                proc.send_signal(signal.SIGKILL)
                assert proc.wait(30) == -signal.SIGKILL
            finally:
                if proc.poll() is None:
                    proc.kill()
        assert applied(redis_client, cfg) < total, "the last kill came after the end of the stream"
        proc = streamer_process(cfg, models.root, log)
        try:
            producing.join(300)
            ends = {p: o for p, o in end_offsets_of(cfg).items() if o > 0}
            assert sum(ends.values()) == total
            wait_for(lambda: committed(cfg) == ends, what="the last restart to catch up")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(120) == 0, tail(log)
        finally:
            if proc.poll() is None:
                proc.kill()

        assert buffer_mismatches(cfg, fleet.events) == {}, tail(log)
        alerts = values(read_all(cfg, cfg.topics.alerts))  # librdkafka reads read_committed by default
        assert alerts, "no alert at all: the check below would prove nothing"
        assert [a for a, n in Counter(a["alert_id"] for a in alerts).items() if n > 1] == [], tail(log)
        # The alert state in each sensor's meta is that of its latest published record.
        layout = BufferLayout.from_settings(cfg)
        latest = {a["sensor_id"]: a for a in sorted(alerts, key=lambda a: a["window_end"])}
        for sensor, record in latest.items():
            state = AlertState.from_meta({k.decode(): v.decode() for k, v in
                                          redis_client.hgetall(layout.meta_key(sensor)).items()})
            assert state.alert_id == (record["alert_id"] if record["kind"] == "alert" else ""), sensor
        if delivery == "exactly-once":
            scores = values(read_all(cfg, cfg.topics.scores))
            keys = Counter((s["sensor_id"], s["window_end"], s["n_events"]) for s in scores)
            assert [k for k, n in keys.items() if n > 1] == []


def test_a_dead_owners_alert_journal_is_settled_against_the_alerts_topic(settings, redis_client):
    """An alert the dead owner delivered gets its state recorded; one it never sent is forgotten."""
    cfg = isolated_settings(settings, scoring=False)
    layout = BufferLayout.from_settings(cfg)
    journal = AlertJournal(redis_client, layout, cfg.topics.events)
    now = int(time.time() * 1000)

    def pending(sensor: str, end: int = 1767225600000, kind: str = "alert") -> PendingAlert:
        alert_id = f"{kind}-{sensor}"
        return PendingAlert(alert_id, sensor, now, {"alert_id": alert_id if kind == "alert" else "",
                                                     "alert_end": str(end)})

    with topics_of(cfg):
        # "cleared" raised and cleared in one cycle; "half" the same, but only its alert got out.
        journal.record({0: [pending("delivered"), pending("never-sent"), pending("cleared"),
                            pending("cleared", end=1767229200000, kind="cleared"), pending("half"),
                            pending("half", end=1767229200000, kind="cleared")],
                        2: [pending("delivered-2")]})
        producer = make_producer(cfg)
        for alert_id in ("alert-delivered", "alert-delivered-2", "alert-cleared", "cleared-cleared", "alert-half"):
            producer.produce(cfg.topics.alerts, key=b"k", value=json.dumps({"alert_id": alert_id}).encode())
        producer.produce(cfg.topics.alerts, value=b"not json: someone else's record")
        assert producer.flush(30) == 0
        with running(Streamer(cfg)) as streamer:
            wait_for(lambda: len(streamer.status().assigned) == cfg.topics.events_partitions, what="the assignment")
        assert journal.pending(list(range(cfg.topics.events_partitions))) == {}
        sensors = ("delivered", "delivered-2", "never-sent", "cleared", "half")
        meta = {s: redis_client.hgetall(layout.meta_key(s)) for s in sensors}
        assert meta["delivered"] == {b"alert_id": b"alert-delivered", b"alert_end": b"1767225600000"}
        assert meta["delivered-2"][b"alert_id"] == b"alert-delivered-2"
        assert meta["never-sent"] == {}
        assert meta["cleared"] == {b"alert_id": b"", b"alert_end": b"1767229200000"}
        assert meta["half"] == {b"alert_id": b"alert-half", b"alert_end": b"1767225600000"}
