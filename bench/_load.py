"""The latency benchmark's load generator, run in a process of its own (spawned) so that producing
live events does not compete with the streamer for the interpreter lock. Light imports only."""

from __future__ import annotations

import multiprocessing as mp
import time

import numpy as np
import orjson
from confluent_kafka import Producer


class Load:
    """Produces ``rate`` events/s for ``warmup + seconds``, round-robin over the sensors, each
    stamped with the load's event clock at produce time: ``event_start_ms`` at the start, running
    ``speed`` times as fast as the wall clock (1: the wall-clock ms). Progress is shared through
    ``mp.Value``s."""

    def __init__(self, kafka_config: dict, topic: str, sensors: int, rate: float, warmup: float,
                 seconds: float, seed: int, speed: float = 1.0, event_start_ms: float | None = None):
        self.kafka_config, self.topic = dict(kafka_config), topic
        self.sensors, self.rate, self.warmup, self.seconds = sensors, rate, warmup, warmup + seconds
        self.seed = seed
        ctx = mp.get_context("spawn")
        self._produced, self._warm, self._failures = ctx.Value("q", 0), ctx.Value("q", 0), ctx.Value("q", 0)
        self._start_ms, self._end_ms = ctx.Value("d", 0.0), ctx.Value("d", 0.0)
        self._wall0_ms = ctx.Value("d", 0.0)
        self.speed, self.event_start_ms = speed, event_start_ms
        shared = (self._produced, self._warm, self._failures, self._start_ms, self._end_ms, self._wall0_ms)
        self.process = ctx.Process(target=_produce, name="load", daemon=True, args=(
            self.kafka_config, topic, sensors, rate, warmup, warmup + seconds, seed, speed, event_start_ms, shared))

    produced = property(lambda self: self._produced.value)
    warm_count = property(lambda self: self._warm.value)
    failures = property(lambda self: self._failures.value)
    start_ms = property(lambda self: self._start_ms.value)  # the measured interval, wall clock
    end_ms = property(lambda self: self._end_ms.value)

    def wall_ms(self, event_ms):
        """When the load's event clock showed ``event_ms`` (wall-clock ms): an event stamped
        ``event_ms`` was produced then."""
        if self.event_start_ms is None:
            return event_ms
        return self._wall0_ms.value + (event_ms - self.event_start_ms) / self.speed

    def start(self) -> None:
        self.process.start()

    def is_alive(self) -> bool:
        return self.process.is_alive()


def _produce(kafka_config, topic, sensors, rate, warmup, seconds, seed, speed, event_start_ms, shared) -> None:
    produced, warm, failed, start_ms, end_ms, wall0_ms = shared
    producer = Producer({**kafka_config, "linger.ms": 5, "enable.idempotence": True,
                         "compression.type": "lz4"})
    ids = [f"lat-{i:05d}" for i in range(sensors)]
    keys = [s.encode() for s in ids]
    rng = np.random.default_rng(seed)
    level = (rng.normal(size=(sensors, 2)) * [5.0, 10.0] + [50.0, 100.0]).tolist()
    noise = rng.normal(size=(4096, 2)).tolist()
    failures = 0

    def on_delivery(err, _msg) -> None:
        nonlocal failures
        failures += err is not None

    wall0 = time.time_ns() // 1_000_000
    wall0_ms.value = wall0
    event0 = wall0 if event_start_ms is None else event_start_ms

    def stamp() -> int:
        return int(event0 + (time.time_ns() // 1_000_000 - wall0) * speed)

    n, started, marked = 0, time.perf_counter(), False
    while (elapsed := time.perf_counter() - started) < seconds:
        if not marked and elapsed >= warmup:
            start_ms.value, warm.value, marked = time.time() * 1000, n, True
        due = min(int(rate * elapsed) + 1, int(rate * seconds))
        while n < due:
            s, e = n % sensors, noise[n % 4096]
            value = orjson.dumps({"sensor_id": ids[s], "timestamp": stamp(),
                                  "feature_1": level[s][0] + e[0], "feature_2": level[s][1] + e[1]})
            while True:
                try:
                    producer.produce(topic, value, keys[s], on_delivery=on_delivery)
                    break
                except BufferError:
                    producer.poll(0.01)
            n += 1
        produced.value = n
        producer.poll(0)
        time.sleep(0.001)
    end_ms.value = time.time() * 1000
    producer.flush(30)
    failed.value = failures
