"""Anomalies injected into a sensor's standardised signal, and which features each one altered.

Everything works in standardised units (the signal before the sensor's level and scale are
applied), so one magnitude means the same thing for a sensor reading 0.01 and one reading 1000.
The random draws happen in a fixed order per kind: changing that order changes every fleet that
tests and benchmarks have pinned, so new kinds only add draws in their own branch.
"""

from __future__ import annotations

import numpy as np

from vigil.durations import HOUR_MS

ANOMALY_KINDS = ("level_shift", "drift", "spikes", "variance_burst", "stuck", "oscillation", "decorrelation")
# "degradation" is kept out of ANOMALY_KINDS: the default fleet draws its kinds from that tuple,
# and adding a kind there would change which sensor gets which anomaly in every pinned fleet.
ALL_ANOMALY_KINDS = (*ANOMALY_KINDS, "degradation")


def onset_offset(rng: np.random.Generator, kind: str, offsets: np.ndarray, span_ms: float,
                 between_ms: tuple[float, float] | None = None) -> float:
    """When the anomaly starts, in ms from the fleet's start.

    Most kinds appear in the last 10-40% of the period (the seed's "alerts within 10 days"), or
    uniformly in ``between_ms`` when given (the same draw, so the rest of the fleet is unchanged);
    degradation is a whole-life process, as in run-to-failure data, so it starts with the series.
    """
    if kind == "degradation":
        return float(offsets[0])
    u = rng.uniform(0.1, 0.4)
    if between_ms is not None:
        return between_ms[0] + (u - 0.1) / 0.3 * (between_ms[1] - between_ms[0])
    return span_ms * (1 - u)


def inject(
    rng: np.random.Generator, kind: str, z: np.ndarray, offsets: np.ndarray, onset: float, span: float
) -> tuple[np.ndarray, np.ndarray]:
    """Apply one anomaly kind to the events from ``onset`` on.

    Returns the altered signal and a per-feature mask of what was altered, for the fleet's truth:
    a detector that names the wrong feature should be measurably wrong.
    """
    after = offsets >= onset
    n_after = int(after.sum())
    z = z.copy()
    if n_after == 0:
        return z, np.zeros(z.shape[1], dtype=bool)
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
        feats = np.ones_like(feats)
    elif kind == "oscillation":
        hours = offsets[after] / HOUR_MS
        wave = rng.uniform(2.0, 3.0) * np.sin(2 * np.pi * hours / rng.uniform(1.5, 3.0))
        z[np.ix_(after, feats)] += np.outer(wave, sign)[:, feats]
    elif kind == "decorrelation":
        # The features stop following their shared state: same mean and spread, no correlation.
        # With a single feature this still removes its daily cycle and autocorrelation.
        before = z[~after]
        z[after] = before.mean(axis=0) + before.std(axis=0) * rng.normal(0, 1, (n_after, z.shape[1]))
        feats = np.ones_like(feats)
    elif kind == "degradation":
        # Wear: imperceptible for most of the life, then accelerating; exp(k·p)-1 normalised so
        # the end of life sits 3-5 standardised units away from where the unit started.
        k = rng.uniform(2.5, 4.0)
        curve = np.expm1(k * progress) / np.expm1(k)
        z[np.ix_(after, feats)] += np.outer(curve, sign * rng.uniform(3.0, 5.0))[:, feats]
    else:
        raise ValueError(f"unknown anomaly kind {kind!r}; choose from {', '.join(ALL_ANOMALY_KINDS)}")
    return z, feats
