"""``vigil backtest``: replay an event file through the streamer's scoring points and alert policy."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vigil.cli.training_args import add_event_arguments, load_table
from vigil.errors import VigilError
from vigil.settings import VigilSettings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "backtest",
        help="what the streamer would have alerted on for an event file, and how good that was",
        description=(
            "Replay an event file (CSV, Parquet or JSONL) per sensor in event-time order: score each "
            "sensor where the streamer scores it (once per stream.score_every of event time, at the "
            "span's last event, once the window holds window.min_events) and run the streamer's alert policy "
            "(alerts.*: warm-up, persistence, hysteresis, cooldown) on the scores. Prints a summary and, "
            "as the last line of stdout, one JSON object: alerts, cleared, sensors, sensors_alerted, "
            "sensor_days (sensor-days past the warm-up), and with labels or --truth alert_precision, "
            "sensor_recall, false_alerts_per_100_sensor_days (with --truth median_lead_hours: first "
            "true alert's window_end minus the onset). Change the policy with VIGIL_ALERTS__* or the "
            "alerts: section of the configuration file."
        ),
    )
    parser.add_argument("--events", type=Path, required=True, metavar="FILE", help="event file to replay")
    add_event_arguments(parser)
    parser.add_argument("--truth", type=Path, metavar="FILE",
                        help="CSV with sensor_id and onset (ISO-8601 or epoch ms; empty: never anomalous): an "
                             "alert is true only at or after its sensor's onset (`vigil simulate --truth-out` "
                             "writes one)")
    parser.add_argument("--alerts-out", type=Path, metavar="FILE",
                        help="write the alert and cleared records as JSONL, in the sensor-alerts schema")
    parser.add_argument("--scores-out", type=Path, metavar="FILE",
                        help="write one row per scoring point (.csv, .parquet, .jsonl): sensor_id, window_start, "
                             "window_end, n_events, score, alert, warming_up, label, explanation columns")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="write an HTML report: each alerted sensor's score over time with the threshold, "
                             "the clear level and its alert and clear marks")
    parser.set_defaults(handler=_backtest)


def _backtest(args: argparse.Namespace, settings: VigilSettings) -> int:
    import pandas as pd

    from vigil.alerts.backtest import backtest, count_points
    from vigil.alerts.outcome import alert_outcome, alertable_days, truth_onsets
    from vigil.cli.evaluate_cmd import progress_counter
    from vigil.registry import resolve_model_dir

    onsets = None
    if args.truth:
        try:
            onsets = truth_onsets(pd.read_csv(args.truth))
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise VigilError(f"{args.truth}: {exc}") from None
    registry, version = resolve_model_dir(args.model_dir or settings.models_path)
    loaded = registry.load(version)
    tbl = load_table(args, settings, features=list(loaded.meta.features) if not args.features else None)
    if not tbl.series:
        raise VigilError(f"{args.events}: no valid events")
    try:
        run = backtest(loaded, tbl, settings, on_progress=progress_counter("scoring points", count_points(tbl, settings)))
    except ValueError as exc:
        raise VigilError(str(exc)) from None
    points = run.points
    labels = None
    if tbl.label_column and points["label"].notna().any():
        labels = points.groupby("sensor_id")["label"].max().fillna(0).astype(int).to_dict()
    outcome = alert_outcome(run.alerts, alertable_days(points), labels, onsets)
    if onsets is not None:
        unknown = sorted(set(tbl.series) - set(onsets))
        if unknown:
            print(f"warning: {len(unknown)} sensors are not in {args.truth} (counted as normal), e.g. {unknown[0]}",
                  file=sys.stderr)
    if args.alerts_out:
        args.alerts_out.parent.mkdir(parents=True, exist_ok=True)
        args.alerts_out.write_text("".join(r.model_dump_json() + "\n" for r in run.alerts))
    if args.scores_out:
        write_points(run, args.scores_out)
    if args.report:
        from vigil.alerts.report import write_backtest_report

        page = write_backtest_report(run, outcome, settings.alerts, args.report, onsets,
                                     title=f"Vigil backtest: {args.events.name}")
        print(f"report: {page}")
    print_summary(outcome)
    print(json.dumps({"model_version": loaded.version, "threshold": loaded.threshold,
                      **{k: v for k, v in outcome.items() if k != "lead_hours"}}))
    return 0


def write_points(run, path: Path) -> None:
    from vigil.evaluation import iso
    from vigil.events.files import write_events

    frame = run.points.drop(columns=["history_ms"]).copy()
    frame.insert(5, "alert", (frame["score"] >= run.threshold).astype(int))
    for column in ("window_start", "window_end", "span_start", "span_end"):
        if column in frame:
            frame[column] = iso(frame[column].to_numpy()).to_numpy()
    frame["label"] = frame["label"].astype("Int64")
    write_events(frame, path)


def print_summary(outcome: dict) -> None:
    from vigil.cli.output import table

    names = {"alerts": "alerts", "cleared": "cleared", "sensors": "sensors scored",
             "sensors_alerted": "sensors alerted", "sensor_days": "sensor-days past warm-up",
             "alert_precision": "alert precision", "sensor_recall": "sensor recall",
             "false_alerts": "false alerts (normal sensors)", "early_alerts": "alerts before the onset",
             "false_alerts_per_100_sensor_days": "false alerts per 100 normal sensor-days",
             "median_lead_hours": "median hours from onset to first alert"}
    rows = [(label, outcome[key]) for key, label in names.items() if key in outcome]
    print(table(rows, ("", "")).split("\n", 1)[1])
