"""Scoring event tables with a saved model exactly as the streamer will (a window ends at an event)."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pandas as pd

from vigil.events.frame import EventTable
from vigil.features import channel_features
from vigil.features.dataset import iter_windows
from vigil.model.explain import explain
from vigil.model.threshold import window_metrics
from vigil.registry import LoadedModel

SCORE_COLUMNS = ["sensor_id", "window_start", "window_end", "n_events", "score", "alert", "label",
                 "top_features", "span_start", "span_end"]
BATCH_WINDOWS = 4096  # windows featurised and scored at a time: memory stays bounded on any file


def score_table(loaded: LoadedModel, table: EventTable, every: int | None = None, min_events: int = 1,
                on_progress: Callable[[int], None] | None = None) -> pd.DataFrame:
    """One row per scored window (``SCORE_COLUMNS``; times ISO-8601 UTC), in bounded batches."""
    missing = [f for f in loaded.meta.features if f not in table.features]
    if missing:
        raise ValueError(f"the model needs features {missing}, which the events lack")
    spec, owners, frames = loaded.spec, channel_features(loaded.spec), []
    for windows in iter_windows(table, spec, loaded.stats, every=every, min_events=min_events, batch=BATCH_WINDOWS):
        scored = loaded.predict(windows.x)
        frame = pd.DataFrame({
            "sensor_id": windows.sensor_id.astype(str),
            "window_start": _iso(windows.end_ms - spec.length_ms),
            "window_end": _iso(windows.end_ms),
            "n_events": windows.n_events,
            "score": scored.scores,
            "alert": (scored.scores >= loaded.threshold).astype(int),
            "label": pd.Series(windows.label).astype("Int64"),  # NaN (unlabelled) becomes <NA>
        })
        if scored.contributions is not None:
            why = explain(scored.contributions, owners, loaded.meta.features, windows.end_ms, spec.length_ms)
            frame["top_features"] = [";".join(f.feature for f in e.features) for e in why]
            frame["span_start"] = _iso(np.array([e.span_start for e in why]))
            frame["span_end"] = _iso(np.array([e.span_end for e in why]))
        frames.append(frame.reindex(columns=SCORE_COLUMNS))
        if on_progress is not None:
            on_progress(len(frame))
    if not frames:
        return pd.DataFrame(columns=SCORE_COLUMNS)
    return pd.concat(frames, ignore_index=True)


def _iso(ms: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(ms, unit="ms", utc=True).strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z")


def metrics_of(scores: pd.DataFrame, threshold: float) -> dict:
    labels = scores["label"].astype("float64").to_numpy(na_value=np.nan)
    return window_metrics(scores["score"].to_numpy(dtype=np.float64), labels, threshold)
