"""Alerts an operator would get: Vigil and the baselines backtested under the streamer's policy.

Trains on a synthetic fleet (1,000 sensors x 14 days, seed 0) with the recipe ``vigil train``
runs (``trainer.fit.training_set``; each model's threshold from the false-alert budget on the
held-out normal sensors, as ``trainer.fit.fit_model`` derives it), then replays a second fleet
(1,000 sensors x 20 days, seed 1, anomalies starting on days 14-19) through the backtest's scoring
points and the alert policy (``vigil.alerts``) with the default settings: a sensor is scored at
the points of ``--score-every`` (``stream.score_every``'s default, one bin: hourly; 0: every event,
every 10 minutes on this fleet, six times the scoring). Windows are featurised once; every model
scores the same ones. ``--curve 0,30m,1h,2h`` scores Vigil at every event once and reports its
alerts at each cadence, keeping the points that cadence would score (the cadence curve in
bench/README.md).

Per model: alert precision, sensor recall (after the onset), false alerts per 100 normal
sensor-days (past the warm-up), median hours from onset to the first alert. Beside the budget's
operating point, each model's precision at Vigil's recall (its best threshold that reaches that
recall) compares them at equal recall. ``--calibrate`` adds Vigil with per-sensor calibration of
the score (Numenta's anomaly likelihood); ``--sweep`` backtests a grid of policies for Vigil.
``--cache DIR`` keeps the scored points, so later runs skip training and scoring.

Last line: one JSON object with the figures per model and ``ratio_precision_vs_best_baseline``
(at equal recall).

    .venv/bin/python bench/alerts.py                       # about 20 minutes on 2 cores
    .venv/bin/python bench/alerts.py --quick               # smoke run: 100 sensors, 2 epochs
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import norm  # noqa: E402

from baselines import BASELINE_NAMES, Vigil, baselines  # noqa: E402
from trainer.fit import heldout_windows, training_set  # noqa: E402
from vigil.alerts import AlertPolicy  # noqa: E402
from vigil.alerts.backtest import point_frame, replay, scoring_points  # noqa: E402
from vigil.alerts.budget import budget_threshold  # noqa: E402
from vigil.alerts.outcome import alert_outcome, alertable_days, truth_onsets  # noqa: E402
from vigil.events.frame import event_table  # noqa: E402
from vigil.features import WindowSpec  # noqa: E402
from vigil.features.dataset import iter_windows  # noqa: E402
from vigil.model.config import TrainConfig  # noqa: E402
from vigil.durations import format_span, parse_span  # noqa: E402
from vigil.settings import AlertSettings, StreamSettings, VigilSettings  # noqa: E402
from vigil.buffer import Cadence  # noqa: E402
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
    p.add_argument("--score-every", type=parse_span, default=StreamSettings().score_every,
                   help=f"the scoring cadence, stream.score_every (default {format_span(StreamSettings().score_every)})")
    p.add_argument("--curve", type=lambda v: [parse_span(x) for x in v.split(",") if x.strip()],
                   help="comma-separated cadences (e.g. 0,30m,1h,2h): score every event, report Vigil at each")
    p.add_argument("--epochs", type=int, help=f"LSTM epochs (default {TrainConfig.epochs})")
    p.add_argument("--baselines", type=lambda v: [n.strip() for n in v.split(",") if n.strip()],
                   help=f"comma-separated baselines (default all: {', '.join(BASELINE_NAMES)})")
    p.add_argument("--calibrate", action="store_true", help="also Vigil with per-sensor anomaly likelihood")
    p.add_argument("--sweep", action="store_true", help="also a grid of alert policies for Vigil")
    p.add_argument("--cache", type=Path, metavar="DIR", help="keep (or reuse) the scored points here")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    args.sensors = args.sensors or (100 if args.quick else 1000)
    args.epochs = args.epochs or (2 if args.quick else TrainConfig.epochs)
    args.dense_epochs = 5 if args.quick else TrainConfig.dense_epochs
    return args


# ---------------------------------------------------------------------------------------------
# Scoring (or the cache)
# ---------------------------------------------------------------------------------------------

def scored_points(args, settings: VigilSettings) -> tuple[dict, dict]:
    """Per model: (held-out normal points, test points) as POINT_COLUMNS frames; and the run's facts."""
    if args.cache and (args.cache / "facts.json").is_file():
        facts = json.loads((args.cache / "facts.json").read_text())
        log(f"reusing the scored points in {args.cache}")
        return {name: tuple(pd.read_parquet(args.cache / f"{name}.{part}.parquet") for part in ("heldout", "test"))
                for name in facts["models"]}, facts
    train = generate_fleet(FleetSpec(sensors=args.sensors, days=14, seed=args.seed))
    test = generate_fleet(FleetSpec(sensors=args.sensors, days=20, seed=args.seed + 1, onset_days=(14, 19)))
    features = train.spec.event_features
    log(f"fleets: train {args.sensors} x 14 d (seed {args.seed}), test {args.sensors} x 20 d, onsets days 14-19")
    data = training_set(event_table(train.events, features, train.spec.label_column),
                        WindowSpec(10 * DAY_MS, settings.window.steps, len(features)), seed=args.seed,
                        min_events=settings.window.min_events)
    # From the start of each held-out sensor, so per-sensor calibration has its history too.
    every_ms = Cadence.from_settings(settings).every_ms
    held = heldout_windows(data, settings.alerts, every_ms, min_history_ms=0)
    models = [Vigil(OURS, TrainConfig(epochs=args.epochs, dense_epochs=args.dense_epochs, seed=args.seed))]
    models += [m for m in baselines(args.epochs, args.dense_epochs, args.seed)
               if args.baselines is None or m.name in args.baselines]
    frames = {}
    for model in models:
        t0 = time.monotonic()
        log(f"fitting {model.name} on {len(data.normal)} windows")
        model.fit(data)
        w = held.windows
        frames[model.name] = [point_frame(w, model.score(w).scores, data.spec.length_ms), []]
        log(f"  {model.name}: {time.monotonic() - t0:.0f} s")
    table = event_table(test.events, features, test.spec.label_column)
    cadence = Cadence(0 if args.curve else every_ms)
    points = scoring_points(cadence, settings.window.min_events, data.spec.length_ms, data.spec.bin_ms)
    done, t0 = 0, time.monotonic()
    for windows in iter_windows(table, data.spec, data.stats, min_events=settings.window.min_events, points=points):
        for model in models:
            frames[model.name][1].append(point_frame(windows, model.score(windows).scores, data.spec.length_ms))
        done += len(windows)
        log(f"  backtest: {done} scoring points, {done / (time.monotonic() - t0):.0f}/s")
    out = {name: (held_frame, pd.concat(parts, ignore_index=True)) for name, (held_frame, parts) in frames.items()}
    facts = {"models": list(out), "point_ms": held.point_ms, "every_ms": cadence.every_ms,
             "gap_ms": heldout_windows(data, settings.alerts, 0, min_history_ms=0).point_ms,
             "length_ms": data.spec.length_ms,
             "bin_ms": data.spec.bin_ms,
             "onsets": truth_onsets(test.truth),
             "kinds": {s: k for s, k in zip(test.truth.sensor_id, test.truth.kind) if isinstance(k, str)}}
    if args.cache:
        args.cache.mkdir(parents=True, exist_ok=True)
        for name, (held_frame, test_frame) in out.items():
            held_frame.to_parquet(args.cache / f"{name}.heldout.parquet")
            test_frame.to_parquet(args.cache / f"{name}.test.parquet")
        (args.cache / "facts.json").write_text(json.dumps(facts))
    return out, facts


