"""Detection quality of Vigil's encoder-latent autoencoder against baselines, on the same windows.

Two datasets, each with its own table on stdout (progress goes to stderr):

* **synthetic**: a fleet from :mod:`vigil.simulate` (5% alerting sensors). Train on the normal
  windows of 80% of a training fleet's sensors, pick each model's threshold on the other 20%
  (F1-optimal), test on the last window of every sensor of a second fleet (another seed).
* **SKAB** (``../shared/data/skab``): the published "outlier detection" protocol adapted to one
  fleet model: every experiment file is one sensor, the first 400 rows of each file are its train
  part, every later row is predicted; F1/FAR/MAR pooled over all predicted rows. Thresholds come
  from training scores only (no test labels).

Models, all fitted on exactly the same training windows:

* ``vigil``: ``train_autoencoder(objective="pretrain_freeze")`` (ours);
* ``isolation_forest``: scikit-learn's IsolationForest on per-channel window summaries;
* ``lstm_seq_ae``: a sequence-reconstruction LSTM autoencoder (per-window MSE);
* ``naive_latent_ae``: the originating question's objective as written (``objective="naive"``).

The last line of stdout is one JSON object with every figure; ``ratio_pr_auc_vs_best_baseline`` is
ours PR-AUC / the best baseline's PR-AUC on the synthetic test windows.

    .venv/bin/python bench/quality.py            # full run (1000 sensors + all 34 SKAB files)
    .venv/bin/python bench/quality.py --quick    # smoke run, about a minute
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from keras import layers  # noqa: E402
from sklearn.ensemble import IsolationForest  # noqa: E402

from trainer.fit import default_stride, split_sensors  # noqa: E402
from vigil.events.frame import EventTable, SensorSeries, event_table  # noqa: E402
from vigil.features import FleetStats, WindowSpec  # noqa: E402
from vigil.features.dataset import WindowSet, build_windows  # noqa: E402
from vigil.model.threshold import choose_threshold, window_metrics  # noqa: E402
from vigil.model.training import (  # noqa: E402
    TrainConfig,
    make_scorer,
    score_windows,
    seed_everything,
    train_autoencoder,
)
from vigil.simulate import FleetSpec, generate_fleet  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SKAB_DIR = REPO.parent / "shared" / "data" / "skab"
SKAB_GROUPS = ("valve1", "valve2", "other")
SKAB_FEATURES = ("Accelerometer1RMS", "Accelerometer2RMS", "Current", "Pressure", "Temperature",
                 "Thermocouple", "Voltage", "Volume Flow RateRMS")
SKAB_TRAIN_ROWS = 400
# Tuned on SKAB (bench/README.md): 8 channels x 10 steps need a far smaller latent than the fleet's
# 240-step windows (a 100-wide latent reconstructs anomalies too), and a 10 s window over 2-5 s
# gaps often holds 8-9 events, so 10 would discard half the training windows.
SKAB_LATENT, SKAB_BOTTLENECK, SKAB_MIN_EVENTS, SKAB_QUANTILE = 16, 4, 8, 0.95
DAY_MS = 86_400_000
OURS = "vigil"
# SKAB's published outlier-detection leaderboard (test part): F1, FAR %, MAR % where published.
SKAB_LEADERBOARD = {
    "Conv-AE": (0.78, 13.55, 28.02), "MSET": (0.78, None, None), "PCA T2+Q": (0.76, None, None),
    "LSTM-AE": (0.74, 29.96, 25.92), "LSTM-VAE": (0.56, None, None), "Vanilla LSTM": (0.54, None, None),
    "Vanilla AE": (0.39, None, None), "Isolation Forest": (0.29, None, None),
}


def log(message: str) -> None:
    print(f"[quality {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Models: ours and the baselines behind one small protocol, so they all run through one loop.
# ---------------------------------------------------------------------------------------------

class Model(Protocol):
    name: str

    def fit(self, x: np.ndarray) -> None:
        """Fit on normal windows ``[n, steps, channels]``."""

    def score(self, x: np.ndarray) -> np.ndarray:
        """Anomaly score per window (higher = more anomalous), ``[n]``."""


@dataclass
class VigilAutoencoder:
    """The library's encoder-latent autoencoder with a given objective."""

    name: str
    config: TrainConfig
    _scorer: keras.Model | None = field(default=None, repr=False)

    def fit(self, x: np.ndarray) -> None:
        self._scorer = make_scorer(train_autoencoder(x, self.config))

    def score(self, x: np.ndarray) -> np.ndarray:
        return score_windows(self._scorer, x)


