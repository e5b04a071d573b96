"""Model scoring speed: batched, padded-bucket scoring (``BatchPredictor``) against per-window predict,
and the cost of explanations against the previous default model.

The model is the default ``EncoderLatentAutoencoder`` for the default window: 240 steps, 9
channels (2 features: level, fleet, spread and extreme per feature, plus a count channel), a
latent sized by ``latent_size`` (46 → 11 → 46). Its scorer returns each window's score and its
contributions (its departure from normal windows per bin and channel), and every batch is explained
(``vigil.model.explain``), as the streamer does. It is built but not trained: training changes
weights, not the cost of a forward pass (the output says so). Windows are realistic: 10-day
windows of a synthetic fleet (ends drawn at random among events that have a full 10 days behind
them), featurised from their bins as the streamer does (``SensorBins.window`` of each, then
``channels_many`` on a batch of 512); each sensor's events are accumulated into bins once,
untimed: the buffer's apply does that at ingest (``accumulate_s`` says what it took here).

* **baseline** (``per_window_predict``): ``scorer.predict(x[i:i+1])`` once per window, the
  originating question's way (Keras' ``predict`` sets up a data pipeline on every call);
* **vigil** (``BatchPredictor``, ``max_batch=512``): the streamer's path, ``predict_on_batch`` on
  power-of-two buckets, one warm-up call first so tracing is not counted, plus ``explain``;
* **before**: the previous default's shape, scored the same way: 5 channels, latent 100 → 32,
  score only (no explanation); ``ratio_vs_before`` = vigil / before windows/s (target ≥ 0.8);
* **end to end**: each window's bins featurised, then ``BatchPredictor`` and ``explain`` in
  batches of 512 (no Redis read: see bench/density.py and bench/latency.py for that): main's
  scoring step before the detection heads;
* **end to end with the heads**: the streamer's scoring step as it is now, on the same batches:
  featurise, ``head_statistics``, ``BatchPredictor``, the calibrated heads (``Detector.score``) and
  ``explain_scored``; ``heads_ratio_vs_autoencoder_only`` = its windows/s / the row above's, in
  the same run, the paths alternating;
* **main's end to end** (the heads' target's baseline): main's scoring step before the detection
  heads, the real code of commit 2e09be8 (``_raw_path.MAIN_COMMIT``, its own ``bench/scoring.py``
  in a child process): the same windows, featurised by that commit's default channels, its default
  model, ``BatchPredictor`` and ``explain``; its repeats alternate with the others.
  ``heads_ratio_vs_main`` = the heads' windows/s / main's (target ≥ 0.8; ``--no-main`` skips it);
* **raw path** (baseline of the end to end): the same windows, model and batches at commit 8bb6346
  (``_raw_path.py`` runs that commit's code in a child process): ``featurize_window`` on each
  window's raw events, then ``BatchPredictor`` and ``explain``; its repeats alternate with the
  per-bin ones. ``end_to_end_ratio_vs_raw`` = per-bin / raw windows/s (``--no-raw`` skips it: it
  needs the git history).

Achieved GFLOP/s use an analytic count per window: the LSTM's gate matrix products,
``8·H·(C+H)`` FLOPs per step (4 gates, input and recurrent weights, multiply-add = 2) over T steps,
plus the dense autoencoder ``2·H·B + 2·B·H`` (the sequence decoder is not part of scoring);
biases, activations, standardisation and the errors are left out.

The last line of stdout is one JSON object; ``speedup_vs_per_window_predict`` = batched windows/s
/ per-window-predict windows/s (target ≥ 150x).

    .venv/bin/python bench/scoring.py            # 4096 batched windows, 30 per-window calls
    .venv/bin/python bench/scoring.py --no-raw --no-main   # no older code (no git history needed)
    .venv/bin/python bench/scoring.py --quick    # 1024 batched windows, 10 per-window calls
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import ExitStack

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr

import keras  # noqa: E402
import numpy as np  # noqa: E402

from _common import fill_unset, fmt, log, print_table  # noqa: E402
from _raw_path import MAIN_COMMIT, RAW_COMMIT, RawPath, fleet_fingerprint  # noqa: E402
from vigil.buffer.bins import BinStats, accumulate  # noqa: E402
from vigil.events.frame import event_table  # noqa: E402
from vigil.features import FleetStats, WindowSpec, channel_features, channels_many  # noqa: E402
from vigil.features.dataset import fleet_stats  # noqa: E402
from vigil.model.config import TrainConfig  # noqa: E402
from vigil.features.heads import head_statistics  # noqa: E402
from vigil.model.detector import DETECTOR_HEADS, Detector, FleetReference  # noqa: E402
from vigil.model.explain import explain, explain_scored  # noqa: E402
from vigil.model.autoencoder import EncoderLatentAutoencoder  # noqa: E402
from vigil.model.predictor import BatchPredictor, Scored  # noqa: E402
from vigil.model.training import make_scorer  # noqa: E402
from vigil.simulate import FleetSpec, generate_fleet  # noqa: E402

DAY_MS = 86_400_000
# The previous default model's shape (featurisation v1: mean and spread per feature plus count).
BEFORE_CHANNELS, BEFORE_LATENT, BEFORE_BOTTLENECK = 5, 100, 32


def backend_device() -> str:
    """Where the Keras backend runs the model: "gpu" or "cpu" (bench/gpu.py compares the two)."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax
        return "gpu" if jax.devices()[0].platform in ("gpu", "cuda", "rocm") else jax.devices()[0].platform
    if backend == "torch":
        import torch
        return "gpu" if torch.cuda.is_available() else "cpu"
    import tensorflow as tf  # a benchmark, not model code: asking TensorFlow for its devices is fine
    return "gpu" if tf.config.list_physical_devices("GPU") else "cpu"


