"""How a cycle's records and offsets become durable: one protocol object per delivery mode.

Both protocols keep one order: the records are in Kafka before the scored state (and the alert
state) is written to Redis, and the consumed offsets are committed only then, so a crash anywhere
re-reads rather than loses (docs/guarantees.md).

* :class:`AtLeastOnce`: flush the producer until every record is acknowledged, write the scored
  state, commit the offsets. A crash before the commit re-sends some scores.
* :class:`ExactlyOnce`: records and offsets commit in one Kafka transaction
  (``send_offsets_to_transaction``), then the scored state is written. An aborted transaction
  leaves nothing visible; the streamer rewinds to the committed offsets.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as StillWaiting
from enum import Enum
from typing import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from vigil.kafka.clients import error_code
from vigil.logging import get_logger
from streamer.cycle import Cycle
from streamer.publish import Outgoing, Publisher, TransactionAborted, TransactionalPublisher
from streamer.retry import KAFKA_STOP_GRACE_S, Retrier, StopGrace

log = get_logger("streamer")

# Commit failures while the group rebalances (the partitions may or may not stay with us).
_REBALANCING = {KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID, KafkaError.REBALANCE_IN_PROGRESS}
# A commit still waiting after this long has no group coordinator (the broker is away): each
# further second counts as a wait for Kafka. A commit to a live broker takes milliseconds.
COMMIT_PATIENCE_S = 5.0


class Outcome(Enum):
    COMMITTED = "committed"
    NOTHING = "nothing to commit"
    DEFERRED = "deferred by a rebalance"  # at-least-once: the offsets stay for the next cycle
    ABORTED = "transaction aborted"  # exactly-once: rewind to the committed offsets


class _Protocol:
    """What both modes share: a publisher over the producer, and the consumer whose offsets commit."""

    publisher_class: type[Publisher] = Publisher

    def __init__(self, producer: Producer, consumer: Consumer, topic: str, stop: threading.Event, retry: Retrier):
        self.publisher = self.publisher_class(producer, stop, retry.waiting)
        self.consumer, self.topic, self.retry, self.stop = consumer, topic, retry, stop

    def start(self) -> None:
        pass

    def send(self, record: Outgoing) -> None:
        self.publisher.send(record)


class AtLeastOnce(_Protocol):
    mode = "at-least-once"
    _committer: ThreadPoolExecutor | None = None

    def deliver(self, cycle: Cycle, record_scored: Callable[[], None]) -> Outcome:
        self.retry(self.publisher.flush, "kafka")
        record_scored()
        if not cycle.offsets:
            return Outcome.NOTHING
        offsets = cycle.offsets_to_commit(self.topic)

        def commit() -> Outcome:
            try:
                self._commit(offsets)
                return Outcome.COMMITTED
            except KafkaException as exc:
                code = error_code(exc)
                if code == KafkaError._NO_OFFSET:
                    return Outcome.COMMITTED  # nothing new to commit
                if code not in _REBALANCING:
                    raise
                # Kept: committed at the revocation or next cycle if the partitions stay ours;
                # otherwise dropped at assignment, and their new owner re-reads them idempotently.
                log.info("commit deferred by a rebalance", error=str(exc))
                return Outcome.DEFERRED

        return self.retry(commit, "kafka")

    def _commit(self, offsets: list) -> None:
        """``consumer.commit(asynchronous=False)``, in a thread: while the group has no coordinator
        (the broker is away) librdkafka holds the commit with no timeout and serves no error
        callback meanwhile, so waiting in it would hide the outage (no ``vigil_retries_total``, no
        ``/readyz`` change, no liveness beat). From ``COMMIT_PATIENCE_S`` on, each second it still
        waits counts as a wait for Kafka; after a stop it gets the publisher's grace, then
        :class:`~streamer.retry.Stopped`. Its error, if it fails, is raised here."""
        if self._committer is None:
            self._committer = ThreadPoolExecutor(1, thread_name_prefix="commit")
        call = self._committer.submit(self.consumer.commit, offsets=offsets, asynchronous=False)
        started, grace = time.monotonic(), StopGrace(self.stop, "kafka", KAFKA_STOP_GRACE_S)
        while True:
            try:
                call.result(timeout=1.0)
                return
            except StillWaiting:
                waited = time.monotonic() - started
                if waited >= COMMIT_PATIENCE_S:
                    self.retry.waiting("kafka")
                    log.warning("offset commit waiting for the group coordinator", waited_s=round(waited))
                grace.check(KafkaException(KafkaError(KafkaError._TIMED_OUT)))

    def abort_open(self) -> bool:
        """Nothing is held back in this mode: there is never a transaction to abort."""
        return False

    def close(self, failed: bool) -> None:
        self.publisher.producer.flush(5)
        if self._committer is not None:
            self._committer.shutdown(wait=False, cancel_futures=True)


class ExactlyOnce(_Protocol):
    mode = "exactly-once"
    publisher_class = TransactionalPublisher

    def start(self) -> None:
        """Fences (and ends) the previous incarnation's transaction."""
        self.publisher.init(self.retry.kafka)

    def deliver(self, cycle: Cycle, record_scored: Callable[[], None]) -> Outcome:
        outcome = Outcome.NOTHING
        if cycle.offsets or self.publisher.in_transaction:
            try:
                self.publisher.commit(cycle.offsets_to_commit(self.topic), self.consumer.consumer_group_metadata(),
                                      self.retry.kafka)
            except TransactionAborted:
                return Outcome.ABORTED
            outcome = Outcome.COMMITTED
        record_scored()
        return outcome

    def abort_open(self) -> bool:
        """Abort an open transaction (its records never become visible); True if there was one."""
        if not self.publisher.in_transaction:
            return False
        self.publisher.abort(self.retry.kafka)
        return True

    def close(self, failed: bool) -> None:
        if failed and self.publisher.in_transaction:
            try:  # otherwise it stays open, stalling read_committed readers, until it times out
                self.publisher.abort(lambda action: action())
            except KafkaException as exc:
                log.warning("could not abort the open transaction; it times out", error=str(exc))
        self.publisher.producer.flush(5)


Delivery = AtLeastOnce | ExactlyOnce


def delivery_for(mode: str, producer: Producer, consumer: Consumer, topic: str, stop: threading.Event,
                 retry: Retrier) -> Delivery:
    protocol = ExactlyOnce if mode == "exactly-once" else AtLeastOnce
    return protocol(producer, consumer, topic, stop, retry)
