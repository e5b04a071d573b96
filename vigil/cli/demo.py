"""``vigil demo``: the main job end to end on a synthetic fleet.

For now: start the local services, publish a fresh synthetic fleet to Kafka, read it back through
the event schema, and show what arrived. Training, streaming and alerts join as they land.
"""

from __future__ import annotations

import argparse
import secrets
from collections import Counter
from datetime import datetime, timezone

from vigil.cli.output import Progress, table
from vigil.cli.services_cmd import print_services
from vigil.cli.simulate_cmd import add_fleet_arguments, fleet_spec
from vigil.events import EventError, EventSchema
from vigil.kafka.clients import make_consumer, make_producer
from vigil.kafka.events import produce_frame
from vigil.kafka.reading import end_offsets, read_from
from vigil.services import services_up
from vigil.settings import VigilSettings
from vigil.simulate import generate_fleet


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the main job on a synthetic fleet through the local Kafka and Redis",
        description=(
            "Start the local services, publish a synthetic fleet to the events topic, consume it "
            "back through the event schema and show it."
        ),
    )
    add_fleet_arguments(parser, sensors=40, days=1.0)
    parser.add_argument("--show", type=int, default=10, help="how many events to print (default 10)")
    parser.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace, settings: VigilSettings) -> int:
    statuses, _topics = services_up(settings)
    print_services(statuses, as_json=False)

    run_id = secrets.token_hex(3)
    fleet = generate_fleet(fleet_spec(args, settings, id_prefix=f"demo-{run_id}-"))
    topic = settings.topics.events
    consumer = make_consumer(settings, group_id=f"vigil-demo-{run_id}")
    start = end_offsets(consumer, topic)
    sent = produce_frame(make_producer(settings), topic, fleet.events, on_progress=Progress("produced", len(fleet.events)))
    print(f"\nproduced {sent} events from {args.sensors} sensors to {topic} (run {run_id})")

    schema = EventSchema(settings.features, settings.label_column)
    received, invalid, partitions = [], Counter(), {}
    for msg in read_from(consumer, topic, start, expected=sent):
        try:
            event = schema.parse_json(msg.value())
        except EventError as exc:
            invalid[exc.reason] += 1
            continue
        received.append(event)
        partitions.setdefault(event.sensor_id, set()).add(msg.partition())
    consumer.close()

    print(f"consumed {len(received)} valid events ({sum(invalid.values())} invalid) from "
          f"{len({p for ps in partitions.values() for p in ps})} partitions\n")
    rows = [(e.sensor_id, _iso(e.timestamp_ms), *(f"{v:.3f}" for v in e.values), e.label)
            for e in received[: args.show]]
    print(table(rows, ("sensor_id", "timestamp", *settings.features, settings.label_column)))
    per_sensor = Counter(e.sensor_id for e in received)
    alerting = fleet.alerting_sensors
    print(f"\nsensors: {len(per_sensor)} ({len(alerting)} alerting: {', '.join(sorted(alerting))}); "
          f"events per sensor {min(per_sensor.values())}..{max(per_sensor.values())}; "
          f"every sensor on one partition: {all(len(p) == 1 for p in partitions.values())}")
    lost = sent - len(received)
    print(f"sent {sent}, received {len(received)}, lost {lost}")
    return 0 if lost == 0 and not invalid else 1


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="seconds")
