"""``vigil stream``, ``vigil inspect --sensor ID``, ``vigil tail TOPIC`` and ``vigil schema TOPIC``."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

from vigil.cli.args import add_model_dir, port_number, positive_int
from vigil.errors import VigilError
from vigil.events.schema import iso_from_ms, quoted
from vigil.settings import VigilSettings

TOPIC_CHOICES = ("alerts", "scores", "dlq", "events")


def register(sub: argparse._SubParsersAction) -> None:
    stream = sub.add_parser(
        "stream",
        help="run the streamer: Kafka → Redis rolling buffers → batched scoring → scores and alerts",
        description=(
            "Consume the events topic in a consumer group, keep each sensor's rolling window in "
            "Redis, score ready windows in batches with the current model, and publish scores and "
            "alerts. Invalid events go to the DLQ topic with the reason. Offsets are committed only "
            "after Redis and Kafka acknowledged the batch. SIGTERM/SIGINT drain, commit and exit 0. "
            "Prometheus metrics, /healthz and /readyz are served on --metrics-port."
        ),
        epilog="Tuning lives in settings under `stream` (vigil config show): e.g. VIGIL_STREAM__MAX_WAIT=100ms.",
    )
    add_model_dir(stream)
    stream.add_argument("--group-id", help="consumer group (default: settings, vigil-streamer)")
    stream.add_argument("--no-score", action="store_true", help="ingest only: fill the buffers, score nothing")
    stream.add_argument("--metrics-port", type=port_number, help="port for /metrics, /healthz, /readyz (0: off; default 9108)")
    stream.add_argument("--delivery", choices=["at-least-once", "exactly-once"],
                        help="at-least-once (default): a crash may re-send score records, not an alert "
                             "(docs/guarantees.md); "
                             "exactly-once: records and offsets commit in one Kafka transaction "
                             "(read the output topics with isolation.level=read_committed)")
    stream.add_argument("--instance-id", metavar="NAME",
                        help="this replica's stable name (e.g. a StatefulSet pod): a restart takes its "
                             "partitions back at once and fences its previous incarnation")
    stream.set_defaults(handler=_stream)

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

    tail = sub.add_parser(
        "tail",
        help="follow alerts (or scores, dead letters, events) as they are published",
        description="Print records of a Vigil topic as they arrive, one line each. With --json, one JSON "
                    "object per line: topic, partition, offset, timestamp, key, headers and the value (parsed "
                    "when it is JSON, else as text). Starts at the end of the topic unless --from-beginning.",
    )
    tail.add_argument("topic", choices=TOPIC_CHOICES, nargs="?", default="alerts", help="default: alerts")
    tail.add_argument("--from-beginning", action="store_true", help="start at the oldest retained record")
    tail.add_argument("--max", type=positive_int, help="stop after this many records")
    tail.add_argument("--idle-exit", type=float, metavar="SECONDS", help="stop after this long without a record")
    tail.add_argument("--json", action="store_true", help="one JSON object per record, key and headers included")
    tail.set_defaults(handler=_tail)

    schema = sub.add_parser(
        "schema",
        help="print the JSON Schema of a topic's records",
        description="Print the JSON Schema (generated from the pydantic models) of events, scores or alerts, "
                    "or the dead-letter headers.",
    )
    schema.add_argument("topic", choices=TOPIC_CHOICES)
    schema.set_defaults(handler=_schema)


def _stream(args: argparse.Namespace, settings: VigilSettings) -> int:
    stream = settings.stream.model_copy(update={
        k: v for k, v in (("group_id", args.group_id), ("metrics_port", args.metrics_port),
                          ("delivery", args.delivery), ("instance_id", args.instance_id)) if v is not None
    } | ({"scoring": False} if args.no_score else {}))
    stream = stream.model_validate(stream.model_dump())  # --instance-id is checked like the setting
    settings = settings.model_copy(update={"stream": stream, **({"model_dir": args.model_dir} if args.model_dir else {})})
    from streamer.app import Streamer  # imports Keras: only for this command, once its options are valid

    streamer = Streamer(settings)

    def on_signal(signum, _frame) -> None:
        if streamer.stop_event.is_set():
            raise KeyboardInterrupt  # a second signal: stop without draining
        print(f"vigil stream: {signal.Signals(signum).name}, draining and committing", file=sys.stderr)
        streamer.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return streamer.run()


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
    print(json.dumps(report, indent=2))
    return 0


def _tail(args: argparse.Namespace, settings: VigilSettings) -> int:
    from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, TopicPartition

    from vigil.kafka.clients import make_consumer
    from vigil.kafka.reading import end_offsets

    topic = getattr(settings.topics, args.topic)
    consumer = make_consumer(settings, group_id=f"vigil-tail-{time.time_ns()}")
    partitions = end_offsets(consumer, topic)
    start = OFFSET_BEGINNING if args.from_beginning else OFFSET_END
    consumer.assign([TopicPartition(topic, p, start) for p in partitions])
    seen, last = 0, time.monotonic()
    try:
        while args.max is None or seen < args.max:
            msg = consumer.poll(0.5)
            if msg is None:
                if args.idle_exit is not None and time.monotonic() - last > args.idle_exit:
                    break
                continue
            if msg.error() is not None:
                print(f"vigil tail: {msg.error()}", file=sys.stderr)
                continue
            seen, last = seen + 1, time.monotonic()
            print(record_json(msg) if args.json else describe(args.topic, msg), flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.close()
    return 0


def _json_string(text: str) -> str:
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    if not isinstance(value, str):
        raise argparse.ArgumentTypeError(f'not a JSON string: {text!r} (write it with quotes: \'"s-1"\')')
    return value


def record_json(msg) -> str:
    """One record as one JSON line (control characters escaped, so a record never spans lines)."""
    raw = msg.value() or b""
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw.decode(errors="replace")
    key = msg.key()
    return json.dumps({
        "topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(), "timestamp": msg.timestamp()[1],
        "key": None if key is None else key.decode(errors="replace"),
        "headers": {k: (None if v is None else v.decode(errors="replace")) for k, v in (msg.headers() or [])},
        "value": value,
    }, ensure_ascii=False)


def describe(topic: str, msg) -> str:
    """One readable line per record; ids and texts are quoted as JSON where they hold control characters."""
    if topic == "dlq":
        headers = {k: v.decode(errors="replace") for k, v in (msg.headers() or []) if v is not None}
        key = msg.key()
        return (f"{headers.get('vigil.reason', '?'):<14} key {_shown(key.decode(errors='replace')) if key else '-'}  "
                f"{_shown(headers.get('vigil.detail', ''))}  "
                f"(from {headers.get('vigil.source.topic')}[{headers.get('vigil.source.partition')}]@"
                f"{headers.get('vigil.source.offset')})")
    try:
        data = json.loads(msg.value())
    except ValueError:
        return repr(msg.value()[:200])
    if topic == "events":
        return json.dumps(data, ensure_ascii=False)
    end = iso_from_ms(data["window_end"])
    if topic == "scores":
        flag = "ALERT" if data["alert"] else "ok"
        return (f"{end}  {_shown(data['sensor_id']):<24} score {data['score']:.4f} / {data['threshold']:.4f}  "
                f"{flag:<5} ({data['n_events']} events, model {data['model_version']})")
    relation, word = (">=", "ALERT  ") if data["kind"] == "alert" else ("< ", "cleared")
    why = _why(data.get("explanation")) if data["kind"] == "alert" else ""
    return (f"{end}  {word} {_shown(data['sensor_id']):<24} score {data['score']:.4f} {relation} {data['threshold']:.4f}"
            f"  ({data['n_events']} events)  id {data['alert_id'][:12]}{why}")


def _shown(text: str) -> str:
    """``text`` as is when printable, else as a JSON string (a newline must not split a line)."""
    return text if text.isprintable() else json.dumps(text, ensure_ascii=False)


def _why(explanation: dict | None) -> str:
    """``  driven by feature_1 61%, feature_2 30% in 01-09 04:00 → 01-10 00:00`` (UTC)."""
    if not explanation or not explanation.get("features"):
        return ""
    top = ", ".join(f"{f['feature']} {100 * f['share']:.0f}%" for f in explanation["features"][:2])
    span = " → ".join(iso_from_ms(explanation[k])[5:16].replace("T", " ") for k in ("span_start", "span_end"))
    return f"  driven by {top} in {span}"


def _schema(args: argparse.Namespace, settings: VigilSettings) -> int:
    from vigil.docs_gen import topic_schemas  # the generator of docs/schemas/: one home for both

    print(json.dumps(topic_schemas(settings.features, settings.label_column,
                                   settings.stream.max_event_bytes)[args.topic], indent=2))
    return 0
