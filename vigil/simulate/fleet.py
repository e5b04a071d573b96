"""Synthetic fleet in the seed's schema: ``sensor_id, timestamp, feature_*, 10_days_alert_label``.

The profile (see :mod:`vigil.simulate.profiles`) decides what normal looks like: by default each
sensor sits at its own operating point, follows a daily cycle plus AR(1) noise shared across its
features (so features are correlated), and reports at irregular, minutes-apart timestamps. A
fraction of sensors (default 5%) develops one anomaly (see :mod:`vigil.simulate.anomalies`);
their label is 1 for every event, as in the seed data (the sensor alerts within the 10 days).

The default fleet is pinned by tests and benchmarks: for a given seed it must stay the same,
draw for draw, so profiles and kinds only add random draws on their own paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from vigil.durations import DAY_MS
from vigil.simulate.anomalies import ALL_ANOMALY_KINDS, inject, onset_offset
from vigil.simulate.profiles import DEFAULT_KINDS, PROFILES, fleet_operating_point, sensor_baseline



@dataclass(frozen=True)
class FleetSpec:
    sensors: int = 100
    days: float = 10.0
    mean_interval_s: float = 600.0  # ignored by "univariate_daily", which draws a cadence per sensor
    alert_fraction: float = 0.05
    features: tuple[str, ...] = ("feature_1", "feature_2")  # "univariate_daily" uses the first only
    label_column: str = "10_days_alert_label"
    start: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)
    kinds: tuple[str, ...] | None = None  # None: the profile's defaults (see anomaly_kinds)
    seed: int = 0
    id_prefix: str = "sensor-"
    profile: str = "operating_points"
    onset_days: tuple[float, float] | None = None  # anomalies start between these days (default: last 10-40%)

    def __post_init__(self) -> None:
        if self.sensors < 1:
            raise ValueError("a fleet needs at least one sensor")
        if not 0 <= self.alert_fraction <= 1:
            raise ValueError("alert_fraction must be between 0 and 1")
        if self.days <= 0 or self.mean_interval_s <= 0:
            raise ValueError("days and mean_interval_s must be positive")
        if not self.features:
            raise ValueError("a fleet needs at least one feature")
        if self.profile not in PROFILES:
            raise ValueError(f"unknown fleet profile {self.profile!r}; choose from {', '.join(PROFILES)}")
        if isinstance(self.kinds, str):
            raise ValueError(f"kinds is a tuple of anomaly kinds, e.g. ({self.kinds!r},), not a string")
        if self.onset_days is not None and not 0 <= self.onset_days[0] <= self.onset_days[1] <= self.days:
            raise ValueError(f"onset days {self.onset_days} must be FROM <= TO within the fleet's {self.days:g} days")
        if self.kinds is not None:
            unknown = set(self.kinds) - set(ALL_ANOMALY_KINDS)
            if unknown or not self.kinds:
                raise ValueError(
                    f"unknown anomaly kinds {sorted(unknown)}; choose from {', '.join(ALL_ANOMALY_KINDS)}")

    @property
    def anomaly_kinds(self) -> tuple[str, ...]:
        """The kinds alerting sensors draw from: ``kinds`` if given, else the profile's defaults."""
        return DEFAULT_KINDS[self.profile] if self.kinds is None else tuple(self.kinds)

    @property
    def event_features(self) -> tuple[str, ...]:
        """The feature columns the events carry."""
        return self.features[:1] if self.profile == "univariate_daily" else tuple(self.features)


@dataclass
class Fleet:
    events: pd.DataFrame  # sorted by timestamp: the order a gateway would publish them
    # One row per sensor: sensor_id, alerting, kind, onset_ms, features (";"-joined names of the
    # features the anomaly altered; empty for normal sensors).
    truth: pd.DataFrame
    spec: FleetSpec = field(repr=False)

    @property
    def alerting_sensors(self) -> set[str]:
        return set(self.truth.loc[self.truth.alerting, "sensor_id"])


def generate_fleet(spec: FleetSpec) -> Fleet:
    rng = np.random.default_rng(spec.seed)
    n_alert = max(1, round(spec.sensors * spec.alert_fraction)) if spec.alert_fraction > 0 else 0
    alerting = np.zeros(spec.sensors, dtype=bool)
    alerting[rng.choice(spec.sensors, size=n_alert, replace=False)] = True
    features = spec.event_features
    kinds = spec.anomaly_kinds
    shared = fleet_operating_point(rng, spec.profile, len(features))
    start_ms = int(spec.start.timestamp() * 1000)
    span_ms = spec.days * DAY_MS
    frames, truth = [], []
    for i in range(spec.sensors):
        sensor_rng = np.random.default_rng([spec.seed, i])
        sensor_id = f"{spec.id_prefix}{i:05d}"
        kind = str(sensor_rng.choice(kinds)) if alerting[i] else None
        base = sensor_baseline(sensor_rng, spec.profile, len(features), span_ms, spec.mean_interval_s, shared)
        z, onset_ms, altered = base.z, None, np.zeros(len(features), dtype=bool)
        if kind is not None:
            between = None if spec.onset_days is None else tuple(d * DAY_MS for d in spec.onset_days)
            onset = onset_offset(sensor_rng, kind, base.offsets, span_ms, between)
            onset_ms = start_ms + int(onset)
            z, altered = inject(sensor_rng, kind, z, base.offsets, onset, span_ms)
        frame = pd.DataFrame(base.level + base.scale * z, columns=list(features))
        frame.insert(0, "timestamp", start_ms + base.offsets)
        frame.insert(0, "sensor_id", sensor_id)
        frame[spec.label_column] = int(alerting[i])
        frames.append(frame)
        truth.append({
            "sensor_id": sensor_id, "alerting": bool(alerting[i]), "kind": kind, "onset_ms": onset_ms,
            "features": ";".join(f for f, hit in zip(features, altered) if hit),
        })
    events = pd.concat(frames, ignore_index=True).sort_values(["timestamp", "sensor_id"], kind="stable")
    return Fleet(events.reset_index(drop=True), pd.DataFrame(truth), spec)
