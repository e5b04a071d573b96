"""The consumer group's rebalance callbacks: what the streamer does when partitions come and go.

* **assigned:** resume where Redis and the committed offsets agree (``resume_offsets``), and
  settle the alert journal a previous owner may have left (``streamer/journal.py``);
* **revoked:** finish the cycle and commit before the partitions go;
* **lost** (no chance to commit): forget everything of theirs; their new owner re-reads them.

The handler takes the pieces it needs; what it asks of the streamer's uncommitted work
(finishing, dropping or keeping the cycle's partitions) goes through one narrow interface,
:class:`PartitionWork`.
"""

from __future__ import annotations

from typing import Callable, Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from vigil.buffer import RollingBuffer
from vigil.logging import get_logger
from streamer.journal import AlertJournal
from streamer.offsets import resume_offsets
from streamer.retry import Retrier, Stopped

log = get_logger("streamer")


class PartitionWork(Protocol):
    """The uncommitted work a rebalance acts on (the streamer's cycle, readiness and silence)."""

    def finish_before_revocation(self) -> None:
        """Score what is ready, deliver and commit the cycle."""

    def drop_partitions(self, lost: set[int]) -> None:
        """Forget these partitions' uncommitted work."""

    def keep_partitions(self, assigned: set[int]) -> None:
        """Forget every partition's uncommitted work but these."""

    def abort_open_transaction(self) -> None:
        """exactly-once: abort the open transaction and re-read."""


class Rebalance:
    def __init__(self, topic: str, buffer: RollingBuffer, journal: AlertJournal, retry: Retrier, lag_gauge,
                 delivered_alerts: Callable[[int], set[str]], work: PartitionWork):
        self.topic, self.buffer, self.journal, self.retry = topic, buffer, journal, retry
        self.lag_gauge = lag_gauge
        self.delivered_alerts = delivered_alerts  # alert ids in the alerts topic since an epoch ms
        self.work = work
        self.assigned: set[int] = set()
        self.closing_after_error = False  # then a revocation commits nothing: the batch is re-read

    def on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.assigned = {tp.partition for tp in partitions}
        self.work.keep_partitions(self.assigned)  # offsets of partitions that went elsewhere are the new owner's
        log.info("partitions assigned", partitions=sorted(self.assigned))
        rewound = self._rewind_to_redis(consumer, partitions)
        if rewound:
            consumer.assign(rewound)
        self._settle_journal(sorted(self.assigned))

    def on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("partitions revoked", partitions=sorted(tp.partition for tp in partitions))
        if self.closing_after_error:
            return
        try:
            self.work.finish_before_revocation()
        except Stopped:
            log.error("could not commit before revocation; the new owner re-reads (idempotently)")
            self.work.abort_open_transaction()
        self._forget({tp.partition for tp in partitions})

    def on_lost(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        lost = {tp.partition for tp in partitions}
        log.warning("partitions lost without a chance to commit", partitions=sorted(lost))
        self._forget(lost)
        self.work.drop_partitions(lost)  # their new owner scores these sensors and keeps their alert state

    def _forget(self, partitions: set[int]) -> None:
        """A partition gone elsewhere reports its lag from there; a stale value here would add up."""
        self.assigned -= partitions
        for p in partitions:
            try:
                self.lag_gauge.remove(str(p))
            except KeyError:
                pass

    def _rewind_to_redis(self, consumer: Consumer, partitions: list[TopicPartition]) -> list[TopicPartition] | None:
        """Start below the committed offset where Redis lost acknowledged writes.

        Redis persists its AOF once a second: a machine crash can lose the last second of writes
        after their offsets were committed. Redis's own applied offsets roll back with the data
        (same transaction), so resuming at ``min(committed, applied + 1)`` re-applies what was lost.
        """
        if not partitions:
            return None
        applied = self.retry(self.buffer.partition_offsets, "redis")
        committed = self.retry(lambda: consumer.committed(partitions, timeout=30), "kafka")
        starts, moved = resume_offsets({tp.partition: tp.offset for tp in committed}, applied)
        if not moved:
            return None
        log.warning("Redis is behind the committed offsets (lost its last writes?): re-reading",
                    partitions=[{"partition": p, "committed": c, "from": f} for p, c, f in moved])
        return [TopicPartition(self.topic, p, o) for p, o in sorted(starts.items())]

    def _settle_journal(self, partitions: list[int]) -> None:
        """Alerts a dead owner of these partitions sent without recording their state: settle them."""
        found, unsent = self.retry(
            lambda: self.journal.settle(partitions, self.delivered_alerts, self.buffer.update_meta), "redis"
        )
        if found or unsent:
            log.warning("settled the alert journal of a previous owner", delivered=found, never_sent=unsent)


def rewind_to_committed(consumer: Consumer, topic: str, partitions: set[int], retry: Retrier) -> None:
    """Seek each partition back to the group's committed offset (after an aborted transaction)."""
    tps = [TopicPartition(topic, p) for p in sorted(partitions)]
    for tp in retry.kafka(lambda: consumer.committed(tps, timeout=30)):
        offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
        retry.kafka(lambda: consumer.seek(TopicPartition(topic, tp.partition, offset)))
