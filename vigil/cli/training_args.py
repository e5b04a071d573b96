"""From command-line arguments to training configuration: the conversions happen here, at the
CLI boundary, so ``train``, ``evaluate``, ``backtest`` and the trainer job share them and nothing
below the CLI sees an argparse ``Namespace``."""

from __future__ import annotations

import argparse

from vigil.cli.args import add_model_dir
from vigil.errors import VigilError
from vigil.events.files import read_events
from vigil.events.frame import default_features, event_table
from vigil.features import WindowSpec
from vigil.model.config import TrainConfig
from vigil.settings import VigilSettings


def add_event_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_dir(parser)
    parser.add_argument("--features", help="comma-separated feature columns (default: every numeric column "
                        "other than sensor_id, timestamp and the label)")
    parser.add_argument("--label-column", help="label column (default: settings, 10_days_alert_label)")


def load_table(args: argparse.Namespace, settings: VigilSettings, features: list[str] | None = None):
    frame = read_events(args.events)
    label = args.label_column or settings.label_column
    if features is None:
        features = [f.strip() for f in args.features.split(",") if f.strip()] if args.features else default_features(frame, label)
    return event_table(frame, features, label)


def train_config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(latent_dim=args.latent_dim, bottleneck=args.bottleneck, epochs=args.epochs,
                       seed=args.seed, objective=args.objective, decoder=args.decoder)


def window_spec(args: argparse.Namespace, settings: VigilSettings, n_features: int) -> WindowSpec:
    length = args.window or settings.window.length
    try:
        groups = tuple(g.strip() for g in args.channels.split(",") if g.strip())
        return WindowSpec(int(length.total_seconds() * 1000), args.steps or settings.window.steps,
                          n_features, baseline=args.baseline, groups=groups)
    except ValueError as exc:
        raise VigilError(str(exc)) from None
