"""Publish events (a DataFrame in the event schema) to Kafka, keyed by sensor_id."""

from __future__ import annotations

import json
from typing import Callable

import pandas as pd
from confluent_kafka import KafkaError, KafkaException, Producer

from vigil.errors import VigilError


def produce_frame(
    producer: Producer,
    topic: str,
    frame: pd.DataFrame,
    on_progress: Callable[[int], None] | None = None,
    flush_timeout_s: float = 60.0,
) -> int:
    """Produce every row as a JSON value keyed by ``sensor_id``; returns how many were acknowledged.

    Delivery errors are collected and raised at the end rather than dropped: a caller that
    produced N events either gets N back or an exception naming the failures.
    """
    failures: list[KafkaError] = []
    delivered = 0

    def on_delivery(err: KafkaError | None, _msg: object) -> None:
        nonlocal delivered
        if err is None:
            delivered += 1
        else:
            failures.append(err)

    columns = list(frame.columns)
    for i, row in enumerate(frame.itertuples(index=False, name=None), 1):
        record = dict(zip(columns, row))
        value = json.dumps(record, default=_json_default, allow_nan=True).encode()
        _produce_retrying(producer, topic, str(record["sensor_id"]).encode(), value, on_delivery)
        if on_progress is not None and i % 10_000 == 0:
            on_progress(i)
    remaining = producer.flush(flush_timeout_s)
    if remaining or failures:
        raise VigilError(
            f"{len(failures)} events failed and {remaining} were unacknowledged after {flush_timeout_s}s"
            + (f"; first error: {failures[0]}" if failures else "")
        )
    if on_progress is not None:
        on_progress(len(frame))
    return delivered


def _produce_retrying(producer: Producer, topic: str, key: bytes, value: bytes, on_delivery) -> None:
    while True:
        try:
            producer.produce(topic, value=value, key=key, on_delivery=on_delivery)
        except BufferError:
            producer.poll(0.1)  # local queue full: serve delivery reports, then try again
            continue
        except KafkaException as exc:
            raise VigilError(f"cannot produce to {topic}: {exc}") from None
        producer.poll(0)
        return


def _json_default(value: object) -> object:
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")
