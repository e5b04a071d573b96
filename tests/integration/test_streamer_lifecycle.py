"""Stopping and outages: SIGTERM drains and commits; Redis or Kafka going away loses nothing.

The outage tests run their own Kafka and Redis (own ports and data dir) so they can stop them
without disturbing the instance the rest of the suite uses.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import redis
from confluent_kafka import TopicPartition

from streamer.app import Streamer
from vigil.buffer import BufferLayout, RollingBuffer
from vigil.kafka.clients import make_consumer, make_producer
from vigil.kafka.events import produce_frame
from vigil.kafka.reading import end_offsets
from vigil.services.local import local_kafka, local_redis, services_down, services_up
from vigil.services.process import port_open
from vigil.simulate import FleetSpec, generate_fleet

from tests.integration.streaming import (counter, isolated_settings, running, stream_all, topics_of, wait_consumed,
                                         wait_for)

PRIVATE_KAFKA, PRIVATE_CONTROLLER, PRIVATE_REDIS = 29092, 29093, 26379


def env_of(cfg) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update(
        VIGIL_KAFKA__BOOTSTRAP_SERVERS=cfg.kafka.bootstrap_servers,
        VIGIL_REDIS__URL=cfg.redis.url.get_secret_value(),
        VIGIL_REDIS__KEY_PREFIX=cfg.redis.key_prefix,
        VIGIL_TOPICS__EVENTS=cfg.topics.events, VIGIL_TOPICS__SCORES=cfg.topics.scores,
        VIGIL_TOPICS__ALERTS=cfg.topics.alerts, VIGIL_TOPICS__DLQ=cfg.topics.dlq,
        VIGIL_STREAM__GROUP_ID=cfg.stream.group_id, VIGIL_STREAM__METRICS_PORT="0", VIGIL_LOG_FORMAT="json",
    )
    return env


def sigterm_when(argv, cfg, condition, what: str) -> tuple[int, str]:
    """Run ``argv`` with the test's settings, SIGTERM it once ``condition()`` holds; (exit code, output)."""
    proc = subprocess.Popen(argv, env=env_of(cfg), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(condition, what=what)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out


def committed(cfg) -> dict[int, int]:
    consumer = make_consumer(cfg, group_id=cfg.stream.group_id)
    tps = consumer.committed([TopicPartition(cfg.topics.events, p) for p in range(cfg.topics.events_partitions)], timeout=10)
    consumer.close()
    return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}


def buffered(cfg, sensor_ids) -> int:
    """Events actually readable from the sensors' buffers (not the meta hash's counter)."""
    client = redis.Redis.from_url(cfg.redis.url.get_secret_value())
    buffer = RollingBuffer(client, BufferLayout.from_settings(cfg), cfg.topics.events)
    states = buffer.states(list(sensor_ids))
    return sum(len(w.ts_ms) for w in buffer.read([s for s in states if s is not None]))


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


@pytest.fixture
def private_services(settings, tmp_path):
    for port in (PRIVATE_KAFKA, PRIVATE_CONTROLLER, PRIVATE_REDIS):
        if port_open("127.0.0.1", port):
            pytest.skip(f"port {port} is busy on this machine")
    private = settings.model_copy(update={
        "data_dir": tmp_path / "var",
        "kafka": settings.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{PRIVATE_KAFKA}"}),
        "services": settings.services.model_copy(update={"kafka_controller_port": PRIVATE_CONTROLLER}),
        "redis": settings.redis.model_copy(update={"url": f"redis://127.0.0.1:{PRIVATE_REDIS}/0"}),
    })
    private = private.model_validate(private.model_dump())  # re-validate the SecretStr URL
    try:
        services_up(private)
        yield private
    finally:
        services_down(private)


