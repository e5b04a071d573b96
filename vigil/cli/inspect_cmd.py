"""``vigil inspect --sensor ID``: one sensor's rolling buffer in Redis, as JSON."""

from __future__ import annotations

import argparse
import json

from vigil.errors import VigilError
from vigil.events.schema import iso_from_ms, quoted
from vigil.settings import VigilSettings


def register(sub: argparse._SubParsersAction) -> None:
    inspect = sub.add_parser(
        "inspect",
        help="print one sensor's rolling buffer as JSON",
        description="Print a sensor's buffer in Redis as one JSON object: events in its window, first and "
                    "last timestamps, Redis memory, the last applied Kafka offsets and its alert state.",
    )
    which = inspect.add_mutually_exclusive_group(required=True)
    which.add_argument("--sensor", metavar="ID", help="sensor_id, exactly as the producer sent it")
    which.add_argument("--sensor-json", metavar="JSON", type=_json_string,
                       help='sensor_id as a JSON string, for ids a shell cannot pass: "line\\nbreak", "nul\\u0000"')
    inspect.set_defaults(handler=_inspect)


def _json_string(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, str):
        raise argparse.ArgumentTypeError(f'not a JSON string: {text!r} (write it with quotes: \'"s-1"\')')
    return value


def _inspect(args: argparse.Namespace, settings: VigilSettings) -> int:
    import redis

    from vigil.buffer import BufferLayout, RollingBuffer
    from vigil.redis_client import connect

    sensor_id = args.sensor if args.sensor is not None else args.sensor_json
    client = connect(settings, socket_connect_timeout=5, socket_timeout=10)
    buffer = RollingBuffer(client, BufferLayout.from_settings(settings), settings.topics.events)
    try:
        report = buffer.inspect(sensor_id)
    except redis.RedisError as exc:
        raise VigilError(f"cannot reach Redis at {settings.redis.masked_url()}: {exc}") from None
    if report is None:
        raise VigilError(f"no buffer for sensor {quoted(sensor_id)} (never seen, or silent for longer than the window)")
    print(json.dumps(readable(report), indent=2))
    return 0


def readable(report: dict) -> dict:
    """The buffer's report as the command shows it: each event time also in ISO-8601, before its epoch ms."""
    shown: dict = {}
    for key, value in report.items():
        if key in ("first_bin_start_ms", "last_timestamp_ms"):
            shown[key.removesuffix("_ms")] = iso_from_ms(value) if value is not None else None
        shown[key] = value
    return shown
