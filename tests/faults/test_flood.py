"""A flood of new sensor ids: 100 000 events, nearly every one from a sensor never seen before.

Nothing the streamer keeps may grow with the number of sensors it has seen: after the batch its
in-memory per-sensor state is empty, every key a sensor has in Redis expires on its own (a TTL no
longer than the layout's), the Python memory the streamer's code still holds does not grow per
sensor, and the process's RSS grows by its Kafka buffers only.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import redis

from streamer.app import Streamer
from vigil.buffer import BufferLayout
from vigil.kafka.produce import frame_values

from tests.faults.reference import buffer_mismatches
from tests.integration.streaming import committed, counter, env_of, isolated_settings, running, topics_of, wait_for

SINGLE_EVENT_SENSORS = 99_000
SCORED_SENSORS, EVENTS_EACH = 100, 10  # enough events (window.min_events) to be scored once
# Python memory the streamer's code may still hold after the flood, per flood sensor: a dict entry
# with its key alone takes ~100 bytes, so any per-sensor leftover shows.
RETAINED_BYTES_PER_SENSOR = 8
# RSS: librdkafka may prefetch the whole flood (100 000 messages, not over queued.min.messages), each
# message its payload plus its op and message structs (measured ~370 B; 512 allowed, as in
# test_outages.py); the slack covers one consume call of 5000 events (~10 MiB of Python objects),
# tracemalloc's own traces and what the allocator keeps of what was freed. The decoded events of
# several calls wait together (stream.apply_events), but a flood of new ids, one event each, is
# applied once stream.apply_events / EVENTS_PER_SENSOR sensors wait (6,250 at the defaults): at
# most two calls' events, about 500 bytes each (estimated).
LIBRDKAFKA_BYTES_PER_MESSAGE = 512
RSS_SLACK = 64 * 2**20


@pytest.fixture(scope="module")
def tiny_registry(settings, tmp_path_factory):
    """A small model trained in seconds: any model will do to drive the scoring path."""
    from trainer.fit import fit_and_register
    from vigil.events.frame import event_table
    from vigil.features import WindowSpec
    from vigil.model.config import TrainConfig
    from vigil.registry import ModelRegistry
    from vigil.simulate import FleetSpec, generate_fleet

    registry = ModelRegistry(tmp_path_factory.mktemp("tiny-models"))
    fleet = generate_fleet(FleetSpec(sensors=20, days=11, seed=31))
    table = event_table(fleet.events, settings.features, settings.label_column)
    spec = WindowSpec(int(settings.window.length.total_seconds() * 1000), settings.window.steps, len(settings.features))
    fit_and_register(table, spec, TrainConfig(latent_dim=8, bottleneck=4, epochs=1, dense_epochs=2), registry,
                     every=1000, min_events=settings.window.min_events)
    return registry


def flood_frame(settings, run: str, now_ms: int, singles: int = SINGLE_EVENT_SENSORS,
                scored: int = SCORED_SENSORS) -> pd.DataFrame:
    """``singles`` sensors with one event each and ``scored`` with ten, all new, over the last hour,
    in time order (99 000 and 100 by default: 100 000 events)."""
    rng = np.random.default_rng(2024)
    ids = ([f"flood-{run}-{i:06d}" for i in range(singles)]
           + [f"flood-{run}-scored-{i:03d}" for i in range(scored) for _ in range(EVENTS_EACH)])
    frame = pd.DataFrame({
        "sensor_id": ids,
        "timestamp": now_ms - rng.integers(0, 3_600_000, len(ids)),
        **{f: rng.normal(0, 1, len(ids)) for f in settings.features},
        settings.label_column: 0,
    })
    return frame.sort_values("timestamp", kind="stable").reset_index(drop=True)


def produce_elsewhere(cfg, frame: pd.DataFrame, path: Path) -> None:
    """Produce ``frame`` from another process, so the producer's buffers do not count in our RSS."""
    frame.to_parquet(path)
    script = ("import sys, pandas as pd; from vigil.settings import VigilSettings; "
              "from vigil.kafka.clients import make_producer; from vigil.kafka.produce import produce_frame; "
              "s = VigilSettings(); produce_frame(make_producer(s), s.topics.events, pd.read_parquet(sys.argv[1]))")
    subprocess.run([sys.executable, "-c", script, str(path)], env=env_of(cfg), check=True, timeout=300)