def window_summaries(x: np.ndarray) -> np.ndarray:
    """Per channel: mean, std, min, max, and last bin minus first non-empty bin; flattened."""
    nonempty = x[:, :, -1] > 0  # the count channel marks bins that hold events
    first = np.where(nonempty.any(axis=1), nonempty.argmax(axis=1), 0)
    change = x[:, -1, :] - x[np.arange(len(x)), first, :]
    stats = (x.mean(axis=1), x.std(axis=1), x.min(axis=1), x.max(axis=1), change)
    return np.concatenate(stats, axis=1).astype(np.float64)


@dataclass
class IsolationForestSummary:
    """IsolationForest on :func:`window_summaries`; score = ``-score_samples``."""

    seed: int
    name: str = "isolation_forest"
    _forest: IsolationForest | None = field(default=None, repr=False)

    def fit(self, x: np.ndarray) -> None:
        self._forest = IsolationForest(random_state=self.seed).fit(window_summaries(x))

    def score(self, x: np.ndarray) -> np.ndarray:
        return -self._forest.score_samples(window_summaries(x))


@dataclass
class SequenceLstmAutoencoder:
    """LSTM(100) → RepeatVector → LSTM(100, sequences) → TimeDistributed(Dense): per-window MSE."""

    epochs: int
    seed: int
    units: int = 100
    batch_size: int = TrainConfig.batch_size
    patience: int = TrainConfig.patience
    learning_rate: float = TrainConfig.learning_rate
    name: str = "lstm_seq_ae"
    _model: keras.Model | None = field(default=None, repr=False)

    def fit(self, x: np.ndarray) -> None:
        seed_everything(self.seed)
        x = np.asarray(x, np.float32)
        x = x[np.random.default_rng(self.seed).permutation(len(x))]  # random 10% validation tail
        _, steps, channels = x.shape
        self._model = keras.Sequential([
            keras.Input((steps, channels)),
            layers.LSTM(self.units),
            layers.RepeatVector(steps),
            layers.LSTM(self.units, return_sequences=True),
            layers.TimeDistributed(layers.Dense(channels)),
        ], name=self.name)
        self._model.compile(optimizer=keras.optimizers.Adam(self.learning_rate), loss="mse")
        stop = keras.callbacks.EarlyStopping(patience=self.patience, restore_best_weights=True)
        self._model.fit(x, x, epochs=self.epochs, batch_size=self.batch_size, validation_split=0.1,
                        callbacks=[stop], shuffle=True, verbose=0)

    def score(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32)
        x_hat = self._model.predict(x, batch_size=512, verbose=0)
        return np.mean(np.square(x - x_hat), axis=(1, 2)).astype(np.float64)


def make_models(args: argparse.Namespace, latent_dim: int, bottleneck: int) -> list[Model]:
    def config(objective: str) -> TrainConfig:
        return TrainConfig(objective=objective, epochs=args.epochs, dense_epochs=args.dense_epochs, seed=args.seed,
                           latent_dim=latent_dim, bottleneck=bottleneck)

    return [
        VigilAutoencoder(OURS, config("pretrain_freeze")),
        IsolationForestSummary(args.seed),
        SequenceLstmAutoencoder(args.epochs, args.seed),
        VigilAutoencoder("naive_latent_ae", config("naive")),
    ]


@dataclass
class Fitted:
    name: str
    train_seconds: float
    scores: dict[str, np.ndarray]  # per evaluation set


def fit_and_score(models: list[Model], train_x: np.ndarray, eval_sets: dict[str, np.ndarray]) -> list[Fitted]:
    """Fit every model on ``train_x``, time it, and score every evaluation set with it."""
    fitted = []
    for model in models:
        log(f"  fitting {model.name} on {len(train_x)} windows {train_x.shape[1:]}")
        started = time.monotonic()
        model.fit(train_x)
        seconds = time.monotonic() - started
        scores = {name: model.score(x) for name, x in eval_sets.items()}
        log(f"  {model.name}: trained in {seconds:.1f} s")
        fitted.append(Fitted(model.name, seconds, scores))
        keras.backend.clear_session()  # the next model starts from a clean graph
    return fitted


# ---------------------------------------------------------------------------------------------
# Synthetic fleet
# ---------------------------------------------------------------------------------------------

