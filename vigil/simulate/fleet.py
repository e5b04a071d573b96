"""Synthetic fleet in the seed's schema: ``sensor_id, timestamp, feature_*, 10_days_alert_label``.

Each sensor sits at its own operating point (offset and scale per feature), follows a daily cycle
plus AR(1) noise shared across its features (so features are correlated), and reports at
irregular, minutes-apart timestamps. A fraction of sensors (default 5%) develops one of several
kinds of anomaly in the last 10-40% of the period; their label is 1 for every event, as in the
seed data (the sensor alerts within the 10 days).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd
from scipy.signal import lfilter

ANOMALY_KINDS = ("level_shift", "drift", "spikes", "variance_burst", "stuck", "oscillation", "decorrelation")
DAY_MS = 86_400_000


@dataclass(frozen=True)
class FleetSpec:
    sensors: int = 100
    days: float = 10.0
    mean_interval_s: float = 600.0
    alert_fraction: float = 0.05
    features: tuple[str, ...] = ("feature_1", "feature_2")
    label_column: str = "10_days_alert_label"
    start: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)
    kinds: tuple[str, ...] = ANOMALY_KINDS
    seed: int = 0
    id_prefix: str = "sensor-"

    def __post_init__(self) -> None:
        if self.sensors < 1:
            raise ValueError("a fleet needs at least one sensor")
        if not 0 <= self.alert_fraction <= 1:
            raise ValueError("alert_fraction must be between 0 and 1")
        if self.days <= 0 or self.mean_interval_s <= 0:
            raise ValueError("days and mean_interval_s must be positive")
        unknown = set(self.kinds) - set(ANOMALY_KINDS)
        if unknown or not self.kinds:
            raise ValueError(f"unknown anomaly kinds {sorted(unknown)}; choose from {ANOMALY_KINDS}")


@dataclass
class Fleet:
    events: pd.DataFrame  # sorted by timestamp: the order a gateway would publish them
    truth: pd.DataFrame  # one row per sensor: sensor_id, alerting, kind, onset_ms
    spec: FleetSpec = field(repr=False)

    @property
    def alerting_sensors(self) -> set[str]:
        return set(self.truth.loc[self.truth.alerting, "sensor_id"])


def generate_fleet(spec: FleetSpec) -> Fleet:
    rng = np.random.default_rng(spec.seed)
    n_alert = max(1, round(spec.sensors * spec.alert_fraction)) if spec.alert_fraction > 0 else 0
    alerting = np.zeros(spec.sensors, dtype=bool)
    alerting[rng.choice(spec.sensors, size=n_alert, replace=False)] = True
    start_ms = int(spec.start.timestamp() * 1000)
    frames, truth = [], []
    for i in range(spec.sensors):
        sensor_rng = np.random.default_rng([spec.seed, i])
        sensor_id = f"{spec.id_prefix}{i:05d}"
        kind = str(sensor_rng.choice(spec.kinds)) if alerting[i] else None
        t_ms, values, onset_ms = _sensor_series(sensor_rng, spec, start_ms, kind)
        frame = pd.DataFrame(values, columns=list(spec.features))
        frame.insert(0, "timestamp", t_ms)
        frame.insert(0, "sensor_id", sensor_id)
        frame[spec.label_column] = int(alerting[i])
        frames.append(frame)
        truth.append({"sensor_id": sensor_id, "alerting": bool(alerting[i]), "kind": kind, "onset_ms": onset_ms})
    events = pd.concat(frames, ignore_index=True).sort_values(["timestamp", "sensor_id"], kind="stable")
    return Fleet(events.reset_index(drop=True), pd.DataFrame(truth), spec)


def _sensor_series(
    rng: np.random.Generator, spec: FleetSpec, start_ms: int, kind: str | None
) -> tuple[np.ndarray, np.ndarray, int | None]:
    span_ms = spec.days * DAY_MS
    # Irregular reporting: exponential gaps, at least 30 s, starting anywhere in the first interval.
    n_guess = int(span_ms / (spec.mean_interval_s * 1000) * 1.3) + 10
    gaps = np.maximum(rng.exponential(spec.mean_interval_s * 1000, n_guess), 30_000)
    offsets = np.cumsum(gaps) - gaps[0] * rng.random()
    offsets = offsets[offsets < span_ms].astype(np.int64)
    t_ms = start_ms + offsets
    hours = offsets / 3_600_000

    n_feat = len(spec.features)
    level = rng.normal(0, 20, n_feat) + 50 * np.arange(n_feat)  # operating point per feature
    scale = rng.lognormal(0, 0.6, n_feat)
    weight = rng.uniform(0.5, 0.9, n_feat)  # how much each feature follows the shared state
    daily = rng.uniform(0.6, 1.4) * np.sin(2 * np.pi * hours / 24 + rng.uniform(0, 2 * np.pi))
    shared = daily + _ar1(rng, len(offsets), phi=0.8, sigma=0.4)
    own = rng.normal(0, 1, (len(offsets), n_feat))
    z = weight * shared[:, None] + np.sqrt(1 - weight**2) * own

    onset_ms = None
    if kind is not None:
        onset_off = span_ms * (1 - rng.uniform(0.1, 0.4))  # the last 1-4 days of a 10-day period
        onset_ms = start_ms + int(onset_off)
        z = _inject(rng, kind, z, offsets, onset_off, span_ms)
    return t_ms, level + scale * z, onset_ms


def _ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> np.ndarray:
    return lfilter([1.0], [1.0, -phi], rng.normal(0, sigma, n))


def _inject(rng, kind, z, offsets, onset, span) -> np.ndarray:
    """Apply one anomaly kind, in standardised units, to the events after ``onset``."""
    after = offsets >= onset
    n_after = int(after.sum())
    z = z.copy()
    if n_after == 0:
        return z
    progress = (offsets[after] - onset) / (span - onset)  # 0 at onset → 1 at the end
    feats = rng.random(z.shape[1]) < 0.7
    feats[rng.integers(z.shape[1])] = True  # at least one feature is affected
    sign = rng.choice([-1.0, 1.0], z.shape[1])
    if kind == "level_shift":
        z[np.ix_(after, feats)] += (sign * rng.uniform(2.5, 4.0))[feats]
    elif kind == "drift":
        z[np.ix_(after, feats)] += np.outer(progress, sign * rng.uniform(3.0, 5.0))[:, feats]
    elif kind == "spikes":
        hit = rng.random(n_after) < 0.08
        rows = np.flatnonzero(after)[hit]
        z[np.ix_(rows, feats)] += rng.choice([-1, 1], (len(rows), int(feats.sum()))) * rng.uniform(5, 8)
    elif kind == "variance_burst":
        z[np.ix_(after, feats)] *= rng.uniform(3.0, 4.5)
    elif kind == "stuck":
        frozen = z[np.flatnonzero(after)[0]]
        z[after] = frozen + rng.normal(0, 0.01, (n_after, z.shape[1]))
    elif kind == "oscillation":
        hours = offsets[after] / 3_600_000
        wave = rng.uniform(2.0, 3.0) * np.sin(2 * np.pi * hours / rng.uniform(1.5, 3.0))
        z[np.ix_(after, feats)] += np.outer(wave, sign)[:, feats]
    elif kind == "decorrelation":
        # The features stop following their shared state: same mean and spread, no correlation.
        before = z[~after]
        z[after] = before.mean(axis=0) + before.std(axis=0) * rng.normal(0, 1, (n_after, z.shape[1]))
    return z
