"""Scoring event tables with a saved model exactly as the streamer will (a window ends at an event)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import pandas as pd

from vigil.events.frame import EventTable
from vigil.events.outputs import Explanation
from vigil.features.dataset import WindowSet, iter_windows
from vigil.model.explain import explain_scored, head_values
from vigil.model.threshold import window_metrics
from vigil.registry import LoadedModel

SCORE_COLUMNS = ["sensor_id", "window_start", "window_end", "n_events", "score", "alert", "label",
                 "top_features", "span_start", "span_end"]
BATCH_WINDOWS = 4096  # windows featurised and scored at a time: memory stays bounded on any file


@dataclass
class ScoredBatch:
    windows: WindowSet
    scores: np.ndarray
    explanations: list[Explanation] | None  # None for models that cannot explain
    heads: list[dict[str, float] | None]  # each window's calibrated heads (None: a model without heads)


def iter_scored(loaded: LoadedModel, table: EventTable, every: int | None = None, min_events: int = 1,
                points: Callable[[str, np.ndarray], np.ndarray] | None = None) -> Iterator[ScoredBatch]:
    """The table's windows scored in bounded batches (``points``: see ``iter_windows``)."""
    missing = [f for f in loaded.meta.features if f not in table.features]
    if missing:
        raise ValueError(f"the model needs features {missing}, which the events lack")
    spec = loaded.spec
    for windows in iter_windows(table, spec, loaded.stats, every=every, min_events=min_events, batch=BATCH_WINDOWS,
                                points=points):
        heads = windows.head_stats
        scored = loaded.predict(windows.x, heads)
        why = explain_scored(scored, heads, spec, loaded.stats, loaded.meta.features, windows.end_ms)
        yield ScoredBatch(windows, scored.scores, why, head_values(scored))


def score_table(loaded: LoadedModel, table: EventTable, every: int | None = None, min_events: int = 1,
                on_progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """One row per scored window (``SCORE_COLUMNS``; times ISO-8601 UTC), in bounded batches."""
    frames = []
    for batch in iter_scored(loaded, table, every, min_events):
        frame = window_frame(batch, loaded.spec.length_ms, loaded.threshold)
        frames.append(frame.reindex(columns=SCORE_COLUMNS))
        if on_progress is not None:
            on_progress(len(frame))
    if not frames:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def window_frame(batch: ScoredBatch, length_ms: int, threshold: float) -> pd.DataFrame:
    """A scored batch as rows: ISO times, the alert flag, the label and the explanation's columns."""
    windows = batch.windows
    frame = pd.DataFrame({
        "sensor_id": windows.sensor_id.astype(str),
        "window_start": iso(windows.end_ms - length_ms),
        "window_end": iso(windows.end_ms),
        "n_events": windows.n_events,
        "score": batch.scores,
        "alert": (batch.scores >= threshold).astype(int),
        "label": pd.Series(windows.label).astype("Int64"),  # NaN (unlabelled) becomes <NA>
    })
    if batch.explanations is not None:
        frame["top_features"] = [";".join(f.feature for f in e.features) for e in batch.explanations]
        frame["span_start"] = iso(np.array([e.span_start for e in batch.explanations]))
        frame["span_end"] = iso(np.array([e.span_end for e in batch.explanations]))
    return frame


def iso(ms: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(ms, unit="ms", utc=True).strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z")


def metrics_of(scores: pd.DataFrame, threshold: float) -> dict:
    labels = scores["label"].astype("float64").to_numpy(na_value=np.nan)
    return window_metrics(scores["score"].to_numpy(dtype=np.float64), labels, threshold)
