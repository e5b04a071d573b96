"""The buffer on a real Redis Cluster: three redis-server primaries on 127.0.0.1.

A fleet streams through it (ingest, scoring, alerts); every buffer then equals the reference
computed from the produced events, each sensor's keys sit in one slot, the sensors spread over
every node (so batches really were split by slot), and the trainer's sample scans all nodes.
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest
from pydantic import SecretStr
from redis.cluster import RedisCluster, key_slot

from trainer.sample import sample_buffers
from vigil.buffer import BufferLayout, RollingBuffer
from vigil.redis_client import connect
from vigil.services.process import port_open
from vigil.services.redis_cluster import LocalRedisCluster
from vigil.simulate import FleetSpec, generate_fleet

from tests.conftest import own_services
from tests.faults.reference import buffer_mismatches
from tests.integration.streaming import isolated_settings, read_all, stream_all, topics_of, values

PORTS, BUS_BASE = [27001, 27002, 27003], 28001


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory):
    own_services()
    busy = [p for p in PORTS + [BUS_BASE + i for i in range(len(PORTS))] if port_open("127.0.0.1", p)]
    if busy:
        pytest.skip(f"ports {busy} are busy on this machine")
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster"), "127.0.0.1", PORTS, BUS_BASE)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def test_a_fleet_streams_through_a_redis_cluster(settings, registry, redis_cluster):
    base = isolated_settings(settings, model_dir=registry.root)
    cfg = base.model_copy(update={"redis": base.redis.model_copy(
        update={"url": SecretStr(redis_cluster.url), "cluster": True})})
    fleet = generate_fleet(FleetSpec(sensors=30, days=11, alert_fraction=0.1, seed=2727))
    with topics_of(cfg):
        stream_all(cfg, fleet.events)
        scores = values(read_all(cfg, cfg.topics.scores))

    assert buffer_mismatches(cfg, fleet.events) == {}
    assert {s["sensor_id"] for s in scores} == set(fleet.events.sensor_id)

    client = connect(cfg)
    assert isinstance(client, RedisCluster)
    slots, nodes = defaultdict(set), set()
    for key in client.scan_iter(match=f"{cfg.redis.key_prefix}:{{s:*"):
        sensor = re.search(rb"\{s:([^}]*)\}", key).group(1).decode()
        slots[sensor].add(key_slot(key))
        nodes.add(client.get_node_from_key(key).name)
    assert set(slots) == set(fleet.events.sensor_id)
    assert all(len(s) == 1 for s in slots.values()), "a sensor's keys are spread over slots"
    assert len(nodes) == len(PORTS), "every node holds sensors: the batches were split by slot"

    buffer = RollingBuffer(client, BufferLayout.from_settings(cfg), cfg.topics.events)
    sample = sample_buffers(buffer, tuple(cfg.features), cfg.label_column, max_sensors=100,
                            exclude_labelled=False, exclude_alerted=False)
    assert sample.scanned == fleet.events.sensor_id.nunique()
    assert buffer.inspect(fleet.events.sensor_id.iloc[0])["memory_bytes"] > 0
