"""Redis memory per sensor: the per-bin buffer against today's raw path (commit 8bb6346), in one run.

A synthetic fleet (default 200 sensors x 12 days, two float features, the default 10-day window of
240 bins) is applied through ``RollingBuffer.apply`` in consume-sized batches (default 5,000
events) in Kafka order: the fleet's time order, partition ``crc32(sensor_id) % 6``, offsets
counting up per partition, as a consumer would see them. No Kafka is involved. This is done at each
``--spacing`` (the simulator's mean seconds between a sensor's events): 600 (its default, about
1,440 events in a window) and 60 (one a minute, about 14,400).

The same fleet goes through the raw path's ``RollingBuffer.apply`` as of commit 8bb6346 (each event
packed in 12 B in time chunks; ``_raw_path.py`` runs that commit's code in a child process, on the
same Redis). Measured per path and spacing, over every key of every sensor with ``MEMORY USAGE key
SAMPLES 0`` (per-bin: the meta hash and the bins string; raw: the meta hash and the chunk strings):

* ``bytes_per_sensor``: the sum / sensors;
* ``bytes_per_window_event``: the sum / events in the sensors' windows (what a read covers: the
  240 bins ending at the newest event's; raw: the events of the last 10 days);
* ``apply_events_per_s`` (the raw path's is timed in its child process).

``ratio`` = per-bin bytes / raw bytes. Targets (issue): at 60 s spacing at most 12 KB (12,000 B)
per sensor; at 600 s no more than the raw path.

    .venv/bin/python bench/memory.py                 # 200 sensors x 12 days, at 600 s and 60 s
    .venv/bin/python bench/memory.py --spacing 600   # one spacing
    .venv/bin/python bench/memory.py --quick         # 50 sensors x 12 days
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from dataclasses import replace

import numpy as np

from _common import fill_unset, bench_settings, delete_prefix, fmt, log, print_table, redis_client, run_id
from _raw_path import RAW_COMMIT, RawPath, fleet_fingerprint
from vigil.buffer import BufferLayout, EventBatch, RollingBuffer
from vigil.simulate import FleetSpec, generate_fleet

PARTITIONS = 6
TARGET_60S_BYTES = 12_000  # per sensor at one event a minute


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


def memory_usage(client, keys: list) -> int:
    total = 0
    for start in range(0, len(keys), 2000):
        pipe = client.pipeline(transaction=False)
        for key in keys[start:start + 2000]:
            pipe.memory_usage(key, samples=0)
        total += sum(x or 0 for x in pipe.execute())
    return total


def load_per_bin(client, settings, prefix: str, topic: str, frame, batch: int):
    """Apply the fleet to a per-bin buffer under ``prefix``: (buffer, states, windows, figures)."""
    layout = replace(BufferLayout.from_settings(settings), prefix=prefix)
    buffer = RollingBuffer(client, layout, topic)
    started = time.perf_counter()
    for part in kafka_order_batches(frame, settings.features, batch):
        buffer.apply(part)
    apply_s = time.perf_counter() - started
    states = buffer.state_many(sorted(frame["sensor_id"].unique()))
    windows = buffer.read_many(states)
    keys = [k for s in states for k in (layout.meta_key(s.sensor_id), layout.bins_key(s.sensor_id))]
    return buffer, states, windows, {"sensors": len(states), "keys": len(keys),
                                     "memory_usage_bytes": memory_usage(client, keys),
                                     "window_events": sum(w.n_events for w in windows), "apply_s": apply_s}


def per_sensor(loaded: dict, events: int) -> dict:
    """Figures of one path from what ``load_per_bin`` or the raw path's ``load`` returned."""
    return {"bytes_per_sensor": round(loaded["memory_usage_bytes"] / loaded["sensors"], 1),
            "bytes_per_window_event": round(loaded["memory_usage_bytes"] / loaded["window_events"], 3),
            "events_per_window": round(loaded["window_events"] / loaded["sensors"], 1),
            "apply_events_per_s": round(events / loaded["apply_s"]),
            **{k: loaded[k] for k in ("memory_usage_bytes", "keys", "window_events")}}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="50 sensors instead of 200 (unless --sensors is given)")
    p.add_argument("--sensors", type=int, help="sensors in the synthetic fleet (default 200; --quick 50)")
    p.add_argument("--days", type=float, default=12.0, help="days of events per sensor (default 12)")
    p.add_argument("--spacing", type=float, nargs="+", default=[600.0, 60.0],
                   help="mean seconds between a sensor's events, one run each (default: 600 60)")
    p.add_argument("--batch", type=int, default=5000, help="events per apply call (default 5000)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    fill_unset(args, {"sensors": 50}, {"sensors": 200})
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    rid = run_id()
    settings = bench_settings("memory", rid)
    prefix, topic = settings.redis.key_prefix, f"bench-memory-{rid}"
    client = redis_client(settings)
    results: dict[str, dict] = {}
    with RawPath() as raw:
        for spacing in args.spacing:
            name = f"{spacing:g}s"
            log(f"{name}: generating {args.sensors} sensors x {args.days:g} days")
            frame = generate_fleet(FleetSpec(sensors=args.sensors, days=args.days, seed=args.seed,
                                             mean_interval_s=spacing)).events
            ours, theirs = f"{prefix}-{name}", f"{prefix}-raw-{name}"
            try:
                log(f"{name}: per-bin buffer, applying {len(frame):,} events")
                *_, new = load_per_bin(client, settings, ours, topic, frame, args.batch)
                log(f"{name}: raw path ({RAW_COMMIT}), applying the same events")
                old = raw.call("load", name=name, prefix=theirs, topic=topic, sensors=args.sensors, days=args.days,
                               seed=args.seed, interval=spacing, batch=args.batch)
            finally:  # one spacing at a time: the raw path at 60 s holds ~200 KB per sensor
                removed = delete_prefix(client, ours) + delete_prefix(client, theirs)
                log(f"{name}: cleaned up {removed} Redis keys")
            if old.pop("fleet") != fleet_fingerprint(frame, settings.features):
                raise RuntimeError("the raw path generated another fleet")
            results[name] = {"spacing_s": spacing, "events_applied": len(frame),
                             "per_bin": per_sensor(new, len(frame)),
                             "raw": {**per_sensor(old, len(frame)), "stored_events": old["stored_events"]}}
            results[name]["ratio_bytes_per_sensor"] = round(
                results[name]["per_bin"]["bytes_per_sensor"] / results[name]["raw"]["bytes_per_sensor"], 4)
    layout = BufferLayout.from_settings(settings)
    print_table(f"Redis memory per sensor: {args.sensors} sensors x {args.days:g} days, applied in batches of "
                f"{args.batch:,}; per-bin bins string {layout.bins_bytes:,} B ({layout.steps} bins + "
                f"{layout.resent_tail}-event tail); raw = commit {RAW_COMMIT}",
                ["spacing", "path", "events/window", "keys", "MEMORY USAGE B", "B/sensor", "B/window event",
                 "apply events/s"],
                [[name, path, fmt(r[path]["events_per_window"], ",.0f"), r[path]["keys"],
                  f"{r[path]['memory_usage_bytes']:,}", fmt(r[path]["bytes_per_sensor"], ",.0f"),
                  fmt(r[path]["bytes_per_window_event"], ".2f"), fmt(r[path]["apply_events_per_s"], ",.0f")]
                 for name, r in results.items() for path in ("per_bin", "raw")])
    targets = {}
    for name, r in results.items():
        print(f"{name}: per-bin / raw bytes per sensor = {r['ratio_bytes_per_sensor']:.4f} "
              f"({1 / r['ratio_bytes_per_sensor']:.1f}x smaller)")
        if r["spacing_s"] == 60:
            targets["60s_at_most_12KB_per_sensor"] = r["per_bin"]["bytes_per_sensor"] <= TARGET_60S_BYTES
        if r["spacing_s"] == 600:
            targets["600s_no_worse_than_raw"] = r["ratio_bytes_per_sensor"] <= 1
    for target, met in targets.items():
        print(f"target {target}: {'met' if met else 'NOT met'}")
    print(json.dumps({**results, "targets_met": targets, "bins_string_bytes": layout.bins_bytes,
                      "raw_commit": RAW_COMMIT, "sensors": args.sensors, "days": args.days, "batch": args.batch,
                      "seed": args.seed}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
