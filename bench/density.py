"""Per scored window at one event a minute and one per ten minutes: the per-bin buffer against
today's raw path (commit 8bb6346), and against the model's own cost.

``memory.py``, ``scoring.py`` and ``latency.py`` use the simulator's default event spacing (a mean of
600 s, about 1,440 events in a 10-day window); one event a minute is about ten times as many. The
raw path read a window's events from Redis and binned them at every score, so its cost grew with
them; the per-bin buffer reads a fixed 240 bins whatever the spacing.

The same fleets (``--sensors`` sensors x ``--days`` days at each spacing, 10-day window, default
settings) go through both paths on the same Redis: the per-bin ``RollingBuffer.apply`` here, the
raw one as of commit 8bb6346 in a child process running that commit's code (``_raw_path.py``), in
Kafka order (``memory.py``'s batching). Then ``--repeats`` rounds, each timing every figure once
(in an order rotated each round), so all see the same machine load. A batch is ``--batch`` windows
(512, the streamer's largest; the sensors' windows, cycled to fill it). Per path and spacing:
``RollingBuffer.read_batch`` (per-bin) or ``read`` (raw) of the batch (one pipeline, as the
streamer reads one) and its featurisation as that path's streamer did it (per-bin:
``streamer.scoring.batch_tensor``, the whole batch at once; raw: ``featurize_window`` on each
window's events); and the
default model's predict (``EncoderLatentAutoencoder`` sized for the window, built, not trained;
``BatchPredictor`` with scores and contributions, ``max_batch`` = the batch) on the 60 s batch's
tensors.

Figures per path and spacing (medians per window): ``bytes_per_sensor`` (``MEMORY USAGE`` of the
sensor's keys, as in ``memory.py``), ``bytes_per_window_event``, ``events_per_window``,
``read_ms_per_window``, ``featurize_ms_per_window``; ``predict_ms_per_window``. Targets (issue), at
60 s spacing: per-bin read + featurise at least 10x faster than raw (``speedup_vs_raw_60s`` ≥ 10),
and per-bin read + featurise + predict at most 2x predict (``whole_over_predict_60s`` ≤ 2). Needs
Redis (``vigil services up``); keys go under a fresh prefix and are deleted at the end.

    .venv/bin/python bench/density.py            # 40 sensors x 11 days at each spacing
    .venv/bin/python bench/density.py --quick    # 10 sensors
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np

from _common import fill_unset, bench_settings, delete_prefix, fmt, log, print_table, redis_client, run_id
from _raw_path import RAW_COMMIT, RawPath, fleet_fingerprint
from memory import load_per_bin, per_sensor
from scoring import default_scorer  # sets TensorFlow's log level before Keras loads
from streamer.scoring import batch_tensor
from vigil.features import WindowSpec
from vigil.features.dataset import BinnedSeries, fleet_stats
from vigil.model.predictor import BatchPredictor
from vigil.simulate import FleetSpec, generate_fleet

SPACINGS = {"600s": 600.0, "60s": 60.0}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="10 sensors instead of 40 (unless --sensors is given)")
    p.add_argument("--sensors", type=int, help="sensors per spacing (default 40; --quick 10)")
    p.add_argument("--days", type=float, default=11.0, help="days of events per sensor (default 11)")
    p.add_argument("--repeats", type=int, default=7, help="timed rounds (default 7)")
    p.add_argument("--batch", type=int, default=512, help="windows per predict call (BatchPredictor max_batch)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    fill_unset(args, {"sensors": 10}, {"sensors": 40})
    return args


def featurize(batch, spec: WindowSpec, stats) -> np.ndarray:
    """The streamer's featurisation (``streamer/scoring.batch_tensor``): each window ending at its newest event."""
    return batch_tensor(batch, spec, stats, min_events=1)[3]


