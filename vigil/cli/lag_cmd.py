"""``vigil lag``: how far the streamer's consumer group is behind, per partition, in messages and time."""

from __future__ import annotations

import argparse
import json
import time

from vigil.cli.output import table
from vigil.settings import VigilSettings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "lag", help="the streamer group's lag per partition: messages and how old the oldest pending one is",
        description="Per partition of the events topic: the consumer group's committed offset, the end, the "
                    "lag in messages and how long ago the oldest uncommitted message reached Kafka (its "
                    "record timestamp): how far behind the streamer is in time. The same as Kafka's "
                    "`kafka-consumer-groups.sh --describe --group vigil-streamer`, plus the time.",
    )
    parser.add_argument("--group", help="consumer group (default: settings stream.group_id, vigil-streamer)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    parser.set_defaults(handler=_lag)


def _lag(args: argparse.Namespace, settings: VigilSettings) -> int:
    from vigil.kafka.clients import make_consumer
    from vigil.kafka.groups import group_lag

    group = args.group or settings.stream.group_id
    consumer = make_consumer(settings, group)
    try:
        rows = group_lag(consumer, settings.topics.events)
    finally:
        consumer.close()
    now_ms = time.time() * 1000
    for row in rows:
        oldest = row.pop("oldest_pending_ms")
        row["behind_s"] = None if oldest is None else round(max(now_ms - oldest, 0) / 1000, 1)
    if args.json:
        print(json.dumps({"group": group, "topic": settings.topics.events, "total_lag": sum(r["lag"] for r in rows),
                          "partitions": rows}))
        return 0
    print(table([(r["partition"], "-" if r["committed"] is None else r["committed"], r["end"], r["lag"],
                  "-" if r["behind_s"] is None else f"{r['behind_s']:g}s") for r in rows],
                ("partition", "committed", "end", "lag", "behind")))
    print(f"group {group}, topic {settings.topics.events}: {sum(r['lag'] for r in rows)} messages behind")
    return 0
