"""The alert journal: an alert is published once, even when the streamer dies mid-cycle.

An alert's state (the open alert id) reaches its sensor's meta only after Kafka has the alert
(acknowledged, or its transaction committed): a crash in between would re-score the sensor after
the restart and publish the alert again. So each alert is first recorded here, per events
partition, and the entry is removed once its state is in the meta. A replica that is assigned a
partition whose journal still holds entries settles them before consuming: an alert found in the
alerts topic (read as read_committed) was delivered, and its state is written now; one not found
never was (or its transaction aborted), and is forgotten: it is decided afresh when re-scored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import orjson
import redis

from vigil.buffer import BufferLayout
from vigil.buffer import meta as sensor_meta
from vigil.kafka.clients import make_consumer
from vigil.kafka.reading import read_since
from vigil.settings import VigilSettings

JOURNAL_SLACK_MS = 60_000  # read the alerts topic from this long before the oldest journal entry


@dataclass(frozen=True)
class PendingAlert:
    alert_id: str
    sensor_id: str
    sent_ms: int  # wall clock before the send: the record's timestamp is not earlier
    fields: dict[str, str]  # the alert state to write into the sensor's meta (``alert_end`` included)


class AlertJournal:
    def __init__(self, client: redis.Redis, layout: BufferLayout, topic: str):
        self.client = client
        self.layout = layout
        self.topic = topic

    def record(self, alerts: dict[int, list[PendingAlert]]) -> None:
        """partition → alerts about to be sent (one pipeline)."""
        pipe = self.client.pipeline(transaction=False)
        for partition, entries in alerts.items():
            if entries:
                pipe.hset(self._key(partition), mapping={
                    a.alert_id: orjson.dumps({"sensor_id": a.sensor_id, "sent_ms": a.sent_ms, "fields": a.fields})
                    for a in entries
                })
        pipe.execute()

    def remove(self, alert_ids: dict[int, list[str]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for partition, ids in alert_ids.items():
            if ids:
                pipe.hdel(self._key(partition), *ids)
        pipe.execute()

    def pending(self, partitions: list[int]) -> dict[int, list[PendingAlert]]:
        pipe = self.client.pipeline(transaction=False)
        for partition in partitions:
            pipe.hgetall(self._key(partition))
        out = {}
        for partition, raw in zip(partitions, pipe.execute()):
            if raw:
                out[partition] = [_pending(alert_id, value) for alert_id, value in raw.items()]
        return out

    def settle(self, partitions: list[int], delivered_since: Callable[[int], set[str]],
               write_meta: Callable[[dict[str, dict[str, str]]], None]) -> tuple[int, int]:
        """Resolve a dead owner's entries: (alerts found delivered, alerts found never sent)."""
        pending = self.pending(partitions)
        if not pending:
            return 0, 0
        entries = [a for alerts in pending.values() for a in alerts]
        delivered_ids = delivered_since(min(a.sent_ms for a in entries))
        delivered = [a for a in entries if a.alert_id in delivered_ids]
        # A sensor alerted and cleared in one cycle: the state is that of its latest delivered record.
        latest: dict[str, PendingAlert] = {}
        for a in sorted(delivered, key=lambda a: sensor_meta.int_field(a.fields, sensor_meta.ALERT_END)):
            latest[a.sensor_id] = a
        write_meta({sensor: a.fields for sensor, a in latest.items()})
        self.remove({p: [a.alert_id for a in alerts] for p, alerts in pending.items()})
        return len(delivered), len(entries) - len(delivered)

    def _key(self, partition: int) -> str:
        return self.layout.journal_key(self.topic, partition)


def _pending(alert_id: bytes | str, raw: bytes) -> PendingAlert:
    data = orjson.loads(raw)
    return PendingAlert(sensor_meta.text(alert_id), data["sensor_id"], int(data["sent_ms"]), dict(data["fields"]))


def alerts_delivered_since(settings: VigilSettings, retry) -> Callable[[int], set[str]]:
    """What settling asks of Kafka: the alert ids in the alerts topic stamped since an epoch ms
    (committed ones only: an aborted transaction's alert was never delivered)."""
    def delivered(since_ms: int) -> set[str]:
        group = f"{settings.stream.group_id}-journal"
        consumer = make_consumer(settings, group, **{"isolation.level": "read_committed", "enable.partition.eof": True})
        try:
            messages = retry.kafka(lambda: list(read_since(consumer, settings.topics.alerts, since_ms - JOURNAL_SLACK_MS)))
        finally:
            consumer.close()
        ids = set()
        for msg in messages:
            try:
                ids.add(orjson.loads(msg.value())["alert_id"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                continue  # not one of ours
        return ids

    return delivered
