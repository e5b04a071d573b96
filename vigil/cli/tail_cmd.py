"""``vigil tail TOPIC``: follow a Vigil topic, one readable line (or one JSON object) per record."""

from __future__ import annotations

import argparse
import json
import sys
import time

from vigil.cli.args import positive_int
from vigil.events.schema import iso_from_ms
from vigil.settings import VigilSettings

TOPIC_CHOICES = ("alerts", "scores", "dlq", "events")


def register(sub: argparse._SubParsersAction) -> None:
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
        from vigil.kafka.reading import header_text  # confluent-kafka loads only when a record is shown

        headers = header_text(msg)
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
    """``  [corr] feature_2 stopped following feature_1: ...`` (a model with heads), or
    ``  driven by feature_1 61%, feature_2 30% in 01-09 04:00 → 01-10 00:00`` (UTC)."""
    if explanation and explanation.get("text"):
        return f"  [{explanation.get('head')}] {explanation['text']}"
    if not explanation or not explanation.get("features"):
        return ""
    top = ", ".join(f"{f['feature']} {100 * f['share']:.0f}%" for f in explanation["features"][:2])
    span = " → ".join(iso_from_ms(explanation[k])[5:16].replace("T", " ") for k in ("span_start", "span_end"))
    return f"  driven by {top} in {span}"
