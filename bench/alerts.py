"""Alerts an operator would get: Vigil and the baselines backtested under the streamer's policy.

Trains on a synthetic fleet (1,000 sensors x 14 days, seed 0) with the recipe ``vigil train``
runs (``trainer.fit.training_set``; each model's threshold from the false-alert budget on the
held-out normal sensors, ``trainer.fit.budget_for``), then replays a second fleet (1,000 sensors x
20 days, seed 1, anomalies starting on days 14-19) through the backtest's scoring points and the
alert policy (``vigil.alerts``) with the default settings, except that a sensor is scored every
``--score-every`` events (6: hourly on this fleet; scoring every event takes 6x longer and the
policy's persistence is 2 h of event time either way). The windows are featurised once and every
model scores the same ones.

Per model: alert precision, sensor recall (after the onset), false alerts per 100 normal
sensor-days (past the warm-up), median hours from onset to the first alert, and the rate the
budget fit expected. Last line: one JSON object with those figures per model and
``ratio_precision_vs_best_baseline``.

    .venv/bin/python bench/alerts.py            # about 25 minutes on 2 cores
    .venv/bin/python bench/alerts.py --quick    # smoke run: 100 sensors, 2 epochs
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pandas as pd  # noqa: E402

from baselines import BASELINE_NAMES, VigilAutoencoder, baselines  # noqa: E402
from trainer.fit import budget_for, training_set  # noqa: E402
from vigil.alerts import AlertPolicy  # noqa: E402
from vigil.alerts.backtest import point_frame, replay, scoring_points  # noqa: E402
from vigil.alerts.outcome import alert_outcome, alertable_days  # noqa: E402
from vigil.events.frame import event_table  # noqa: E402
from vigil.features import WindowSpec  # noqa: E402
from vigil.features.dataset import iter_windows  # noqa: E402
from vigil.model.config import TrainConfig  # noqa: E402
from vigil.model.threshold import choose_threshold  # noqa: E402
from vigil.settings import VigilSettings  # noqa: E402
from vigil.simulate import FleetSpec, generate_fleet  # noqa: E402

DAY_MS = 86_400_000
OURS = "vigil"
FIGURES = ("alert_precision", "sensor_recall", "false_alerts_per_100_sensor_days", "median_lead_hours",
           "alerts", "false_alerts", "early_alerts", "sensors_alerted")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 100 sensors, 2 epochs")
    p.add_argument("--sensors", type=int, help="sensors per fleet (default 1000)")
    p.add_argument("--score-every", type=int, default=6, help="score a sensor every K events (default 6)")
    p.add_argument("--epochs", type=int, help=f"LSTM epochs (default {TrainConfig.epochs})")
    p.add_argument("--baselines", type=lambda v: [n.strip() for n in v.split(",") if n.strip()],
                   help=f"comma-separated baselines (default all: {', '.join(BASELINE_NAMES)})")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.sensors = args.sensors or (100 if args.quick else 1000)
    args.epochs = args.epochs or (2 if args.quick else TrainConfig.epochs)
    args.dense_epochs = 5 if args.quick else TrainConfig.dense_epochs
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    settings = VigilSettings(stream={"score_every_events": args.score_every})
    alerts = settings.alerts
    train = generate_fleet(FleetSpec(sensors=args.sensors, days=14, seed=args.seed))
    test = generate_fleet(FleetSpec(sensors=args.sensors, days=20, seed=args.seed + 1, onset_days=(14, 19)))
    features = train.spec.event_features
    log(f"fleets: train {args.sensors} x 14 d (seed {args.seed}), test {args.sensors} x 20 d, onsets days 14-19")
    data = training_set(event_table(train.events, features, train.spec.label_column),
                        WindowSpec(10 * DAY_MS, settings.window.steps, len(features)), seed=args.seed,
                        min_events=settings.window.min_events)
    models = [VigilAutoencoder(OURS, TrainConfig(epochs=args.epochs, dense_epochs=args.dense_epochs, seed=args.seed))]
    models += [m for m in baselines(args.epochs, args.dense_epochs, args.seed)
               if args.baselines is None or m.name in args.baselines]
    fitted = {}
    for model in models:
        t0 = time.monotonic()
        log(f"fitting {model.name} on {len(data.normal)} windows")
        model.fit(data.normal.x)
        threshold = budget_for(lambda x: model.score(x).scores, data, alerts, args.score_every)
        if threshold is None:  # cannot happen on these fleets; said loudly if it does
            calib = data.validation
            threshold = choose_threshold(model.score(calib.x).scores, calib.label)
        fitted[model.name] = (model, threshold)
        log(f"  {model.name}: {time.monotonic() - t0:.0f} s, threshold {threshold.value:.4g} ({threshold.method})")

    table = event_table(test.events, features, test.spec.label_column)
    points = scoring_points(args.score_every, 0, settings.window.min_events, data.spec.length_ms)
    parts = {name: [] for name in fitted}
    done, t0 = 0, time.monotonic()
    for windows in iter_windows(table, data.spec, data.stats, min_events=settings.window.min_events, points=points):
        for name, (model, _) in fitted.items():
            scores = model.score(windows.x).scores
            parts[name].append(point_frame(table, windows.sensor_id, windows.end_ms, windows.n_events, scores,
                                           windows.label, data.spec.length_ms))
        done += len(windows)
        log(f"  backtest: {done} scoring points, {done / (time.monotonic() - t0):.0f}/s")
    onsets = {s: (None if o != o or o is None else int(o)) for s, o in zip(test.truth.sensor_id, test.truth.onset_ms)}
    policy = AlertPolicy(alerts, data.spec.length_ms)
    results = {}
    for name, (model, threshold) in fitted.items():
        frame = pd.concat(parts[name], ignore_index=True)
        records, warming = replay(frame, policy, threshold.value, name)
        frame["warming_up"] = warming
        outcome = alert_outcome(records, alertable_days(frame), onsets=onsets)
        results[name] = {**{k: outcome.get(k) for k in FIGURES}, "threshold": threshold.value,
                         "threshold_method": threshold.method, "sensor_days": outcome["sensor_days"],
                         "expected_false_alerts_per_100_sensor_days": threshold.detail.get(
                             "expected_false_alerts_per_100_sensor_days")}
    print_table(results)
    best = max((r["alert_precision"] or 0 for n, r in results.items() if n != OURS), default=None)
    ours = results[OURS]["alert_precision"] or 0
    report = {"settings": {**vars(args), "policy": alerts.model_dump(mode="json")}, "models": results,
              "ratio_precision_vs_best_baseline": round(ours / best, 3) if best else None,
              "wall_seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(report, default=str))
    return 0


def print_table(results: dict) -> None:
    header = ["model", "precision", "recall", "false/100 sd", "median lead h", "alerts", "false", "early",
              "threshold"]
    rows = [[n, *(_fmt(r[k]) for k in ("alert_precision", "sensor_recall", "false_alerts_per_100_sensor_days",
                                        "median_lead_hours", "alerts", "false_alerts", "early_alerts")),
             f"{r['threshold']:.4g}"] for n, r in results.items()]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
