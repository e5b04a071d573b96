"""Stopping, restarting and rebalancing: SIGTERM drains and commits; nothing is lost or re-applied.

Outages of Kafka and Redis (stopped, restarted, paused while streaming) are in tests/faults/test_outages.py.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from streamer.app import Streamer
from vigil.kafka.clients import make_consumer, make_producer
from vigil.kafka.produce import produce_frame
from vigil.kafka.reading import end_offsets
from vigil.simulate import FleetSpec, generate_fleet

# env_of, committed and buffered live in streaming.py (tests/faults uses them too); other modules
# still import them from here.
from tests.integration.streaming import (READ_AHEAD, buffered, committed, counter, env_of, free_port, http_get,
                                         isolated_settings, running, stream_all, topics_of, wait_for)


def sigterm_when(argv, cfg, condition, what: str) -> tuple[int, str]:
    """Run ``argv`` with the test's settings, SIGTERM it once it serves /healthz (its signal handlers are
    installed by then) and ``condition()`` holds; (exit code, output)."""
    port = free_port()
    env = {**env_of(cfg), "VIGIL_STREAM__METRICS_PORT": str(port)}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Without this a condition already true at launch (the first run applied everything) would
        # signal a process still importing, which dies of the signal instead of draining.
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200, what="the streamer to start")
        wait_for(condition, what=what)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out


def test_sigterm_drains_commits_exits_0_and_a_restart_resumes_without_loss(settings, redis_client):
    cfg = isolated_settings(settings, scoring=False)
    fleet = generate_fleet(FleetSpec(sensors=50, days=3, seed=707))
    argv = [sys.executable, "-m", "vigil.cli.main", "stream", "--no-score"]
    with topics_of(cfg):
        produce_frame(make_producer(cfg), cfg.topics.events, fleet.events)
        offsets_key = f"{cfg.redis.key_prefix}:offsets:{cfg.topics.events}"
        code, out = sigterm_when(argv, cfg, lambda: redis_client.exists(offsets_key), "the first applied batch")
        assert code == 0, out
        assert "draining" in out
        applied = {int(p): int(o) for p, o in redis_client.hgetall(offsets_key).items()}
        # Everything consumed before the signal was made durable and committed: no gap, no excess.
        assert {p: o - 1 for p, o in committed(cfg).items()} == applied

        consumer = make_consumer(cfg, group_id="probe")
        ends = {p: o for p, o in end_offsets(consumer, cfg.topics.events).items() if o > 0}
        consumer.close()
        code, out = sigterm_when(argv, cfg, lambda: committed(cfg) == ends, "the restart to catch up")
        assert code == 0, out
        assert buffered(cfg, fleet.events.sensor_id.unique()) == len(fleet.events)


def test_metrics_liveness_and_readiness_are_served(settings, tmp_path):
    port = free_port()
    # Scoring on, but the model registry is empty: alive, ingesting, and not ready.
    cfg = isolated_settings(settings, model_dir=tmp_path / "no-models", metrics_port=port)
    fleet = generate_fleet(FleetSpec(sensors=5, days=1, seed=909))
    base = f"http://127.0.0.1:{port}"
    with topics_of(cfg):
        produce_frame(make_producer(cfg), cfg.topics.events, fleet.events)
        with running(Streamer(cfg)) as streamer:
            wait_for(lambda: counter(streamer, "vigil_buffer_writes_total", result="added") == len(fleet.events),
                     what="every event applied")
            status, metrics = http_get(base + "/metrics")
            assert status == 200
            assert f"vigil_events_consumed_total {float(len(fleet.events))}" in metrics
            assert f'vigil_buffer_writes_total{{result="added"}} {float(len(fleet.events))}' in metrics
            assert http_get(base + "/healthz")[0] == 200
            status, why = http_get(base + "/readyz")
            assert status == 503 and "no model loaded" in why
            assert http_get(base + "/nowhere")[0] == 404


def test_buffers_lost_by_redis_are_rebuilt_from_kafka_on_assignment(settings, redis_client):
    cfg = isolated_settings(settings, scoring=False)
    fleet = generate_fleet(FleetSpec(sensors=20, days=2, seed=1010))
    with topics_of(cfg):
        stream_all(cfg, fleet.events)
        # Redis loses its data after the offsets were committed (e.g. restored from an old copy).
        for key in list(redis_client.scan_iter(f"{cfg.redis.key_prefix}:*")):
            redis_client.delete(key)
        assert buffered(cfg, fleet.events.sensor_id.unique()) == 0
        stream_all(cfg)  # same group: its committed offsets are at the end already
        assert buffered(cfg, fleet.events.sensor_id.unique()) == len(fleet.events)


# read_ahead: rebalance callbacks then fire in the reading thread, while an apply may be in flight.
@pytest.mark.parametrize("read_ahead", [False, True], ids=["default", "read-ahead"])
def test_two_replicas_share_the_partitions_and_a_leaving_one_hands_over_cleanly(settings, read_ahead):
    cfg = isolated_settings(settings, scoring=False, **READ_AHEAD[read_ahead])
    fleet = generate_fleet(FleetSpec(sensors=40, days=2, seed=1111))
    half = len(fleet.events) // 2
    with topics_of(cfg):
        with running(Streamer(cfg)) as a:
            with running(Streamer(cfg)) as b:
                wait_for(lambda: a.status().assigned and b.status().assigned and not (a.status().assigned & b.status().assigned),
                         what="the partitions to be split between both replicas")
                produce_frame(make_producer(cfg), cfg.topics.events, fleet.events.iloc[:half])
                wait_for(lambda: counter(a, "vigil_events_consumed_total") + counter(b, "vigil_events_consumed_total")
                         >= half, what="both replicas to consume the first half")
            # b left: it drained and committed on revocation; a takes every partition.
            wait_for(lambda: len(a.status().assigned) == cfg.topics.events_partitions, what="a to own every partition")
            produce_frame(make_producer(cfg), cfg.topics.events, fleet.events.iloc[half:])
            wait_for(lambda: counter(a, "vigil_events_consumed_total") + counter(b, "vigil_events_consumed_total")
                     >= len(fleet.events), what="the second half")
        added = counter(a, "vigil_buffer_writes_total", result="added") + counter(b, "vigil_buffer_writes_total", result="added")
        assert added == len(fleet.events)  # nothing re-applied after the hand-over, nothing missed
        assert buffered(cfg, fleet.events.sensor_id.unique()) == len(fleet.events)
        ends = {p: o for p, o in committed(cfg).items()}
        assert sum(ends.values()) == len(fleet.events)
