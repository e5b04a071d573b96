"""``vigil services up|down|status|topics``: local Kafka and Redis without Docker."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

from vigil.cli.output import table
from vigil.kafka.topics import ensure_topics
from vigil.services import services_down, services_status, services_up
from vigil.settings import VigilSettings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "services",
        help="start, stop or inspect the local Kafka broker and Redis server",
        description=(
            "Local real services for development, tests and the demo: an Apache Kafka 4 broker "
            "(KRaft, single node) assembled from Maven Central jars, and Redis 7 with AOF "
            "persistence. Files live under the data directory (VIGIL_DATA_DIR, default ./var)."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, help_text, handler in (
        ("up", "start Redis and Kafka (already running = success) and create the topics", _up),
        ("down", "stop the services that `up` started (by pid file; nothing else is touched)", _down),
        ("status", "show what runs, where, with which pid", _status),
        ("topics", "create the topics on the configured broker (local or not)", _topics),
    ):
        action = actions.add_parser(name, help=help_text, description=help_text)
        action.add_argument("--json", action="store_true", help="print JSON instead of a table")
        action.set_defaults(handler=handler)


def print_services(statuses, as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(s) for s in statuses]))
        return
    rows = [(s.name, "running" if s.running else "stopped", s.address, s.pid, s.log_file) for s in statuses]
    print(table(rows, ("service", "state", "address", "pid", "log")))


def _print_topics(topics, as_json: bool) -> None:
    if as_json:
        print(json.dumps([asdict(t) for t in topics]))
        return
    rows = [(t.name, t.partitions, "created" if t.created else "exists") for t in topics]
    print(table(rows, ("topic", "partitions", "")))


def _up(args: argparse.Namespace, settings: VigilSettings) -> int:
    started = time.monotonic()
    statuses, topics = services_up(settings)
    if args.json:
        print(json.dumps({"services": [asdict(s) for s in statuses], "topics": [asdict(t) for t in topics],
                          "seconds": round(time.monotonic() - started, 2)}))
        return 0
    print_services(statuses, False)
    print()
    _print_topics(topics, False)
    fresh = [s.name for s in statuses if s.started_now]
    verb = f"started {', '.join(fresh)}" if fresh else "already running"
    print(f"\n{verb}; ready in {time.monotonic() - started:.1f}s")
    return 0


def _down(args: argparse.Namespace, settings: VigilSettings) -> int:
    statuses = services_down(settings)
    if args.json:
        print(json.dumps([asdict(s) for s in statuses]))
        return 0
    for s in statuses:
        print(f"{s.name}: stopped pid {s.pid}" if s.pid else f"{s.name}: was not running")
    return 0


def _status(args: argparse.Namespace, settings: VigilSettings) -> int:
    statuses = services_status(settings)
    print_services(statuses, args.json)
    return 0 if all(s.running for s in statuses) else 3  # 3: LSB "not running", handy in scripts


def _topics(args: argparse.Namespace, settings: VigilSettings) -> int:
    _print_topics(ensure_topics(settings), args.json)
    return 0
