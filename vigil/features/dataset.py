"""Cut windows from event tables: the same windows for training, evaluation and the stream.

A window ends at an event (as on the stream, where a new event makes a sensor's window ready).
``last``: one window per sensor, at its last event; ``every=K``: at every K-th event (counted
from the sensor's last, so the last event is always included). A window is kept only when it holds
at least ``min_events`` events. Its label is the label of the event it ends at.

A table's series are a file's events (:class:`~vigil.events.frame.SensorSeries`: each window's
bins are accumulated from them, its last bin as it stood right after the window's end event) or
a live buffer's bins (:class:`BinnedSeries`, the trainer's sample: windows end at the newest
event and at earlier bins' ends).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from vigil.buffer.bins import BinStats, SensorBins, accumulate
from vigil.events.frame import SensorSeries
from vigil.features.heads import HeadStats, head_statistics
from vigil.features.normalizer import FleetStats
from vigil.features.window import WindowSpec, channels_many


@dataclass(frozen=True)
class BinnedSeries:
    """One sensor's window as the buffer holds it: its bins, its newest event, its latest label.
    It reads like a series of one event per non-empty bin, at the moment the bin was last
    complete (the newest event for the current bin), so every window cut from it ends at one."""

    sensor_id: str
    bins: SensorBins
    newest_ms: int
    label: float = np.nan

    @property
    def ts_ms(self) -> np.ndarray:
        return np.minimum((self.bins.index + 1) * self.bins.bin_ms - 1, self.newest_ms)

    @property
    def labels(self) -> np.ndarray:
        return np.full(len(self.bins.index), self.label)

    @property
    def n_events(self) -> int:
        return self.bins.n_events


def window_bins(s: SensorSeries | BinnedSeries, spec: WindowSpec, idx: np.ndarray) -> Iterator[BinStats]:
    """The bins of the windows ending at ``s.ts_ms[idx]``, one at a time (a sensor's events are
    accumulated once, however many windows)."""
    if isinstance(s, BinnedSeries):
        for end, b in zip(s.ts_ms[idx], s.bins.index[idx]):
            yield s.bins.window(int(end) // spec.bin_ms, spec.steps, spec.bin_ms, until=int(b), end_ms=int(end))
        return
    # A window ending at an event holds the events at the same instant that follow it in the file.
    last = np.searchsorted(s.ts_ms, s.ts_ms[idx], side="right") - 1
    bins, partial = accumulate(s.ts_ms, s.values, spec.bin_ms, snapshots=last)
    for i, p in zip(last, partial):
        yield bins.window(int(s.ts_ms[i]) // spec.bin_ms, spec.steps, partial=p, end_ms=int(s.ts_ms[i]))


def moments(s: SensorSeries | BinnedSeries) -> tuple[float, np.ndarray, np.ndarray, int]:
    """A sensor's event count, mean, covariance and time span (for the fleet statistics)."""
    if isinstance(s, BinnedSeries):
        n, mean, cov = BinStats.of(0, s.bins.bin_ms, s.bins.records).merged(slice(None))
        return n, mean, cov, int(s.newest_ms - s.bins.index[0] * s.bins.bin_ms) if n else 0
    values = np.asarray(s.values, dtype=np.float64)
    if not len(values):
        f = values.shape[1] if values.ndim == 2 else 0
        return 0.0, np.zeros(f), np.zeros((f, f)), 0
    mean = values.mean(axis=0)
    dev = values - mean
    return float(len(values)), mean, dev.T @ dev / len(values), int(s.ts_ms[-1] - s.ts_ms[0])


def fleet_stats(series: Iterable[SensorSeries | BinnedSeries], spec: WindowSpec, per_sensor: bool = False) -> FleetStats:
    """The fleet statistics of these sensors (all their events: pass ``normal_part`` ones to train)."""
    return FleetStats.fit(((s.sensor_id, *moments(s)) for s in series), spec.length_ms, spec.steps, per_sensor)


def normal_part(s: SensorSeries | BinnedSeries) -> SensorSeries | BinnedSeries:
    """The sensor's events not labelled 1 (NaN, unlabelled, counts as normal)."""
    if isinstance(s, BinnedSeries):
        return s if s.label != 1 else BinnedSeries(s.sensor_id, SensorBins(s.bins.bin_ms, s.bins.index[:0],
                                                                           s.bins.records[:0]), s.newest_ms, s.label)
    keep = s.labels != 1
    return SensorSeries(s.sensor_id, s.ts_ms[keep], s.values[keep], s.labels[keep])


def event_gaps(s: SensorSeries | BinnedSeries) -> np.ndarray:
    """Typical times between two of the sensor's events (one per gap, or per bin for bins)."""
    if isinstance(s, BinnedSeries):
        return s.bins.bin_ms / np.maximum(s.bins.records["n"].astype(np.float64), 1.0)
    return np.diff(s.ts_ms).astype(np.float64)


