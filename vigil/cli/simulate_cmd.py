"""``vigil simulate``: a synthetic fleet to a file or to Kafka."""

from __future__ import annotations

import argparse
from pathlib import Path

from vigil.cli.args import duration_arg, positive_int
from vigil.cli.output import Progress
from vigil.errors import VigilError
from vigil.events.files import write_events
from vigil.kafka.clients import make_producer
from vigil.kafka.produce import produce_frame
from vigil.settings import VigilSettings
from vigil.simulate import ALL_ANOMALY_KINDS, PROFILES, FleetSpec, generate_fleet


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "simulate",
        help="generate a synthetic sensor fleet (5%% alerting) to a file or to Kafka",
        description=(
            "Generate a fleet in the seed schema (sensor_id, timestamp, features, "
            "10_days_alert_label) and a fraction of alerting sensors with one anomaly each. "
            "Profiles: operating_points (default: per-sensor operating points, irregular timestamps "
            "minutes apart), identical (identical units around one shared operating point, like "
            "C-MAPSS engines; anomalies include degradation), univariate_daily (the first feature "
            "only, strong daily cycles, cadences from 5 minutes to 1 hour, values from 0.01 to 1000 "
            f"units). Anomaly kinds: {', '.join(ALL_ANOMALY_KINDS)}."
        ),
    )
    add_fleet_arguments(parser)
    add_profile_arguments(parser)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-file", type=Path, metavar="PATH", help="write events to .csv, .parquet or .jsonl")
    target.add_argument("--to-kafka", action="store_true", help="produce events to the events topic")
    parser.add_argument("--truth-out", type=Path, metavar="PATH",
                        help="also write the per-sensor truth (alerting, anomaly kind, onset, altered "
                             "features joined by ';') as CSV")
    parser.set_defaults(handler=_simulate)


def add_fleet_arguments(parser: argparse.ArgumentParser, sensors: int = 100, days: float = 10.0, seed: int = 0) -> None:
    parser.add_argument("--sensors", type=positive_int, default=sensors, help="fleet size (default %(default)s)")
    parser.add_argument("--days", type=float, default=days, help=f"days of events per sensor (default {days:g})")
    parser.add_argument("--interval", type=duration_arg, default="10m",
                        help="mean time between a sensor's events, e.g. 10m, 90s (default %(default)s)")
    parser.add_argument("--alert-fraction", type=float, default=0.05, help="share of alerting sensors (default %(default)s)")
    parser.add_argument("--seed", type=int, default=seed, help="random seed (default %(default)s)")
    parser.add_argument("--onsets", type=onsets_arg, metavar="FROM,TO",
                        help="anomalies (but degradation) start between these days of the fleet, e.g. 14,19 "
                             "(default: in the last 10-40%% of the days)")


def add_profile_arguments(parser: argparse.ArgumentParser) -> None:
    """Kept apart from add_fleet_arguments: the demo trains on the default profile and streams
    with the configured features, which a univariate fleet would not match."""
    parser.add_argument("--profile", choices=PROFILES, default=PROFILES[0],
                        help=f"what normal looks like (default {PROFILES[0]}; univariate_daily ignores --interval "
                             "and draws a cadence per sensor)")
    parser.add_argument("--kinds", type=kinds_arg, metavar="KIND[,KIND...]",
                        help="anomaly kinds alerting sensors draw from, comma-separated (default: every kind "
                             "but degradation; identical adds degradation, univariate_daily drops "
                             f"decorrelation); any of {', '.join(ALL_ANOMALY_KINDS)}")


def onsets_arg(text: str) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FROM,TO in days, e.g. 14,19; got {text!r}") from None
    return low, high


def kinds_arg(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in ALL_ANOMALY_KINDS]
    if unknown or not kinds:
        found = f"unknown anomaly kinds {', '.join(unknown)}" if unknown else f"no anomaly kinds in {text!r}"
        raise argparse.ArgumentTypeError(f"{found}; choose from {', '.join(ALL_ANOMALY_KINDS)}")
    return kinds


def fleet_spec(args: argparse.Namespace, settings: VigilSettings, **extra) -> FleetSpec:
    options = {"profile": getattr(args, "profile", PROFILES[0]), "kinds": getattr(args, "kinds", None),
               "onset_days": getattr(args, "onsets", None)}
    options.update(extra)
    try:
        return FleetSpec(
            sensors=args.sensors, days=args.days, mean_interval_s=args.interval.total_seconds(),
            alert_fraction=args.alert_fraction, features=tuple(settings.features),
            label_column=settings.label_column, seed=args.seed, **options,
        )
    except ValueError as exc:
        raise VigilError(str(exc)) from None


def _simulate(args: argparse.Namespace, settings: VigilSettings) -> int:
    spec = fleet_spec(args, settings)
    fleet = generate_fleet(spec)
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
        truth_table(fleet).to_csv(args.truth_out, index=False)
    print(f"{len(fleet.events)} events from {args.sensors} sensors ({n_alert} alerting) → {where}")
    if spec.event_features != tuple(settings.features):
        print(f"note: profile {spec.profile} writes only {', '.join(spec.event_features)}; "
              f"train or stream it with VIGIL_FEATURES={','.join(spec.event_features)}")
    return 0


def truth_table(fleet) -> "pd.DataFrame":
    """The truth as `vigil backtest --truth` reads it: ``onset`` in ISO-8601 beside ``onset_ms``."""
    import pandas as pd

    truth = fleet.truth.copy()
    onset = pd.to_datetime(truth["onset_ms"], unit="ms", utc=True)
    truth.insert(1, "onset", (onset.dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z").where(onset.notna(), ""))
    return truth
