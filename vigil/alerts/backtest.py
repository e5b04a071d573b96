"""``vigil backtest``: what the streamer would have published for an event file.

Events are replayed per sensor in event-time order. A sensor is scored where the streamer scores
it (:func:`scoring_points`: the points of ``stream.score_every``, vigil/buffer/cadence.py, where the
window holds ``window.min_events``), on the window ending at that event, by the same featurisation
and model call as ``vigil evaluate``; each score goes through the streamer's
:class:`~vigil.alerts.AlertPolicy`. With a cadence the streamer scores these same points however
fast the events arrive (a backlog too), for events in time order per sensor; with ``score_every``
0 it scores a sensor once per batch at its newest event, so a backlog skips some of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from vigil.buffer import BufferLayout, Cadence
from vigil.alerts.policy import AlertPolicy, AlertState, AlertStates, ScoredPoints
from vigil.evaluation import iter_scored
from vigil.events.frame import EventTable
from vigil.events.outputs import AlertRecord
from vigil.registry import LoadedModel
from vigil.settings import VigilSettings

POINT_COLUMNS = ["sensor_id", "window_start", "window_end", "n_events", "score", "history_ms", "label"]


def scoring_points(cadence: Cadence, min_events: int, length_ms: int,
                   bin_ms: int) -> Callable[[str, np.ndarray], np.ndarray]:
    """A sensor's id and timestamps (sorted) → the indices of the events the streamer scores it at
    (``length_ms``, ``bin_ms``: the buffer's window, whose bins count the events it holds)."""
    def points(sensor_id: str, ts_ms: np.ndarray) -> np.ndarray:
        window_start = (ts_ms // bin_ms + 1) * bin_ms - length_ms
        counts = np.arange(1, len(ts_ms) + 1) - np.searchsorted(ts_ms, window_start, side="left")
        return cadence.points(sensor_id, ts_ms, counts >= min_events)
    return points


def count_points(table: EventTable, settings: VigilSettings) -> int:
    """How many points :func:`backtest` will score (for its progress)."""
    layout = BufferLayout.from_settings(settings)
    points = scoring_points(Cadence.from_settings(settings), settings.window.min_events, layout.window_ms,
                            layout.bin_ms)
    return sum(len(points(s.sensor_id, s.ts_ms)) for s in table.series.values())


def replay(points: pd.DataFrame, policy: AlertPolicy, threshold: float, model_version: str,
           explanations: list | None = None) -> tuple[list[AlertRecord], np.ndarray]:
    """Run the policy over scored points (``POINT_COLUMNS``, each sensor's in window_end order):
    the alert and cleared records, and which points were warming up."""
    columns = {c: points[c].to_numpy() for c in ("window_start", "window_end", "n_events", "history_ms")}
    batch = ScoredPoints(sensor_id=points["sensor_id"].to_numpy(dtype=object),
                         score=points["score"].to_numpy(dtype=np.float64), explanation=explanations,
                         **{c: v.astype(np.int64) for c, v in columns.items()})
    decided = policy.decide_many(batch, AlertStates.of([AlertState()] * len(batch)), threshold, model_version,
                                 scored_at=None)  # no wall clock in a replay: scored as each window ends
    return list(decided.records.values()), policy.warming_up_many(batch)


@dataclass
class Backtest:
    points: pd.DataFrame  # POINT_COLUMNS + warming_up (+ explanation columns), one row per scoring point
    alerts: list[AlertRecord]
    threshold: float
    model_version: str


def point_frame(windows, scores: np.ndarray, length_ms: int) -> pd.DataFrame:
    """Scored windows (a ``WindowSet``) as policy input: ``history_ms`` is how much of its window
    each one's data covers."""
    w = windows
    return pd.DataFrame({"sensor_id": w.sensor_id.astype(str), "window_start": w.end_ms - length_ms,
                         "window_end": w.end_ms, "n_events": w.n_events, "score": scores, "history_ms": w.history_ms,
                         "label": w.label})


def backtest(loaded: LoadedModel, table: EventTable, settings: VigilSettings,
             on_progress: Callable[[int], None] | None = None) -> Backtest:
    spec = loaded.spec
    layout = BufferLayout.from_settings(settings)
    points = scoring_points(Cadence.from_settings(settings), settings.window.min_events, layout.window_ms,
                            layout.bin_ms)
    frames, explanations = [], []
    for batch in iter_scored(loaded, table, min_events=settings.window.min_events, points=points):
        w = batch.windows
        frames.append(point_frame(w, batch.scores, spec.length_ms))
        if batch.explanations is not None:
            explanations += batch.explanations
        if on_progress is not None:
            on_progress(len(w))
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=POINT_COLUMNS)
    policy = AlertPolicy(settings.alerts, layout.window_ms, layout.bin_ms)
    alerts, warming = replay(frame, policy, loaded.threshold, loaded.version, explanations or None)
    frame["warming_up"] = warming
    if explanations:
        frame["top_features"] = [";".join(f.feature for f in e.features) for e in explanations]
        frame["span_start"] = [e.span_start for e in explanations]
        frame["span_end"] = [e.span_end for e in explanations]
        frame["head"] = [e.head for e in explanations]
    return Backtest(frame, alerts, loaded.threshold, loaded.version)
