"""Fleet statistics the featurisation needs, fitted on training data and saved in the artifact."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

# The floor under a baseline's spread, as a fraction of the fleet's typical within-sensor spread.
SCALE_FLOOR_FRACTION = 0.1


@dataclass(frozen=True)
class SensorBaseline:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> "SensorBaseline":
        values = np.asarray(values, dtype=np.float64)
        return cls(values.mean(axis=0), values.std(axis=0))


@dataclass(frozen=True)
class FleetStats:
    scale_floor: np.ndarray  # per feature
    count_per_bin: float  # typical events per non-empty bin
    sensor_baselines: dict[str, SensorBaseline] = field(default_factory=dict)

    @classmethod
    def fit(
        cls,
        series: Iterable[tuple[str, np.ndarray, np.ndarray]],
        length_ms: int,
        steps: int,
        per_sensor: bool = False,
    ) -> "FleetStats":
        """From ``(sensor_id, ts_ms, values)`` of the training sensors."""
        spreads, rates, baselines = [], [], {}
        for sensor_id, ts, values in series:
            if len(ts) < 2:
                continue
            spreads.append(np.asarray(values, dtype=np.float64).std(axis=0))
            span = max(int(ts[-1] - ts[0]), 1)
            rates.append(len(ts) / span)
            if per_sensor:
                baselines[sensor_id] = SensorBaseline.of(values)
        if not spreads:
            raise ValueError("no sensor has two or more events: nothing to fit fleet statistics on")
        typical = np.median(np.stack(spreads), axis=0)
        floor = SCALE_FLOOR_FRACTION * np.where(typical > 0, typical, 1.0)
        count = max(float(np.median(rates)) * length_ms / steps, 1.0)
        return cls(floor, count, baselines)

    def baseline_for(self, sensor_id: str) -> SensorBaseline | None:
        return self.sensor_baselines.get(sensor_id)

    def to_dict(self) -> dict:
        return {
            "scale_floor": self.scale_floor.tolist(),
            "count_per_bin": self.count_per_bin,
            "sensor_baselines": {
                k: {"mean": b.mean.tolist(), "std": b.std.tolist()} for k, b in self.sensor_baselines.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> "FleetStats":
        return cls(
            np.asarray(data["scale_floor"], dtype=np.float64),
            float(data["count_per_bin"]),
            {k: SensorBaseline(np.asarray(b["mean"]), np.asarray(b["std"]))
             for k, b in data.get("sensor_baselines", {}).items()},
        )
