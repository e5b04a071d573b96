"""Ingest throughput of the streamer with scoring off: Kafka → decode → Redis rolling buffer → commit.

A synthetic fleet (default 400 sensors x 12 days, about 690k events) is produced once to a fresh
6-partition topic. Then, over the same topic, each with a fresh consumer group:

* **baseline** (``bare_consume``): a bare confluent-kafka loop, ``consume(num_messages=10000,
  timeout=1)``, touching ``msg.value()`` only: what the client alone can deliver here;
* **vigil**: the real ``Streamer`` (``stream.scoring=False``, fresh Redis key prefix) in a thread.

Both clocks start when the first non-empty ``consume`` call returns (so the consumer-group join is
not counted) and stop when the last event is in hand: for the bare loop when it has seen all N,
for the streamer when the commit that covers every partition's last offset has returned (events
decoded, applied to Redis by the buffer's script calls, offsets committed). The last line of stdout is one JSON
object; ``ratio_to_bare_consume`` = streamer events/s / bare events/s; ``streamer_cpu_us_per_event`` is
this process's CPU over the streamer's phase (the consumer's threads included), per event, and
``redis_cpu_us_per_event`` Redis's (``bare_cpu_us_per_event``: the bare loop's, the client's own share). Targets (issue):
≥ 50,000 events/s and ≥ 25% of the bare loop.

    .venv/bin/python bench/ingest.py            # 400 sensors x 12 days
    .venv/bin/python bench/ingest.py --quick    # 100 sensors x 12 days (~170k events)
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from confluent_kafka import TopicPartition

from _common import (fill_unset, bench_settings, create_topics, delete_groups, delete_prefix, delete_topics, fmt, log,
                     print_table, produce_all, quiet_logs, redis_client, redis_cpu_s, run_id)
from streamer.app import Streamer
from vigil.kafka.clients import make_consumer, make_producer
from vigil.kafka.produce import frame_keys, frame_values
from vigil.simulate import FleetSpec, generate_fleet


class TimedConsumer:
    """Wraps the streamer's consumer: notes when data first arrives and what each commit covered."""

    def __init__(self, consumer):
        self._consumer = consumer
        self.first_data_at: float | None = None
        self.committed: dict[int, int] = {}
        self.commit_done_at = 0.0

    def consume(self, *args, **kwargs):
        messages = self._consumer.consume(*args, **kwargs)
        if messages and self.first_data_at is None:
            self.first_data_at = time.perf_counter()
        return messages

    def commit(self, *args, offsets=None, **kwargs):
        result = self._consumer.commit(*args, offsets=offsets, **kwargs)
        for tp in offsets or []:
            self.committed[tp.partition] = tp.offset
        self.commit_done_at = time.perf_counter()
        return result

    def __getattr__(self, name):
        return getattr(self._consumer, name)


def end_offsets(settings, topic: str, partitions: int) -> dict[int, int]:
    consumer = make_consumer(settings, f"{settings.stream.group_id}-watermarks")
    try:
        return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    finally:
        consumer.close()


def bare_consume(settings, topic: str, total: int, timeout_s: float) -> float:
    consumer = make_consumer(settings, f"{settings.stream.group_id}-bare")
    consumer.subscribe([topic])
    seen, started, deadline = 0, None, time.monotonic() + timeout_s
    try:
        while seen < total and time.monotonic() < deadline:
            messages = consumer.consume(num_messages=10000, timeout=1)
            if messages and started is None:
                started = time.perf_counter()
            for msg in messages:
                if msg.error() is None:
                    msg.value()
                    seen += 1
        elapsed = time.perf_counter() - started if started else float("nan")
    finally:
        consumer.close()
    if seen != total:
        raise RuntimeError(f"bare consumer saw {seen} of {total} events within {timeout_s}s")
    return total / elapsed


def streamer_ingest(settings, ends: dict[int, int], total: int, timeout_s: float) -> dict:
    timed = TimedConsumer(make_consumer(settings, settings.stream.group_id))
    streamer = Streamer(settings, consumer=timed)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.setdefault("exit", streamer.run()), name="streamer")
    thread.start()
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline and thread.is_alive():
            if all(timed.committed.get(p, 0) >= end for p, end in ends.items()):
                break
            time.sleep(0.005)
        else:
            raise RuntimeError(f"streamer did not commit all {total} events within {timeout_s}s "
                               f"(committed {timed.committed}, wanted {ends})")
        elapsed = timed.commit_done_at - timed.first_data_at
    finally:
        streamer.stop()
        thread.join(60)
    sample = streamer.metrics.registry.get_sample_value
    consumed = sample("vigil_events_consumed_total")
    if consumed != total:
        raise RuntimeError(f"streamer consumed {consumed}, expected {total}")
    return {"events_per_s": total / elapsed, "seconds": elapsed, "exit": result.get("exit"),
            "commits": sample("vigil_offset_commits_total"),
            "added": sample("vigil_buffer_writes_total", {"result": "added"}),
            "too_old": sample("vigil_buffer_writes_total", {"result": "too_old"}),
            "dead_lettered": sum(s.value for m in streamer.metrics.dead_lettered.collect() for s in m.samples
                                 if s.name.endswith("_total"))}


