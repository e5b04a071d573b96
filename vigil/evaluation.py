"""Scoring event tables with a saved model exactly as the streamer will (a window ends at an event)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vigil.events.frame import EventTable
from vigil.features.dataset import build_windows
from vigil.model.threshold import window_metrics
from vigil.registry import LoadedModel

SCORE_COLUMNS = ["sensor_id", "window_end", "score", "alert", "label"]


def score_table(loaded: LoadedModel, table: EventTable, every: int | None = None, min_events: int = 1) -> pd.DataFrame:
    """One row per scored window: ``sensor_id, window_end (ISO-8601 UTC), score, alert, label``."""
    missing = [f for f in loaded.meta.features if f not in table.features]
    if missing:
        raise ValueError(f"the model needs features {missing}, which the events lack")
    windows = build_windows(table, loaded.spec, loaded.stats, every=every, min_events=min_events)
    scores = loaded.score(windows.x)
    end = pd.to_datetime(windows.end_ms, unit="ms", utc=True)
    return pd.DataFrame({
        "sensor_id": windows.sensor_id.astype(str),
        "window_end": end.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z",
        "score": scores,
        "alert": (scores >= loaded.threshold).astype(int),
        "label": pd.Series(windows.label).astype("Int64"),  # NaN (unlabelled) becomes <NA>
    }, columns=SCORE_COLUMNS)


def metrics_of(scores: pd.DataFrame, threshold: float) -> dict:
    labels = scores["label"].astype("float64").to_numpy(na_value=np.nan)
    return window_metrics(scores["score"].to_numpy(), labels, threshold)
