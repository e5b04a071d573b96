"""An HTML evaluation report: PR and ROC curves, score histograms by label, and the highest-scoring
alerted windows with the span their explanation names (PNG inside)."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from vigil.events.frame import EventTable  # noqa: E402


ALERTED_WINDOWS = 4  # the highest-scoring alerted windows drawn with their explanation's span


def write_report(scores: pd.DataFrame, metrics: dict, out_dir: Path, title: str = "Vigil evaluation",
                 table: EventTable | None = None) -> Path:
    """``table`` (the scored events) adds plots of the top alerted windows with the span marked."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = scores["label"].astype("float64").to_numpy(na_value=np.nan)
    s = scores["score"].to_numpy(dtype=np.float64)
    threshold = metrics["threshold"]
    figures = {"scores": _histogram(s, labels, threshold)}
    known = np.isfinite(labels)
    if known.any() and 0 < labels[known].sum() < known.sum():
        figures["pr"] = _pr_curve(labels[known].astype(int), s[known], metrics)
        figures["roc"] = _roc_curve(labels[known].astype(int), s[known], metrics)
    if table is not None and "span_start" in scores and scores["span_start"].notna().any():
        alerted = scores[scores["alert"] == 1].sort_values("score", ascending=False)
        for i, (_, row) in enumerate(alerted.drop_duplicates("sensor_id").head(ALERTED_WINDOWS).iterrows()):
            figures[f"alerted_{i + 1}"] = _window_plot(table, row)
    top = scores.sort_values("score", ascending=False).head(20).to_html(index=False, float_format="%.4g")
    return html_page(out_dir, title, metrics, figures, f"<h2>Highest scores</h2>{top}")


def html_page(out_dir: Path, title: str, metrics: dict, figures: dict, extra: str = "") -> Path:
    """``index.html`` in ``out_dir``: the metrics as a table, each figure as a PNG (also saved beside
    it), then ``extra`` HTML; the metrics again as JSON for scripts."""
    images = []
    for name, fig in figures.items():
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
        plt.close(fig)
        (out_dir / f"{name}.png").write_bytes(buffer.getvalue())
        images.append(f'<img alt="{name}" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">')
    rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{_fmt(v)}</td></tr>" for k, v in metrics.items())
    page = out_dir / "index.html"
    page.write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}img{max-width:32%;margin:.5em}"
        "table{border-collapse:collapse}td,th{padding:.2em .8em;border-bottom:1px solid #ddd;text-align:left}</style>"
        f"</head><body><h1>{html.escape(title)}</h1><table>{rows}</table><div>{''.join(images)}</div>{extra}"
        f"<script type='application/json' id='metrics'>{json.dumps(metrics)}</script></body></html>"
    )
    return page


def _ms(text: str) -> int:
    return int(pd.Timestamp(text).value // 1_000_000)


def _window_plot(table: EventTable, row: pd.Series):
    """One alerted window: each feature standardised over the window, the explanation's span shaded."""
    series = table.series[row["sensor_id"]]
    start, end = _ms(row["window_start"]), _ms(row["window_end"])
    keep = (series.ts_ms > start) & (series.ts_ms <= end)
    t = pd.to_datetime(series.ts_ms[keep], unit="ms", utc=True)
    values = series.values[keep]
    named = str(row["top_features"]).split(";")
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for j, feature in enumerate(table.features):
        v = values[:, j]
        z = (v - v.mean()) / (v.std() or 1.0)
        ax.plot(t, z + 0 * j, lw=2 if feature == named[0] else 0.8, alpha=1 if feature in named else 0.4,
                label=feature if feature in named else None)
    ax.axvspan(pd.to_datetime(_ms(row["span_start"]), unit="ms", utc=True),
               pd.to_datetime(_ms(row["span_end"]), unit="ms", utc=True), color="red", alpha=0.15, label="span")
    ax.set(title=f"{row['sensor_id']}: score {row['score']:.3g}", ylabel="standardised value")
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    return fig


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else html.escape(str(value))


def _histogram(scores, labels, threshold):
    fig, ax = plt.subplots(figsize=(5, 3.6))
    bins = np.histogram_bin_edges(np.log10(np.maximum(scores, 1e-12)), bins=50)
    for name, mask in (("normal (0)", labels == 0), ("alerting (1)", labels == 1), ("unlabelled", ~np.isfinite(labels))):
        if mask.any():
            ax.hist(np.log10(np.maximum(scores[mask], 1e-12)), bins=bins, alpha=0.6, label=name, density=True)
    ax.axvline(np.log10(max(threshold, 1e-12)), color="k", linestyle="--", label="threshold")
    ax.set(xlabel="log10(score)", ylabel="density", title="Scores by label")
    ax.legend()
    return fig


def _curve(x, y):
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ax.plot(x, y)
    return fig, ax


def _pr_curve(y, s, metrics):
    precision, recall, _ = precision_recall_curve(y, s)
    fig, ax = _curve(recall, precision)
    ax.axhline(y.mean(), color="grey", linestyle=":", label=f"base rate {y.mean():.3f}")
    if metrics.get("recall") is not None:
        ax.plot([metrics["recall"]], [metrics["precision"]], "ko", label="at threshold")
    ax.set(xlabel="recall", ylabel="precision", title=f"PR curve (AP {metrics.get('pr_auc', 0):.3f})", ylim=(0, 1.02))
    ax.legend()
    return fig


def _roc_curve(y, s, metrics):
    fpr, tpr, _ = roc_curve(y, s)
    fig, ax = _curve(fpr, tpr)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=f"ROC curve (AUC {metrics.get('roc_auc', 0):.3f})")
    return fig
