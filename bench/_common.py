"""Helpers shared by the streaming benchmarks (ingest, memory, latency, scoring).

Every benchmark run works on its own Kafka topics and Redis key prefix (suffixed with a random
run id) and removes them at the end, so runs never see each other's data or a developer's.
"""

from __future__ import annotations

import secrets
import sys
import time
from typing import Callable, Iterable, Sequence

import redis
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from vigil.logging import configure_logging
from vigil.redis_client import connect
from vigil.settings import VigilSettings


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def quiet_logs(level: str = "warning") -> None:
    """Vigil's structured logs to stderr (structlog's unconfigured default would print to stdout)."""
    configure_logging("json", level, stream=sys.stderr)


def fill_unset(args, quick: dict, full: dict) -> None:
    """Options left unset take their ``--quick`` or full-run default."""
    for key, value in (quick if args.quick else full).items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def run_id() -> str:
    return secrets.token_hex(3)


def bench_settings(name: str, rid: str, **stream: object) -> VigilSettings:
    """Default settings with fresh topics, Redis prefix and group id for this run."""
    base = VigilSettings()
    tag = f"bench-{name}-{rid}"
    topics = base.topics.model_copy(update={
        "events": f"{tag}-events", "scores": f"{tag}-scores", "alerts": f"{tag}-alerts", "dlq": f"{tag}-dlq",
    })
    stream_settings = base.stream.model_copy(update={"group_id": f"{tag}-streamer", "metrics_port": 0, **stream})
    return base.model_copy(update={
        "topics": topics,
        "redis": base.redis.model_copy(update={"key_prefix": tag}),
        "stream": stream_settings,
    })


def redis_client(settings: VigilSettings) -> redis.Redis:
    return connect(settings)


def redis_cpu_s(client: redis.Redis) -> float:
    """Redis's CPU seconds so far (user and system): the server's share of a run's work."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def create_topics(settings: VigilSettings, partitions: dict[str, int]) -> list[str]:
    admin = AdminClient(settings.kafka.client_config())
    futures = admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=1) for n, p in partitions.items()],
                                  operation_timeout=30)
    for future in futures.values():
        future.result()
    # Metadata reaches every broker-side cache shortly after creation; wait until it lists them.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = admin.list_topics(timeout=10).topics
        if all(n in listed and len(listed[n].partitions) == p for n, p in partitions.items()):
            break
        time.sleep(0.2)
    return list(partitions)


def delete_topics(settings: VigilSettings, names: Iterable[str]) -> None:
    names = list(names)
    if not names:
        return
    admin = AdminClient(settings.kafka.client_config())
    for name, future in admin.delete_topics(names, operation_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            log(f"could not delete topic {name}: {exc}")


def delete_groups(settings: VigilSettings, groups: Iterable[str]) -> None:
    """Delete the run's (now empty) consumer groups, so their committed offsets do not linger."""
    groups = list(groups)
    if not groups:
        return
    admin = AdminClient(settings.kafka.client_config())
    for group, future in admin.delete_consumer_groups(groups, request_timeout=30).items():
        try:
            future.result()
        except KafkaException as exc:
            log(f"could not delete consumer group {group}: {exc}")


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key starting with ``prefix:`` (SCAN, never KEYS); returns how many."""
    deleted, batch = 0, []
    for key in client.scan_iter(match=f"{prefix}:*", count=2000):
        batch.append(key)
        if len(batch) >= 1000:
            deleted += client.unlink(*batch)
            batch = []
    if batch:
        deleted += client.unlink(*batch)
    return deleted


def produce_all(producer: Producer, topic: str, keys: Sequence[bytes], values: Sequence[bytes],
                progress: Callable[[int], None] | None = None) -> float:
    """Produce every (key, value), waiting on delivery reports when the local queue is full.

    Returns the seconds it took, flush included; raises if any delivery failed.
    """
    failures: list = []

    def on_delivery(err, _msg) -> None:
        if err is not None:
            failures.append(err)

    started = time.perf_counter()
    produce, poll = producer.produce, producer.poll
    for i, (key, value) in enumerate(zip(keys, values), 1):
        while True:
            try:
                produce(topic, value, key, on_delivery=on_delivery)
                break
            except BufferError:
                poll(0.05)
        if i % 5000 == 0:
            poll(0)
            if progress is not None and i % 100_000 == 0:
                progress(i)
    remaining = producer.flush(120)
    if remaining or failures:
        raise RuntimeError(f"{len(failures)} deliveries failed, {remaining} unacknowledged")
    return time.perf_counter() - started


def fmt(value, spec: str = ",.1f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    print(f"\n{title}")
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))
