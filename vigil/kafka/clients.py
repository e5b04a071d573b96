"""confluent-kafka producers and consumers built from settings (security options pass through)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from vigil.settings import VigilSettings


PARTITIONER = "murmur2_random"


def make_producer(settings: VigilSettings, **overrides: Any) -> Producer:
    # Idempotence: broker-side dedup of retried batches, and per-partition order kept.
    # murmur2_random: the key → partition mapping of Java's default partitioner, so a sensor's
    # events land on one partition whichever client produced them (docs/gateways.md).
    base = {"enable.idempotence": True, "linger.ms": 20, "compression.type": "lz4", "partitioner": PARTITIONER}
    return Producer(settings.kafka.client_config(**{**base, **overrides}))


def make_consumer(settings: VigilSettings, group_id: str, **overrides: Any) -> Consumer:
    base = {"group.id": group_id, "enable.auto.commit": False, "auto.offset.reset": "earliest"}
    return Consumer(settings.kafka.client_config(**{**base, **overrides}))


def kafka_error(exc: KafkaException) -> KafkaError | None:
    """The ``KafkaError`` a ``KafkaException`` carries; None when it carries none (an exception
    raised with a message only)."""
    err = exc.args[0] if exc.args else None
    return err if isinstance(err, KafkaError) else None


def error_code(exc: KafkaException) -> int | None:
    """The code of the ``KafkaError`` a ``KafkaException`` carries; None without one."""
    err = kafka_error(exc)
    return err.code() if err is not None else None
