"""The real reference data sets (``../shared/data``) as Vigil event tables, as a new user would feed them.

* **SKAB**: every experiment file is one sensor (``valve1/3``), the anomaly-free file one more
  (``anomaly-free``); 1 Hz rows, 8 features, the ``anomaly`` column as the label. The published
  outlier-detection protocol fits on the first 400 rows of each file and predicts every later row.
* **C-MAPSS FD001**: every engine is one sensor, one operating cycle is 4.8 hours (so a 10-day
  window holds 50 cycles), all 24 columns (3 operational settings, 21 sensors) are features, and a
  row's label is 1 when the engine fails within 30 cycles. Kept for acceptance: not for tuning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vigil.events.frame import EventTable, SensorSeries, event_table

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SKAB_DIR, CMAPSS_DIR = DATA / "skab", DATA / "cmapss"
SKAB_GROUPS = ("valve1", "valve2", "other")
SKAB_FEATURES = ("Accelerometer1RMS", "Accelerometer2RMS", "Current", "Pressure", "Temperature",
                 "Thermocouple", "Voltage", "Volume Flow RateRMS")
SKAB_LABEL = "anomaly"
SKAB_TRAIN_ROWS = 400
CMAPSS_FEATURES = tuple([f"setting_{i}" for i in (1, 2, 3)] + [f"s{i}" for i in range(1, 22)])
CMAPSS_LABEL = "fails_within_30"
CMAPSS_CYCLE_MS = int(4.8 * 3_600_000)
CMAPSS_HORIZON = 30  # cycles
START = pd.Timestamp("2026-01-01", tz="UTC")


def skab_files(limit: int | None = None) -> list[tuple[str, Path]]:
    files = [(f"{group}/{path.stem}", path) for group in SKAB_GROUPS
             for path in sorted((SKAB_DIR / group).glob("*.csv"), key=lambda p: int(p.stem))]
    if limit:  # spread a smoke run over every group
        files = files[:: max(1, len(files) // limit)][:limit]
    return files


def skab_frame(sensor_id: str, path: Path) -> pd.DataFrame:
    raw = pd.read_csv(path, sep=";")
    frame = raw[list(SKAB_FEATURES)].copy()
    frame.insert(0, "timestamp", pd.to_datetime(raw["datetime"]))
    frame.insert(0, "sensor_id", sensor_id)
    frame[SKAB_LABEL] = raw[SKAB_LABEL] if SKAB_LABEL in raw else 0
    return frame


def skab_tables(limit: int | None = None) -> tuple[EventTable, EventTable]:
    """(train, test): train = the anomaly-free file and each file's first 400 rows; test = whole files."""
    frames = [skab_frame(sensor_id, path) for sensor_id, path in skab_files(limit)]
    free = skab_frame("anomaly-free", SKAB_DIR / "anomaly-free" / "anomaly-free.csv")
    train = pd.concat([free, *(f.iloc[:SKAB_TRAIN_ROWS] for f in frames)], ignore_index=True)
    test = pd.concat(frames, ignore_index=True)
    tables = event_table(train, SKAB_FEATURES, SKAB_LABEL), event_table(test, SKAB_FEATURES, SKAB_LABEL)
    rows = {f["sensor_id"].iat[0]: len(f) for f in frames}
    if tables[1].dropped or any(len(tables[1].series[s].ts_ms) != n for s, n in rows.items()):
        raise RuntimeError("SKAB rows were dropped or reordered; row positions would not match")
    return tables


def cmapss_frame(name: str, rul: np.ndarray | None = None) -> pd.DataFrame:
    raw = pd.read_csv(CMAPSS_DIR / name, sep=r"\s+", header=None).iloc[:, :26]
    raw.columns = ["unit", "cycle", *CMAPSS_FEATURES]
    last = raw.groupby("unit")["cycle"].transform("max")
    remaining = last - raw["cycle"]
    if rul is not None:  # test engines are cut short: RUL_FD001 gives what remained at the cut
        remaining = remaining + raw["unit"].map(dict(enumerate(rul, start=1)))
    frame = raw[list(CMAPSS_FEATURES)].copy()
    frame.insert(0, "timestamp", START + pd.to_timedelta(raw["cycle"] * CMAPSS_CYCLE_MS, unit="ms"))
    frame.insert(0, "sensor_id", "engine-" + raw["unit"].astype(str).str.zfill(3))
    frame[CMAPSS_LABEL] = (remaining <= CMAPSS_HORIZON).astype(int)
    return frame


def cmapss_tables() -> tuple[EventTable, EventTable]:
    """(train, test) of FD001: 100 engines run to failure, 100 engines cut short."""
    rul = pd.read_csv(CMAPSS_DIR / "RUL_FD001.txt", header=None).iloc[:, 0].to_numpy()
    return (event_table(cmapss_frame("train_FD001.txt"), CMAPSS_FEATURES, CMAPSS_LABEL),
            event_table(cmapss_frame("test_FD001.txt", rul), CMAPSS_FEATURES, CMAPSS_LABEL))


def head(series: SensorSeries, rows: int) -> SensorSeries:
    return SensorSeries(series.sensor_id, series.ts_ms[:rows], series.values[:rows], series.labels[:rows])
