"""Redis memory per buffered event: Vigil's packed rolling buffer against a naive JSON sorted set.

A synthetic fleet (default 200 sensors x 12 days, two float features, the default 10-day window
and 10 chunks per window) is applied through ``RollingBuffer.apply`` in consume-sized batches
(default 5,000 events) in Kafka order: the fleet's time order, partition ``crc32(sensor_id) % 6``,
offsets counting up per partition, as a consumer would see them. No Kafka is involved.

Measured, for our buffer (every key of every sensor: meta hash + chunk strings):

* ``bytes_per_event``: sum of ``MEMORY USAGE key SAMPLES 0`` / stored events (``state.n_stored``;
  whole chunks are dropped, so up to one chunk of events older than the window is still stored);
* ``bytes_per_window_event``: the same bytes / events inside the 10-day window (what a read returns);
* ``used_memory_delta_per_event``: ``INFO memory`` ``used_memory`` after − before / stored events
  (allocator view; noisy when other clients use the same Redis).

Baseline in the same run (``naive_zset``): one sorted set per sensor, score = timestamp, member = the
event's JSON as it arrives from Kafka, holding the same in-window events; MEMORY USAGE per event.
``ratio_to_naive_zset`` = our bytes for the sensors' windows / the naive sets' bytes for the same
windows (= ``bytes_per_window_event / naive_zset_bytes_per_event``). Target (issue): ≤ 16 B/event.

    .venv/bin/python bench/memory.py            # 200 sensors x 12 days
    .venv/bin/python bench/memory.py --quick    # 50 sensors x 12 days
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib

import numpy as np

from _common import fill_unset, bench_settings, delete_prefix, fmt, log, print_table, redis_client, run_id
from vigil.buffer import BufferLayout, EventBatch, RollingBuffer
from vigil.kafka.produce import frame_values
from vigil.simulate import FleetSpec, generate_fleet

PARTITIONS = 6


def kafka_order_batches(frame, features: list[str], batch_size: int):
    """EventBatches in the frame's (time) order, with stable partitions and per-partition offsets."""
    sensors = frame["sensor_id"].tolist()
    part_of = {s: zlib.crc32(s.encode()) % PARTITIONS for s in set(sensors)}
    partitions = np.fromiter((part_of[s] for s in sensors), dtype=np.int64, count=len(sensors))
    offsets = np.empty(len(sensors), dtype=np.int64)
    for p in range(PARTITIONS):
        rows = np.flatnonzero(partitions == p)
        offsets[rows] = np.arange(len(rows))
    ts = frame["timestamp"].to_numpy(np.int64)
    values = frame[features].to_numpy(np.float64)
    for start in range(0, len(sensors), batch_size):
        end = start + batch_size
        n = len(sensors[start:end])
        yield EventBatch(len(features), sensors[start:end], partitions[start:end].tolist(),
                         offsets[start:end].tolist(), ts[start:end].tolist(), values[start:end].tolist(),
                         [None] * n)  # unlabelled, as the memory figures were measured


def used_memory(client) -> int:
    return int(client.info("memory")["used_memory"])


