"""Helpers for the streamer's integration tests: isolated settings, a streamer in a thread, reads."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from datetime import timedelta

import redis
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from vigil.buffer import BufferLayout, RollingBuffer
from vigil.kafka.groups import committed_offsets
from vigil.kafka.clients import make_consumer
from vigil.kafka.reading import end_offsets, read_from
from vigil.settings import VigilSettings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(url: str) -> tuple[int, str]:
    """(status, body) of a GET; (0, reason) while nothing listens yet."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return 0, str(exc)


# The stream options of a test's read-ahead variant: consume calls small enough that a test's
# fleet keeps the consumer behind (full calls) for most of the run, so the reading thread runs.
READ_AHEAD = {False: {}, True: {"read_ahead": True, "poll_events": 200}}


def isolated_settings(settings: VigilSettings, model_dir=None, **stream) -> VigilSettings:
    """Own topics, Redis key prefix and consumer group, so tests never see each other's data."""
    run = uuid.uuid4().hex[:8]
    topics = settings.topics.model_copy(update={
        "events": f"it-ev-{run}", "scores": f"it-sc-{run}", "alerts": f"it-al-{run}", "dlq": f"it-dlq-{run}",
    })
    options = {"group_id": f"it-{run}", "metrics_port": 0, "max_wait": timedelta(milliseconds=100),
               "model_poll": timedelta(milliseconds=200), **stream}
    return settings.model_copy(update={
        "topics": topics,
        "redis": settings.redis.model_copy(update={"key_prefix": f"it-{run}"}),
        "stream": settings.stream.model_copy(update=options),
        "model_dir": model_dir,
    })


@contextmanager
def topics_of(settings: VigilSettings):
    wanted = settings.topics.partitions()
    admin = AdminClient(settings.kafka.client_config())
    for future in admin.create_topics([NewTopic(t, n, 1) for t, n in wanted.items()]).values():
        future.result()
    try:
        yield
    finally:
        # A new client: the block may have restarted the broker, and the first client's connection
        # can still sit in reconnect backoff, so asking it for the controller timed out in CI.
        admin = AdminClient(settings.kafka.client_config())
        for future in admin.delete_topics(list(wanted), request_timeout=60).values():
            future.result()


@contextmanager
def running(streamer):
    """The streamer's loop in a thread; stopping it must drain and return 0."""
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(streamer.run()), daemon=True)
    thread.start()
    try:
        yield streamer
    finally:
        streamer.stop()
        thread.join(120)
    assert codes == [0], f"streamer exited with {codes}"


def stream_all(cfg: VigilSettings, frame=None):
    """Produce ``frame`` (if given), stream until every message is consumed, stop; the streamer."""
    from streamer.app import Streamer
    from vigil.kafka.clients import make_producer
    from vigil.kafka.produce import produce_frame

    if frame is not None:
        produce_frame(make_producer(cfg), cfg.topics.events, frame)
    expected = sum(end_offsets_of(cfg).values())
    with running(Streamer(cfg)) as streamer:
        wait_consumed(streamer, expected)
    return streamer


def end_offsets_of(cfg: VigilSettings) -> dict[int, int]:
    consumer = make_consumer(cfg, group_id=f"it-probe-{uuid.uuid4().hex[:8]}")
    try:
        return end_offsets(consumer, cfg.topics.events)
    finally:
        consumer.close()


def counter(streamer, name: str, **labels) -> float:
    return streamer.metrics.registry.get_sample_value(name, labels) or 0.0


def wait_for(predicate, timeout_s: float = 180.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def wait_consumed(streamer, n: int) -> None:
    wait_for(lambda: counter(streamer, "vigil_events_consumed_total") >= n, what=f"{n} events consumed")


def read_all(settings: VigilSettings, topic: str, timeout_s: float = 10.0) -> list:
    """Every record currently in ``topic`` (all partitions, from the beginning)."""
    consumer = make_consumer(settings, group_id=f"it-read-{uuid.uuid4().hex[:8]}")
    ends = end_offsets(consumer, topic)
    out = list(read_from(consumer, topic, dict.fromkeys(ends, 0), expected=sum(ends.values()), timeout_s=timeout_s))
    consumer.close()
    return out


def values(messages) -> list[dict]:
    return [json.loads(m.value()) for m in messages]


def snapshot(client, prefix: str) -> dict:
    """Every key under ``prefix`` with its serialized value (``DUMP``): equal snapshots, equal data."""
    return {k: client.dump(k) for k in sorted(client.scan_iter(f"{prefix}:*"))}


def env_of(cfg: VigilSettings) -> dict[str, str]:
    """The environment that gives a ``vigil`` subprocess the test's settings."""
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


def committed(cfg: VigilSettings) -> dict[int, int]:
    """The consumer group's committed offset per partition of the events topic (where there is one)."""
    consumer = make_consumer(cfg, group_id=cfg.stream.group_id)
    try:
        tps = committed_offsets(consumer, [TopicPartition(cfg.topics.events, p)
                                           for p in range(cfg.topics.events_partitions)], "test: committed offsets")
    finally:
        consumer.close()
    return {tp.partition: tp.offset for tp in tps if tp.offset >= 0}


@contextmanager
def buffer_of(cfg: VigilSettings):
    """A RollingBuffer on the test's Redis prefix (closed afterwards)."""
    client = redis.Redis.from_url(cfg.redis.url.get_secret_value())
    try:
        yield RollingBuffer(client, BufferLayout.from_settings(cfg), cfg.topics.events)
    finally:
        client.close()


def buffered(cfg: VigilSettings, sensor_ids) -> int:
    """Events actually readable from the sensors' buffers (not the meta hash's counter)."""
    with buffer_of(cfg) as buffer:
        states = buffer.state_many(list(sensor_ids))
        return sum(w.n_events for w in buffer.read_many([s for s in states if s is not None]))


def alerting_copy(registry, root, events, cfg):
    """The session's model under a threshold a small fleet crosses several times, up and down (its
    warm scores' median: the anomalous sensors stay above the 90th percentile, so only the normal
    ones' fluctuations clear alerts), in a registry of its own at ``root``."""
    import numpy as np

    from vigil.alerts.backtest import backtest
    from vigil.events.frame import event_table
    from vigil.registry import ModelRegistry

    loaded = registry.load()
    table = event_table(events, cfg.features, cfg.label_column)
    warm = backtest(loaded, table, cfg).points.query("not warming_up")
    copy = ModelRegistry(root)
    meta = loaded.meta.model_copy(update={"threshold": {"value": float(np.quantile(warm.score, 0.5)),
                                                        "method": "quantile", "detail": {}}})
    copy.save(loaded.model, meta)
    copy.promote(meta.version)
    return copy
