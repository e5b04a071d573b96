"""``vigil train --from-redis``: the trainer job's options and its signal handling; the run loop is
:mod:`trainer.job`."""

from __future__ import annotations

import argparse
import json
import signal
import sys

from vigil.cli.args import duration_arg, positive_int
from vigil.cli.training_args import train_config, window_spec
from vigil.settings import VigilSettings
from trainer.options import JobOptions


def add_arguments(parser: argparse.ArgumentParser) -> None:
    job = parser.add_argument_group("trainer job (--from-redis)")
    job.add_argument("--max-sensors", type=positive_int, default=JobOptions.max_sensors,
                     help="sample at most this many sensors (default %(default)s)")
    job.add_argument("--keep-labelled", action="store_true",
                     help="train on sensors whose latest label is 1 too (default: they only validate)")
    job.add_argument("--keep-alerted", action="store_true",
                     help="train on sensors that raised an alert inside their window too (default: excluded)")
    job.add_argument("--holdout-fraction", type=float, default=JobOptions.holdout_fraction,
                     help="share of sensors kept from training to gate the candidate (default %(default)s)")
    job.add_argument("--pr-auc-margin", type=float, default=JobOptions.pr_auc_margin,
                     help="with labelled anomalies: promote if PR-AUC >= current - margin (default %(default)s)")
    job.add_argument("--fpr-margin", type=float, default=JobOptions.fpr_margin,
                     help="without: promote if the false-positive rate <= current + margin (default %(default)s)")
    job.add_argument("--keep", type=positive_int, default=JobOptions.keep, help="model versions to retain (default %(default)s)")
    job.add_argument("--repeat", type=duration_arg, metavar="DURATION",
                     help="run every DURATION (e.g. 6h) until SIGTERM; default: once")


def run(args: argparse.Namespace, settings: VigilSettings) -> int:
    from trainer.job import StopRequest, run_job  # TensorFlow loads here
    from vigil.registry import ModelRegistry

    options = JobOptions(
        spec=window_spec(args, settings, len(settings.features)), config=train_config(args),
        min_events=args.min_events or settings.window.min_events, seed=args.seed, max_sensors=args.max_sensors,
        keep_labelled=args.keep_labelled, keep_alerted=args.keep_alerted, holdout_fraction=args.holdout_fraction,
        pr_auc_margin=args.pr_auc_margin, fpr_margin=args.fpr_margin, keep=args.keep,
        repeat_s=args.repeat.total_seconds() if args.repeat is not None else None,
    )
    stop = StopRequest()

    def on_signal(signum, _frame) -> None:
        print(f"vigil train: {signal.Signals(signum).name}, stopping", file=sys.stderr)
        stop()  # while a run trains, this unwinds it without touching the registry

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return run_job(options, settings, ModelRegistry(args.model_dir or settings.models_path), stop,
                   report=lambda summary: print(json.dumps(summary), flush=True))
