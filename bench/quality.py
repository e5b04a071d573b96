"""Detection quality of Vigil's default detector against baselines, on the same windows.

Every dataset goes through ``trainer.fit.training_set`` and ``fit_model``, the recipe ``vigil train``
runs with its default options (window spec and feature columns are the only inputs), so the figures
are what a user gets. Baselines are fitted on exactly the same normal windows and their thresholds
chosen by the same rule on the same held-out sensors. Progress goes to stderr; tables to stdout.

* **synthetic**: a fleet from :mod:`vigil.simulate` (5% alerting sensors, seed N), tested on the
  last window of every sensor of a second fleet (seed N+1). PR-AUC overall and per anomaly kind,
  recall at the operating threshold per kind, and how often the explanation of a detected anomaly
  names an altered feature first with a span overlapping the anomaly.
* **identical** (``--identical``): the same on a fleet of identical units with one operating point
  and slowly degrading units (the simulator's C-MAPSS-like profile).
* **SKAB** (``../shared/data/skab``): trained on the anomaly-free file and the first 400 rows of
  each experiment file, ``--window 10s --steps 10 --every 1``; every row from row 400 on is
  predicted (F1/FAR/MAR pooled over all predicted rows, the published outlier-detection protocol).
* **C-MAPSS FD001** (``--cmapss``, the acceptance set: never tuned on): trained on the 100
  run-to-failure engines (label: fails within 30 cycles), ``--window 10d --steps 50``; the last
  window of each of the 100 test engines is scored (ROC-AUC, PR-AUC).
* **ablation** (``--ablation``): ours with one change at a time, on the synthetic fleet and SKAB.

The last line of stdout is one JSON object with every figure; ``ratio_pr_auc_vs_best_baseline`` is
ours PR-AUC / the best baseline's PR-AUC on the synthetic test windows.

    .venv/bin/python bench/quality.py            # full run (1000 sensors + all 34 SKAB files)
    .venv/bin/python bench/quality.py --quick    # smoke run, a couple of minutes
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up chatter off stderr

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402

import datasets  # noqa: E402
from baselines import BASELINE_NAMES, Model, Vigil, baselines  # noqa: E402
from trainer.fit import TrainingSet, training_set  # noqa: E402
from vigil.alerts import AlertPolicy  # noqa: E402
from vigil.alerts.backtest import point_frame, replay  # noqa: E402
from vigil.settings import AlertSettings  # noqa: E402
from vigil.events.frame import event_table  # noqa: E402
from vigil.features import WindowSpec  # noqa: E402
from vigil.features.dataset import WindowSet, build_windows  # noqa: E402
from vigil.model.config import TrainConfig  # noqa: E402
from vigil.model.detector import DETECTOR_HEADS, SCORE_HEADS  # noqa: E402
from vigil.model.explain import explain_scored  # noqa: E402
from vigil.model.predictor import Scored  # noqa: E402
from vigil.model.threshold import choose_threshold, window_metrics  # noqa: E402
from vigil.simulate import FleetSpec, generate_fleet  # noqa: E402

DAY_MS = 86_400_000
OURS = "vigil"
# SKAB's published outlier-detection leaderboard (test part): F1, FAR %, MAR % where published.
SKAB_LEADERBOARD = {
    "Conv-AE": (0.78, 13.55, 28.02), "MSET": (0.78, None, None), "PCA T2+Q": (0.76, None, None),
    "LSTM-AE": (0.74, 29.96, 25.92), "LSTM-VAE": (0.56, None, None), "Vanilla LSTM": (0.54, None, None),
    "Vanilla AE": (0.39, None, None), "Isolation Forest": (0.29, None, None),
}
# One change at a time against the default (WindowSpec / TrainConfig fields).
ABLATION = {
    "default": ({}, {}),
    "before (level, spread, count; latent 100 → 32)": ({"groups": ("level", "spread", "count")},
                                                      {"latent_dim": 100, "bottleneck": 32}),
    "without fleet frame": ({"groups": ("level", "spread", "extreme", "count")}, {}),
    "without extreme": ({"groups": ("level", "fleet", "spread", "count")}, {}),
    "with cross": ({"groups": ("level", "fleet", "spread", "extreme", "cross", "count")}, {}),
    "latent 100 → 32 (not sized)": ({}, {"latent_dim": 100, "bottleneck": 32}),
    "RepeatVector + LSTM decoder": ({}, {"decoder": "lstm"}),
    "score adds sequence error": ({}, {"score_with_sequence": True}),
}


def log(message: str) -> None:
    print(f"[quality {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Case:
    """One dataset: the shared training recipe's output and the windows to test on."""

    name: str
    data: TrainingSet
    test: WindowSet
    features: tuple[str, ...]
    truth: pd.DataFrame | None = None  # per test sensor: kind, onset_ms, features (synthetic only)


