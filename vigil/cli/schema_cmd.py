"""``vigil schema TOPIC``: the JSON Schema of a topic's records (the generator of docs/schemas/)."""

from __future__ import annotations

import argparse
import json

from vigil.cli.tail_cmd import TOPIC_CHOICES
from vigil.settings import VigilSettings


def register(sub: argparse._SubParsersAction) -> None:
    schema = sub.add_parser(
        "schema",
        help="print the JSON Schema of a topic's records",
        description="Print the JSON Schema (generated from the pydantic models) of events, scores or alerts, "
                    "or the dead-letter headers.",
    )
    schema.add_argument("topic", choices=TOPIC_CHOICES)
    schema.set_defaults(handler=_schema)


def _schema(args: argparse.Namespace, settings: VigilSettings) -> int:
    from vigil.docs_gen import topic_schemas  # the generator of docs/schemas/: one home for both

    print(json.dumps(topic_schemas(settings.features, settings.label_column,
                                   settings.stream.max_event_bytes)[args.topic], indent=2))
    return 0
