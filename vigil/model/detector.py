"""The detector: every head's raw value on one calibrated scale, and the window's score.

The heads are the self-referenced statistics of :mod:`vigil.features.heads`, the healthy-fleet
distance (``fleet``: the recent mean's Mahalanobis distance from healthy sensors' recent means,
with a shrunk covariance saved in the artifact) and the encoder-latent autoencoder's error
(``autoencoder``). Their raw values live on different scales, so each goes through a
:class:`Calibrator` fitted on held-out normal sensors: a monotone map from the head's normal
distribution to a z-like scale (the quantile of ``|N(0, 1)|`` with the same tail probability), with
an exponential tail beyond the observed values so a value far past every normal one keeps rising
instead of saturating.

One more calibrated value, ``joint``, pools the evidence: the sum of the calibrated heads' squares,
calibrated in turn on the same normal windows. The largest head alone finds a change that one
statistic sees clearly; ``joint`` finds one that moves several at once, each only a little (an
oscillation raises the spread, the extremes, the profile and the correlations together). The
window's score is the largest of the calibrated heads and ``joint``. The false-alert budget
(:mod:`vigil.alerts.budget`) and the alert policy sit on top of that score, as on any score.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> c = Calibrator.fit(rng.exponential(1.0, 5000))
    >>> [round(float(v), 1) for v in c(np.array([0.0, 0.69, 4.6, 9.2]))]
    [0.0, 0.7, 2.5, 3.7]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri
from sklearn.covariance import LedoitWolf

from vigil.features.heads import HEADS, HeadStats
from vigil.features.normalizer import FleetStats

DETECTOR_HEADS = (*HEADS, "fleet", "autoencoder")
JOINT = "joint"
# What a window's calibrated values are: every head, then the pooled evidence.
SCORE_HEADS = (*DETECTOR_HEADS, JOINT)
TAIL_FRACTION = 0.1  # the top share of normal values the exponential tail is fitted to
KNOTS = 200


@dataclass(frozen=True)
class Calibrator:
    """Raw value → z: the standard normal's ``isf(sf / 2)`` of the value's tail probability among
    normal values."""

    x: np.ndarray  # knots: raw values, increasing
    p: np.ndarray  # share of normal values below each knot
    tail_base: float
    tail_scale: float

    @classmethod
    def fit(cls, normal: np.ndarray) -> "Calibrator":
        v = np.sort(np.asarray(normal, dtype=np.float64)[np.isfinite(normal)])
        if not len(v):
            return cls(np.array([0.0]), np.array([1.0]), 0.0, 1.0)
        base = float(np.quantile(v, 1 - TAIL_FRACTION))
        excess = v[v > base] - base
        scale = float(excess.mean()) if len(excess) else 0.0
        # A head that never departs from one value on normal data (e.g. unusable on this data)
        # still maps a departure upward: a scale of a thousandth of the values' magnitude.
        scale = max(scale, 1e-3 * max(abs(base), float(np.abs(v).max()), 1e-9))
        x = np.unique(np.quantile(v, np.linspace(0, 1 - TAIL_FRACTION, KNOTS)))
        # The share strictly below each knot: the lowest normal value (e.g. a head that found
        # nothing) reads z = 0, however many windows share it.
        p = np.searchsorted(v, x, side="left") / len(v)
        return cls(x, p, base, scale)

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        body = 1.0 - np.interp(raw, self.x, self.p, left=0.0)
        tail = TAIL_FRACTION * np.exp(-np.maximum(raw - self.tail_base, 0.0) / self.tail_scale)
        sf = np.where(raw > self.tail_base, np.minimum(tail, TAIL_FRACTION), np.maximum(body, TAIL_FRACTION))
        sf = np.clip(np.where(np.isfinite(raw), sf, 1.0), 1e-300, 1.0)
        # scipy.stats' norm.isf is -ndtri behind argument handling that costs more than the ufunc
        # on a batch of a few windows (a cadence's points come a few sensors at a time; figures
        # in bench/README.md). 0 - x, not -x: a value at the median reads 0.0 as norm.isf gives
        # it, not -0.0.
        return 0.0 - ndtri(sf / 2)

    def to_dict(self) -> dict:
        return {"x": self.x.tolist(), "p": self.p.tolist(), "tail_base": self.tail_base, "tail_scale": self.tail_scale}

    @classmethod
    def from_dict(cls, d: dict) -> "Calibrator":
        return cls(np.asarray(d["x"], np.float64), np.asarray(d["p"], np.float64), float(d["tail_base"]),
                   float(d["tail_scale"]))


@dataclass(frozen=True)
class FleetReference:
    """Healthy sensors' recent means (in the fleet's per-feature units): their centre and shrunk
    precision; a window's raw ``fleet`` value is its recent mean's squared Mahalanobis distance."""

    mean: np.ndarray  # [F]
    precision: np.ndarray  # [F, F]

    @classmethod
    def fit(cls, recent_means: np.ndarray, stats: FleetStats) -> "FleetReference":
        u = _fleet_units(recent_means, stats)
        u = u[np.isfinite(u).all(axis=1)]
        if len(u) < 3:
            f = len(stats.mean)
            return cls(np.zeros(f), np.eye(f))
        lw = LedoitWolf().fit(u)
        return cls(lw.location_, lw.precision_)

    def distance(self, recent_means: np.ndarray, stats: FleetStats) -> np.ndarray:
        d = _fleet_units(recent_means, stats) - self.mean
        return np.einsum("bi,ij,bj->b", d, self.precision, d)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "precision": self.precision.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "FleetReference":
        return cls(np.asarray(d["mean"], np.float64), np.asarray(d["precision"], np.float64))


def _fleet_units(recent_means: np.ndarray, stats: FleetStats) -> np.ndarray:
    return (np.asarray(recent_means, np.float64) - stats.mean) / stats.std


@dataclass(frozen=True)
class Detector:
    calibrators: dict[str, Calibrator]  # one per SCORE_HEADS name (a model of featurisation 5: no JOINT)
    fleet: FleetReference

    @staticmethod
    def raw_values(autoencoder: np.ndarray, heads: HeadStats, fleet: FleetReference, stats: FleetStats) -> np.ndarray:
        """``[n, len(DETECTOR_HEADS)]`` raw values, in ``DETECTOR_HEADS`` order."""
        return np.column_stack([heads.raw, fleet.distance(heads.recent_mean, stats), autoencoder])

    def score(self, autoencoder: np.ndarray, heads: HeadStats, stats: FleetStats) -> tuple[np.ndarray, np.ndarray]:
        """The windows' scores and their calibrated values ``[n, len(SCORE_HEADS)]``."""
        calibrated = self.calibrate(self.raw_values(autoencoder, heads, self.fleet, stats))
        return self.combine(calibrated), calibrated

    def calibrate(self, raw: np.ndarray) -> np.ndarray:
        """``[n, len(SCORE_HEADS)]``: each head's raw value calibrated, then ``joint``."""
        heads = np.column_stack([self.calibrators[name](raw[:, k]) for k, name in enumerate(DETECTOR_HEADS)])
        joint = self.calibrators.get(JOINT)
        pooled = joint(pooled_evidence(heads)) if joint is not None else np.zeros(len(heads))
        return np.column_stack([heads, pooled])

    @staticmethod
    def combine(calibrated: np.ndarray) -> np.ndarray:
        """The window's score: its largest calibrated value (``SCORE_HEADS`` columns)."""
        return calibrated.max(axis=1) if calibrated.shape[1] else np.zeros(len(calibrated))

    @classmethod
    def fit(cls, normal_raw: np.ndarray, fleet: FleetReference) -> "Detector":
        """Calibrators from held-out normal windows' raw values (``DETECTOR_HEADS`` columns)."""
        calibrators = {name: Calibrator.fit(normal_raw[:, k]) for k, name in enumerate(DETECTOR_HEADS)}
        heads = np.column_stack([calibrators[name](normal_raw[:, k]) for k, name in enumerate(DETECTOR_HEADS)])
        calibrators[JOINT] = Calibrator.fit(pooled_evidence(heads))
        return cls(calibrators, fleet)

    def to_dict(self) -> dict:
        return {"heads": list(SCORE_HEADS), "calibrators": {k: c.to_dict() for k, c in self.calibrators.items()},
                "fleet": self.fleet.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> "Detector":
        # A model of featurisation 5 has no JOINT calibrator: it is scored by its largest head, as trained.
        if list(d.get("heads", [])) not in (list(SCORE_HEADS), list(DETECTOR_HEADS)):
            raise ValueError(f"the model's detector heads {d.get('heads')} are not this Vigil's {list(SCORE_HEADS)}: "
                             "retrain it")
        return cls({k: Calibrator.from_dict(c) for k, c in d["calibrators"].items()}, FleetReference.from_dict(d["fleet"]))


def pooled_evidence(calibrated_heads: np.ndarray) -> np.ndarray:
    """``joint``'s raw value: the sum of the calibrated heads' squares (each head a z-like value)."""
    return np.square(calibrated_heads).sum(axis=1)
