"""The threshold a false-alert budget allows (``alerts.budget`` false alerts per 100 normal
sensor-days), derived from held-out normal sensors.

A training fleet holds a few hundred normal sensor-days: far too few to count events as rare as
one per thousand sensor-days. So the rate is extrapolated. The persistence rule means a sensor
alerts at threshold t only when its score stays >= t for ``for_duration`` (and ``for_points``
scoring points): when the rolling minimum of its score over that span reaches t. The maxima of
that rolling minimum over fixed blocks of event time (6 h) have a tail that extreme-value theory
describes (peaks over threshold): above their 90th percentile, the excess of the block maxima is
fitted with an exponential law (a generalised Pareto law of shape 0), which gives, for any t, the
chance that a block holds an alert; the threshold is where that chance meets the budget.
Hysteresis and the cooldown keep one episode to one alert, so a block with an exceedance counts as
one alert. The shape is fixed because a free one, fitted on the hundred-odd exceedances a
training fleet has, swung with a single noisy sensor: on the demo's 247 held-out sensor-days it
came out at 0.62 and put the threshold at 3.4, five times the highest block seen (0.63), and no
anomaly was alerted.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import expon

from vigil.durations import DAY_MS
from vigil.model.threshold import Threshold
from vigil.settings import AlertSettings

BLOCK_MS = 6 * 3_600_000
MIN_BLOCKS = 100  # fewer block maxima than this fit no tail: the caller falls back to a quantile
TAIL_QUANTILE = 0.9  # the block maxima above this quantile are the tail the exponential law is fitted to


def calibration_stride_ms(alerts: AlertSettings, point_ms: float, window_ms: int, bin_ms: int) -> int:
    """How far apart the held-out windows are scored: fine enough to see the persistence span,
    never finer than the streamer scores, never coarser than a bin."""
    persist = _persist_ms(alerts, point_ms, window_ms, bin_ms)
    return int(max(point_ms, min(bin_ms, persist / 2 if persist else bin_ms)))


def _persist_ms(alerts: AlertSettings, point_ms: float, window_ms: int, bin_ms: int) -> float:
    return max(alerts.span_ms("for_duration", window_ms, bin_ms), (alerts.for_points - 1) * point_ms)


def block_maxima(scores: np.ndarray, sensor_id: np.ndarray, end_ms: np.ndarray, persist_ms: float) -> np.ndarray:
    """Per sensor and 6-hour block of event time: the highest level its score held for ``persist_ms``."""
    frame = pd.DataFrame({"sensor": sensor_id, "end": end_ms.astype(np.int64), "score": scores})
    maxima = []
    for _, part in frame.sort_values(["sensor", "end"]).groupby("sensor", sort=False):
        series = pd.Series(part["score"].to_numpy(), index=pd.to_datetime(part["end"].to_numpy(), unit="ms"))
        held = series.rolling(pd.Timedelta(milliseconds=max(persist_ms, 1)), closed="both").min().to_numpy()
        ends = part["end"].to_numpy()
        settled = ends - ends[0] >= persist_ms  # the first points have not been watched that long
        block = (ends - ends[0]) // BLOCK_MS
        for b in np.unique(block[settled]):
            in_block = settled & (block == b)
            if ends[in_block][-1] - ends[in_block][0] >= BLOCK_MS / 2:  # a sliver of a block says little
                maxima.append(held[in_block].max())
    return np.asarray(maxima, dtype=np.float64)


def budget_threshold(scores: np.ndarray, sensor_id: np.ndarray, end_ms: np.ndarray, alerts: AlertSettings,
                     point_ms: float, window_ms: int, bin_ms: int) -> Threshold | None:
    """The threshold for ``alerts.budget``, from normal sensors' scores; None when they are too few."""
    persist = _persist_ms(alerts, point_ms, window_ms, bin_ms)
    maxima = block_maxima(np.asarray(scores, dtype=np.float64), np.asarray(sensor_id), np.asarray(end_ms), persist)
    if len(maxima) < MIN_BLOCKS:
        return None
    base = float(np.quantile(maxima, TAIL_QUANTILE))
    _, scale = expon.fit(maxima[maxima > base] - base, floc=0)
    p_block = alerts.budget / 100 * BLOCK_MS / DAY_MS
    value = base + float(expon.isf(p_block / (1 - TAIL_QUANTILE), 0, scale))
    return Threshold(value, "alert_budget", {
        "budget_per_100_sensor_days": alerts.budget,
        "expected_false_alerts_per_100_sensor_days": alerts.budget,
        "method": "exponential tail fitted to the top 10% of 6 h block maxima of the score's rolling minimum "
                  "over the persistence span, on held-out normal sensors",
        "persistence_ms": int(persist), "tail_base": base, "tail_scale": float(scale),
        "n_blocks": int(len(maxima)), "sensor_days": round(len(maxima) * BLOCK_MS / DAY_MS, 1),
        "observed_blocks_over": int((maxima >= value).sum()), "highest_block_max": float(maxima.max()),
        "policy": alerts.model_dump(mode="json"),
    })


def expected_rate(threshold: float, detail: dict) -> float:
    """False alerts per 100 sensor-days the fit expects at ``threshold`` (above the tail's base)."""
    base = detail["tail_base"]
    if threshold <= base:
        return float("nan")  # below the fitted tail
    p_block = (1 - TAIL_QUANTILE) * expon.sf(threshold - base, 0, detail["tail_scale"])
    return float(100 * p_block * DAY_MS / BLOCK_MS)
