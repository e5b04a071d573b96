"""The periodic trainer job's run loop (``vigil train --from-redis``): sample → refit → prune → announce.

Each run samples recent windows from the streamer's Redis buffers (:mod:`trainer.sample`), fits a
candidate, gates it against the current model and promotes it only if it is not worse
(:mod:`trainer.refit`), announcing it on Redis so streamers swap at once; then old versions are
pruned. One-shot for cron, or every ``repeat_s`` until SIGTERM. A SIGTERM/SIGINT while a run trains
stops it before anything reaches the registry; one after that lets the run finish.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import Callable

import redis

from trainer.options import JobOptions
from trainer.refit import RefitResult, refit
from trainer.sample import sample_buffers
from vigil.buffer import BufferLayout, RollingBuffer
from vigil.errors import VigilError
from vigil.redis_client import connect
from vigil.registry import ModelRegistry, announcement_channel
from vigil.settings import VigilSettings


class Interrupted(BaseException):
    """SIGTERM/SIGINT while a run trains: unwinds out of Keras without touching the registry."""


def run_job(options: JobOptions, settings: VigilSettings, registry: ModelRegistry,
            report: Callable[[dict], None] = lambda line: print(json.dumps(line), flush=True)) -> int:
    """Run until done (one run, or SIGTERM with ``repeat_s``); ``report`` gets each run's summary."""
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
            result = run_once(options, settings, buffer, registry, lambda v: client.publish(channel, v), disarm)
        except Interrupted:
            print("vigil train: interrupted during training; the registry is unchanged", file=sys.stderr)
            return 0
        finally:
            state["training"] = False
        pruned = registry.prune(options.keep)
        report({"version": result.version, "promoted": result.promoted, "reason": result.gate["reason"],
                "gate": result.gate, "drift": result.drift, "pruned": pruned,
                "seconds": round(time.monotonic() - started, 1)})
        if options.repeat_s is None:
            return 0
        deadline = time.monotonic() + options.repeat_s
        while not state["stop"] and time.monotonic() < deadline:
            time.sleep(min(1.0, deadline - time.monotonic()))
        if state["stop"]:
            return 0


def run_once(options: JobOptions, settings: VigilSettings, buffer: RollingBuffer, registry: ModelRegistry,
             announce: Callable[[str], object], before_save: Callable[[], None]) -> RefitResult:
    """One sample → refit (gate, promote, announce)."""
    try:
        sample = sample_buffers(buffer, tuple(settings.features), settings.label_column, options.max_sensors,
                                options.seed, exclude_labelled=not options.keep_labelled,
                                exclude_alerted=not options.keep_alerted, min_events=options.min_events)
    except redis.RedisError as exc:
        raise VigilError(f"cannot read the buffers from Redis at {settings.redis.masked_url()}: {exc}") from None
    print(f"sampled {len(sample.normal.series)} normal sensors of {sample.scanned} in Redis "
          f"({sample.normal.n_events} events); excluded: {sample.excluded}", file=sys.stderr, flush=True)
    if len(sample.normal.series) < 5:
        raise VigilError(f"only {len(sample.normal.series)} normal sensors in Redis: stream events first")
    source = {"redis": settings.redis.masked_url(), "prefix": settings.redis.key_prefix,
              "sensors_scanned": sample.scanned, "excluded": sample.excluded, "seed": options.seed}
    try:
        return refit(sample.normal, sample.anomalous, options.spec, options.config, registry,
                     min_events=options.min_events, holdout_fraction=options.holdout_fraction,
                     pr_auc_margin=options.pr_auc_margin, fpr_margin=options.fpr_margin, source=source,
                     alerts=settings.alerts, score_every=settings.stream.score_every_events,
                     announce=announce, before_save=before_save)
    except ValueError as exc:
        raise VigilError(str(exc)) from None