@dataclass
class Fitted:
    name: str
    seconds: float
    threshold: float
    threshold_method: str
    scores: np.ndarray  # test windows
    contributions: np.ndarray | None
    heads: np.ndarray | None = None  # calibrated heads (Vigil's detector)


def fit_and_test(model: Model, case: Case) -> Fitted:
    log(f"  {case.name}: fitting {model.name} on {len(case.data.normal)} windows {case.data.normal.x.shape[1:]}")
    started = time.monotonic()
    model.fit(case.data)
    seconds = time.monotonic() - started
    calib = case.data.validation if len(case.data.validation) else case.data.normal
    threshold = choose_threshold(model.score(calib).scores, calib.label)
    tested = model.score(case.test)
    log(f"  {case.name}: {model.name} trained in {seconds:.1f} s")
    keras.backend.clear_session()  # the next model starts from a clean graph
    return Fitted(model.name, seconds, threshold.value, threshold.method, tested.scores, tested.contributions,
                  tested.heads)


def ours(args: argparse.Namespace, heads: tuple[str, ...] = DETECTOR_HEADS, **overrides) -> Vigil:
    return Vigil(OURS, TrainConfig(epochs=args.epochs, dense_epochs=args.dense_epochs, seed=args.seed, **overrides),
                 heads)


# ---------------------------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------------------------

def fleet_case(args: argparse.Namespace, name: str, profile: str, spec_overrides: dict | None = None) -> Case:
    def fleet(seed):
        return generate_fleet(FleetSpec(sensors=args.sensors, days=10, seed=seed, profile=profile))

    train_fleet, test_fleet = fleet(args.seed), fleet(args.seed + 1)
    features = train_fleet.spec.event_features
    log(f"{name}: fleets of {args.sensors} sensors ({profile}), seeds {args.seed} and {args.seed + 1}")
    spec = WindowSpec(10 * DAY_MS, 240, len(features), **{"baseline": "auto", **(spec_overrides or {})})
    data = training_set(event_table(train_fleet.events, features, train_fleet.spec.label_column), spec,
                        seed=args.seed, target_windows=args.windows)
    test = build_windows(event_table(test_fleet.events, features, test_fleet.spec.label_column), data.spec,
                         data.stats, every=None)
    return Case(name, data, test, tuple(features), test_fleet.truth.set_index("sensor_id"))


def skab_case(args: argparse.Namespace, spec_overrides: dict | None = None) -> Case:
    train, test = datasets.skab_tables(args.skab_files)
    log(f"SKAB: {len(train.series)} training sensors, {len(test.series)} files to predict")
    spec = WindowSpec(10_000, 10, len(datasets.SKAB_FEATURES), **{"baseline": "auto", **(spec_overrides or {})})
    data = training_set(train, spec, every=1, seed=args.seed)
    windows = build_windows(test, data.spec, data.stats, every=1)
    row = np.concatenate([np.arange(len(s.ts_ms)) for s in test])
    return Case("SKAB", data, windows.subset(row >= datasets.SKAB_TRAIN_ROWS), datasets.SKAB_FEATURES)


def cmapss_case(args: argparse.Namespace) -> Case:
    train, test = datasets.cmapss_tables()
    log(f"C-MAPSS FD001: {len(train.series)} training engines, {len(test.series)} test engines")
    spec = WindowSpec(10 * DAY_MS, 50, len(datasets.CMAPSS_FEATURES), baseline="auto")
    data = training_set(train, spec, seed=args.seed)
    return Case("C-MAPSS", data, build_windows(test, data.spec, data.stats, every=None), datasets.CMAPSS_FEATURES)


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------

def ranking(fitted: Fitted, case: Case) -> dict:
    out = window_metrics(fitted.scores, case.test.label, fitted.threshold)
    return {**out, "threshold_method": fitted.threshold_method, "train_seconds": round(fitted.seconds, 1)}