def main(argv=None) -> int:
    args = parse_args(argv)
    rid = run_id()
    settings = bench_settings("density", rid)
    prefix, topic = settings.redis.key_prefix, f"bench-density-{rid}"
    window_ms = int(settings.window.length.total_seconds() * 1000)
    spec = WindowSpec(length_ms=window_ms, steps=settings.window.steps, n_features=len(settings.features))
    client = redis_client(settings)
    results: dict[str, dict] = {}
    loaded: dict[str, tuple] = {}
    prefixes = [f"{prefix}-{name}" for name in SPACINGS] + [f"{prefix}-raw-{name}" for name in SPACINGS]
    try:
        with RawPath() as raw:
            for name, interval in SPACINGS.items():
                fleet = generate_fleet(FleetSpec(sensors=args.sensors, days=args.days, seed=args.seed,
                                                 mean_interval_s=interval)).events
                log(f"{name}: applying {len(fleet):,} events of {args.sensors} sensors, per-bin and raw")
                buffer, states, windows, new = load_per_bin(client, settings, f"{prefix}-{name}", topic, fleet, 5000)
                old = raw.call("load", name=name, prefix=f"{prefix}-raw-{name}", topic=topic, sensors=args.sensors,
                               days=args.days, seed=args.seed, interval=interval, batch=5000)
                if old["fleet"] != fleet_fingerprint(fleet, settings.features):
                    raise RuntimeError("the raw path generated another fleet")
                stats = fleet_stats([BinnedSeries(w.sensor_id, w.bins, w.newest_ms) for w in windows], spec)
                loaded[name] = (buffer, (states * -(-args.batch // len(states)))[:args.batch], stats)
                results[name] = {path: {**per_sensor(r, len(fleet)), "read_ms": [], "featurize_ms": []}
                                 for path, r in (("per_bin", new), ("raw", old))}

            buffer, states, stats = loaded["60s"]
            x = featurize(buffer.read_batch(states), spec, stats)
            config, _, scorer = default_scorer(spec)
            predictor = BatchPredictor(scorer, max_batch=args.batch)
            predictor.warm_up(spec.steps, spec.channels)
            log(f"model: LSTM {config.latent_dim} -> {config.bottleneck}, predict on batches of {args.batch}")
            predict_ms = []

            def per_bin(name: str) -> tuple[float, float, int]:
                buffer, states, stats = loaded[name]
                started = time.perf_counter()
                batch = buffer.read_batch(states)  # the streamer's read (streamer/scoring.py)
                read_s = time.perf_counter() - started
                started = time.perf_counter()
                featurize(batch, spec, stats)
                return read_s, time.perf_counter() - started, len(batch.sensor_ids)

            def raw_path(name: str) -> tuple[float, float, int]:
                old = raw.call("time_windows", name=name, batch=args.batch)
                return old["read_s"], old["featurize_s"], old["windows"]

            tasks = [(name, path) for name in SPACINGS for path in (per_bin, raw_path)] + [("predict", None)]
            for round_ in range(args.repeats):
                # Interleaved, every path sees the same machine load; rotated, none always runs
                # right after the model (TensorFlow's threads stay busy a moment after a call).
                for name, timed in tasks[round_ % len(tasks):] + tasks[:round_ % len(tasks)]:
                    if timed is None:
                        started = time.perf_counter()
                        predictor(x)
                        predict_ms.append(1000 * (time.perf_counter() - started) / len(x))
                        continue
                    read_s, feat_s, k = timed(name)
                    r = results[name]["per_bin" if timed is per_bin else "raw"]
                    r["read_ms"].append(1000 * read_s / k)
                    r["featurize_ms"].append(1000 * feat_s / k)
                log(f"round {round_ + 1} of {args.repeats}")
    finally:
        removed = sum(delete_prefix(client, p) for p in prefixes)
        log(f"cleaned up {removed} Redis keys")

    for spacing in results.values():
        for r in spacing.values():
            r["read_ms_per_window"] = round(statistics.median(r.pop("read_ms")), 4)
            r["featurize_ms_per_window"] = round(statistics.median(r.pop("featurize_ms")), 4)
            r["read_featurize_ms_per_window"] = round(r["read_ms_per_window"] + r["featurize_ms_per_window"], 4)
        new, old = spacing["per_bin"], spacing["raw"]
        spacing["speedup_vs_raw"] = round(old["read_featurize_ms_per_window"] / new["read_featurize_ms_per_window"], 2)
        spacing["bytes_ratio_vs_raw"] = round(new["bytes_per_sensor"] / old["bytes_per_sensor"], 4)
    predict = round(statistics.median(predict_ms), 4)
    dense = results["60s"]
    whole_over_predict = round((dense["per_bin"]["read_featurize_ms_per_window"] + predict) / predict, 2)
    print_table(f"Per window, 10-day window, {args.sensors} sensors per spacing, median of {args.repeats} rounds; "
                f"raw = commit {RAW_COMMIT}",
                ["spacing", "path", "events/window", "B/sensor", "B/window event", "read ms", "featurise ms",
                 "read + featurise ms", "raw / per-bin"],
                [[name, path, fmt(r["events_per_window"], ",.0f"), fmt(r["bytes_per_sensor"], ",.0f"),
                  fmt(r["bytes_per_window_event"], ".2f"), fmt(r["read_ms_per_window"], ".3f"),
                  fmt(r["featurize_ms_per_window"], ".3f"), fmt(r["read_featurize_ms_per_window"], ".3f"),
                  fmt(s["speedup_vs_raw"], ".1f") + "x" if path == "raw" else ""]
                 for name, s in results.items() for path, r in s.items() if path in ("per_bin", "raw")])
    print(f"\npredict (default model, BatchPredictor, batches of {args.batch}): {predict:.3f} ms per window")
    print(f"target at 60 s, read + featurise >= 10x faster than raw: "
          f"{'met' if dense['speedup_vs_raw'] >= 10 else 'NOT met'} ({dense['speedup_vs_raw']:.1f}x)")
    print(f"target at 60 s, read + featurise + predict <= 2x predict: "
          f"{'met' if whole_over_predict <= 2 else 'NOT met'} ({whole_over_predict:.2f}x: "
          f"{dense['per_bin']['read_featurize_ms_per_window']:.3f} + {predict:.3f} ms)")
    report = {
        **results, "predict_ms_per_window": predict, "predict_batch": args.batch,
        "speedup_vs_raw_60s": dense["speedup_vs_raw"], "whole_over_predict_60s": whole_over_predict,
        "targets_met": {"60s_read_featurize_10x_faster_than_raw": dense["speedup_vs_raw"] >= 10,
                        "60s_whole_at_most_2x_predict": whole_over_predict <= 2},
        "latent_dim": config.latent_dim, "bottleneck": config.bottleneck, "raw_commit": RAW_COMMIT,
        "sensors": args.sensors, "days": args.days, "repeats": args.repeats, "seed": args.seed,
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