# ---------------------------------------------------------------------------------------------
# Per-sensor calibration: Numenta's anomaly likelihood
# ---------------------------------------------------------------------------------------------

def likelihood(frame: pd.DataFrame, long: str = "3D", short: str = "3h") -> pd.DataFrame:
    """Each score replaced by -log10 of the chance that the sensor's recent mean score (``short``)
    is this high given its own earlier scores (``long``, a normal law): Numenta's anomaly
    likelihood, on each sensor's own history instead of the fleet's."""
    out = []
    for _, part in frame.sort_values(["sensor_id", "window_end"]).groupby("sensor_id", sort=False):
        s = pd.Series(part["score"].to_numpy(), index=pd.to_datetime(part["window_end"].to_numpy(), unit="ms"))
        mean = s.rolling(long, closed="left", min_periods=24).mean()
        std = s.rolling(long, closed="left", min_periods=24).std()
        recent = s.rolling(short).mean()
        z = ((recent - mean) / std.clip(lower=1e-9)).to_numpy()
        tail = norm.logsf(np.nan_to_num(z, nan=0.0)) / -np.log(10)
        out.append(part.assign(score=np.maximum(tail, 1e-6)))
    return pd.concat(out, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# Backtest under a policy
# ---------------------------------------------------------------------------------------------

def operate(name: str, held: pd.DataFrame, test: pd.DataFrame, facts: dict, alerts: AlertSettings,
            threshold: float | None = None) -> dict:
    """The model's outcome under ``alerts``; its threshold from the budget unless given."""
    warm_ms = alerts.warmup_fraction * facts["length_ms"]
    method = "given"
    if threshold is None:
        warm = held[held["history_ms"] >= warm_ms]
        fitted = budget_threshold(warm["score"].to_numpy(), warm["sensor_id"].to_numpy(),
                                  warm["window_end"].to_numpy(), alerts, facts["point_ms"], facts["length_ms"],
                                  facts["bin_ms"])
        if fitted is None:
            raise ValueError(f"{name}: too little held-out time past a warm-up of {alerts.warmup_fraction}")
        threshold, method = fitted.value, fitted.method
    policy = AlertPolicy(alerts, facts["length_ms"], facts["bin_ms"])
    records, warming = replay(test, policy, threshold, name)
    outcome = alert_outcome(records, alertable_days(test.assign(warming_up=warming)), onsets=facts["onsets"])
    result = {**{k: outcome.get(k) for k in FIGURES}, "threshold": threshold, "threshold_method": method,
              "sensor_days": outcome["sensor_days"]}
    found = {r.sensor_id for r in records if r.kind == "alert" and r.sensor_id in outcome.get("lead_hours", {})}
    kinds = pd.Series(facts["kinds"])
    result["recall_by_kind"] = {k: round(float(np.mean([s in found for s in kinds[kinds == k].index])), 2)
                                for k in sorted(kinds.unique())}
    return result


def precision_at_recall(name: str, held, test, facts, alerts: AlertSettings, recall: float) -> float | None:
    """The best precision among thresholds (quantiles of the test scores) that reach ``recall``
    (the caller adds the budget's own operating point)."""
    warm = test.loc[test["history_ms"] >= alerts.warmup_fraction * facts["length_ms"], "score"]
    best = None
    for q in (0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999):
        r = operate(name, held, test, facts, alerts, threshold=float(warm.quantile(q)))
        if (r["sensor_recall"] or 0) >= recall and r["alert_precision"] is not None:
            best = max(best or 0.0, r["alert_precision"])
    return best


def sweep(held, test, facts, base: AlertSettings) -> list[dict]:
    rows = []
    grid = itertools.product((0.1, 0.2, 0.5), (1, 2, 3), (parse_span("0s"), parse_span("1 bin"), parse_span("6 bins")))
    for warmup, points, duration in grid:
        alerts = base.model_copy(update={"warmup_fraction": warmup, "for_points": points, "for_duration": duration})
        r = operate(OURS, held, test, facts, alerts)
        rows.append({"warmup_fraction": warmup, "for_points": points, "for_duration": format_span(duration),
                     **{k: r[k] for k in ("alert_precision", "sensor_recall", "false_alerts_per_100_sensor_days",
                                          "median_lead_hours", "threshold")}})
        log(f"  sweep {rows[-1]}")
    return rows


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    settings = VigilSettings(stream={"score_every": args.score_every})
    frames, facts = scored_points(args, settings)
    curve = cadence_curve(args, settings, frames, facts) if args.curve else None
    if facts["every_ms"] != Cadence.from_settings(settings).every_ms:  # scored finer: keep the cadence's points
        cadence = Cadence.from_settings(settings)
        frames = {name: (held, at_cadence(test, cadence)) for name, (held, test) in frames.items()}
        facts = {**facts, "point_ms": max(facts["gap_ms"], cadence.every_ms)}
    if args.calibrate:
        held, test = frames[OURS]
        frames[f"{OURS}+likelihood"] = (likelihood(held), likelihood(test))
    results = {name: operate(name, held, test, facts, settings.alerts) for name, (held, test) in frames.items()}
    recall = results[OURS]["sensor_recall"] or 0
    for name, (held, test) in frames.items():
        scanned = precision_at_recall(name, held, test, facts, settings.alerts, recall)
        own = results[name]["alert_precision"] if (results[name]["sensor_recall"] or 0) >= recall else None
        results[name]["precision_at_vigil_recall"] = max((p for p in (scanned, own) if p is not None), default=None)
    print_table(results)
    best = max((r["precision_at_vigil_recall"] or 0 for n, r in results.items() if not n.startswith(OURS)),
               default=None)
    ours = results[OURS]["precision_at_vigil_recall"] or 0
    report = {"settings": {**{k: str(v) for k, v in vars(args).items()},
                           "policy": settings.alerts.model_dump(mode="json")},
              "models": results, "ratio_precision_vs_best_baseline": round(ours / best, 3) if best else None}
    if curve is not None:
        report["curve"] = curve
        print_rows(curve)
    if args.sweep:
        report["sweep"] = sweep(*frames[OURS], facts, settings.alerts)
        print_rows(report["sweep"])
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    print(json.dumps(report, default=str))
    return 0


def at_cadence(test: pd.DataFrame, cadence: Cadence) -> pd.DataFrame:
    """Of points scored at every event, those a cadence scores (the last of each completed span)."""
    if not cadence.enabled:
        return test
    keep = [part.index.to_numpy()[cadence.points(sensor, part["window_end"].to_numpy(), np.ones(len(part), bool))]
            for sensor, part in test.groupby("sensor_id", sort=False)]
    return test.loc[np.concatenate(keep)]


def cadence_curve(args, settings: VigilSettings, frames: dict, facts: dict) -> list[dict]:
    """Vigil's alerts at each cadence of ``--curve``: its points, its budget threshold (a sensor
    scored less often gets fewer chances of a false alert a day) and the policy's outcome."""
    if facts["every_ms"] != 0:
        raise SystemExit("--curve needs points scored at every event: a --cache made with --curve")
    held, test = frames[OURS]
    rows = []
    for span in args.curve:
        cadence = Cadence(parse_span(span).ms(facts["length_ms"], facts["bin_ms"]))
        points = at_cadence(test, cadence)
        r = operate(OURS, held, points, {**facts, "point_ms": max(facts["gap_ms"], cadence.every_ms)},
                    settings.alerts)
        rows.append({"score_every": format_span(span), "points": len(points),
                     **{k: r[k] for k in ("alert_precision", "sensor_recall", "false_alerts_per_100_sensor_days",
                                          "median_lead_hours", "false_alerts", "threshold")}})
        log(f"  cadence {rows[-1]}")
    return rows


def print_table(results: dict) -> None:
    keys = ("alert_precision", "sensor_recall", "false_alerts_per_100_sensor_days", "median_lead_hours", "alerts",
            "false_alerts", "early_alerts", "precision_at_vigil_recall", "threshold")
    print_rows([{"model": n, **{k: r[k] for k in keys}} for n, r in results.items()])
    for n, r in results.items():
        print(f"{n} recall by kind: {r['recall_by_kind']}")


def print_rows(rows: list[dict]) -> None:
    header = list(rows[0])
    cells = [[_fmt(r[k]) for k in header] for r in rows]
    widths = [max(len(x) for x in col) for col in zip(header, *cells)]
    for row in [header, *cells]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