def per_kind(fitted: Fitted, case: Case) -> dict:
    """PR-AUC of each anomaly kind's sensors against every normal one, recall at the threshold."""
    y = case.test.label.astype(int)
    kind = case.truth["kind"].reindex(case.test.sensor_id).fillna("").to_numpy()
    out = {}
    for k in sorted(set(kind) - {""}):
        mask = (kind == k) | (y == 0)
        out[k] = {"n": int((kind == k).sum()), "pr_auc": float(average_precision_score(y[mask], fitted.scores[mask])),
                  "recall": float((fitted.scores[kind == k] >= fitted.threshold).mean())}
    return out


def explanation_hits(fitted: Fitted, case: Case) -> dict:
    """Of the detected anomalous windows: how often the first feature named was altered and the
    span overlaps the anomaly (onset → window end)."""
    hit = (fitted.scores >= fitted.threshold) & (case.test.label == 1)
    if (fitted.contributions is None and fitted.heads is None) or not hit.any():
        return {"detected": int(hit.sum()), "rate": None}
    scored = Scored(fitted.scores[hit], None if fitted.contributions is None else fitted.contributions[hit],
                    None if fitted.heads is None else fitted.heads[hit])
    why = explain_scored(scored, case.test.head_stats.take(hit), case.data.spec, case.data.stats, case.features,
                         case.test.end_ms[hit])
    truth = case.truth.loc[case.test.sensor_id[hit]]
    good, by_kind = [], {}
    for e, (_, t) in zip(why, truth.iterrows()):
        named = e.features[0].feature in str(t["features"]).split(";")
        ok = bool(named and e.span_end > t["onset_ms"])
        good.append(ok)
        by_kind.setdefault(t["kind"], []).append(ok)
    return {"detected": int(hit.sum()), "rate": float(np.mean(good)),
            "by_kind": {k: round(float(np.mean(v)), 3) for k, v in sorted(by_kind.items())}}


