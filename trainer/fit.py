"""One training path: event table → windows → model → threshold → registry (docs/architecture.md, the trainer).

``vigil train --events FILE`` calls :func:`fit_and_register`; the periodic trainer job will call
it with windows sampled from the live Redis buffers instead of a file.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

import numpy as np

from vigil.events.frame import EventTable, SensorSeries
from vigil.features import FleetStats, WindowSpec
from vigil.alerts.budget import budget_threshold, calibration_stride_ms
from vigil.features.dataset import (WindowSet, build_windows, eligible_ends, event_gaps, fleet_stats, history_covering,
                                   normal_part, typical_span_ms)
from vigil.features.window import resolve_baseline
from vigil.logging import get_logger
from vigil.model.config import DEFAULT_QUANTILE
from vigil.model.autoencoder import EncoderLatentAutoencoder
from vigil.model.detector import Detector, FleetReference
from vigil.model.threshold import Threshold, choose_threshold, window_metrics
from vigil.model.training import TrainConfig, make_scorer, score_windows, train_autoencoder
from vigil.registry import ModelMeta, ModelRegistry
from vigil.settings import AlertSettings

log = get_logger("trainer")
TARGET_TRAINING_WINDOWS = 10_000
# Training windows need history over this fraction of the window (or of the sensors' typical
# span when the data is shorter): the windows the model learns from are the windows it scores.
MIN_HISTORY_FRACTION = 0.9


@dataclass
class TrainResult:
    version: str
    path: str
    meta: ModelMeta
    seconds: float
    summary: dict = field(default_factory=dict)


def default_stride(n_ends: int, target_windows: int = TARGET_TRAINING_WINDOWS) -> int:
    """A stride giving about ``target_windows`` windows out of ``n_ends`` possible window ends."""
    return max(1, math.ceil(n_ends / target_windows))


def split_sensors(table: EventTable, fraction: float, seed: int) -> tuple[list[SensorSeries], list[SensorSeries]]:
    """Hold out ``fraction`` of the sensors, stratified by whether a sensor ever has label 1."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    positive = [s for s in table if np.nanmax(s.labels, initial=0) == 1]
    negative = [s for s in table if np.nanmax(s.labels, initial=0) != 1]
    for group in (positive, negative):
        order = rng.permutation(len(group))
        n_val = int(round(len(group) * fraction))
        if len(group) >= 2 and fraction > 0:
            n_val = max(1, min(n_val, len(group) - 1))
        val += [group[i] for i in order[:n_val]]
        train += [group[i] for i in order[n_val:]]
    return train, val


@dataclass
class TrainingSet:
    """What the model is fitted and calibrated on: the one recipe ``vigil train``, the trainer job
    and bench/quality.py share, so the benchmark measures what users get."""

    spec: WindowSpec  # with the baseline the data resolved "auto" to
    stats: FleetStats
    train_sensors: list[SensorSeries]
    val_sensors: list[SensorSeries]
    normal: WindowSet  # label-0 windows of the training sensors
    validation: WindowSet  # windows of the held-out sensors, labels kept
    every: int
    min_history_ms: int
    min_events: int


def training_set(table: EventTable, spec: WindowSpec, every: int | None = None, min_events: int = 10,
                 validation_fraction: float = 0.2, seed: int = 0,
                 target_windows: int = TARGET_TRAINING_WINDOWS) -> TrainingSet:
    if spec.baseline == "auto":
        spec = replace(spec, baseline=resolve_baseline(typical_span_ms(table), spec.length_ms))
    min_history = history_covering(table, spec.length_ms, MIN_HISTORY_FRACTION)
    every = every or default_stride(eligible_ends(table, min_history), target_windows)
    train_sensors, val_sensors = split_sensors(table, validation_fraction, seed)
    if not train_sensors:
        raise ValueError("no sensors to train on")
    # Normalisation statistics come from every sensor's normal events (no labels are used beyond
    # "not 1"): with baseline="sensor" each held-out sensor needs its own reference statistics too.
    stats = fleet_stats(map(normal_part, table), spec, per_sensor=spec.baseline == "sensor")
    windows = [build_windows(sensors, spec, stats, every=every, min_events=min_events, min_history_ms=min_history)
               for sensors in (train_sensors, val_sensors)]
    normal = windows[0].subset(windows[0].label != 1)
    if len(normal) == 0:
        raise ValueError(f"no normal training window has {min_events}+ events; lower --min-events or widen --window")
    return TrainingSet(spec, stats, train_sensors, val_sensors, normal, windows[1], every, min_history, min_events)