def memory_usage(client, keys: list) -> int:
    total = 0
    for start in range(0, len(keys), 2000):
        pipe = client.pipeline(transaction=False)
        for key in keys[start:start + 2000]:
            pipe.memory_usage(key, samples=0)
        total += sum(x or 0 for x in pipe.execute())
    return total


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="50 sensors instead of 200 (unless --sensors is given)")
    p.add_argument("--sensors", type=int, help="sensors in the synthetic fleet (default 200; --quick 50)")
    p.add_argument("--days", type=float, default=12.0, help="days of events per sensor (default 12)")
    p.add_argument("--batch", type=int, default=5000, help="events per apply call (default 5000)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    fill_unset(args, {"sensors": 50}, {"sensors": 200})
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    rid = run_id()
    settings = bench_settings("memory", rid)
    prefix, naive_prefix = settings.redis.key_prefix, f"{settings.redis.key_prefix}-naive"
    window_ms = int(settings.window.length.total_seconds() * 1000)
    layout = BufferLayout(prefix, len(settings.features), window_ms, settings.redis.chunks_per_window)
    client = redis_client(settings)
    buffer = RollingBuffer(client, layout, f"bench-memory-{rid}")
    try:
        log(f"run {rid}: generating {args.sensors} sensors x {args.days:g} days")
        frame = generate_fleet(FleetSpec(sensors=args.sensors, days=args.days, seed=args.seed)).events
        before = used_memory(client)
        started, added = time.perf_counter(), 0
        for batch in kafka_order_batches(frame, settings.features, args.batch):
            added += buffer.apply(batch).added
        apply_s = time.perf_counter() - started
        after = used_memory(client)
        log(f"applied {len(frame):,} events in {apply_s:.1f} s ({len(frame) / apply_s:,.0f} events/s, "
            f"{added:,} added)")

        sensors = sorted(frame["sensor_id"].unique())
        states = [buffer.state(s) for s in sensors]
        windows = buffer.read(states)
        stored = sum(s.n_stored for s in states)
        in_window = sum(len(w.ts_ms) for w in windows)
        our_keys = [layout.meta_key(s.sensor_id) for s in states] + [
            layout.chunk_key(s.sensor_id, c) for s in states for c in range(s.first_chunk, s.open_chunk + 1)]
        ours = memory_usage(client, our_keys)
        offsets_key = memory_usage(client, [layout.offsets_key(buffer.topic)])

        log("baseline: naive JSON sorted sets holding the same in-window events")
        newest = {s.sensor_id: s.newest_ms for s in states}
        cutoff = frame["sensor_id"].map(newest) - window_ms
        kept = frame[frame["timestamp"] > cutoff]
        naive_before = used_memory(client)
        pipe = client.pipeline(transaction=False)
        for (sensor_id, ts), member in zip(zip(kept["sensor_id"], kept["timestamp"]), frame_values(kept)):
            pipe.zadd(f"{naive_prefix}:{{s:{sensor_id}}}", {member: int(ts)})
            if len(pipe) >= 10_000:
                pipe.execute()
        pipe.execute()
        naive_after = used_memory(client)
        naive_keys = [f"{naive_prefix}:{{s:{s}}}" for s in sensors]
        naive_events = sum(client.zcard(k) for k in naive_keys)
        naive = memory_usage(client, naive_keys)
    finally:
        removed = delete_prefix(client, prefix) + delete_prefix(client, naive_prefix)
        log(f"cleaned up {removed} Redis keys")
    if naive_events != in_window or len(kept) != in_window:
        log(f"warning: naive sets hold {naive_events} events (frame {len(kept)}), the buffer's windows {in_window}")
    per_stored, per_window = ours / stored, ours / in_window
    naive_per_event = naive / naive_events
    ratio = per_window / naive_per_event
    used_delta, naive_delta = (after - before) / stored, (naive_after - naive_before) / naive_events
    print_table(f"Redis memory per event: {args.sensors} sensors x {args.days:g} days, {len(frame):,} events "
                f"applied in batches of {args.batch:,}; {stored:,} stored, {in_window:,} in the 10-day windows",
                ["layout", "keys", "MEMORY USAGE B", "B/stored event", "B/window event", "used_memory delta B/event"],
                [["vigil packed chunks (12 B records)", len(our_keys), f"{ours:,}", fmt(per_stored, ".2f"),
                  fmt(per_window, ".2f"), fmt(used_delta, ".2f")],
                 ["naive sorted set of JSON", len(naive_keys), f"{naive:,}", fmt(naive_per_event, ".2f"),
                  fmt(naive_per_event, ".2f"), fmt(naive_delta, ".2f")]])
    print(f"ratio vigil / naive for the same windows: {ratio:.4f} ({1 / ratio:.1f}x smaller); per-topic offsets "
          f"hash: {offsets_key} B; target <= 16 B/event: {'met' if per_stored <= 16 else 'NOT met'}")
    report = {
        "bytes_per_event": round(per_stored, 3), "bytes_per_window_event": round(per_window, 3),
        "ratio_to_naive_zset": round(ratio, 5), "naive_zset_bytes_per_event": round(naive_per_event, 2),
        "used_memory_delta_per_event": round(used_delta, 3), "naive_used_memory_delta_per_event": round(naive_delta, 2),
        "events_applied": len(frame), "stored_events": stored, "window_events": in_window,
        "memory_usage_bytes": ours, "naive_memory_usage_bytes": naive, "keys": len(our_keys),
        "offsets_hash_bytes": offsets_key, "record_bytes": layout.record_bytes,
        "chunks_per_window": layout.chunks_per_window, "sensors": args.sensors, "days": args.days,
        "batch": args.batch, "apply_events_per_s": round(len(frame) / apply_s),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
