"""Create Vigil's topics with their configured partition counts (idempotent)."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from vigil.errors import VigilError
from vigil.kafka.clients import error_code
from vigil.settings import VigilSettings


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    wanted: int
    created: bool


def ensure_topics(settings: VigilSettings, timeout_s: float = 30.0) -> list[TopicState]:
    """Create every missing topic; report existing ones with their actual partition counts.

    Existing topics are never repartitioned: adding partitions would move sensors to other
    partitions and break the per-partition applied offsets the buffer relies on.
    """
    admin = AdminClient(settings.kafka.client_config())
    wanted = settings.topics.partitions()
    try:
        existing = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise VigilError(f"cannot reach Kafka at {settings.kafka.bootstrap_servers}: {exc}") from None
    missing = [
        NewTopic(name, num_partitions=n, replication_factor=settings.topics.replication_factor)
        for name, n in wanted.items()
        if name not in existing
    ]
    created: set[str] = set()
    if missing:
        for name, future in admin.create_topics(missing, operation_timeout=timeout_s).items():
            try:
                future.result()
                created.add(name)
            except KafkaException as exc:
                if error_code(exc) != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise VigilError(f"cannot create topic {name}: {exc}") from None
        existing = admin.list_topics(timeout=timeout_s).topics
    return [TopicState(name, _partitions(existing, name, n if name in created else 0), n, name in created)
            for name, n in wanted.items()]


def _partitions(existing: dict, name: str, just_created: int) -> int:
    # Metadata right after a create may not list the topic, or list it without partitions yet: a
    # topic this call created has the partitions it asked for (CI once read 0 here).
    found = len(existing[name].partitions) if name in existing else 0
    return found or just_created
