"""Fleet statistics the featurisation needs, fitted on training data and saved in the artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np


@dataclass(frozen=True)
class SensorBaseline:
    mean: np.ndarray  # [F]
    cov: np.ndarray  # [F, F]

    @property
    def std(self) -> np.ndarray:
        return np.sqrt(np.maximum(np.diag(self.cov), 0.0))


@dataclass(frozen=True)
class FleetStats:
    """The healthy fleet's frame: per-feature mean and standard deviation of every normal event of
    the training sensors pooled; the typical events per bin; optional per-sensor baselines."""

    mean: np.ndarray  # [F]
    std: np.ndarray  # [F], > 0
    count_per_bin: float  # typical events per bin
    sensor_baselines: dict[str, SensorBaseline] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        moments: Iterable[tuple[str, float, np.ndarray, np.ndarray, int]],
        length_ms: int,
        steps: int,
        per_sensor: bool = False,
    ) -> "FleetStats":
        """From ``(sensor_id, events, mean, covariance, time span ms)`` of the training sensors
        (:func:`vigil.features.dataset.moments`, from a file's events or a buffer's bins)."""
        rates, baselines, means, m2 = [], {}, [], []
        for sensor_id, n, mu, cov, span in moments:
            if n < 2:
                continue
            # Pooled moments from per-sensor centred ones: no cancellation for large readings.
            means.append((n, np.asarray(mu, dtype=np.float64)))
            m2.append(n * np.maximum(np.diag(cov), 0.0))
            rates.append(n / max(int(span), 1))
            if per_sensor:
                baselines[sensor_id] = SensorBaseline(np.asarray(mu, dtype=np.float64), np.asarray(cov, dtype=np.float64))
        if not means:
            raise ValueError("no sensor has two or more events: nothing to fit fleet statistics on")
        counts = np.array([c for c, _ in means], dtype=np.float64)
        mus = np.stack([m for _, m in means])
        n = counts.sum()
        mean = (counts[:, None] * mus).sum(axis=0) / n
        var = (np.sum(m2, axis=0) + (counts[:, None] * (mus - mean) ** 2).sum(axis=0)) / n
        # A feature constant across the fleet gets a unit scale relative to its magnitude.
        std = np.sqrt(var)
        std = np.where(std > 1e-9 * np.maximum(np.abs(mean), 1.0), std, np.maximum(np.abs(mean), 1.0) * 1e-3)
        count = max(float(np.median(rates)) * length_ms / steps, 1.0)
        return cls(mean, std, count, baselines)

    def baseline_for(self, sensor_id: str) -> SensorBaseline | None:
        return self.sensor_baselines.get(sensor_id)

    def to_dict(self) -> dict:
        return {
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "count_per_bin": self.count_per_bin,
            "sensor_baselines": {
                k: {"mean": b.mean.tolist(), "cov": b.cov.tolist()} for k, b in self.sensor_baselines.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> "FleetStats":
        if "mean" not in data:
            raise ValueError("the model was trained by an older Vigil (no fleet statistics): retrain it")
        return cls(
            np.asarray(data["mean"], dtype=np.float64),
            np.asarray(data["std"], dtype=np.float64),
            float(data["count_per_bin"]),
            {k: SensorBaseline(np.asarray(b["mean"]), np.asarray(b["cov"]))
             for k, b in data.get("sensor_baselines", {}).items()},
        )