@pytest.mark.parametrize("outage", ["redis", "kafka"])
def test_an_outage_makes_the_streamer_wait_and_nothing_is_lost(private_services, outage):
    cfg = isolated_settings(private_services, scoring=False)
    fleet = generate_fleet(FleetSpec(sensors=40, days=2, seed=808))
    half = len(fleet.events) // 2
    service = (local_redis if outage == "redis" else local_kafka)(cfg)
    with topics_of(cfg):
        with running(Streamer(cfg)) as streamer:
            produce_frame(make_producer(cfg), cfg.topics.events, fleet.events.iloc[:half])
            wait_consumed(streamer, half)
            if outage == "redis":
                service.process.stop()
                produce_frame(make_producer(cfg), cfg.topics.events, fleet.events.iloc[half:])
                wait_for(lambda: counter(streamer, "vigil_retries_total", dependency="redis") > 0, what="retries")
                ok, reason = streamer.health.ready()
                assert not ok and "redis" in reason
                service.start(cfg.services.redis_ready_timeout_s)
            else:
                service.process.stop()
                wait_for(lambda: counter(streamer, "vigil_retries_total", dependency="kafka") > 0, what="retries")
                service.start(cfg.services.kafka_ready_timeout_s)
                produce_frame(make_producer(cfg), cfg.topics.events, fleet.events.iloc[half:])
            wait_consumed(streamer, len(fleet.events))
            wait_for(lambda: not streamer.uncommitted, what="the commit after recovery")
        assert counter(streamer, "vigil_buffer_writes_total", result="added") == len(fleet.events)
        assert buffered(cfg, fleet.events.sensor_id.unique()) == len(fleet.events)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_liveness_and_readiness_are_served(settings, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Scoring on, but the model registry is empty: alive, ingesting, and not ready.
    cfg = isolated_settings(settings, model_dir=tmp_path / "no-models", metrics_port=port)
    fleet = generate_fleet(FleetSpec(sensors=5, days=1, seed=909))
    base = f"http://127.0.0.1:{port}"
    with topics_of(cfg):
        produce_frame(make_producer(cfg), cfg.topics.events, fleet.events)
        with running(Streamer(cfg)) as streamer:
            wait_for(lambda: counter(streamer, "vigil_buffer_writes_total", result="added") == len(fleet.events),
                     what="every event applied")
            status, metrics = _get(base + "/metrics")
            assert status == 200
            assert f"vigil_events_consumed_total {float(len(fleet.events))}" in metrics
            assert f'vigil_buffer_writes_total{{result="added"}} {float(len(fleet.events))}' in metrics
            assert _get(base + "/healthz")[0] == 200
            status, why = _get(base + "/readyz")
            assert status == 503 and "no model loaded" in why
            assert _get(base + "/nowhere")[0] == 404


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


def test_two_replicas_share_the_partitions_and_a_leaving_one_hands_over_cleanly(settings):
    cfg = isolated_settings(settings, scoring=False)
    fleet = generate_fleet(FleetSpec(sensors=40, days=2, seed=1111))
    half = len(fleet.events) // 2
    with topics_of(cfg):
        with running(Streamer(cfg)) as a:
            with running(Streamer(cfg)) as b:
                wait_for(lambda: a._assigned and b._assigned and not (a._assigned & b._assigned),
                         what="the partitions to be split between both replicas")
                produce_frame(make_producer(cfg), cfg.topics.events, fleet.events.iloc[:half])
                wait_for(lambda: counter(a, "vigil_events_consumed_total") + counter(b, "vigil_events_consumed_total")
                         >= half, what="both replicas to consume the first half")
            # b left: it drained and committed on revocation; a takes every partition.
            wait_for(lambda: len(a._assigned) == cfg.topics.events_partitions, what="a to own every partition")
            produce_frame(make_producer(cfg), cfg.topics.events, fleet.events.iloc[half:])
            wait_for(lambda: counter(a, "vigil_events_consumed_total") + counter(b, "vigil_events_consumed_total")
                     >= len(fleet.events), what="the second half")
        added = counter(a, "vigil_buffer_writes_total", result="added") + counter(b, "vigil_buffer_writes_total", result="added")
        assert added == len(fleet.events)  # nothing re-applied after the hand-over, nothing missed
        assert buffered(cfg, fleet.events.sensor_id.unique()) == len(fleet.events)
        ends = {p: o for p, o in committed(cfg).items()}
        assert sum(ends.values()) == len(fleet.events)
