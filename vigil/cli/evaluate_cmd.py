"""``vigil evaluate``: score an event file with a saved model; metrics as JSON on the last line."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from vigil.cli.args import positive_int
from vigil.cli.training_args import add_event_arguments, load_table
from vigil.errors import VigilError
from vigil.settings import VigilSettings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="score an event file with a trained model and report PR-AUC, ROC-AUC and F1",
        description=(
            "Score windows exactly as the streamer does (a window ends at an event): --last, one "
            "window per sensor at its last event (default), or --every K, a window at every K-th "
            "event. Prints the metrics as one JSON object on the last line of stdout."
        ),
    )
    parser.add_argument("--events", type=Path, required=True, metavar="FILE", help="event file to score")
    add_event_arguments(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--last", action="store_true", help="one window per sensor, ending at its last event (default)")
    which.add_argument("--every", type=positive_int, metavar="K", help="a window at every K-th event of each sensor")
    parser.add_argument("--min-events", type=positive_int, default=1, help="skip windows with fewer events (default %(default)s)")
    parser.add_argument("--scores-out", type=Path, metavar="FILE",
                        help="write one row per window (.csv, .parquet, .jsonl): sensor_id, window_start, "
                             "window_end, n_events, score, alert, label, and the explanation: top_features "
                             "(;-separated, largest share first), span_start, span_end")
    parser.add_argument("--report", type=Path, metavar="DIR",
                        help="write an HTML report: PR/ROC curves, score histograms, and the top alerted "
                             "windows with the span that drove their score")
    parser.set_defaults(handler=_evaluate)


def _evaluate(args: argparse.Namespace, settings: VigilSettings) -> int:
    from vigil.evaluation import metrics_of, score_table
    from vigil.events.files import write_events
    from vigil.registry import resolve_model_dir

    registry, version = resolve_model_dir(args.model_dir or settings.models_path)
    loaded = registry.load(version)
    tbl = load_table(args, settings, features=list(loaded.meta.features) if not args.features else None)
    try:
        scores = score_table(loaded, tbl, every=args.every, min_events=args.min_events,
                             on_progress=progress_counter("windows scored", -(-tbl.n_events // args.every)
                                                          if args.every else len(tbl.series)))
    except ValueError as exc:
        raise VigilError(str(exc)) from None
    metrics = {"model_version": loaded.version, **metrics_of(scores, loaded.threshold)}
    if args.scores_out:
        write_events(scores, args.scores_out)
    if args.report:
        from vigil.report import write_report

        page = write_report(scores, metrics, args.report, title=f"Vigil evaluation: {args.events.name}", table=tbl)
        print(f"report: {page}")
    print(json.dumps(metrics))
    return 0


def progress_counter(label: str, total: int):
    """A callback adding each batch's size to a running count shown on stderr."""
    from vigil.cli.output import Progress

    progress, done = Progress(label, total=total), 0

    def step(n: int) -> None:
        nonlocal done
        done += n
        progress(done)
    return step
