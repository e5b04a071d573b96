"""How a run's alerts compare with the truth: the figures ``vigil backtest``, the demo and
bench/alerts.py report, computed here only.

A sensor is anomalous when the truth gives it an onset (``--truth``) or, without one, when its
events carry label 1. With onsets, an alert counts as true only when its window ends at or after
the sensor's onset: an alert days before the fault began found nothing. Sensor-days count the
time a sensor could alert (scored, past its warm-up), so a fleet's young sensors do not dilute
the false-alert rate.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from vigil.durations import DAY_MS, HOUR_MS
from vigil.events.outputs import AlertRecord



def alertable_days(points: pd.DataFrame) -> dict[str, float]:
    """Per sensor: days between its first and last scored window past the warm-up (and at least
    one scoring interval's worth, so a sensor scored once still counts a little)."""
    warm = points.loc[~points["warming_up"].astype(bool), ["sensor_id", "window_end"]]
    if warm.empty:
        return {}
    span = warm.groupby("sensor_id")["window_end"].agg(["min", "max", "count"])
    step = (span["max"] - span["min"]) / np.maximum(span["count"] - 1, 1)
    return ((span["max"] - span["min"] + step.where(span["count"] > 1, 0)) / DAY_MS).to_dict()


def truth_onsets(frame: pd.DataFrame) -> dict[str, int | None]:
    """sensor_id → onset in epoch ms (None: never anomalous) from a truth table with ``sensor_id``
    and ``onset`` (ISO-8601 or epoch ms; ``onset_ms`` as `vigil simulate --truth-out` writes it)."""
    column = "onset" if "onset" in frame else "onset_ms" if "onset_ms" in frame else None
    if "sensor_id" not in frame or column is None:
        raise ValueError(f"a truth file needs the columns sensor_id and onset; it has {list(frame.columns)}")
    onsets = {}
    for sensor, raw in zip(frame["sensor_id"].astype(str), frame[column]):
        onsets[sensor] = _epoch_ms(raw)
    return onsets


def _epoch_ms(raw) -> int | None:
    if raw is None or (isinstance(raw, float) and np.isnan(raw)) or (isinstance(raw, str) and not raw.strip()):
        return None
    if isinstance(raw, (int, float, np.integer, np.floating)) or str(raw).strip().lstrip("-").isdigit():
        return int(float(raw))
    try:
        ts = pd.Timestamp(raw)
    except ValueError:
        raise ValueError(f"onset {raw!r} is neither ISO-8601 nor epoch milliseconds") from None
    return int((ts.tz_localize("UTC") if ts.tzinfo is None else ts).value // 1_000_000)


def alert_outcome(alerts: Iterable[AlertRecord | Mapping], days: Mapping[str, float],
                  labels: Mapping[str, int] | None = None, onsets: Mapping[str, int | None] | None = None) -> dict:
    """alerts, cleared, sensors, sensors_alerted, sensor_days, and with labels or onsets
    alert_precision, sensor_recall, false_alerts_per_100_sensor_days (with onsets median_lead_hours)."""
    records = [a.model_dump() if isinstance(a, AlertRecord) else dict(a) for a in alerts]
    opened = [r for r in records if r["kind"] == "alert"]
    out: dict = {"alerts": len(opened), "cleared": len(records) - len(opened), "sensors": len(days),
                 "sensors_alerted": len({r["sensor_id"] for r in opened}),
                 "sensor_days": round(float(sum(days.values())), 2)}
    if onsets is not None:
        anomalous = {s for s, onset in onsets.items() if onset is not None}
    elif labels:
        anomalous = {s for s, label in labels.items() if label == 1}
    else:
        return out
    onsets = onsets or {}

    def true_alert(r: dict) -> bool:
        return r["sensor_id"] in anomalous and r["window_end"] >= (onsets.get(r["sensor_id"]) or -np.inf)

    true = [r for r in opened if true_alert(r)]
    positives = anomalous & set(days)
    normal_days = sum(d for s, d in days.items() if s not in anomalous)
    found = {r["sensor_id"] for r in true}
    out.update(
        alert_precision=round(len(true) / len(opened), 4) if opened else None,
        sensor_recall=round(len(found & positives) / len(positives), 4) if positives else None,
        false_alerts=sum(r["sensor_id"] not in anomalous for r in opened),
        early_alerts=sum(r["sensor_id"] in anomalous and not true_alert(r) for r in opened),
        false_alerts_per_100_sensor_days=(round(100 * sum(r["sensor_id"] not in anomalous for r in opened)
                                                / normal_days, 4) if normal_days else None),
    )
    if onsets:
        first = {}
        for r in sorted(true, key=lambda r: r["window_end"]):
            first.setdefault(r["sensor_id"], r["window_end"] - onsets[r["sensor_id"]])
        leads = sorted(first.values())
        out["median_lead_hours"] = round(float(np.median(leads)) / HOUR_MS, 2) if leads else None
        out["lead_hours"] = {s: round(v / HOUR_MS, 2) for s, v in sorted(first.items())}
    return out