def settled(cfg, streamer, n: int) -> None:
    """Wait until ``n`` events are applied and committed, and the loop has begun a new cycle since:
    the batch's objects are released (the last consume call's messages live until its cycle ends)."""
    applied = lambda: counter(streamer, "vigil_buffer_writes_total", result="added") >= n  # noqa: E731
    wait_for(lambda: applied() and sum(committed(cfg).values()) >= n and not streamer.status().pending_offsets,
             what=f"{n} events applied and committed")
    seen = time.monotonic()
    wait_for(lambda: streamer.health.heartbeat > seen, what="the next cycle")


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def held_by_vigil_code(snapshot: tracemalloc.Snapshot) -> int:
    """Bytes still allocated by the streamer's and the library's code (not the test's or pandas')."""
    root = str(Path(__file__).resolve().parents[2])
    keep = [tracemalloc.Filter(True, f"{root}/streamer/*"), tracemalloc.Filter(True, f"{root}/vigil/*")]
    return sum(stat.size for stat in snapshot.filter_traces(keep).statistics("filename"))


@pytest.mark.slow
def test_a_flood_of_new_sensor_ids_leaves_no_state_behind_and_every_key_expires(settings, tiny_registry, tmp_path):
    # Scoring on, at every new event: the path that keeps ready sensors in memory (scoring points
    # keep nothing per sensor in the process), and ten events a sensor are enough to be scored.
    cfg = isolated_settings(settings, model_dir=tiny_registry.root, score_every="0")
    layout = BufferLayout.from_settings(cfg)
    now_ms = int(time.time() * 1000)
    run = uuid.uuid4().hex[:6]
    warm = flood_frame(settings, f"warm-{run}", now_ms, singles=1_000, scored=20)
    frame = flood_frame(settings, run, now_ms)
    n_sensors = frame.sensor_id.nunique()
    msg_bytes = sum(len(v) for v in frame_values(frame)) / len(frame)
    with topics_of(cfg):
        with running(Streamer(cfg, tiny_registry)) as streamer:
            # Warm up: the model is loaded and compiled, a first batch scored, before measuring.
            produce_elsewhere(cfg, warm, tmp_path / "warm.parquet")
            settled(cfg, streamer, len(warm))
            gc.collect()
            rss_before = rss_bytes()
            tracemalloc.start()
            held_before = held_by_vigil_code(tracemalloc.take_snapshot())

            produce_elsewhere(cfg, frame, tmp_path / "flood.parquet")
            settled(cfg, streamer, len(warm) + len(frame))
            gc.collect()
            held_after = held_by_vigil_code(tracemalloc.take_snapshot())
            tracemalloc.stop()
            rss_after = rss_bytes()

            # In-memory state of the streamer: nothing per sensor is left once the batch is committed.
            status = streamer.status()
            assert status.pending_offsets == {}
            assert status.ready == 0
            assert status.unsaved_scores == 0
        assert counter(streamer, "vigil_buffer_writes_total", result="added") == len(warm) + len(frame)
        assert counter(streamer, "vigil_scores_published_total") >= SCORED_SENSORS

    retained = held_after - held_before
    rss_growth = rss_after - rss_before
    rss_bound = len(frame) * (msg_bytes + LIBRDKAFKA_BYTES_PER_MESSAGE) + RSS_SLACK
    print(f"{n_sensors} new sensors: Python memory held by streamer/ and vigil/ code {retained / 2**10:+.0f} KiB; "
          f"RSS {rss_before / 2**20:.0f} MiB → {rss_after / 2**20:.0f} MiB ({rss_growth / 2**20:+.1f} MiB, "
          f"bound {rss_bound / 2**20:.0f} MiB)")
    assert retained < n_sensors * RETAINED_BYTES_PER_SENSOR
    assert rss_growth < rss_bound

    # Redis: every key of every sensor expires by itself, within the layout's TTL.
    client = redis.Redis.from_url(cfg.redis.url.get_secret_value())
    try:
        sensor_keys, other_keys = [], []
        for key in client.scan_iter(f"{cfg.redis.key_prefix}:*", count=10_000):
            (sensor_keys if key.startswith(f"{cfg.redis.key_prefix}:{{s:".encode()) else other_keys).append(key)
        pipe = client.pipeline(transaction=False)
        for key in sensor_keys:
            pipe.pttl(key)
        ttls = dict(zip(sensor_keys, pipe.execute()))
    finally:
        client.close()
    metas = [k for k in sensor_keys if k.endswith(b":meta")]
    assert len(metas) == n_sensors + warm.sensor_id.nunique()
    lasting = {k: t for k, t in ttls.items() if not 0 < t <= layout.ttl_ms}
    assert not lasting, f"{len(lasting)} sensor keys without a TTL in (0, {layout.ttl_ms}] ms, e.g. {list(lasting.items())[:5]}"
    # What is not per sensor is per topic or partition (applied offsets, alert journal): a handful.
    assert len(other_keys) <= 1 + cfg.topics.events_partitions, other_keys

    assert buffer_mismatches(cfg, frame) == {}