def flops_per_window(steps: int, channels: int, latent: int, bottleneck: int) -> int:
    """The scorer's matrix products: the encoder LSTM and the dense autoencoder (the sequence
    decoder only trains the encoder; contributions are elementwise)."""
    lstm = 8 * latent * (channels + latent) * steps
    dense = 2 * latent * bottleneck + 2 * bottleneck * latent
    return lstm + dense


def default_scorer(spec: WindowSpec, latent_dim: int | None = None, bottleneck: int | None = None):
    """The default model for the window (built, not trained), its config and its scorer."""
    config = TrainConfig(latent_dim=latent_dim, bottleneck=bottleneck).sized(spec.steps, spec.channels)
    model = EncoderLatentAutoencoder(spec.steps, spec.channels, config.latent_dim, config.bottleneck)
    model.build((None, spec.steps, spec.channels))
    return config, model, make_scorer(model)


def sample_windows(args: argparse.Namespace, spec: WindowSpec):
    """``(series, end index)`` pairs with a full window behind them, the fleet statistics and the
    fleet's fingerprint (the raw path draws the same windows: ``_raw_path.op_scoring_setup``)."""
    fleet = generate_fleet(FleetSpec(sensors=args.sensors, days=args.days, seed=args.seed))
    table = event_table(fleet.events, fleet.spec.features, fleet.spec.label_column)
    stats = fleet_stats(table, spec)
    candidates = [(s, i) for s in table for i in np.flatnonzero(s.ts_ms >= s.ts_ms[0] + spec.length_ms)]
    rng = np.random.default_rng(args.seed)
    picks = rng.choice(len(candidates), size=args.windows, replace=len(candidates) < args.windows)
    return [candidates[i] for i in picks], stats, fleet_fingerprint(fleet.events, fleet.spec.features)


def binned_windows(picked, spec: WindowSpec) -> list[tuple]:
    """Each picked window as a buffer holds it: ``(sensor_id, bins, end_ms, last bin as of end_ms)``.
    A sensor's events are accumulated once (``window_bins``' way: a window holds the events at its
    end's instant, and its last bin is the record as it stood right after them)."""
    by_sensor: dict[str, tuple] = {}
    for k, (s, _) in enumerate(picked):
        by_sensor.setdefault(s.sensor_id, (s, []))[1].append(k)
    out: list = [None] * len(picked)
    for s, ks in by_sensor.values():
        ends = s.ts_ms[[picked[k][1] for k in ks]]
        bins, partial = accumulate(s.ts_ms, s.values, spec.bin_ms, np.searchsorted(s.ts_ms, ends, side="right") - 1)
        for k, end, p in zip(ks, ends, partial):
            out[k] = (s.sensor_id, bins, int(end), p)
    return out


