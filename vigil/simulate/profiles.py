"""Fleet profiles: the shapes of fleet that real data sets show, before any anomaly.

- ``operating_points``: every sensor at its own level and scale per feature (the seed data);
  a detector must normalise per sensor or drown in between-sensor differences.
- ``identical``: identical units around one shared operating point (NASA C-MAPSS turbofans);
  between-unit differences are smaller than the noise, so a fleet-wide model is the natural one.
- ``univariate_daily``: one feature, strong daily cycles, reporting cadences from 5 minutes to an
  hour and units from 0.01 to 1000 (NAB, Yahoo S5-like); breaks anything tuned to one cadence or
  one absolute scale.

A profile yields a :class:`Baseline` in standardised units; the fleet adds anomalies to ``z`` and
only then maps to physical values, so anomaly magnitudes mean the same in every profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter

from vigil.durations import DAY_MS, HOUR_MS
from vigil.simulate.anomalies import ALL_ANOMALY_KINDS, ANOMALY_KINDS

PROFILES = ("operating_points", "identical", "univariate_daily")
DEFAULT_KINDS = {
    "operating_points": ANOMALY_KINDS,
    "identical": ALL_ANOMALY_KINDS,  # run-to-failure fleets: units wear out
    # One feature has no cross-feature correlation to lose.
    "univariate_daily": tuple(k for k in ANOMALY_KINDS if k != "decorrelation"),
}
UNIT_JITTER = 0.3  # identical units: level differences, in within-unit standard deviations
INTERVAL_RANGE_S = (300.0, 3600.0)  # univariate_daily: per-sensor cadence, log-uniform
SPREAD_RANGE = (1e-2, 1e3)  # univariate_daily: per-sensor scale, log-uniform


@dataclass(frozen=True)
class Baseline:
    offsets: np.ndarray  # ms since the fleet's start, int64, increasing
    level: np.ndarray  # per feature
    scale: np.ndarray  # per feature
    z: np.ndarray  # (events, features), standardised: roughly zero mean, unit spread


IDENTICAL_UNIT_SEED = 20_26  # the identical profile's unit model, the same for every fleet seed


def fleet_operating_point(
    rng: np.random.Generator, profile: str, n_feat: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """The one operating point that all units of an ``identical`` fleet share; None otherwise.

    It belongs to the kind of unit, not to one fleet: every seed draws the same point (a fixed
    generator), so a fleet trained on and a fleet tested on are the same product, as C-MAPSS's
    training and test engines are. The fleet's own generator is not touched.
    """
    if profile != "identical":
        return None
    return _operating_point(np.random.default_rng(IDENTICAL_UNIT_SEED), n_feat)


def sensor_baseline(
    rng: np.random.Generator, profile: str, n_feat: int, span_ms: float, mean_interval_s: float,
    shared: tuple[np.ndarray, np.ndarray] | None = None,
) -> Baseline:
    if profile == "univariate_daily":
        return _univariate_daily(rng, span_ms)
    offsets = _irregular_offsets(rng, span_ms, mean_interval_s)
    if profile == "identical":
        level, scale = shared
        level = level + scale * rng.normal(0, UNIT_JITTER, n_feat)
        scale = scale * rng.lognormal(0, 0.05, n_feat)
    else:
        level, scale = _operating_point(rng, n_feat)
    return Baseline(offsets, level, scale, _correlated_state(rng, offsets, n_feat))


def _operating_point(rng: np.random.Generator, n_feat: int) -> tuple[np.ndarray, np.ndarray]:
    level = rng.normal(0, 20, n_feat) + 50 * np.arange(n_feat)
    scale = rng.lognormal(0, 0.6, n_feat)
    return level, scale


def _irregular_offsets(rng: np.random.Generator, span_ms: float, mean_interval_s: float) -> np.ndarray:
    """Exponential gaps, at least 30 s, starting anywhere in the first interval: a gateway that
    reports on change rather than on a clock."""
    n_guess = int(span_ms / (mean_interval_s * 1000) * 1.3) + 10
    gaps = np.maximum(rng.exponential(mean_interval_s * 1000, n_guess), 30_000)
    offsets = np.cumsum(gaps) - gaps[0] * rng.random()
    return offsets[offsets < span_ms].astype(np.int64)


def _correlated_state(rng: np.random.Generator, offsets: np.ndarray, n_feat: int) -> np.ndarray:
    """A daily cycle plus AR(1) noise shared across features, so features are correlated and a
    decorrelation anomaly has something to break."""
    hours = offsets / HOUR_MS
    weight = rng.uniform(0.5, 0.9, n_feat)  # how much each feature follows the shared state
    daily = rng.uniform(0.6, 1.4) * np.sin(2 * np.pi * hours / 24 + rng.uniform(0, 2 * np.pi))
    shared = daily + _ar1(rng, len(offsets), phi=0.8, sigma=0.4)
    own = rng.normal(0, 1, (len(offsets), n_feat))
    return weight * shared[:, None] + np.sqrt(1 - weight**2) * own


def _univariate_daily(rng: np.random.Generator, span_ms: float) -> Baseline:
    # A clock-driven cadence (±10% jitter) that differs per sensor: windows of fixed duration
    # hold 12× more events for some sensors than for others.
    interval_ms = 1000 * np.exp(rng.uniform(*np.log(INTERVAL_RANGE_S)))
    n_guess = int(span_ms / interval_ms * 1.3) + 10
    gaps = interval_ms * np.exp(rng.normal(0, 0.1, n_guess))
    offsets = np.cumsum(gaps) - gaps[0] * rng.random()
    offsets = offsets[offsets < span_ms].astype(np.int64)

    scale = np.array([np.exp(rng.uniform(*np.log(SPREAD_RANGE)))])
    level = scale * rng.uniform(-2.0, 10.0)  # in the sensor's own units: 0.05 or 500
    amplitude = rng.uniform(1.2, 2.0)
    daily = amplitude * np.sin(2 * np.pi * offsets / DAY_MS + rng.uniform(0, 2 * np.pi))
    ar_sigma, phi, own_sigma = 0.3, 0.8, 0.3
    noise = _ar1(rng, len(offsets), phi=phi, sigma=ar_sigma) + rng.normal(0, own_sigma, len(offsets))
    # Standardise by the stationary spread so anomaly magnitudes match the other profiles'.
    spread = np.sqrt(amplitude**2 / 2 + ar_sigma**2 / (1 - phi**2) + own_sigma**2)
    return Baseline(offsets, level, scale, ((daily + noise) / spread)[:, None])


def _ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> np.ndarray:
    return lfilter([1.0], [1.0, -phi], rng.normal(0, sigma, n))