def fleet_table(sensors: int, seed: int) -> EventTable:
    fleet = generate_fleet(FleetSpec(sensors=sensors, days=10, seed=seed))
    spec = fleet.spec
    return event_table(fleet.events, spec.features, spec.label_column)


def normal_events(series: SensorSeries) -> tuple[str, np.ndarray, np.ndarray]:
    keep = series.labels == 0
    return series.sensor_id, series.ts_ms[keep], series.values[keep]


@dataclass
class SyntheticData:
    train: WindowSet  # normal windows of the training sensors
    validation: WindowSet  # held-out sensors, labels kept: threshold choice
    test: WindowSet  # last window of every sensor of another fleet
    info: dict


def synthetic_data(args: argparse.Namespace) -> SyntheticData:
    test_seed = args.seed + 1
    log(f"synthetic: generating train fleet (seed {args.seed}) and test fleet (seed {test_seed}), "
        f"{args.sensors} sensors each")
    train_table, test_table = fleet_table(args.sensors, args.seed), fleet_table(args.sensors, test_seed)
    spec = WindowSpec(length_ms=10 * DAY_MS, steps=240, n_features=len(train_table.features), baseline="window")
    stats = FleetStats.fit(map(normal_events, train_table), spec.length_ms, spec.steps, per_sensor=False)
    train_sensors, val_sensors = split_sensors(train_table, 0.2, args.seed)
    every = default_stride(train_table, args.windows)
    log(f"synthetic: featurising windows (every {every} events, {len(train_sensors)} train / "
        f"{len(val_sensors)} validation sensors)")
    train = build_windows(train_sensors, spec, stats, every=every, min_events=10)
    train = train.subset(train.label == 0)
    validation = build_windows(val_sensors, spec, stats, every=every, min_events=10)
    test = build_windows(test_table, spec, stats, every=None)
    info = {
        "sensors": args.sensors, "train_seed": args.seed, "test_seed": test_seed, "every": every,
        "window": spec.to_dict(), "train_sensors": len(train_sensors), "validation_sensors": len(val_sensors),
        "train_windows": len(train), "validation_windows": len(validation),
        "validation_positive": int(np.nansum(validation.label)),
        "test_windows": len(test), "test_positive": int(np.nansum(test.label)),
    }
    return SyntheticData(train, validation, test, info)


def evaluate_synthetic(fitted: Fitted, data: SyntheticData) -> dict:
    threshold = choose_threshold(fitted.scores["validation"], data.validation.label)
    metrics = window_metrics(fitted.scores["test"], data.test.label, threshold.value)
    return {**metrics, "threshold_method": threshold.method, "validation": threshold.detail,
            "train_seconds": round(fitted.train_seconds, 1)}


def run_synthetic(args: argparse.Namespace) -> dict:
    data = synthetic_data(args)
    log(f"synthetic: {data.info}")
    fitted = fit_and_score(make_models(args, TrainConfig.latent_dim, TrainConfig.bottleneck), data.train.x,
                           {"validation": data.validation.x, "test": data.test.x})
    results = {f.name: evaluate_synthetic(f, data) for f in fitted}
    best = max((n for n in results if n != OURS), key=lambda n: results[n]["pr_auc"] or 0.0)
    ours, theirs = results[OURS]["pr_auc"], results[best]["pr_auc"]
    ratio = ours / theirs if ours is not None and theirs else None
    print_synthetic(results, data.info, best, ratio)
    return {"data": data.info, "models": results, "best_baseline": best,
            "ratio_pr_auc_vs_best_baseline": ratio}


# ---------------------------------------------------------------------------------------------
# SKAB
# ---------------------------------------------------------------------------------------------