@dataclass
class WindowSet:
    x: np.ndarray  # [n, steps, channels] float32
    sensor_id: np.ndarray  # [n] str
    end_ms: np.ndarray  # [n] int64
    n_events: np.ndarray  # [n] int64
    label: np.ndarray  # [n] float64, NaN = unlabelled
    history_ms: np.ndarray  # [n] int64: end - the start of the window's first non-empty bin
    heads: np.ndarray  # [n, k] float64: the detection heads' statistics (``HeadStats.as_array``)

    def __len__(self) -> int:
        return len(self.end_ms)

    def subset(self, mask: np.ndarray) -> "WindowSet":
        return WindowSet(*(getattr(self, f)[mask] for f in WINDOW_FIELDS))


    @property
    def head_stats(self) -> HeadStats:
        return HeadStats.from_array(self.heads)


WINDOW_FIELDS = ("x", "sensor_id", "end_ms", "n_events", "label", "history_ms", "heads")


def window_end_indices(n_events: int, every: int | None) -> np.ndarray:
    """Indices of the events windows end at: the last one (``every=None``) or every K-th."""
    if n_events == 0:
        return np.empty(0, dtype=np.intp)
    if every is None:
        return np.array([n_events - 1])
    return np.arange(n_events - 1, -1, -every)[::-1]


def history_covering(series: Iterable[SensorSeries], length_ms: int, fraction: float) -> int:
    """The history a training window needs: ``fraction`` of the window, or of the typical sensor's
    whole span when the data is shorter than one window (a short file still trains)."""
    return int(fraction * min(length_ms, typical_span_ms(series)))


def typical_span_ms(series: Iterable[SensorSeries]) -> float:
    """The median time from a sensor's first event to its last."""
    spans = [int(s.ts_ms[-1] - s.ts_ms[0]) for s in series if len(s.ts_ms)]
    return float(np.median(spans)) if spans else 0.0


def eligible_ends(series: Iterable[SensorSeries | BinnedSeries], min_history_ms: int) -> int:
    """How many events a training window could end at (for the stride that gives a target count)."""
    return sum(int((s.ts_ms - s.ts_ms[0] >= min_history_ms).sum()) for s in series if len(s.ts_ms))


def build_windows(
    series: Iterable[SensorSeries],
    spec: WindowSpec,
    stats: FleetStats,
    every: int | None = None,
    min_events: int = 1,
    min_history_ms: int = 0,
    points: Callable[[str, np.ndarray], np.ndarray] | None = None,
) -> WindowSet:
    """Every window at once (training: the model needs them together)."""
    parts = list(iter_windows(series, spec, stats, every, min_events, min_history_ms, batch=None, points=points))
    if not parts:
        return WindowSet(np.empty((0, spec.steps, spec.channels), np.float32), np.empty(0, object),
                         np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64),
                         np.empty((0, HeadStats.width(spec.n_features))))
    return concat_windows(parts)


def concat_windows(parts: list[WindowSet]) -> WindowSet:
    return WindowSet(*(np.concatenate([getattr(p, f) for p in parts]) for f in WINDOW_FIELDS))


def iter_windows(
    series: Iterable[SensorSeries],
    spec: WindowSpec,
    stats: FleetStats,
    every: int | None = None,
    min_events: int = 1,
    min_history_ms: int = 0,
    batch: int | None = 4096,
    points: Callable[[str, np.ndarray], np.ndarray] | None = None,
) -> Iterator[WindowSet]:
    """The windows in sets of about ``batch`` (``None``: one set per sensor), so scoring a large
    file holds one batch of tensors in memory, not all of them. ``points`` (a sensor's id and timestamps →
    the indices of the events its windows end at) replaces ``every``: the backtest's scoring points."""
    pending: list[WindowSet] = []
    for part in _per_sensor(series, spec, stats, every, min_events, min_history_ms, batch, points):
        pending.append(part)
        if batch is None or sum(map(len, pending)) >= batch:
            yield concat_windows(pending)
            pending = []
    if pending:
        yield concat_windows(pending)


def _per_sensor(series, spec, stats, every, min_events, min_history_ms, batch, points) -> Iterator[WindowSet]:
    for s in series:
        ts = s.ts_ms
        idx = points(s.sensor_id, ts) if points is not None else window_end_indices(len(ts), every)
        idx = idx[ts[idx] - ts[0] >= min_history_ms] if len(idx) else idx
        step = batch or max(len(idx), 1)
        baseline = stats.baseline_for(s.sensor_id)
        windows = window_bins(s, spec, idx)
        for at in range(0, len(idx), step):
            part = idx[at : at + step]
            bins = list(itertools.islice(windows, len(part)))
            n = np.array([int(b.count.sum()) for b in bins], dtype=np.int64)
            keep = n >= min_events
            if not keep.any():
                continue
            kept = BinStats.stack([b for b, k in zip(bins, keep) if k])
            x = channels_many(kept, spec, stats, [baseline] * len(n[keep]))
            ends = ts[part[keep]]
            history = ends - kept.first_event_bin_ms().astype(np.int64)
            yield WindowSet(x, np.full(len(x), s.sensor_id, dtype=object), ends, n[keep], s.labels[part[keep]], history,
                            head_statistics(kept, [baseline] * len(x)).as_array())
