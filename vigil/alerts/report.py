"""The backtest's HTML report: per alerted sensor, its score over time with the threshold, the
clear level, and where alerts opened and cleared (and the true onset, when known)."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from vigil.report import html_page, plt
from vigil.settings import AlertSettings

MAX_SENSORS = 30  # plots per report: the alerted sensors, true ones first


def write_backtest_report(run, outcome: dict, policy: AlertSettings, out_dir: Path,
                          onsets: dict | None = None, title: str = "Vigil backtest") -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    alerts = pd.DataFrame([r.model_dump(exclude={"explanation"}) for r in run.alerts])
    figures = {}
    listed = ""
    if not alerts.empty:
        onsets = onsets or {}
        first = alerts[alerts["kind"] == "alert"].groupby("sensor_id")["window_end"].min()
        sensors = sorted(first.index, key=lambda s: (onsets.get(s) is None, first[s]))
        for sensor in sensors[:MAX_SENSORS]:
            figures[f"sensor_{sensor}"] = _sensor_plot(run.points[run.points["sensor_id"] == sensor],
                                                       alerts[alerts["sensor_id"] == sensor], run.threshold,
                                                       policy.clear_ratio * run.threshold, onsets.get(sensor))
        if len(sensors) > MAX_SENSORS:
            listed = f"<p>{len(sensors) - MAX_SENSORS} more alerted sensors are not drawn.</p>"
        table = alerts.assign(window_end=pd.to_datetime(alerts["window_end"], unit="ms", utc=True))[
            ["sensor_id", "kind", "window_end", "score", "threshold", "alert_id"]]
        listed += "<h2>Alert records</h2>" + table.to_html(index=False, float_format="%.4g")
    metrics = {k: v for k, v in outcome.items() if k != "lead_hours"}
    metrics.update(threshold=run.threshold, clear_level=policy.clear_ratio * run.threshold,
                   policy=html.escape(policy.model_dump_json()))
    return html_page(out_dir, title, metrics, figures, listed)


def _sensor_plot(points: pd.DataFrame, alerts: pd.DataFrame, threshold: float, clear: float, onset: int | None):
    t = pd.to_datetime(points["window_end"], unit="ms", utc=True)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    warm = ~points["warming_up"].astype(bool).to_numpy()
    ax.plot(t[~warm], points["score"][~warm], color="grey", lw=0.8, label="warming up")
    ax.plot(t[warm], points["score"][warm], color="C0", lw=1, label="score")
    ax.axhline(threshold, color="k", ls="--", lw=0.8, label="threshold")
    ax.axhline(clear, color="k", ls=":", lw=0.8, label="clear level")
    for kind, marker, color in (("alert", "v", "red"), ("cleared", "^", "green")):
        marked = alerts[alerts["kind"] == kind]
        if not marked.empty:
            ax.plot(pd.to_datetime(marked["window_end"], unit="ms", utc=True), marked["score"], marker, color=color,
                    ms=8, label=kind)
    if onset is not None:
        ax.axvline(pd.to_datetime(onset, unit="ms", utc=True), color="orange", lw=1.5, label="onset")
    ax.set_yscale("log")
    sensor = points["sensor_id"].iloc[0] if len(points) else "?"
    ax.set(title=sensor + ("" if onset is not None else "  (normal)"), ylabel="score")
    ax.legend(fontsize=6)
    fig.autofmt_xdate()
    return fig
