"""The periodic trainer job's run loop (``vigil train --from-redis``): sample → refit → prune → announce.

Each run samples recent windows from the streamer's Redis buffers (:mod:`trainer.sample`), fits a
candidate, gates it against the current model and promotes it only if it is not worse
(:mod:`trainer.refit`), announcing it on Redis so streamers swap at once; then old versions are
pruned. One-shot for cron, or every ``repeat_s`` until stopped. A stop (:class:`StopRequest`, which
the CLI calls on SIGTERM/SIGINT) while a run trains ends it before anything reaches the registry;
one after that lets the run finish.
"""

from __future__ import annotations

import time
from typing import Callable

import redis

from trainer.options import JobOptions
from trainer.refit import RefitResult, refit
from trainer.sample import sample_buffers
from vigil.buffer import BufferLayout, Cadence, RollingBuffer
from vigil.errors import VigilError
from vigil.logging import get_logger
from vigil.redis_client import connect
from vigil.registry import ModelRegistry, announcement_channel
from vigil.settings import VigilSettings

log = get_logger("trainer")


class Interrupted(BaseException):
    """A stop while a run trains: unwinds out of Keras without touching the registry."""


class StopRequest:
    """A stop asked for from outside the job (the CLI's signal handler calls it). While a run
    trains, up to just before its candidate is saved, the stop unwinds the run at once
    (:class:`Interrupted`); otherwise the run in progress finishes, and the job stops after it."""

    def __init__(self) -> None:
        self.requested = False
        self.training = False

    def __call__(self) -> None:
        self.requested = True
        if self.training:
            raise Interrupted

    def disarm(self) -> None:
        """Just before the candidate is saved: a stop asked for already unwinds; a later one waits."""
        if self.requested:
            raise Interrupted
        self.training = False


def run_job(options: JobOptions, settings: VigilSettings, registry: ModelRegistry, stop: StopRequest,
            report: Callable[[dict], None]) -> int:
    """Run until done (one run, or until ``stop`` with ``repeat_s``); ``report`` gets each run's summary."""
    client = connect(settings, socket_connect_timeout=5, socket_timeout=60)
    buffer = RollingBuffer(client, BufferLayout.from_settings(settings), settings.topics.events)
    channel = announcement_channel(settings.redis.key_prefix)
    while True:
        started = time.monotonic()
        stop.training = True  # from here until the registry is written, a stop unwinds the run
        try:
            result = run_once(options, settings, buffer, registry, lambda v: client.publish(channel, v), stop.disarm)
        except Interrupted:
            log.warning("interrupted during training; the registry is unchanged")
            return 0
        finally:
            stop.training = False
        pruned = registry.prune(options.keep)
        report({"version": result.version, "promoted": result.promoted, "reason": result.gate["reason"],
                "gate": result.gate, "drift": result.drift, "pruned": pruned,
                "seconds": round(time.monotonic() - started, 1)})
        if options.repeat_s is None:
            return 0
        deadline = time.monotonic() + options.repeat_s
        while not stop.requested and time.monotonic() < deadline:
            time.sleep(min(1.0, deadline - time.monotonic()))
        if stop.requested:
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
    log.info(f"sampled {len(sample.normal.series)} normal sensors of {sample.scanned} in Redis",
             events=sample.normal.n_events, excluded=sample.excluded)
    if len(sample.normal.series) < 5:
        raise VigilError(f"only {len(sample.normal.series)} normal sensors in Redis: stream events first")
    source = {"redis": settings.redis.masked_url(), "prefix": settings.redis.key_prefix,
              "sensors_scanned": sample.scanned, "excluded": sample.excluded, "seed": options.seed}
    try:
        return refit(sample.normal, sample.anomalous, options.spec, options.config, registry,
                     min_events=options.min_events, holdout_fraction=options.holdout_fraction,
                     pr_auc_margin=options.pr_auc_margin, fpr_margin=options.fpr_margin, source=source,
                     alerts=settings.alerts, score_every_ms=Cadence.from_settings(settings).every_ms,
                     announce=announce, before_save=before_save)
    except ValueError as exc:
        raise VigilError(str(exc)) from None