def pooled_counts(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """SKAB's F1 / FAR / MAR over all predicted rows (TP/FP/FN/TN summed over the files)."""
    predicted, actual = scores >= threshold, labels == 1
    tp, fp = int((predicted & actual).sum()), int((predicted & ~actual).sum())
    fn, tn = int((~predicted & actual).sum()), int((~predicted & ~actual).sum())
    return {"threshold": float(threshold), "f1": tp / max(tp + (fn + fp) / 2, 1e-12),
            "far": fp / max(fp + tn, 1), "mar": fn / max(fn + tp, 1), "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def skab_figures(fitted: Fitted, case: Case) -> dict:
    labels = case.test.label
    return {**pooled_counts(fitted.scores, labels, fitted.threshold),
            "roc_auc": float(roc_auc_score(labels, fitted.scores)),
            "pr_auc": float(average_precision_score(labels, fitted.scores)),
            "threshold_method": fitted.threshold_method, "train_seconds": round(fitted.seconds, 1)}


def case_info(case: Case) -> dict:
    return {"window": case.data.spec.to_dict(), "every": case.data.every, "train_windows": len(case.data.normal),
            "validation_windows": len(case.data.validation), "test_windows": len(case.test),
            "test_positive": int(np.nansum(case.test.label))}


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------

def contenders(args: argparse.Namespace) -> list:
    """Ours, then the baselines ``--baselines`` names (default: all of them)."""
    chosen = baselines(args.epochs, args.dense_epochs, args.seed)
    if args.baselines is not None:
        chosen = [b for b in chosen if b.name in args.baselines]
    return [ours(args), *chosen]


def head_ablation(fitted: Fitted, case: Case) -> dict:
    """Vigil's score without the pooled ``joint`` (the largest head), without each head (the
    largest of the others, no ``joint``) and with that head alone, on the same fitted detector:
    ranking overall and per anomaly kind (a kind's sensors against every normal one), ROC-AUC and
    PR-AUC. No retraining: each head's calibration stands on its own."""
    y = case.test.label.astype(int)
    kind = (case.truth["kind"].reindex(case.test.sensor_id).fillna("").to_numpy() if case.truth is not None
            else np.full(len(y), ""))
    variants = {"all heads": list(range(len(SCORE_HEADS))), "without joint": list(range(len(DETECTOR_HEADS)))}
    for k, head in enumerate(DETECTOR_HEADS):
        variants[f"without {head}"] = [j for j in range(len(DETECTOR_HEADS)) if j != k]
        variants[f"{head} alone"] = [k]
    out = {}
    for label, keep in variants.items():
        score = fitted.heads[:, keep].max(axis=1)
        row = {"roc_auc": float(roc_auc_score(y, score)), "pr_auc": float(average_precision_score(y, score))}
        for k in sorted(set(kind) - {""}):
            mask = (kind == k) | (y == 0)
            row[k] = float(average_precision_score(y[mask], score[mask]))
        out[label] = row
    kinds = sorted(set(kind) - {""})
    print_table(f"{case.name}: ablation of the detection heads (same fitted detector; PR-AUC overall and per kind)",
                ["variant", "ROC-AUC", "PR-AUC", *kinds],
                [[label, fmt(r["roc_auc"]), fmt(r["pr_auc"]), *(fmt(r[k], ".2f") for k in kinds)]
                 for label, r in out.items()])
    return out


def run_fleet(args: argparse.Namespace, name: str, profile: str) -> dict:
    case = fleet_case(args, name, profile)
    fitted = [fit_and_test(m, case) for m in contenders(args)]
    results = {f.name: {**ranking(f, case), "per_kind": per_kind(f, case)} for f in fitted}
    results[OURS]["explanations"] = explanation_hits(fitted[0], case)
    results[OURS]["heads"] = head_ablation(fitted[0], case)
    best = max((n for n in results if n != OURS), key=lambda n: results[n]["pr_auc"] or 0.0)
    ratio = (results[OURS]["pr_auc"] or 0.0) / results[best]["pr_auc"] if results[best]["pr_auc"] else None
    print_fleet(name, results, case, best, ratio)
    return {"data": case_info(case), "models": results, "best_baseline": best, "ratio_pr_auc_vs_best_baseline": ratio}


def through_policy(fitted: Fitted, case: Case, alerts: AlertSettings) -> dict:
    """The scores replayed through the stream's alert policy (default settings, the model's
    threshold): row level, a row counts as flagged while its file has an open alert; event level,
    an anomaly (a run of labelled rows) is found when an alert opens inside it, and an alert that
    opens on a normal row is false."""
    spec = case.data.spec
    frame = point_frame(case.test, fitted.scores, spec.length_ms).sort_values(["sensor_id", "window_end"],
                                                                             kind="stable")
    records, _ = replay(frame, AlertPolicy(alerts, spec.length_ms, spec.bin_ms), fitted.threshold, fitted.name)
    flagged = pd.Series(False, index=frame.index)
    opened = {}
    by_sensor = {s: part for s, part in frame.groupby("sensor_id", sort=False)}
    for r in records:
        part = by_sensor[r.sensor_id]
        if r.kind == "alert":
            opened.setdefault(r.sensor_id, r.window_end)
        else:
            start = opened.pop(r.sensor_id, None)
            if start is not None:
                flagged[part.index[(part.window_end >= start) & (part.window_end < r.window_end)]] = True
    for sensor, start in opened.items():
        part = by_sensor[sensor]
        flagged[part.index[part.window_end >= start]] = True
    labels = frame["label"].to_numpy()
    rows = pooled_counts(flagged.to_numpy().astype(float), labels, 0.5)
    events, found = 0, 0
    alert_ends = {}
    for r in records:
        if r.kind == "alert":
            alert_ends.setdefault(r.sensor_id, []).append(r.window_end)
    false_alerts = 0
    for sensor, part in by_sensor.items():
        y = part["label"].to_numpy() == 1
        ends = part["window_end"].to_numpy()
        starts = np.flatnonzero(y & ~np.r_[False, y[:-1]])
        stops = np.flatnonzero(y & ~np.r_[y[1:], False])
        fired = np.asarray(alert_ends.get(sensor, []))
        for a, b in zip(starts, stops):
            events += 1
            found += bool(((fired >= ends[a]) & (fired <= ends[b])).any())
        inside = np.zeros(len(fired), bool)
        for a, b in zip(starts, stops):
            inside |= (fired >= ends[a]) & (fired <= ends[b])
        false_alerts += int((~inside).sum())
    n_alerts = sum(len(v) for v in alert_ends.values())
    return {"rows": rows, "events": events, "event_recall": found / max(events, 1), "alerts": n_alerts,
            "false_alerts": false_alerts, "alert_precision": (n_alerts - false_alerts) / n_alerts if n_alerts else None}


def run_skab(args: argparse.Namespace) -> dict:
    case = skab_case(args)
    fitted = [fit_and_test(m, case) for m in contenders(args)]
    results = {f.name: skab_figures(f, case) for f in fitted}
    results[OURS]["heads"] = head_ablation(fitted[0], case)
    for f in fitted:
        results[f.name]["policy"] = through_policy(f, case, AlertSettings())
    print_skab(results, case)
    print_table("SKAB through the stream's alert policy (default alerts.*, each model's threshold): row level "
                "(flagged while an alert is open) beside event level (an anomaly found when an alert opens in it)",
                ["model", "row F1", "row FAR %", "row MAR %", "anomalies", "found", "alerts", "false", "precision"],
                [[n, fmt(m["policy"]["rows"]["f1"], ".2f"), fmt(100 * m["policy"]["rows"]["far"], ".1f"),
                  fmt(100 * m["policy"]["rows"]["mar"], ".1f"), m["policy"]["events"],
                  fmt(m["policy"]["event_recall"], ".2f"), m["policy"]["alerts"], m["policy"]["false_alerts"],
                  fmt(m["policy"]["alert_precision"], ".2f")] for n, m in results.items()])
    return {"data": case_info(case), "models": results,
            "leaderboard": {n: {"f1": f1, "far": None if far is None else far / 100, "mar": None if mar is None
                                else mar / 100} for n, (f1, far, mar) in SKAB_LEADERBOARD.items()}}


def run_cmapss(args: argparse.Namespace) -> dict:
    case = cmapss_case(args)
    fitted = [fit_and_test(m, case) for m in contenders(args)]
    results = {f.name: ranking(f, case) for f in fitted}
    results[OURS]["heads"] = head_ablation(fitted[0], case)
    rows = [[n, fmt(m["roc_auc"]), fmt(m["pr_auc"]), fmt(m["recall"]), fmt(m["false_positive_rate"]),
             fmt(m["train_seconds"], ".1f")] for n, m in results.items()]
    print_table(f"C-MAPSS FD001: last window of {len(case.test)} test engines ({int(case.test.label.sum())} fail "
                f"within 30 cycles); baseline {case.data.spec.baseline}",
                ["model", "ROC-AUC", "PR-AUC", "recall", "FPR", "train s"], rows)
    return {"data": case_info(case), "models": results}


def run_ablation(args: argparse.Namespace) -> dict:
    rows, out = [], {}
    for label, (spec_change, config_change) in ABLATION.items():
        fleet = fleet_case(args, "synthetic", "operating_points", spec_change)
        synth = fit_and_test(ours(args, **config_change), fleet)
        skab_windows = skab_case(args, spec_change)
        skab = fit_and_test(ours(args, **config_change), skab_windows)
        kinds = per_kind(synth, fleet)
        figures = {"synthetic": {**ranking(synth, fleet), "per_kind": kinds}, "skab": skab_figures(skab, skab_windows)}
        out[label] = figures
        log(f"ablation {label}: {json.dumps(figures, default=float)}")  # a long run keeps what it measured
        rows.append([label, fmt(figures["synthetic"]["pr_auc"]),
                     *(fmt(kinds[k]["pr_auc"], ".2f") if k in kinds else "-" for k in sorted(kinds)),
                     fmt(figures["skab"]["f1"], ".2f"), fmt(100 * figures["skab"]["far"], ".1f"),
                     fmt(figures["skab"]["roc_auc"])])
        header_kinds = sorted(kinds)
    print_table("Ablation: one change at a time (synthetic last-window PR-AUC, per kind; SKAB F1 / FAR % / ROC-AUC)",
                ["variant", "PR-AUC", *header_kinds, "SKAB F1", "FAR %", "ROC-AUC"], rows)
    return out


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------

def fmt(value, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def print_table(title: str, header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda cells: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    print(f"\n{title}")
    print(line(header))
    print(line(["-" * w for w in widths]))
    for r in rows:
        print(line(r))


def print_fleet(name: str, results: dict, case: Case, best: str, ratio: float | None) -> None:
    rows = [[n, fmt(m["pr_auc"]), fmt(m["roc_auc"]), fmt(m["f1"]), fmt(m["precision"]), fmt(m["recall"]),
             m["threshold_method"], fmt(m["train_seconds"], ".1f")] for n, m in results.items()]
    info = case_info(case)
    print_table(f"{name}: {info['test_windows']} test sensors ({info['test_positive']} alerting), last window each; "
                f"trained on {info['train_windows']} normal windows (baseline {case.data.spec.baseline})",
                ["model", "PR-AUC", "ROC-AUC", "F1", "precision", "recall", "threshold", "train s"], rows)
    print(f"ratio PR-AUC {OURS} / best baseline ({best}): {fmt(ratio)}")
    kinds = sorted(results[OURS]["per_kind"])
    print_table(f"{name}: PR-AUC / recall at the threshold, per anomaly kind", ["model", *kinds],
                [[n, *(f"{m['per_kind'][k]['pr_auc']:.2f} / {m['per_kind'][k]['recall']:.2f}" for k in kinds)]
                 for n, m in results.items()])
    hits = results[OURS]["explanations"]
    print(f"explanations: {fmt(hits['rate'])} of {hits['detected']} detected anomalous windows name an altered "
          f"feature first with a span overlapping the anomaly; by kind {hits.get('by_kind')}")


def print_skab(results: dict, case: Case) -> None:
    rows = [[n, fmt(m["f1"], ".2f"), fmt(100 * m["far"], ".2f"), fmt(100 * m["mar"], ".2f"), fmt(m["roc_auc"]),
             fmt(m["pr_auc"]), m["threshold_method"], fmt(m["train_seconds"], ".1f")] for n, m in results.items()]
    rows += [[f"leaderboard: {n}", fmt(f1, ".2f"), fmt(far, ".2f"), fmt(mar, ".2f"), "", "", "", ""]
             for n, (f1, far, mar) in SKAB_LEADERBOARD.items()]
    print_table(f"SKAB outlier detection: {len(case.test)} predicted rows "
                f"({100 * case.test.label.mean():.1f}% anomalous); default options (baseline "
                f"{case.data.spec.baseline}), thresholds by the training rule on held-out sensors",
                ["model", "F1", "FAR %", "MAR %", "ROC-AUC", "PR-AUC", "threshold", "train s"], rows)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 60 sensors, 2,000 windows, 6 SKAB files, 2 epochs (unless set explicitly)")
    p.add_argument("--skip-skab", action="store_true")
    p.add_argument("--skip-synthetic", action="store_true")
    p.add_argument("--identical", action="store_true", help="also the identical-units fleet with degradation")
    p.add_argument("--cmapss", action="store_true", help="also C-MAPSS FD001 (acceptance set: do not tune on it)")
    p.add_argument("--ablation", action="store_true", help="only the ablation table (ours, one change at a time)")
    p.add_argument("--baselines", type=lambda v: [n.strip() for n in v.split(",") if n.strip()],
                   help=f"comma-separated baselines to run (default all: {', '.join(BASELINE_NAMES)})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sensors", type=int, help="sensors per synthetic fleet (default 1000)")
    p.add_argument("--epochs", type=int, help=f"LSTM training epochs, early stopping on (default {TrainConfig.epochs})")
    p.add_argument("--dense-epochs", type=int, help=f"dense stage epochs (default {TrainConfig.dense_epochs})")
    p.add_argument("--windows", type=int, help="target synthetic training windows (default 10000, as vigil train)")
    p.add_argument("--skab-files", type=int, help="use only this many SKAB files (default: all 34)")
    args = p.parse_args(argv)
    unknown = set(args.baselines or ()) - set(BASELINE_NAMES)
    if args.baselines == [] or unknown:
        p.error(f"--baselines: name at least one; unknown {sorted(unknown)}; choose from {', '.join(BASELINE_NAMES)}")
    defaults = ({"sensors": 60, "epochs": 2, "dense_epochs": 5, "windows": 2000, "skab_files": 6} if args.quick
                else {"sensors": 1000, "epochs": TrainConfig.epochs, "dense_epochs": TrainConfig.dense_epochs,
                      "windows": 10_000, "skab_files": None})
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    settings = {k: v for k, v in vars(args).items()}
    log(f"settings {settings}, keras backend {keras.backend.backend()}")
    report: dict = {"settings": settings, "backend": keras.backend.backend()}
    if args.ablation:
        report["ablation"] = run_ablation(args)
    else:
        if not args.skip_synthetic:
            report["synthetic"] = run_fleet(args, "synthetic", "operating_points")
            report["ratio_pr_auc_vs_best_baseline"] = report["synthetic"]["ratio_pr_auc_vs_best_baseline"]
        if args.identical:
            report["identical"] = run_fleet(args, "identical units", "identical")
        if not args.skip_skab:
            report["skab"] = run_skab(args)
            mine = report["skab"]["models"][OURS]
            report.update(skab_f1=mine["f1"], skab_far=mine["far"], skab_mar=mine["mar"],
                          skab_policy_f1=mine["policy"]["rows"]["f1"], skab_policy_far=mine["policy"]["rows"]["far"])
        if args.cmapss:
            report["cmapss"] = run_cmapss(args)
            report["cmapss_roc_auc"] = report["cmapss"]["models"][OURS]["roc_auc"]
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    log(f"done in {report['wall_seconds']} s")
    print(json.dumps(report, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
