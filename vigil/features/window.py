"""``featurize_window``: one sensor's events in ``(end - length, end]`` → ``[steps, channels]`` float32.

Irregular timestamps are resampled into ``steps`` equal bins. Per bin and feature: the mean and
the spread of the events, both in units of the sensor's *baseline* (so sensors at different
operating points look alike when they behave alike), plus one count channel (events per bin,
relative to the fleet's typical count; 0 marks an empty bin). Empty bins carry the last mean
forward. Values are clipped so one wild reading cannot saturate the LSTM.

The baseline is, by default, the events in the first ``baseline_fraction`` of the window's
observed span (``baseline="window"``): anomalies that start late in the window stand out against
the sensor's own recent normal. With ``baseline="sensor"`` it is per-sensor reference statistics
saved in the model artifact (known fleets whose anomalies last longer than a window, e.g. SKAB).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from vigil.features.normalizer import FleetStats, SensorBaseline


@dataclass(frozen=True)
class WindowSpec:
    length_ms: int
    steps: int
    n_features: int
    baseline: Literal["window", "sensor"] = "window"
    baseline_fraction: float = 0.5
    clip: float = 8.0

    def __post_init__(self) -> None:
        if self.length_ms <= 0 or self.steps < 1 or self.n_features < 1:
            raise ValueError("a window needs a positive length, at least one step and one feature")
        if self.baseline not in ("window", "sensor"):
            raise ValueError(f"baseline must be 'window' or 'sensor', got {self.baseline!r}")
        if not 0 < self.baseline_fraction <= 1:
            raise ValueError("baseline_fraction must be in (0, 1]")

    @property
    def channels(self) -> int:
        return n_channels(self.n_features)

    def to_dict(self) -> dict:
        return asdict(self)


def n_channels(n_features: int) -> int:
    return 2 * n_features + 1


def featurize_window(
    ts_ms: np.ndarray,
    values: np.ndarray,
    end_ms: int,
    spec: WindowSpec,
    stats: FleetStats,
    baseline: SensorBaseline | None = None,
) -> np.ndarray:
    """The ``[steps, channels]`` tensor of the window ending at ``end_ms`` (``ts_ms`` sorted)."""
    out = np.zeros((spec.steps, spec.channels), dtype=np.float32)
    start_ms = end_ms - spec.length_ms
    lo, hi = np.searchsorted(ts_ms, [start_ms, end_ms], side="right")
    if hi <= lo:
        return out
    t = ts_ms[lo:hi]
    x = np.asarray(values[lo:hi], dtype=np.float64)
    # Bin of (start, end]: an event exactly at the end falls in the last bin.
    idx = np.minimum((t - start_ms - 1) * spec.steps // spec.length_ms, spec.steps - 1).astype(np.intp)
    counts = np.bincount(idx, minlength=spec.steps).astype(np.float64)
    nonempty = counts > 0

    mu, scale = _baseline(t, x, end_ms, spec, stats, baseline)
    z = (x - mu) / scale
    f = spec.n_features
    sums = np.stack([np.bincount(idx, z[:, j], spec.steps) for j in range(f)], axis=1)
    sq = np.stack([np.bincount(idx, z[:, j] ** 2, spec.steps) for j in range(f)], axis=1)
    safe = np.maximum(counts, 1.0)[:, None]
    means = sums / safe
    spread = np.sqrt(np.maximum(sq / safe - means**2, 0.0))

    # Carry the last observed mean through empty bins (0, the baseline, before the first event).
    last = np.maximum.accumulate(np.where(nonempty, np.arange(spec.steps), -1))
    means = np.where((last >= 0)[:, None], means[np.maximum(last, 0)], 0.0)

    out[:, :f] = means
    out[:, f : 2 * f] = spread
    out[:, 2 * f] = counts / stats.count_per_bin
    np.clip(out, -spec.clip, spec.clip, out=out)
    return out


def featurize_windows(
    ts_ms: np.ndarray,
    values: np.ndarray,
    ends_ms: np.ndarray,
    spec: WindowSpec,
    stats: FleetStats,
    baseline: SensorBaseline | None = None,
) -> np.ndarray:
    """Several windows of one sensor: ``[len(ends_ms), steps, channels]``."""
    out = np.empty((len(ends_ms), spec.steps, spec.channels), dtype=np.float32)
    for i, end in enumerate(ends_ms):
        out[i] = featurize_window(ts_ms, values, int(end), spec, stats, baseline)
    return out


def _baseline(t, x, end_ms, spec, stats, baseline):
    if spec.baseline == "sensor" and baseline is not None:
        mu, sd = baseline.mean, baseline.std
    else:
        cut = t[0] + spec.baseline_fraction * (end_ms - t[0])
        head = x[t <= cut]
        mu, sd = head.mean(axis=0), head.std(axis=0)
    # The fleet's floor keeps flat (or single-event) baselines from dividing by ~0.
    return mu, np.sqrt(sd**2 + stats.scale_floor**2)
