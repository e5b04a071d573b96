"""``vigil train --from-redis``: the periodic trainer job (one-shot for cron, or ``--repeat 6h``).

Each run samples recent windows from the streamer's Redis buffers, fits a candidate, gates it
against the current model and promotes it only if it is not worse (then announces it on Redis so
streamers swap at once). SIGTERM/SIGINT during a run stop it before anything reaches the registry.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from vigil.cli.args import duration_arg, positive_int
from vigil.errors import VigilError
from vigil.settings import VigilSettings


class Interrupted(BaseException):
    """SIGTERM/SIGINT while a run trains: unwinds out of Keras without touching the registry."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    job = parser.add_argument_group("trainer job (--from-redis)")
    job.add_argument("--max-sensors", type=positive_int, default=2000, help="sample at most this many sensors (default 2000)")
    job.add_argument("--keep-labelled", action="store_true",
                     help="train on sensors whose latest label is 1 too (default: they only validate)")
    job.add_argument("--keep-alerted", action="store_true",
                     help="train on sensors that raised an alert inside their window too (default: excluded)")
    job.add_argument("--holdout-fraction", type=float, default=0.2,
                     help="share of sensors kept from training to gate the candidate (default 0.2)")
    job.add_argument("--pr-auc-margin", type=float, default=0.02,
                     help="with labelled anomalies: promote if PR-AUC >= current - margin (default 0.02)")
    job.add_argument("--fpr-margin", type=float, default=0.01,
                     help="without: promote if the false-positive rate <= current + margin (default 0.01)")
    job.add_argument("--keep", type=positive_int, default=10, help="model versions to retain (default 10)")
    job.add_argument("--repeat", type=duration_arg, metavar="DURATION",
                     help="run every DURATION (e.g. 6h) until SIGTERM; default: once")


def run(args: argparse.Namespace, settings: VigilSettings) -> int:
    from vigil.buffer import BufferLayout, RollingBuffer
    from vigil.redis_client import connect
    from vigil.registry import ModelRegistry, announcement_channel

    registry = ModelRegistry(args.model_dir or settings.models_path)
    client = connect(settings, socket_connect_timeout=5, socket_timeout=60)
    buffer = RollingBuffer(client, BufferLayout.from_settings(settings), settings.topics.events)
    channel = announcement_channel(settings.redis.key_prefix)
    state = {"training": False, "stop": False}

    def on_signal(signum, _frame) -> None:
        state["stop"] = True
        print(f"vigil train: {signal.Signals(signum).name}, stopping", file=sys.stderr)
        if state["training"]:
            raise Interrupted

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while True:
        started = time.monotonic()
        state["training"] = True  # from here until the registry is written, a signal unwinds the run

        def disarm() -> None:  # called just before the candidate is saved
            if state["stop"]:
                raise Interrupted
            state["training"] = False  # a signal from now on lets the run finish, then stops

        try:
            result = _run_once(args, settings, buffer, registry, client, channel, disarm)
        except Interrupted:
            print("vigil train: interrupted during training; the registry is unchanged", file=sys.stderr)
            return 0
        finally:
            state["training"] = False
        pruned = registry.prune(args.keep)
        print(json.dumps({"version": result.version, "promoted": result.promoted, "reason": result.gate["reason"],
                          "gate": result.gate, "drift": result.drift, "pruned": pruned,
                          "seconds": round(time.monotonic() - started, 1)}))
        if args.repeat is None:
            return 0
        deadline = time.monotonic() + args.repeat.total_seconds()
        while not state["stop"] and time.monotonic() < deadline:
            time.sleep(min(1.0, deadline - time.monotonic()))
        if state["stop"]:
            return 0


def _run_once(args, settings, buffer, registry, client, channel, before_save):
    import redis

    from trainer.refit import refit
    from trainer.sample import sample_buffers
    from vigil.cli.train_cmd import train_config, window_spec

    min_events = args.min_events or settings.window.min_events
    try:
        sample = sample_buffers(buffer, tuple(settings.features), settings.label_column, args.max_sensors,
                                args.seed, exclude_labelled=not args.keep_labelled,
                                exclude_alerted=not args.keep_alerted, min_events=min_events)
    except redis.RedisError as exc:
        raise VigilError(f"cannot read the buffers from Redis at {settings.redis.masked_url()}: {exc}") from None
    print(f"sampled {len(sample.normal.series)} normal sensors of {sample.scanned} in Redis "
          f"({sample.normal.n_events} events); excluded: {sample.excluded}", file=sys.stderr, flush=True)
    if len(sample.normal.series) < 5:
        raise VigilError(f"only {len(sample.normal.series)} normal sensors in Redis: stream events first")
    source = {"redis": settings.redis.masked_url(), "prefix": settings.redis.key_prefix,
              "sensors_scanned": sample.scanned, "excluded": sample.excluded, "seed": args.seed}
    try:
        return refit(sample.normal, sample.anomalous, window_spec(args, settings, len(settings.features)),
                     train_config(args), registry, min_events=min_events,
                     holdout_fraction=args.holdout_fraction, pr_auc_margin=args.pr_auc_margin,
                     fpr_margin=args.fpr_margin, source=source, alerts=settings.alerts,
                     score_every=settings.stream.score_every_events,
                     announce=lambda version: client.publish(channel, version), before_save=before_save)
    except ValueError as exc:
        raise VigilError(str(exc)) from None
