"""``vigil simulate``: a synthetic fleet to a file or to Kafka."""

from __future__ import annotations

import argparse
from pathlib import Path

from vigil.cli.args import duration_arg, positive_int
from vigil.cli.output import Progress
from vigil.errors import VigilError
from vigil.events.files import write_events
from vigil.kafka.clients import make_producer
from vigil.kafka.events import produce_frame
from vigil.settings import VigilSettings
from vigil.simulate import ANOMALY_KINDS, FleetSpec, generate_fleet


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "simulate",
        help="generate a synthetic sensor fleet (5%% alerting) to a file or to Kafka",
        description=(
            "Generate a fleet in the seed schema (sensor_id, timestamp, features, "
            "10_days_alert_label): per-sensor operating points, irregular timestamps minutes apart, "
            f"and a fraction of alerting sensors with one anomaly each ({', '.join(ANOMALY_KINDS)})."
        ),
    )
    add_fleet_arguments(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-file", type=Path, metavar="PATH", help="write events to .csv, .parquet or .jsonl")
    target.add_argument("--to-kafka", action="store_true", help="produce events to the events topic")
    parser.add_argument("--truth-out", type=Path, metavar="PATH",
                        help="also write the per-sensor truth (alerting, anomaly kind, onset) as CSV")
    parser.set_defaults(handler=_simulate)


def add_fleet_arguments(parser: argparse.ArgumentParser, sensors: int = 100, days: float = 10.0) -> None:
    parser.add_argument("--sensors", type=positive_int, default=sensors, help=f"fleet size (default {sensors})")
    parser.add_argument("--days", type=float, default=days, help=f"days of events per sensor (default {days:g})")
    parser.add_argument("--interval", type=duration_arg, default="10m",
                        help="mean time between a sensor's events, e.g. 10m, 90s (default 10m)")
    parser.add_argument("--alert-fraction", type=float, default=0.05, help="share of alerting sensors (default 0.05)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def fleet_spec(args: argparse.Namespace, settings: VigilSettings, **extra) -> FleetSpec:
    try:
        return FleetSpec(
            sensors=args.sensors, days=args.days, mean_interval_s=args.interval.total_seconds(),
            alert_fraction=args.alert_fraction, features=tuple(settings.features),
            label_column=settings.label_column, seed=args.seed, **extra,
        )
    except ValueError as exc:
        raise VigilError(str(exc)) from None


def _simulate(args: argparse.Namespace, settings: VigilSettings) -> int:
    fleet = generate_fleet(fleet_spec(args, settings))
    n_alert = int(fleet.truth.alerting.sum())
    if args.to_file:
        path = write_events(fleet.events, args.to_file)
        where = str(path)
    else:
        with_progress = Progress("produced", total=len(fleet.events))
        produce_frame(make_producer(settings), settings.topics.events, fleet.events, on_progress=with_progress)
        where = f"Kafka topic {settings.topics.events} at {settings.kafka.bootstrap_servers}"
    if args.truth_out:
        args.truth_out.parent.mkdir(parents=True, exist_ok=True)
        fleet.truth.to_csv(args.truth_out, index=False)
    print(f"{len(fleet.events)} events from {args.sensors} sensors ({n_alert} alerting) → {where}")
    return 0
