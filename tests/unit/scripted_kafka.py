"""One scripted Kafka client for unit tests of decision logic: a producer and a consumer in one
object that records every call in order and raises the errors a test scripts for the next calls
of a name. The real broker's behaviour is tested against the real broker (tests/faults/)."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException


class ScriptedKafka:
    """Producer and consumer in one: records every call in order; ``failures[name]`` lists the
    errors the next calls of ``name`` raise. Produced records are acknowledged at flush."""

    def __init__(self, **failures: list[KafkaError]):
        self.calls: list[str] = []
        self.failures = failures
        self.committed: list = []
        self._unacked: list = []

    def _call(self, name: str) -> None:
        self.calls.append(name)
        pending = self.failures.get(name)
        if pending:
            raise KafkaException(pending.pop(0))

    # producer
    def produce(self, *_args, on_delivery=None, **_kwargs):
        self._call("produce")
        self._unacked.append(on_delivery)

    def flush(self, _timeout=None):
        self._call("flush")
        for callback in self._unacked:
            callback(None, None)
        self._unacked = []
        return 0

    def poll(self, _timeout=None):
        return 0

    def begin_transaction(self):
        self._call("begin")

    def send_offsets_to_transaction(self, offsets, *_args):
        self._call("send_offsets")
        self.committed.append([(tp.partition, tp.offset) for tp in offsets])

    def commit_transaction(self, *_args):
        self._call("commit_transaction")

    def abort_transaction(self, *_args):
        self._call("abort")

    # consumer
    def commit(self, offsets=None, asynchronous=True):
        self._call("commit")
        self.committed.append([(tp.partition, tp.offset) for tp in offsets])

    def consumer_group_metadata(self):
        return None
