"""``vigil train --events FILE``: fit the encoder-latent autoencoder and register a new version."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from vigil.cli import trainer_job
from vigil.cli.args import duration_arg, positive_int
from vigil.cli.output import table
from vigil.cli.training_args import add_event_arguments, load_table, train_config, window_spec
from vigil.errors import VigilError
from vigil.features import CHANNEL_GROUPS, DEFAULT_GROUPS, WindowSpec, channel_names
from vigil.model.config import DECODERS, DEFAULT_QUANTILE, OBJECTIVES, TrainConfig
from vigil.settings import VigilSettings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train",
        help="train the model on an event file and make it the current version",
        description=(
            "Train the encoder-latent autoencoder on the normal windows (label 0, or all windows "
            "when there is no label) of an event file (CSV, Parquet or JSONL with sensor_id, "
            "timestamp, features and an optional label column). A part of the sensors is held "
            "out to choose the alert threshold: the one at which the alert policy (alerts.*) raises "
            "about --alert-budget false alerts per 100 normal sensor-days, extrapolated from the "
            "held-out normal sensors' scores (when they hold too little history past the warm-up: "
            "F1-optimal on labelled held-out windows, else the 99th percentile of normal scores). "
            "Writes a new version to the model directory and points CURRENT at it."
        ),
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--events", type=Path, metavar="FILE", help="event file to train on")
    source.add_argument("--from-redis", action="store_true",
                        help="the trainer job: sample recent windows from the streamer's Redis buffers, "
                             "gate the candidate against the current model, promote only if not worse")
    add_event_arguments(parser)
    trainer_job.add_arguments(parser)
    parser.add_argument("--window", type=duration_arg, help="window length, e.g. 10d, 6h, 10s (default: settings, 10d)")
    parser.add_argument("--steps", type=positive_int, help="time bins per window (default: settings, 240)")
    parser.add_argument("--baseline", choices=["auto", "window", "sensor"], default="auto",
                        help="each sensor's own reference: the window's early part, or per-sensor statistics "
                             "of the training data (sensors never seen: the healthy fleet's); auto (default) "
                             "picks sensor when the data holds 4+ windows of history per sensor, else window")
    parser.add_argument("--channels", metavar="GROUPS", default=",".join(DEFAULT_GROUPS),
                        help=f"comma-separated channel groups per feature, from {', '.join(CHANNEL_GROUPS)} "
                             f"(default {','.join(DEFAULT_GROUPS)}; add cross for features that should move "
                             "together: it costs ranking on our measurements, see bench/README.md)")
    parser.add_argument("--every", type=positive_int, metavar="K",
                        help="a training window at every K-th event per sensor (default: about 10,000 windows)")
    parser.add_argument("--min-events", type=positive_int, help="fewest events a window needs (default: settings, 10)")
    parser.add_argument("--epochs", type=positive_int, default=TrainConfig.epochs,
                        help=f"encoder training epochs, with early stopping (default {TrainConfig.epochs})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default %(default)s)")
    parser.add_argument("--latent-dim", type=positive_int, default=TrainConfig.latent_dim,
                        help="latent size (default: about the square root of steps x channels, 8 to 100)")
    parser.add_argument("--bottleneck", type=positive_int, default=TrainConfig.bottleneck,
                        help="width of the dense autoencoder's middle layer (default: a quarter of the latent)")
    parser.add_argument("--alert-budget", type=float, metavar="N",
                        help="false alerts per 100 normal sensor-days the threshold allows (default: settings "
                             "alerts.budget, 0.1: a fleet of 100,000 sensors sees about 100 a day)")
    parser.add_argument("--threshold-quantile", type=float, default=DEFAULT_QUANTILE,
                        help="the fallback threshold's quantile of normal validation scores when the held-out "
                             f"sensors are too short for the budget and unlabelled (default {DEFAULT_QUANTILE})")
    parser.add_argument("--decoder", choices=DECODERS, default=TrainConfig.decoder,
                        help=f"the encoder's pretraining decoder: dense (one layer from the final state) or "
                             f"lstm (RepeatVector + LSTM, about twice the training time) (default {TrainConfig.decoder})")
    parser.add_argument("--objective", choices=OBJECTIVES, default=TrainConfig.objective,
                        help="training objective (default %(default)s; naive reproduces the collapse)")
    parser.add_argument("--validation-fraction", type=float, default=0.2,
                        help="share of sensors held out for the threshold (default %(default)s)")
    parser.add_argument("--no-promote", action="store_true", help="register the version without making it current")
    parser.set_defaults(handler=train)


def parse(argv: list[str]) -> argparse.Namespace:
    """``vigil train`` arguments, parsed as the command would (``vigil demo`` trains through this)."""
    parser = argparse.ArgumentParser(prog="vigil")
    register(parser.add_subparsers())
    return parser.parse_args(["train", *argv])


def train(args: argparse.Namespace, settings: VigilSettings) -> int:
    """``vigil train``: from an event file (or, with --from-redis, the trainer job)."""
    if not 0 <= args.validation_fraction < 1:
        raise VigilError("--validation-fraction must be in [0, 1)")
    if not 0 < args.threshold_quantile < 1:
        raise VigilError("--threshold-quantile must be between 0 and 1, e.g. 0.99")
    if args.alert_budget is not None:
        if args.alert_budget <= 0:
            raise VigilError("--alert-budget must be positive, e.g. 0.1 (false alerts per 100 sensor-days)")
        settings = settings.model_copy(update={"alerts": settings.alerts.model_copy(update={"budget": args.alert_budget})})
    if args.from_redis:
        return trainer_job.run(args, settings)
    from trainer.fit import fit_and_register  # TensorFlow loads here, not for every CLI call
    from vigil.buffer import Cadence
    from vigil.registry import ModelRegistry

    tbl = load_table(args, settings)
    if not tbl.series:
        raise VigilError(f"{args.events}: no valid events")
    spec = window_spec(args, settings, len(tbl.features))
    config = train_config(args)
    registry = ModelRegistry(args.model_dir or settings.models_path)
    print(f"training on {tbl.n_events} events from {len(tbl.series)} sensors; features {list(tbl.features)}"
          + (f"; dropped {tbl.dropped}" if tbl.dropped else ""), file=sys.stderr)
    source = {"file": str(args.events), "sha256": _sha256(args.events)}
    verbose = 1 if sys.stdout.isatty() else 2  # a live bar on a terminal, one line per epoch in logs
    try:
        result = fit_and_register(tbl, spec, config, registry, every=args.every,
                                  min_events=args.min_events or settings.window.min_events,
                                  validation_fraction=args.validation_fraction, source=source,
                                  verbose=verbose, promote=not args.no_promote,
                                  threshold_quantile=args.threshold_quantile, alerts=settings.alerts,
                                  score_every_ms=Cadence.from_settings(settings).every_ms)
    except ValueError as exc:
        raise VigilError(str(exc)) from None
    meta = result.meta
    m = meta.metrics
    rows = [
        ("version", meta.version + ("" if args.no_promote else " (current)")),
        ("path", result.path),
        ("windows", f"{meta.training['windows']['train']} train, {meta.training['windows']['validation']} validation"),
        ("sensors", f"{meta.training['sensors']['train']} train, {meta.training['sensors']['validation']} validation"),
        ("model", f"baseline {meta.window['baseline']}, {meta.window['steps']} steps x "
                  f"{len(channel_names(WindowSpec.from_dict(meta.window), meta.features))} channels, latent "
                  f"{meta.training['config']['latent_dim']} -> {meta.training['config']['bottleneck']}"),
        ("threshold", f"{meta.threshold['value']:.5g} ({describe_threshold(meta.threshold)})"),
        *((k, "-" if m.get(k) is None else f"{m[k]:.3f}") for k in ("pr_auc", "roc_auc", "f1", "precision", "recall")),
        ("time", f"{result.seconds:.0f}s"),
    ]
    print(table(rows, ("", "")).split("\n", 1)[1])
    print(json.dumps({"version": meta.version, "seconds": round(result.seconds, 1), **{k: m.get(k) for k in
                      ("pr_auc", "roc_auc", "f1", "threshold", "n_windows")}}))
    return 0


def describe_threshold(threshold: dict) -> str:
    detail = threshold.get("detail", {})
    if threshold["method"] == "alert_budget":
        return (f"alert budget: {detail['budget_per_100_sensor_days']:g} false alerts per 100 sensor-days, "
                f"fitted on {detail['sensor_days']:g} held-out normal sensor-days")
    return threshold["method"]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