def scoring_with_heads(windows, spec: WindowSpec, stats: FleetStats, batch: int, predictor, detector, ends) -> None:
    """The streamer's scoring step with the detection heads (``streamer/scoring.py``), ``batch`` at
    a time: featurise, head statistics, the autoencoder, the calibrated heads, the explanations."""
    for at in range(0, len(windows), batch):
        part = windows[at:at + batch]
        bins = BinStats.stack([b.window(end // spec.bin_ms, spec.steps, partial=p, end_ms=end) for _, b, end, p in part])
        baselines = [stats.baseline_for(sensor_id) for sensor_id, *_ in part]
        x = channels_many(bins, spec, stats, baselines)
        heads = head_statistics(bins, baselines)
        ae = predictor(x)
        scores, calibrated = detector.score(ae.scores, heads, stats)
        explain_scored(Scored(scores, ae.contributions, calibrated), heads, spec, stats, ["feature_1", "feature_2"],
                       ends[at:at + batch])


def untrained_detector(stats: FleetStats) -> Detector:
    """Calibrators for timing only (the cost of a calibrated head does not depend on its fit)."""
    normal = np.random.default_rng(0).exponential(1.0, (1000, len(DETECTOR_HEADS)))
    return Detector.fit(normal, FleetReference(np.zeros(len(stats.mean)), np.eye(len(stats.mean))))


def featurize(windows, spec: WindowSpec, stats: FleetStats, batch: int) -> np.ndarray:
    """The streamer's featurisation (``streamer/scoring.py``) of ``binned_windows``, ``batch`` at a time."""
    return np.concatenate([
        channels_many([bins.window(end // spec.bin_ms, spec.steps, partial=p, end_ms=end) for _, bins, end, p in part],
                         spec, stats, [stats.baseline_for(sensor_id) for sensor_id, *_ in part])
        for part in (windows[at:at + batch] for at in range(0, len(windows), batch))])


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1024 windows, 10 per-window calls, 1 repeat (unless given)")
    p.add_argument("--windows", type=int, help="windows for the batched and end-to-end runs (default 4096)")
    p.add_argument("--per-window", type=int, help="windows scored one predict() call each (default 30)")
    p.add_argument("--repeats", type=int, help="timed repeats of the batched runs; the median is reported (default 3)")
    p.add_argument("--max-batch", type=int, default=512, help="BatchPredictor max_batch (default 512)")
    p.add_argument("--steps", type=int, default=240)
    p.add_argument("--latent-dim", type=int, help="latent size (default: the training default for the window)")
    p.add_argument("--bottleneck", type=int, help="dense bottleneck (default: the training default)")
    p.add_argument("--sensors", type=int, default=50, help="sensors of the synthetic fleet windows come from")
    p.add_argument("--days", type=float, default=12.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-raw", dest="raw", action="store_false", help=f"skip the raw path (commit {RAW_COMMIT})")
    p.add_argument("--no-main", dest="main", action="store_false",
                   help=f"skip main's scoring step before the heads (commit {MAIN_COMMIT})")
    args = p.parse_args(argv)
    fill_unset(args, {"windows": 1024, "per_window": 10, "repeats": 1},
               {"windows": 4096, "per_window": 30, "repeats": 3})
    return args


def rate(run, n: int) -> float:
    started = time.perf_counter()
    run()
    return n / (time.perf_counter() - started)


def windows_per_s(run, n: int, repeats: int) -> tuple[float, list[float]]:
    runs = [rate(run, n) for _ in range(repeats)]
    return statistics.median(runs), runs


def main(argv=None) -> int:
    args = parse_args(argv)
    with ExitStack() as stack:
        raw = stack.enter_context(RawPath()) if args.raw else None
        main_path = stack.enter_context(RawPath(MAIN_COMMIT)) if args.main else None
        return run(args, raw, main_path)


def run(args: argparse.Namespace, raw: RawPath | None, main_path: RawPath | None = None) -> int:
    keras.utils.set_random_seed(args.seed)
    spec = WindowSpec(length_ms=10 * DAY_MS, steps=args.steps, n_features=2)
    log(f"windows: {args.windows} from a synthetic fleet of {args.sensors} sensors x {args.days:g} days")
    picked, stats, fleet = sample_windows(args, spec)
    started = time.perf_counter()
    windows = binned_windows(picked, spec)
    accumulate_s = time.perf_counter() - started
    x = featurize(windows, spec, stats, args.max_batch)
    config, model, scorer = default_scorer(spec, args.latent_dim, args.bottleneck)
    flops = flops_per_window(spec.steps, spec.channels, config.latent_dim, config.bottleneck)
    log(f"model: untrained (built), {model.count_params():,} parameters, {flops / 1e6:.2f} MFLOP per window, "
        f"keras backend {keras.backend.backend()} on {backend_device()}")
    owners, ends = channel_features(spec), np.array([int(s.ts_ms[i]) for s, i in picked])
    if raw is not None:
        log(f"raw path ({RAW_COMMIT}): the same windows and model in its child process")
        theirs = raw.call("scoring_setup", sensors=args.sensors, days=args.days, seed=args.seed, windows=args.windows,
                          steps=args.steps, max_batch=args.max_batch, latent_dim=args.latent_dim,
                          bottleneck=args.bottleneck)
        if theirs["fleet"] != fleet or theirs["ends"] != [len(ends), int(ends.sum())]:
            raise RuntimeError("the raw path drew other windows")
    if main_path is not None:
        log(f"main before the heads ({MAIN_COMMIT}): the same windows in its child process")
        theirs = main_path.call("main_scoring_setup", sensors=args.sensors, days=args.days, seed=args.seed,
                                windows=args.windows, steps=args.steps, max_batch=args.max_batch)
        if theirs["fleet"] != fleet or theirs["ends"] != [len(ends), int(ends.sum())]:
            raise RuntimeError(f"main ({MAIN_COMMIT}) drew other windows")

    log(f"baseline: scorer.predict() on one window at a time, {args.per_window} windows")
    scorer.predict(x[:1], verbose=0)  # trace once: the per-call cost is what is measured
    started = time.perf_counter()
    for i in range(args.per_window):
        scorer.predict(x[i:i + 1], verbose=0)
    per_window = args.per_window / (time.perf_counter() - started)
    log(f"  {per_window:,.1f} windows/s")

    def score_and_explain(tensors, end_ms):
        scored = predictor(tensors)
        explain(scored.contributions, owners, ["feature_1", "feature_2"], end_ms, spec.length_ms)

    predictor = BatchPredictor(scorer, max_batch=args.max_batch)
    predictor.warm_up(spec.steps, spec.channels)
    before_model = EncoderLatentAutoencoder(spec.steps, BEFORE_CHANNELS, BEFORE_LATENT, BEFORE_BOTTLENECK)
    before_model.build((None, spec.steps, BEFORE_CHANNELS))
    inputs = keras.Input((spec.steps, BEFORE_CHANNELS))
    before = BatchPredictor(keras.Model(inputs, before_model.score(inputs)), max_batch=args.max_batch)
    before.warm_up(spec.steps, BEFORE_CHANNELS)
    x_before = np.ascontiguousarray(x[:, :, :BEFORE_CHANNELS])

    def end_to_end():
        for start in range(0, len(windows), args.max_batch):
            part = windows[start:start + args.max_batch]
            score_and_explain(featurize(part, spec, stats, args.max_batch), ends[start:start + args.max_batch])

    batched, batched_runs = windows_per_s(lambda: score_and_explain(x, ends), len(x), args.repeats)
    before_rate, before_runs = windows_per_s(lambda: before(x_before), len(x), args.repeats)
    scores_only, _ = windows_per_s(lambda: predictor(x), len(x), args.repeats)
    detector = untrained_detector(stats)
    runs: dict[str, list[float]] = {"e2e": [], "feat": [], "raw_e2e": [], "raw_feat": [], "heads": [], "main": []}
    for _ in range(args.repeats):  # the paths alternate, so all see the same machine load
        runs["e2e"].append(rate(end_to_end, len(windows)))
        runs["heads"].append(rate(lambda: scoring_with_heads(windows, spec, stats, args.max_batch, predictor,
                                                             detector, ends), len(windows)))
        runs["feat"].append(rate(lambda: featurize(windows, spec, stats, args.max_batch), len(windows)))
        if raw is not None:
            runs["raw_e2e"].append(raw.call("scoring_run", what="end_to_end")["windows_per_s"])
            runs["raw_feat"].append(raw.call("scoring_run", what="featurize")["windows_per_s"])
        if main_path is not None:
            runs["main"].append(main_path.call("main_scoring_run")["windows_per_s"])
    e2e, feat, raw_e2e, raw_feat, heads, main_e2e = (statistics.median(r) if r else None for r in runs.values())
    heads_ratio = heads / e2e
    heads_vs_main = main_e2e and heads / main_e2e
    speedup = batched / per_window
    gflops = batched * flops / 1e9
    ratio = batched / before_rate
    print_table(f"Scoring {spec.steps} steps x {spec.channels} channels, LSTM {config.latent_dim} -> "
                f"{config.bottleneck} -> {config.latent_dim} (untrained, built; {flops / 1e6:.2f} MFLOP/window), "
                f"{keras.backend.backend()} on {os.cpu_count()} CPUs",
                ["path", "windows", "windows/s", "GFLOP/s", "speedup"],
                [["per-window scorer.predict()", args.per_window, fmt(per_window, ",.1f"),
                  fmt(per_window * flops / 1e9, ".3f"), "1.0"],
                 [f"BatchPredictor + explain (max_batch {args.max_batch})", len(x), fmt(batched, ",.0f"),
                  fmt(gflops, ".2f"), fmt(speedup, ",.1f")],
                 ["BatchPredictor, scores and contributions only", len(x), fmt(scores_only, ",.0f"), "-", "-"],
                 [f"before: {BEFORE_CHANNELS} channels, {BEFORE_LATENT} -> {BEFORE_BOTTLENECK}, score only", len(x),
                  fmt(before_rate, ",.0f"), "-", "-"],
                 ["end to end: featurise from bins + BatchPredictor + explain", len(windows), fmt(e2e, ",.0f"),
                  fmt(e2e * flops / 1e9, ".2f"), fmt(e2e / per_window, ",.1f")],
                 ["featurise from bins alone", len(windows), fmt(feat, ",.0f"), "-", "-"],
                 ["end to end with the detection heads (the streamer's scoring step)", len(windows),
                  fmt(heads, ",.0f"), "-", "-"],
                 [f"main before the heads ({MAIN_COMMIT}): its featurisation + BatchPredictor + explain",
                  len(windows), fmt(main_e2e, ",.0f"), "-", "-"],
                 [f"raw path ({RAW_COMMIT}): featurize_window on events + BatchPredictor + explain", len(windows),
                  fmt(raw_e2e, ",.0f"), fmt(raw_e2e and raw_e2e * flops / 1e9, ".2f"),
                  fmt(raw_e2e and raw_e2e / per_window, ",.1f")],
                 [f"raw path ({RAW_COMMIT}): featurize_window alone", len(windows), fmt(raw_feat, ",.0f"), "-", "-"]])
    print(f"target >= 150x: {'met' if speedup >= 150 else 'NOT met'} ({speedup:,.1f}x); with explanations "
          f"{ratio:.2f} of the previous default's windows/s (target >= 0.8: {'met' if ratio >= 0.8 else 'NOT met'}); "
          f"median of {args.repeats} repeat(s)")
    print(f"with the detection heads: {heads_ratio:.2f} of the autoencoder-only end to end's windows/s (this "
          f"model's scoring step without the heads)")
    if main_path is not None:
        print(f"with the detection heads: {heads_vs_main:.2f} of main's end to end before the heads ({MAIN_COMMIT}; "
              f"target >= 0.8: {'met' if heads_vs_main >= 0.8 else 'NOT met'})")
    e2e_ratio, feat_ratio = (raw_e2e and e2e / raw_e2e), (raw_feat and feat / raw_feat)
    if raw is not None:
        print(f"per-bin / raw path: end to end {e2e_ratio:.2f}x, featurisation {feat_ratio:.2f}x the windows/s; "
              f"accumulating the sampled sensors' events into bins (the buffer's apply, untimed above) took "
              f"{accumulate_s:.2f} s")
    report = {
        "windows_per_s": round(batched, 1), "speedup_vs_per_window_predict": round(speedup, 2),
        "ratio_vs_before": round(ratio, 3), "before_windows_per_s": round(before_rate, 1),
        "scores_only_windows_per_s": round(scores_only, 1),
        "gflops": round(gflops, 3), "per_window_predict_windows_per_s": round(per_window, 2),
        "end_to_end_windows_per_s": round(e2e, 1), "featurize_windows_per_s": round(feat, 1),
        "heads_end_to_end_windows_per_s": round(heads, 1), "heads_ratio_vs_autoencoder_only": round(heads_ratio, 3),
        "main_end_to_end_windows_per_s": main_e2e and round(main_e2e, 1),
        "heads_ratio_vs_main": heads_vs_main and round(heads_vs_main, 3), "main_commit": MAIN_COMMIT if main_path else None,
        "raw_end_to_end_windows_per_s": raw_e2e and round(raw_e2e, 1),
        "raw_featurize_windows_per_s": raw_feat and round(raw_feat, 1),
        "end_to_end_ratio_vs_raw": e2e_ratio and round(e2e_ratio, 3),
        "featurize_ratio_vs_raw": feat_ratio and round(feat_ratio, 3),
        "accumulate_s": round(accumulate_s, 3), "raw_commit": RAW_COMMIT if raw is not None else None,
        "flops_per_window": flops, "windows": len(x), "per_window_calls": args.per_window,
        "max_batch": args.max_batch, "repeats": args.repeats, "batched_runs": [round(v, 1) for v in batched_runs],
        "before_runs": [round(v, 1) for v in before_runs],
        "steps": spec.steps, "channels": spec.channels, "latent_dim": config.latent_dim,
        "bottleneck": config.bottleneck, "trained": False, "parameters": model.count_params(),
        "backend": keras.backend.backend(), "device": backend_device(), "cpus": os.cpu_count(),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