def redis_bytes(client, prefix: str) -> tuple[int, int]:
    """(MEMORY USAGE summed over the run's sensor keys, stored events from the meta hashes)."""
    total, stored = 0, 0
    keys = [k for k in client.scan_iter(match=f"{prefix}:{{s:*", count=2000)]
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key, samples=0)
    total = sum(x or 0 for x in pipe.execute())
    metas = [k for k in keys if k.endswith(b":meta")]
    for start in range(0, len(metas), 1000):
        pipe = client.pipeline(transaction=False)
        for key in metas[start:start + 1000]:
            pipe.hget(key, "n")
        stored += sum(int(x or 0) for x in pipe.execute())
    return total, stored


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="100 sensors instead of 400 (unless --sensors is given)")
    p.add_argument("--sensors", type=int, help="sensors in the synthetic fleet (default 400; --quick 100)")
    p.add_argument("--days", type=float, default=12.0, help="days of events per sensor (default 12)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--poll-events", type=int, default=5000, help="the streamer's stream.poll_events (default 5000)")
    p.add_argument("--timeout", type=float, default=600.0, help="give up on a phase after this many seconds")
    args = p.parse_args(argv)
    fill_unset(args, {"sensors": 100}, {"sensors": 400})
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    quiet_logs()
    rid = run_id()
    settings = bench_settings("ingest", rid, scoring=False, poll_events=args.poll_events)
    topic, partitions = settings.topics.events, settings.topics.events_partitions
    client = redis_client(settings)
    created: list[str] = []
    try:
        log(f"run {rid}: generating {args.sensors} sensors x {args.days:g} days")
        frame = generate_fleet(FleetSpec(sensors=args.sensors, days=args.days, seed=args.seed)).events
        keys, values = frame_keys(frame), frame_values(frame)
        total, value_bytes = len(values), sum(map(len, values)) / len(values)
        created = create_topics(settings, {topic: partitions, settings.topics.dlq: 1})
        log(f"producing {total:,} events ({value_bytes:.0f} B JSON each) to {topic} ({partitions} partitions)")
        producer = make_producer(settings, **{"linger.ms": 50, "compression.type": "lz4"})
        produce_s = produce_all(producer, topic, keys, values, lambda i: log(f"  produced {i:,}"))
        ends = end_offsets(settings, topic, partitions)
        if sum(ends.values()) != total:
            raise RuntimeError(f"topic holds {sum(ends.values())} events, produced {total}")
        log(f"produced in {produce_s:.1f} s ({total / produce_s:,.0f} events/s); bare consume loop...")
        cpu0 = time.process_time()
        bare = bare_consume(settings, topic, total, args.timeout)
        bare_cpu_us = (time.process_time() - cpu0) / total * 1e6
        log(f"bare consume: {bare:,.0f} events/s; streamer (scoring off)...")
        cpu0, redis0 = time.process_time(), redis_cpu_s(client)
        ours = streamer_ingest(settings, ends, total, args.timeout)
        cpu_us = (time.process_time() - cpu0) / total * 1e6
        redis_us = (redis_cpu_s(client) - redis0) / total * 1e6
        log(f"streamer: {ours['events_per_s']:,.0f} events/s in {ours['seconds']:.1f} s, "
            f"{ours['commits']:.0f} commits; CPU per event {cpu_us:.1f} µs here (bare loop {bare_cpu_us:.1f}), "
            f"{redis_us:.1f} µs in Redis")
        memory, stored = redis_bytes(client, settings.redis.key_prefix)
    finally:
        group = settings.stream.group_id
        delete_groups(settings, [group, f"{group}-bare"] if created else [])
        delete_topics(settings, created)
        removed = delete_prefix(client, settings.redis.key_prefix)
        log(f"cleaned up: {len(created)} topics, {removed} Redis keys")
    ratio = ours["events_per_s"] / bare
    bytes_per_event = memory / stored if stored else None
    print_table(f"Ingest, scoring off: {total:,} events of {args.sensors} sensors x {args.days:g} days, "
                f"{partitions} partitions",
                ["path", "events/s", "seconds", "vs bare"],
                [["bare confluent-kafka consume", fmt(bare, ",.0f"), fmt(total / bare, ".2f"), "1.00"],
                 ["vigil Streamer (decode+Redis+commit)", fmt(ours["events_per_s"], ",.0f"),
                  fmt(ours["seconds"], ".2f"), fmt(ratio, ".2f")]])
    print(f"buffer: {ours['added']:,.0f} added, {ours['too_old']:,.0f} arrived too late for the window, {stored:,} "
          f"stored (older chunks dropped), {memory:,} B in Redis = {fmt(bytes_per_event, '.2f')} B per stored event")
    print(f"targets: >= 50,000 events/s ({'met' if ours['events_per_s'] >= 50_000 else 'NOT met'}), "
          f">= 25% of bare ({'met' if ratio >= 0.25 else 'NOT met'})")
    report = {
        "events_per_s": round(ours["events_per_s"]), "ratio_to_bare_consume": round(ratio, 4),
        "bare_consume_events_per_s": round(bare), "events": total, "sensors": args.sensors, "days": args.days,
        "partitions": partitions, "streamer_seconds": round(ours["seconds"], 3), "commits": ours["commits"],
        "poll_events": args.poll_events, "buffer_added": ours["added"], "buffer_too_old": ours["too_old"],
        "dead_lettered": ours["dead_lettered"], "stored_events": stored, "redis_bytes": memory,
        "redis_bytes_per_stored_event": None if bytes_per_event is None else round(bytes_per_event, 3),
        "json_bytes_per_event": round(value_bytes, 1), "produce_events_per_s": round(total / produce_s),
        "streamer_exit_code": ours["exit"], "streamer_cpu_us_per_event": round(cpu_us, 2),
        "bare_cpu_us_per_event": round(bare_cpu_us, 2),
        "redis_cpu_us_per_event": round(redis_us, 2),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
