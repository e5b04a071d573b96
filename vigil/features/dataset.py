"""Cut windows from event tables: the same windows for training, evaluation and the stream.

A window ends at an event (as on the stream, where a new event makes a sensor's window ready).
``last``: one window per sensor, at its last event; ``every=K``: at every K-th event (counted
from the sensor's last, so the last event is always included). A window is kept only when it holds
at least ``min_events`` events. Its label is the label of the event it ends at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from vigil.events.frame import SensorSeries
from vigil.features.normalizer import FleetStats
from vigil.features.window import WindowSpec, featurize_windows


@dataclass
class WindowSet:
    x: np.ndarray  # [n, steps, channels] float32
    sensor_id: np.ndarray  # [n] str
    end_ms: np.ndarray  # [n] int64
    n_events: np.ndarray  # [n] int64
    label: np.ndarray  # [n] float64, NaN = unlabelled

    def __len__(self) -> int:
        return len(self.end_ms)

    def subset(self, mask: np.ndarray) -> "WindowSet":
        return WindowSet(self.x[mask], self.sensor_id[mask], self.end_ms[mask], self.n_events[mask], self.label[mask])


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


def eligible_ends(series: Iterable[SensorSeries], min_history_ms: int) -> int:
    """How many events a training window could end at (for the stride that gives a target count)."""
    return sum(int((s.ts_ms - s.ts_ms[0] >= min_history_ms).sum()) for s in series if len(s.ts_ms))


def build_windows(
    series: Iterable[SensorSeries],
    spec: WindowSpec,
    stats: FleetStats,
    every: int | None = None,
    min_events: int = 1,
    min_history_ms: int = 0,
    points: Callable[[np.ndarray], np.ndarray] | None = None,
) -> WindowSet:
    """Every window at once (training: the model needs them together)."""
    parts = list(iter_windows(series, spec, stats, every, min_events, min_history_ms, batch=None, points=points))
    if not parts:
        return WindowSet(np.empty((0, spec.steps, spec.channels), np.float32), np.empty(0, object),
                         np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    return concat_windows(parts)


def concat_windows(parts: list[WindowSet]) -> WindowSet:
    return WindowSet(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("x", "sensor_id", "end_ms",
                                                                              "n_events", "label")))


def iter_windows(
    series: Iterable[SensorSeries],
    spec: WindowSpec,
    stats: FleetStats,
    every: int | None = None,
    min_events: int = 1,
    min_history_ms: int = 0,
    batch: int | None = 4096,
    points: Callable[[np.ndarray], np.ndarray] | None = None,
) -> Iterator[WindowSet]:
    """The windows in sets of about ``batch`` (``None``: one set per sensor), so scoring a large
    file holds one batch of tensors in memory, not all of them. ``points`` (a sensor's timestamps →
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
        idx = points(s.ts_ms) if points is not None else window_end_indices(len(s.ts_ms), every)
        end_ms = s.ts_ms[idx]
        start_idx = np.searchsorted(s.ts_ms, end_ms - spec.length_ms, side="right")
        n = idx + 1 - start_idx
        keep = (n >= min_events) & (end_ms - s.ts_ms[0] >= min_history_ms)
        idx, end_ms, n = idx[keep], end_ms[keep], n[keep]
        step = batch or max(len(idx), 1)
        for at in range(0, len(idx), step):
            part = slice(at, at + step)
            x = featurize_windows(s.ts_ms, s.values, end_ms[part], spec, stats, stats.baseline_for(s.sensor_id))
            yield WindowSet(x, np.full(len(x), s.sensor_id, dtype=object), end_ms[part], n[part], s.labels[idx[part]])
