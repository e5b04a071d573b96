"""What one event per minute costs against the other benchmarks' one per ten minutes.

``memory.py``, ``scoring.py`` and ``latency.py`` use the simulator's default event spacing (a mean of
600 s, about 1,440 events in a 10-day window). A fleet reporting once a minute holds ten times as
many events per window. The model's input has a fixed shape (240 steps), so ``predict`` costs the
same; what grows is the Redis read of a window (more bytes), featurisation (more events to bin)
and, the other way, the bytes per event (fixed per-key overhead spread over more events).

Both densities run in the same process, interleaved, on the same Redis (``--sensors`` sensors x
``--days`` days each, 10-day window, default settings): every sensor's events go through
``RollingBuffer.apply`` in Kafka order (``memory.py``'s batching), then, ``--repeats`` times per
density, ``RollingBuffer.read`` of every sensor's window (one pipeline, as the streamer reads a
batch) and ``featurize_window`` on each (the streamer's call). Figures per density:
``bytes_per_window_event`` (``MEMORY USAGE`` of every key / events in the windows, as in
``memory.py``), ``read_ms_per_window``, ``featurize_ms_per_window`` (medians), ``events_per_window``;
and the ratios dense / sparse (``*_ratio``), which are what to apply to the other benchmarks'
figures. Needs Redis (``vigil services up``); keys go under a fresh prefix and are deleted at the end.

    .venv/bin/python bench/density.py            # 40 sensors x 11 days at each density
    .venv/bin/python bench/density.py --quick    # 10 sensors
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time


from _common import fill_unset, bench_settings, delete_prefix, fmt, log, print_table, redis_client, run_id
from memory import kafka_order_batches, memory_usage
from vigil.buffer import BufferLayout, RollingBuffer
from vigil.features import FleetStats, WindowSpec, featurize_window
from vigil.simulate import FleetSpec, generate_fleet

DENSITIES = {"sparse (600 s)": 600.0, "dense (60 s)": 60.0}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10 sensors instead of 40 (unless --sensors is given)")
    p.add_argument("--sensors", type=int, help="sensors per density (default 40; --quick 10)")
    p.add_argument("--days", type=float, default=11.0, help="days of events per sensor (default 11)")
    p.add_argument("--repeats", type=int, default=7, help="timed reads and featurisations per density (default 7)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    fill_unset(args, {"sensors": 10}, {"sensors": 40})
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    rid = run_id()
    settings = bench_settings("density", rid)
    prefix = settings.redis.key_prefix
    window_ms = int(settings.window.length.total_seconds() * 1000)
    spec = WindowSpec(length_ms=window_ms, steps=settings.window.steps, n_features=len(settings.features))
    client = redis_client(settings)
    results: dict[str, dict] = {}
    try:
        loaded = {}
        for name, interval in DENSITIES.items():
            layout = BufferLayout(f"{prefix}-{int(interval)}", len(settings.features), window_ms,
                                  settings.redis.chunks_per_window)
            buffer = RollingBuffer(client, layout, f"bench-density-{rid}")
            fleet = generate_fleet(FleetSpec(sensors=args.sensors, days=args.days, seed=args.seed,
                                             mean_interval_s=interval)).events
            log(f"{name}: applying {len(fleet):,} events of {args.sensors} sensors")
            for batch in kafka_order_batches(fleet, settings.features, 5000):
                buffer.apply(batch)
            states = [buffer.state(s) for s in sorted(fleet["sensor_id"].unique())]
            windows = buffer.read(states)
            stats = FleetStats.fit(((w.sensor_id, w.ts_ms, w.values) for w in windows), window_ms, spec.steps)
            keys = [layout.meta_key(s.sensor_id) for s in states] + [
                layout.chunk_key(s.sensor_id, c) for s in states for c in range(s.first_chunk, s.open_chunk + 1)]
            in_window = sum(len(w.ts_ms) for w in windows)
            loaded[name] = (buffer, states, stats)
            results[name] = {"events_per_window": round(in_window / len(windows), 1),
                             "bytes_per_window_event": round(memory_usage(client, keys) / in_window, 2),
                             "read_ms": [], "featurize_ms": []}
        for _ in range(args.repeats):  # interleaved, so both densities see the same machine load
            for name, (buffer, states, stats) in loaded.items():
                started = time.perf_counter()
                windows = buffer.read(states)
                read_s = time.perf_counter() - started
                started = time.perf_counter()
                for w in windows:
                    featurize_window(w.ts_ms, w.values, int(w.ts_ms[-1]), spec, stats, stats.baseline_for(w.sensor_id))
                feat_s = time.perf_counter() - started
                results[name]["read_ms"].append(1000 * read_s / len(states))
                results[name]["featurize_ms"].append(1000 * feat_s / len(states))
    finally:
        removed = sum(delete_prefix(client, f"{prefix}-{int(i)}") for i in DENSITIES.values())
        log(f"cleaned up {removed} Redis keys")
    for r in results.values():
        r["read_ms_per_window"] = round(statistics.median(r.pop("read_ms")), 4)
        r["featurize_ms_per_window"] = round(statistics.median(r.pop("featurize_ms")), 4)
    sparse, dense = (results[n] for n in DENSITIES)
    print_table(f"Per window, 10-day window, {args.sensors} sensors per density, median of {args.repeats}",
                ["density", "events/window", "B/event", "read ms", "featurise ms"],
                [[n, fmt(r["events_per_window"], ",.0f"), fmt(r["bytes_per_window_event"], ".2f"),
                  fmt(r["read_ms_per_window"], ".3f"), fmt(r["featurize_ms_per_window"], ".3f")]
                 for n, r in results.items()])
    report = {
        "sparse": sparse, "dense": dense,
        "events_ratio": round(dense["events_per_window"] / sparse["events_per_window"], 2),
        "bytes_per_event_ratio": round(dense["bytes_per_window_event"] / sparse["bytes_per_window_event"], 3),
        "read_ratio": round(dense["read_ms_per_window"] / sparse["read_ms_per_window"], 2),
        "featurize_ratio": round(dense["featurize_ms_per_window"] / sparse["featurize_ms_per_window"], 2),
        "sensors": args.sensors, "days": args.days, "repeats": args.repeats,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