def skab_files(limit: int | None) -> list[tuple[str, Path]]:
    files = [(f"{group}/{path.stem}", path) for group in SKAB_GROUPS
             for path in sorted((SKAB_DIR / group).glob("*.csv"), key=lambda p: int(p.stem))]
    if limit:  # spread a smoke run over every group
        files = files[:: max(1, len(files) // limit)][:limit]
    return files


def skab_frame(sensor_id: str, path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, sep=";")
    frame = raw[list(SKAB_FEATURES)].copy()
    frame.insert(0, "timestamp", pd.to_datetime(raw["datetime"]))
    frame.insert(0, "sensor_id", sensor_id)
    frame["anomaly"] = raw["anomaly"]
    return frame


def head(series: SensorSeries, rows: int) -> SensorSeries:
    return SensorSeries(series.sensor_id, series.ts_ms[:rows], series.values[:rows], series.labels[:rows])


@dataclass
class SkabData:
    train: WindowSet  # label-0 windows ending inside each file's first 400 rows
    test: WindowSet  # one window per predicted row (row >= 400 of every file)
    info: dict


def skab_data(args: argparse.Namespace) -> SkabData:
    files = skab_files(args.skab_files)
    log(f"SKAB: reading {len(files)} experiment files from {SKAB_DIR}")
    frames = [skab_frame(sensor_id, path) for sensor_id, path in files]
    table = event_table(pd.concat(frames, ignore_index=True), SKAB_FEATURES, "anomaly")
    rows = {f["sensor_id"].iat[0]: len(f) for f in frames}
    if table.dropped or any(len(table.series[s].ts_ms) != n for s, n in rows.items()):
        raise RuntimeError(f"SKAB rows were dropped or reordered ({table.dropped}); row positions would not match")
    spec = WindowSpec(length_ms=10_000, steps=10, n_features=len(SKAB_FEATURES), baseline="sensor")
    train_parts = [head(s, SKAB_TRAIN_ROWS) for s in table]
    stats = FleetStats.fit(((s.sensor_id, s.ts_ms, s.values) for s in train_parts),
                           spec.length_ms, spec.steps, per_sensor=True)
    # Windows ending inside the train part only see train rows, so cutting the series there is exact.
    train = build_windows(train_parts, spec, stats, every=1, min_events=SKAB_MIN_EVENTS)
    train = train.subset(train.label == 0)
    # A window at every row (it may reach back into the train part); keep those ending at row >= 400.
    every_row = build_windows(table, spec, stats, every=1, min_events=1)
    row = np.concatenate([np.arange(len(s.ts_ms)) for s in table])
    assert len(row) == len(every_row), "one window per row expected"
    test = every_row.subset(row >= SKAB_TRAIN_ROWS)
    info = {"files": len(files), "window": spec.to_dict(), "train_windows": len(train),
            "predicted_rows": len(test), "anomalous_fraction": round(float(test.label.mean()), 4)}
    return SkabData(train, test, info)


def pooled_counts(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict:
    """SKAB's F1 / FAR / MAR over all predicted rows (TP/FP/FN/TN summed over the files)."""
    predicted, actual = scores >= threshold, labels == 1
    tp, fp = int((predicted & actual).sum()), int((predicted & ~actual).sum())
    fn, tn = int((~predicted & actual).sum()), int((~predicted & ~actual).sum())
    return {"threshold": float(threshold), "f1": tp / max(tp + (fn + fp) / 2, 1e-12),
            "far": fp / max(fp + tn, 1), "mar": fn / max(fn + tp, 1), "tp": tp, "fp": fp, "fn": fn, "tn": tn}


# Thresholds from training scores only: the library's rule for unlabelled data with the quantile
# `vigil train --threshold-quantile 0.95` sets, and its sensitivity; "lstm_ae_rule" scales like the
# leaderboard's LSTM-AE (quantile 0.99 * 3/2).
SKAB_THRESHOLDS: dict[str, Callable[[np.ndarray], float]] = {
    "choose_threshold": lambda s: choose_threshold(s, np.zeros(len(s)), quantile=SKAB_QUANTILE).value,
    "q0.99": lambda s: float(np.quantile(s, 0.99)),
    "q0.999": lambda s: float(np.quantile(s, 0.999)),
    "lstm_ae_rule": lambda s: float(np.quantile(s, 0.99)) * 3 / 2,
}


def evaluate_skab(fitted: Fitted, data: SkabData) -> dict:
    test, labels = fitted.scores["test"], data.test.label
    out = {rule: pooled_counts(test, labels, pick(fitted.scores["train"]))
           for rule, pick in SKAB_THRESHOLDS.items()}
    ranking = window_metrics(test, labels, out["choose_threshold"]["threshold"])
    out["roc_auc"], out["pr_auc"] = ranking["roc_auc"], ranking["pr_auc"]
    out["train_seconds"] = round(fitted.train_seconds, 1)
    return out


def run_skab(args: argparse.Namespace) -> dict:
    data = skab_data(args)
    log(f"SKAB: {data.info}")
    models = make_models(args, SKAB_LATENT, SKAB_BOTTLENECK)
    fitted = fit_and_score(models, data.train.x, {"train": data.train.x, "test": data.test.x})
    results = {f.name: evaluate_skab(f, data) for f in fitted}
    print_skab(results, data.info)
    return {"data": data.info, "models": results,
            "leaderboard": {name: {"f1": f1, "far": percent_to_fraction(far), "mar": percent_to_fraction(mar)}
                            for name, (f1, far, mar) in SKAB_LEADERBOARD.items()}}


def percent_to_fraction(value: float | None) -> float | None:
    """The leaderboard publishes FAR/MAR in percent; the JSON holds fractions like ours."""
    return None if value is None else round(value / 100, 4)


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


def print_synthetic(results: dict, info: dict, best: str, ratio: float | None) -> None:
    rows = [[name, fmt(m["pr_auc"]), fmt(m["roc_auc"]), fmt(m["f1"]), fmt(m["precision"]), fmt(m["recall"]),
             m["threshold_method"], fmt(m["train_seconds"], ".1f")] for name, m in results.items()]
    print_table(
        f"Synthetic fleet: {info['test_windows']} test sensors ({info['test_positive']} alerting), last window "
        f"each; trained on {info['train_windows']} normal windows, thresholds on {info['validation_windows']} "
        f"validation windows",
        ["model", "PR-AUC", "ROC-AUC", "F1", "precision", "recall", "threshold", "train s"], rows)
    print(f"ratio PR-AUC {OURS} / best baseline ({best}): {fmt(ratio)}")


def print_skab(results: dict, info: dict) -> None:
    main = "choose_threshold"
    rows = [[name, fmt(m[main]["f1"], ".2f"), fmt(100 * m[main]["far"], ".2f"), fmt(100 * m[main]["mar"], ".2f"),
             fmt(m["roc_auc"]), fmt(m["pr_auc"]), fmt(m["train_seconds"], ".1f")] for name, m in results.items()]
    rows += [[f"leaderboard: {name}", fmt(f1, ".2f"), fmt(far, ".2f"), fmt(mar, ".2f"), "", "", ""]
             for name, (f1, far, mar) in SKAB_LEADERBOARD.items()]
    print_table(
        f"SKAB outlier detection: {info['predicted_rows']} predicted rows of {info['files']} files "
        f"({100 * info['anomalous_fraction']:.1f}% anomalous); threshold = choose_threshold on training scores "
        f"({100 * SKAB_QUANTILE:g}th percentile, as `vigil train --threshold-quantile {SKAB_QUANTILE}`)",
        ["model", "F1", "FAR %", "MAR %", "ROC-AUC", "PR-AUC", "train s"], rows)
    sensitivity = [[name, *(f"{m[r]['f1']:.2f} / {100 * m[r]['far']:.1f} / {100 * m[r]['mar']:.1f}"
                            for r in SKAB_THRESHOLDS)] for name, m in results.items()]
    print_table("SKAB threshold sensitivity: F1 / FAR % / MAR %",
                ["model", *SKAB_THRESHOLDS], sensitivity)


# ---------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 60 sensors, 2 000 windows, 6 SKAB files, 2 epochs (unless set explicitly)")
    p.add_argument("--skip-skab", action="store_true")
    p.add_argument("--skip-synthetic", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sensors", type=int, help="sensors per synthetic fleet (default 1000)")
    p.add_argument("--epochs", type=int, help="LSTM training epochs, early stopping on (default 20)")
    p.add_argument("--dense-epochs", type=int, help="epochs of ours' dense stage on frozen latents (default 60)")
    p.add_argument("--windows", type=int, help="target synthetic windows over the train fleet (default 10000)")
    p.add_argument("--skab-files", type=int, help="use only this many SKAB files (default: all 34)")
    args = p.parse_args(argv)
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
    settings = {k: v for k, v in vars(args).items() if not k.startswith("skip")}
    log(f"settings {settings}, keras backend {keras.backend.backend()}")
    report: dict = {"settings": settings, "backend": keras.backend.backend()}
    if not args.skip_synthetic:
        report["synthetic"] = run_synthetic(args)
        report["ratio_pr_auc_vs_best_baseline"] = report["synthetic"]["ratio_pr_auc_vs_best_baseline"]
    if not args.skip_skab:
        report["skab"] = run_skab(args)
        ours = report["skab"]["models"][OURS]["choose_threshold"]
        report.update(skab_f1=ours["f1"], skab_far=ours["far"], skab_mar=ours["mar"])
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    log(f"done in {report['wall_seconds']} s")
    print(json.dumps(report, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