def fit_model(data: TrainingSet, config: TrainConfig, threshold_quantile: float = DEFAULT_QUANTILE,
              verbose: int = 0, alerts: AlertSettings | None = None,
              score_every_ms: int = 0) -> tuple[EncoderLatentAutoencoder, Detector, Threshold, dict]:
    """Train the autoencoder on the normal windows; calibrate every head on the held-out normal
    sensors; the threshold on the detector's score meets the false-alert budget on those sensors
    (or, when they hold too little time past the warm-up, it is the F1 optimum on labelled
    held-out windows or a quantile of normal scores)."""
    alerts = alerts or AlertSettings()
    model = train_autoencoder(data.normal.x, config, verbose=verbose)
    scorer = make_scorer(model)
    held = heldout_windows(data, alerts, score_every_ms)
    detector, reference_raw = fit_detector(scorer, data, held)

    def score(w: WindowSet) -> np.ndarray:
        return detector.score(score_windows(scorer, w.x), w.head_stats, data.stats)[0]

    calib = data.validation if len(data.validation) else data.normal  # tiny tables: training windows
    val_scores = score(calib)
    threshold = None
    if held is not None:
        w = held.windows  # the windows the heads were calibrated on: their raw values are at hand
        threshold = budget_threshold(detector.combine(detector.calibrate(reference_raw)), w.sensor_id, w.end_ms,
                                     alerts, held.point_ms, data.spec.length_ms, data.spec.bin_ms)
    if threshold is None:
        threshold = choose_threshold(val_scores, calib.label, quantile=threshold_quantile)
    metrics = window_metrics(val_scores, calib.label, threshold.value)
    metrics["on"] = "validation sensors" if len(data.validation) else "training windows"
    return model, detector, threshold, metrics


def fit_detector(scorer, data: TrainingSet, held: "HeldOut | None") -> tuple[Detector, np.ndarray]:
    """Each head's calibration from normal windows the autoencoder did not learn from: the
    held-out normal sensors' (past the warm-up), else the held-out sensors' normal windows, else
    (a tiny table) the training windows; the healthy-fleet reference from the training windows.
    Also those windows' raw head values (the budget threshold scores the held-out ones)."""
    reference = held.windows if held is not None else data.validation.subset(data.validation.label != 1)
    if not len(reference):
        reference = data.normal
    fleet = FleetReference.fit(data.normal.head_stats.recent_mean, data.stats)
    raw = Detector.raw_values(score_windows(scorer, reference.x), reference.head_stats, fleet, data.stats)
    return Detector.fit(raw, fleet), raw


@dataclass
class HeldOut:
    """Windows of the held-out normal sensors at intervals of event time, for the budget threshold."""

    windows: WindowSet
    point_ms: float  # the streamer's typical time between two scores of a sensor


def heldout_windows(data: TrainingSet, alerts: AlertSettings, score_every_ms: int,
                    min_history_ms: int | None = None) -> HeldOut | None:
    """The held-out normal sensors' windows (by default only those past the warm-up), one per
    stride of event time fine enough for the persistence rule."""
    normal = [s for s in data.val_sensors if np.nanmax(s.labels, initial=0) != 1 and len(s.ts_ms) > 1]
    if not normal:
        return None
    # A sensor is scored at most once per span of the cadence (stream.score_every), and at most
    # once per event.
    point_ms = max(float(np.median(np.concatenate([event_gaps(s) for s in normal]))), float(score_every_ms))
    stride = calibration_stride_ms(alerts, point_ms, data.spec.length_ms, data.spec.bin_ms)

    def points(_sensor_id: str, ts: np.ndarray) -> np.ndarray:
        return np.flatnonzero(np.diff(ts // stride, prepend=ts[0] // stride - 1) > 0)  # first event per stride

    if min_history_ms is None:
        min_history_ms = int(alerts.warmup_fraction * data.spec.length_ms)
    windows = build_windows(normal, data.spec, data.stats, min_events=data.min_events,
                            min_history_ms=min_history_ms, points=points)
    return HeldOut(windows, point_ms) if len(windows) else None


def fit_and_register(
    table: EventTable,
    spec: WindowSpec,
    config: TrainConfig,
    registry: ModelRegistry,
    every: int | None = None,
    min_events: int = 10,
    validation_fraction: float = 0.2,
    source: dict | None = None,
    verbose: int = 0,
    promote: bool = True,
    threshold_quantile: float = DEFAULT_QUANTILE,
    before_save=None,
    alerts: AlertSettings | None = None,
    score_every_ms: int = 0,
) -> TrainResult:
    started = time.monotonic()
    data = training_set(table, spec, every, min_events, validation_fraction, config.seed)
    spec, stats, normal, val_windows = data.spec, data.stats, data.normal, data.validation
    log.info("training", windows=len(normal), sensors=len(data.train_sensors), every=data.every,
             steps=spec.steps, baseline=spec.baseline)
    model, detector, threshold, metrics = fit_model(data, config, threshold_quantile, verbose, alerts, score_every_ms)

    version = registry.new_version()
    meta = ModelMeta(
        version=version,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        parent_version=registry.current_version(),
        features=list(table.features),
        label_column=table.label_column,
        window=spec.to_dict(),
        fleet_stats=stats.to_dict(),
        threshold=threshold.to_dict(),
        detector=detector.to_dict(),
        metrics=metrics,
        training={
            "data": {**(source or {}), "n_events": table.n_events, "n_sensors": len(table.series),
                     "dropped_rows": table.dropped,
                     "first_event_ms": int(min(s.ts_ms[0] for s in table)),
                     "last_event_ms": int(max(s.ts_ms[-1] for s in table))},
            "sensors": {"train": len(data.train_sensors), "validation": len(data.val_sensors)},
            "windows": {"train": len(normal), "validation": len(val_windows), "every": data.every,
                        "min_events": min_events, "min_history_ms": data.min_history_ms},
            "config": config.sized(spec.steps, spec.channels).to_dict(),
        },
    )
    if before_save is not None:
        before_save()  # the trainer job's last chance to abandon the run untouched (SIGTERM)
    path = registry.save(model, meta)
    if promote:
        registry.promote(version)
    seconds = time.monotonic() - started
    return TrainResult(version, str(path), meta, seconds)
