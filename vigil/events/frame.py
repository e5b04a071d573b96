"""Validate a whole event file at once (vectorised), following the same rules as :mod:`schema`.

Per-row pydantic validation of millions of file rows would take minutes; files are checked by
column instead: missing or non-numeric columns are errors, rows with non-finite features or
unparsable timestamps are dropped and counted (they would go to the DLQ on the stream).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Sequence

import numpy as np
import pandas as pd

from vigil.errors import VigilError
from vigil.events.schema import MAX_FEATURE_MAGNITUDE, MAX_TIMESTAMP_MS, MIN_TIMESTAMP_MS, SENSOR_ID_VISIBLE, quantize

RESERVED = ("sensor_id", "timestamp")


@dataclass(frozen=True)
class SensorSeries:
    """One sensor's events sorted by time: what windows are cut from."""

    sensor_id: str
    ts_ms: np.ndarray  # int64
    values: np.ndarray  # [n, features] float64
    labels: np.ndarray  # float64, NaN where unlabelled

    @property
    def n_events(self) -> int:
        return len(self.ts_ms)


@dataclass
class EventTable:
    series: dict[str, SensorSeries]
    features: tuple[str, ...]
    label_column: str | None
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def n_events(self) -> int:
        return sum(s.n_events for s in self.series.values())

    def __iter__(self) -> Iterator[SensorSeries]:
        return iter(self.series.values())


def default_features(frame: pd.DataFrame, label_column: str | None, exclude: Sequence[str] = ()) -> list[str]:
    """Every numeric column other than sensor_id, timestamp, the label and ``exclude``."""
    skip = {*RESERVED, label_column, *exclude}
    return [c for c in frame.columns if c not in skip and pd.api.types.is_numeric_dtype(frame[c])]


def event_table(frame: pd.DataFrame, features: Sequence[str], label_column: str | None) -> EventTable:
    missing = [c for c in (*RESERVED, *features) if c not in frame.columns]
    if missing:
        raise VigilError(f"event file lacks column(s) {missing}; it has {list(frame.columns)}")
    if not features:
        raise VigilError("no feature columns: name them with --features")
    dropped: dict[str, int] = {}
    values = np.empty((len(frame), len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        column = frame[name]
        if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            bad = column[pd.to_numeric(column, errors="coerce").isna() & column.notna()]
            example = f" (e.g. {bad.iloc[0]!r})" if len(bad) else ""
            raise VigilError(f"feature column {name!r} is not numeric{example}")
        values[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    ts = _timestamps_ms(frame["timestamp"])
    keep = (np.abs(values) <= MAX_FEATURE_MAGNITUDE).all(axis=1)  # False for NaN and ±inf too
    dropped["not_finite"] = int((~keep).sum())
    bad_ts = ts < 0
    dropped["bad_timestamp"] = int((bad_ts & keep).sum())
    keep &= ~bad_ts
    sensor = frame["sensor_id"].astype(str)  # opaque, as on the stream: never trimmed
    empty_id = ~sensor.str.contains(SENSOR_ID_VISIBLE, regex=True) | frame["sensor_id"].isna()
    dropped["bad_sensor_id"] = int((empty_id & keep).sum())
    keep &= ~empty_id.to_numpy()
    labels = np.full(len(frame), np.nan)
    if label_column and label_column in frame.columns:
        labels = pd.to_numeric(frame[label_column], errors="coerce").to_numpy(dtype=np.float64)
        invalid = ~(np.isnan(labels) | np.isin(labels, (0.0, 1.0)))
        if invalid.any():
            raise VigilError(f"label column {label_column!r} must hold 0/1, found {frame[label_column][invalid].iloc[0]!r}")
    else:
        label_column = None
    # The stream's buffer keeps float32 values; rounding files the same way makes an offline
    # window the very tensor the streamer scores.
    values = quantize(values)
    # The buffer applies an event once: a row repeating an earlier one (same sensor, time and
    # stored values) is a resent duplicate there, so it is one here too.
    repeated = pd.DataFrame(values).assign(s=sensor.to_numpy(), t=ts).duplicated().to_numpy()
    dropped["resent"] = int((repeated & keep).sum())
    keep &= ~repeated
    order = np.lexsort((ts[keep], sensor.to_numpy()[keep]))
    sid, t, v, y = sensor.to_numpy()[keep][order], ts[keep][order], values[keep][order], labels[keep][order]
    bounds = np.flatnonzero(np.r_[True, sid[1:] != sid[:-1], True])
    series = {
        sid[a]: SensorSeries(str(sid[a]), t[a:b], v[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:])
    }
    return EventTable(series, tuple(features), label_column, {k: n for k, n in dropped.items() if n})


def _timestamps_ms(column: pd.Series) -> np.ndarray:
    """Epoch ms per row; -1 where a value is unparsable or implausible (see schema rules)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = pd.to_datetime(column, utc=True)
    elif pd.api.types.is_numeric_dtype(column):
        ms = column.to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.isfinite(ms) & (ms >= MIN_TIMESTAMP_MS) & (ms < MAX_TIMESTAMP_MS)
        return np.where(ok, np.nan_to_num(ms), -1).astype(np.int64)
    else:
        text = column.astype(str).str.strip()
        numeric = pd.to_numeric(text, errors="coerce")
        parsed = pd.to_datetime(text.where(numeric.isna()), utc=True, errors="coerce", format="ISO8601")
        from_numbers = pd.to_datetime(numeric, unit="ms", utc=True, errors="coerce")
        parsed = parsed.fillna(from_numbers)
    ms = parsed.to_numpy(dtype="datetime64[ms]").astype(np.int64)
    ok = parsed.notna().to_numpy() & (ms >= MIN_TIMESTAMP_MS) & (ms < MAX_TIMESTAMP_MS)
    return np.where(ok, ms, -1)
