"""``channels_one``: a window's bins → ``[steps, channels]`` float32 (``featurize_window`` from events).

A window is ``steps`` bins of ``length / steps`` on the epoch-aligned grid (:mod:`vigil.buffer.bins`),
ending at the bin of its newest event; the channels are computed from the bins' mergeable
statistics only. Per feature, in this order:

``level``    the bin's mean in units of the sensor's *own* baseline: a change against its recent
             normal stands out whatever its operating point;
``fleet``    the bin's mean in units of the *healthy fleet* (per-feature statistics saved in the
             artifact): a unit that has drifted away from how healthy units behave stands out even
             when it looks normal next to its own last days (a degraded engine);
``spread``   the log of the bin's standard deviation in baseline units (variance bursts, and
             stuck values, which a log scale puts as far from normal as a burst);
``extreme``  the bin's largest ``|x - baseline mean|`` in baseline units (short spikes that a bin
             mean averages away);
``cross``    (two or more features) the root-mean-square residual of the feature predicted linearly
             from the others, with coefficients from the baseline's covariance, in units of the
             baseline's residual: features that stop moving together (decorrelation); not in
             the default groups (``DEFAULT_GROUPS``: neither is ``fleet``), chosen with ``vigil train --channels``;

then one ``count`` channel (events per bin relative to the fleet's typical count; 0 = empty bin;
the last bin relative to the count expected by the window's end).
Empty bins carry the last level/fleet value forward and hold 0 in the others. Values are clipped
so one wild reading cannot saturate the LSTM.

The baseline (``baseline="window"``, default) is the window's first ``baseline_fraction`` of bins
from its first event on, merged: whole bins, which the per-bin buffers hold as they are.
``baseline="sensor"`` uses per-sensor reference statistics saved in the artifact instead (a window
too short to hold a baseline, anomalies that outlast a window), and the healthy fleet's statistics
for a sensor the model has not seen. Its scale has a floor per sensor and feature: a tenth of
the whole window's spread, so a flat baseline cannot divide by ~0, whatever the feature's units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from vigil.buffer.bins import BinStats, bin_events, bin_width, diagonal_positions, full_matrix
from vigil.features.normalizer import FleetStats, SensorBaseline

CHANNEL_GROUPS = ("level", "fleet", "spread", "extreme", "cross", "count")
# The default keeps the autoencoder's input relative to the sensor itself. Where a sensor sits
# against the healthy fleet is the ``fleet`` head's question (vigil.model.detector), calibrated
# on its own: fed to the autoencoder, a sensor at a rare operating point reads as anomalous in
# every window and alerts day after day. Pairs of features are the ``corr`` head's question, so
# ``cross`` stays out too (bench/README.md, the ablation).
DEFAULT_GROUPS = ("level", "spread", "extreme", "count")
# The featurisation's version, saved with every model: a model is only ever fed the tensor it
# was trained on (a model trained before a change of channels is refused, not silently misfed).
FEATURIZER_VERSION = 6
# Models of these older versions are still scored, so a deployment keeps alerting until a new
# model is trained and promoted. Version 4 feeds the same tensor, the autoencoder alone (no heads).
# Version 5 has the heads but no pooled ``joint``, and its calibration saw the heads' reference
# spread as a standard deviation, not a median absolute deviation: it is scored by its largest
# head, as trained, and close to (not exactly) its own scale.
SCORABLE_VERSIONS = (4, 5, FEATURIZER_VERSION)
# A baseline's spread is floored at this fraction of the whole window's spread (per feature).
WINDOW_FLOOR_FRACTION = 0.1
# And at this fraction of the feature's magnitude, for windows that are flat throughout.
RELATIVE_FLOOR = 1e-6
# The spread channel is log(spread / scale + SPREAD_FLOOR): a flat bin reads log(0.05) ≈ -3.
SPREAD_FLOOR = 0.05
# Per-sensor reference statistics by default once the training history spans this many windows.
SENSOR_BASELINE_WINDOWS = 4


@dataclass(frozen=True)
class WindowSpec:
    length_ms: int
    steps: int
    n_features: int
    # "auto" is a request that training resolves (resolve_baseline); a saved model names its choice.
    baseline: Literal["window", "sensor", "auto"] = "window"
    baseline_fraction: float = 0.5
    clip: float = 8.0
    groups: tuple[str, ...] = DEFAULT_GROUPS
    version: int = FEATURIZER_VERSION

    def __post_init__(self) -> None:
        if self.length_ms <= 0 or self.steps < 1 or self.n_features < 1:
            raise ValueError("a window needs a positive length, at least one step and one feature")
        bin_width(self.length_ms, self.steps)
        if self.baseline not in ("window", "sensor", "auto"):
            raise ValueError(f"baseline must be 'window', 'sensor' or 'auto', got {self.baseline!r}")
        if not 0 < self.baseline_fraction <= 1:
            raise ValueError("baseline_fraction must be in (0, 1]")
        object.__setattr__(self, "groups", tuple(self.groups))
        unknown = set(self.groups) - set(CHANNEL_GROUPS)
        if unknown or not self.groups:
            raise ValueError(f"unknown channel groups {sorted(unknown)}; choose from {CHANNEL_GROUPS}")
        if self.version not in SCORABLE_VERSIONS:
            raise ValueError(f"the model was trained by an older Vigil (featurisation version {self.version}, "
                             f"this Vigil reads {FEATURIZER_VERSION}): retrain it")

    @property
    def bin_ms(self) -> int:
        return bin_width(self.length_ms, self.steps)

    @property
    def channels(self) -> int:
        return len(channel_features(self))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "WindowSpec":
        if "version" not in data:
            raise ValueError("the model was trained by an older Vigil (featurisation version 1): retrain it")
        return cls(**{**data, "groups": tuple(data.get("groups", CHANNEL_GROUPS))})


def resolve_baseline(history_ms: float, length_ms: int) -> Literal["window", "sensor"]:
    """The default's choice: a sensor's own history as its reference when the training data holds
    several windows of it (SKAB: 20 minutes of 10-second windows), else the window's early part
    (a stream's buffer holds one window; the simulator's 10 days of 10-day windows)."""
    return "sensor" if history_ms >= SENSOR_BASELINE_WINDOWS * length_ms else "window"


def _group_width(group: str, n_features: int) -> int:
    if group == "count":
        return 1
    if group == "cross":
        return n_features if n_features > 1 else 0
    return n_features


def channel_features(spec: WindowSpec) -> np.ndarray:
    """The feature index each channel describes (-1 for the count channel), in channel order."""
    out = []
    for group in CHANNEL_GROUPS:
        if group in spec.groups:
            width = _group_width(group, spec.n_features)
            out += [-1] * width if group == "count" else list(range(width))
    return np.asarray(out, dtype=np.intp)


def channel_names(spec: WindowSpec, features: list[str] | tuple[str, ...]) -> list[str]:
    """``group:feature`` per channel, e.g. ``fleet:feature_1``; ``count`` for the count channel."""
    names = []
    for group in CHANNEL_GROUPS:
        if group in spec.groups:
            width = _group_width(group, spec.n_features)
            names += ["count"] if group == "count" else [f"{group}:{features[j]}" for j in range(width)]
    return names


def featurize_window(
    ts_ms: np.ndarray,
    values: np.ndarray,
    end_ms: int,
    spec: WindowSpec,
    stats: FleetStats,
    baseline: SensorBaseline | None = None,
) -> np.ndarray:
    """The ``[steps, channels]`` tensor of the window ending at ``end_ms`` (``ts_ms`` sorted): the
    bins of the events up to ``end_ms``. Training, evaluation and the stream go through
    :func:`channels_one` on bins directly; this is the same for one window from raw events."""
    return channels_one(bin_events(ts_ms, values, end_ms, spec.length_ms, spec.steps), spec, stats, baseline)


@dataclass
class _Parts:
    """The per-bin quantities the channel groups are built from, for a batch of B windows."""

    bins: BinStats  # [B, S, ...]
    nonempty: np.ndarray  # [B, S]
    mean: np.ndarray  # [B, S, F], last observed mean carried forward (NaN before the first event)
    var: np.ndarray  # [B, S, F] within-bin variance
    mu: np.ndarray  # [B, F] baseline mean
    scale: np.ndarray  # [B, F] baseline scale, floored
    sigma: np.ndarray = field(repr=False)  # [B, F, F] baseline covariance, floored on the diagonal


def channels_one(bins: BinStats, spec: WindowSpec, stats: FleetStats,
                 baseline: SensorBaseline | None = None) -> np.ndarray:
    """The model's tensor from a window's bin statistics."""
    return channels_many(BinStats.stack([bins]), spec, stats, [baseline])[0]


def channels_many(windows: BinStats | list[BinStats], spec: WindowSpec, stats: FleetStats,
                  baselines: list[SensorBaseline | None] | None = None) -> np.ndarray:
    """``[B, steps, channels]`` for a batch of windows (``BinStats`` with ``[B, S, ...]`` arrays,
    or a list of single ones): a streamer batch, a sensor's training windows. Each window's
    tensor does not depend on the others: every reduction runs within one window."""
    if isinstance(windows, list):
        if not windows:
            return np.zeros((0, spec.steps, spec.channels), dtype=np.float32)
        windows = BinStats.stack(windows)
    with np.errstate(all="ignore"):
        parts = _parts(windows, spec, stats, baselines or [None] * len(windows.count))
        blocks = [_GROUPS[group](parts, stats) for group in CHANNEL_GROUPS if group in spec.groups]
    out = np.clip(np.concatenate(blocks, axis=2), -spec.clip, spec.clip).astype(np.float32)
    out[np.isnan(out)] = 0.0  # (infinities were clipped)
    out[~parts.nonempty.any(axis=1)] = 0.0  # a window without events says nothing
    return out


def _parts(bins: BinStats, spec: WindowSpec, stats: FleetStats, baselines: list[SensorBaseline | None]) -> _Parts:
    if spec.baseline == "auto":
        raise ValueError("baseline 'auto' is a training request: featurise with the model's resolved spec")
    nonempty = bins.count > 0
    steps, f = bins.steps, bins.n_features
    var = bins.co[:, :, diagonal_positions(f)] / np.maximum(bins.count, 1.0)[:, :, None]
    at = np.arange(steps)
    last = np.maximum.accumulate(np.where(nonempty, at, -1), axis=1)
    carried = np.take_along_axis(bins.mean, np.maximum(last, 0)[:, :, None], axis=1)
    mean = np.where((last >= 0)[:, :, None], carried, np.nan)
    # Only the cross channel needs the baseline's covariances; the others its variances.
    diagonal = diagonal_positions(f)
    packed = np.arange(f * (f + 1) // 2) if "cross" in spec.groups else diagonal
    _, _, window_var = bins.moments(np.ones_like(bins.count), diagonal)
    if spec.baseline == "sensor":
        # A sensor the model never saw is measured against the healthy fleet until a refit knows it.
        mu = np.stack([b.mean if b is not None else stats.mean for b in baselines])
        sigma = np.stack([b.cov if b is not None else np.diag(stats.std**2) for b in baselines])
    else:
        first = np.argmax(nonempty, axis=1)
        cut = first + np.maximum(1, np.ceil(spec.baseline_fraction * (steps - first)).astype(np.intp))
        _, mu, m2 = bins.moments(((at >= first[:, None]) & (at < cut[:, None])).astype(np.float64), packed)
        iu, ju = np.triu_indices(f)
        sigma = np.zeros((len(mu), f, f))
        sigma[:, iu[packed], ju[packed]] = m2
        sigma[:, ju[packed], iu[packed]] = m2
    floor2 = (WINDOW_FLOOR_FRACTION**2) * np.maximum(window_var, 0.0) \
        + (RELATIVE_FLOOR * np.maximum(np.abs(mu), 1e-3)) ** 2
    sigma = sigma + floor2[:, :, None] * np.eye(f)
    scale = np.sqrt(np.maximum(np.diagonal(sigma, axis1=1, axis2=2), floor2))
    return _Parts(bins, nonempty, mean, var, mu, scale, sigma)


def _level(p: _Parts, stats: FleetStats) -> np.ndarray:
    return (p.mean - p.mu[:, None]) / p.scale[:, None]  # NaN before the first event: 0 in the tensor


def _fleet(p: _Parts, stats: FleetStats) -> np.ndarray:
    return (p.mean - stats.mean) / stats.std


def _spread(p: _Parts, stats: FleetStats) -> np.ndarray:
    # Log of the ratio: a spread that collapses (stuck) departs as far as one that bursts, where
    # on a linear scale a stuck sensor lands a fraction of a unit from normal. A bin needs two
    # events to have a spread; with fewer it holds 0, and the count channel says why.
    ratio = np.log(np.sqrt(np.maximum(p.var, 0.0)) / p.scale[:, None] + SPREAD_FLOOR)
    return np.where((p.bins.count >= 2)[:, :, None], ratio, 0.0)


def _extreme(p: _Parts, stats: FleetStats) -> np.ndarray:
    mu = p.mu[:, None]
    worst = np.maximum(np.abs(p.bins.max - mu), np.abs(p.bins.min - mu))
    return np.where(p.nonempty[:, :, None], worst / p.scale[:, None], 0.0)


def _cross(p: _Parts, stats: FleetStats) -> np.ndarray:
    if p.mu.shape[1] < 2:
        return np.zeros(p.bins.count.shape + (0,))
    # With P the baseline's precision matrix, row i of P / P_ii are the coefficients of the
    # residual of feature i regressed on the others, and 1 / P_ii that residual's variance; its
    # mean square in a bin is (P C P)_ii / P_ii^2 with C the bin's second moment about the
    # baseline mean. So the residual in baseline-residual units is sqrt((P C P)_ii / P_ii).
    precision = np.linalg.pinv(p.sigma)  # [B, F, F]
    dev = p.bins.mean - p.mu[:, None]
    cov = full_matrix(p.bins.co, p.bins.n_features) / np.maximum(p.bins.count, 1.0)[:, :, None, None]
    second = cov + dev[..., :, None] * dev[..., None, :]  # [B, S, F, F]
    left = (precision[:, None, :, :, None] * second[:, :, None, :, :]).sum(axis=3)  # P C: [B, S, F, F]
    quad = (left * precision[:, None]).sum(axis=3)  # (P C P)_ii, P symmetric
    diag = np.maximum(np.diagonal(precision, axis1=1, axis2=2), 1e-300)[:, None]
    res = np.sqrt(np.maximum(quad, 0.0) / diag)
    return np.where(p.nonempty[:, :, None], res, 0.0)


def _count(p: _Parts, stats: FleetStats) -> np.ndarray:
    # The last bin is as far as the window's end: its events are measured against those expected
    # by then (at least one), so a bin just begun reads as normal, not as a sudden silence, and a
    # window cut at a bin's end (the trainer's, from live buffers) reads like one cut mid-bin.
    expected = np.full(p.bins.count.shape, stats.count_per_bin)
    expected[:, -1] = np.maximum(stats.count_per_bin * p.bins.last_bin_elapsed, 1.0)
    return (p.bins.count / expected)[:, :, None]


_GROUPS = {"level": _level, "fleet": _fleet, "spread": _spread, "extreme": _extreme, "cross": _cross,
           "count": _count}
