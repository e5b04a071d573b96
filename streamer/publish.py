"""Stage 5-6 (docs/architecture.md): produce scores, alerts and dead letters; ``flush`` returns once every record is acked.

The producer is idempotent (no duplicates from its own retries). A record whose delivery finally
fails (e.g. the broker stayed away past ``message.timeout.ms``) is produced again by ``flush``:
offsets are only committed after it returns, so nothing is lost.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Producer

from vigil.kafka.clients import kafka_error
from vigil.logging import get_logger
from streamer.retry import KAFKA_STOP_GRACE_S, StopGrace

log = get_logger("streamer")


@dataclass(frozen=True)
class Outgoing:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]] | None = None


class Publisher:
    def __init__(self, producer: Producer, stop: threading.Event, waiting=lambda _dep: None):
        self.producer = producer
        self.stop = stop
        self.waiting = waiting
        self._failed: list[tuple[Outgoing, KafkaError]] = []
        self._in_flight = 0

    def send(self, record: Outgoing) -> None:
        def on_delivery(err: KafkaError | None, _msg) -> None:
            self._in_flight -= 1
            if err is not None:
                self._failed.append((record, err))

        while True:
            try:
                self.producer.produce(record.topic, value=record.value, key=record.key,
                                      headers=record.headers, on_delivery=on_delivery)
                self._in_flight += 1
                return
            except BufferError:
                self.producer.poll(0.05)  # local queue full: serve delivery reports first

    def flush(self, stop_grace_s: float = KAFKA_STOP_GRACE_S) -> None:
        """Block until every record sent so far is acknowledged (re-sending failures)."""
        waited, grace = 0.0, StopGrace(self.stop, "kafka", stop_grace_s)
        while True:
            self.producer.flush(1.0)
            if self._failed:
                failed, self._failed = self._failed, []
                permanent = [err for _record, err in failed if err.fatal() or not _retriable(err)]
                if permanent:
                    # Not an outage: waiting would block the partition forever. Offsets stay
                    # uncommitted, so the batch is re-read once the cause is fixed.
                    raise KafkaException(permanent[0])
                self.waiting("kafka")
                log.warning("records not acknowledged, producing them again", count=len(failed),
                            error=str(failed[0][1]))
                for record, _err in failed:
                    self.send(record)
                continue
            if self._in_flight <= 0:
                return
            waited += 1.0
            if waited % 10 == 0:
                self.waiting("kafka")
                log.warning("waiting for Kafka to acknowledge records", pending=self._in_flight, waited_s=waited)
            grace.check(KafkaException(KafkaError(KafkaError._TIMED_OUT)))


def _retriable(err: KafkaError) -> bool:
    # Delivery timeouts after a long broker outage are not flagged retriable, yet they are.
    return err.retriable() or err.code() in (KafkaError._MSG_TIMED_OUT, KafkaError._TIMED_OUT, KafkaError._TRANSPORT)


class TransactionAborted(Exception):
    """The open transaction was aborted: its records are discarded, its offsets not committed."""


class TransactionalPublisher(Publisher):
    """exactly-once: records go out in a Kafka transaction that also commits the consumed offsets.

    Errors are handled as librdkafka prescribes: retriable → the same call again (``retry``),
    abortable → abort and raise :class:`TransactionAborted` (the caller rewinds to the committed
    offsets), fatal (e.g. fenced by a newer instance with the same transactional id) → raised.
    """

    def __init__(self, producer: Producer, stop: threading.Event, waiting=lambda _dep: None,
                 timeout_s: float = 30.0):
        super().__init__(producer, stop, waiting)
        self.timeout_s = timeout_s
        self._open = False

    @property
    def in_transaction(self) -> bool:
        return self._open

    def init(self, retry) -> None:
        """Register the transactional id; fences (and ends) the previous incarnation's transaction."""
        retry(lambda: self.producer.init_transactions(self.timeout_s))

    def send(self, record: Outgoing) -> None:
        self._begin()
        super().send(record)

    def commit(self, offsets: list, group_metadata, retry) -> None:
        self._begin()
        try:
            retry(lambda: self.producer.send_offsets_to_transaction(offsets, group_metadata, self.timeout_s))
            retry(lambda: self.producer.commit_transaction(self.timeout_s))
        except KafkaException as exc:
            err = kafka_error(exc)
            if err is None or not err.txn_requires_abort():
                raise
            log.warning("transaction failed; aborting it and re-reading from the committed offsets",
                        error=str(exc))
            self.abort(retry)
            raise TransactionAborted(str(exc)) from exc
        self._reset()

    def abort(self, retry) -> None:
        """Discard the open transaction's records (none is ever visible to read_committed readers)."""
        if self._open:
            retry(lambda: self.producer.abort_transaction(self.timeout_s))
        self._reset()

    def _begin(self) -> None:
        if not self._open:
            self.producer.begin_transaction()
            self._open = True

    def _reset(self) -> None:
        self._open = False
        self._failed, self._in_flight = [], 0
