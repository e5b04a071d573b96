"""The exactly-once publisher's handling of transaction errors (librdkafka's three classes).

A scripted stand-in for the producer (tests/unit/scripted_kafka.py): only the publisher's decision logic is under test here;
the real broker's transactions are exercised by tests/faults/test_crash.py.
"""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import KafkaError, KafkaException

from streamer.publish import Outgoing, TransactionAborted, TransactionalPublisher
from streamer.retry import is_transient, retrying
from tests.unit.scripted_kafka import ScriptedKafka


def publisher(producer) -> TransactionalPublisher:
    return TransactionalPublisher(producer, threading.Event())


def retry(action):
    return retrying(action, "kafka", threading.Event(), max_backoff_s=0.01)


def record() -> Outgoing:
    return Outgoing("scores", b"k", b"{}")


def test_records_and_offsets_commit_in_one_transaction():
    producer = ScriptedKafka()
    pub = publisher(producer)
    pub.send(record())
    pub.send(record())
    assert pub.in_transaction
    pub.commit([], None, retry)
    assert producer.calls == ["begin", "produce", "produce", "send_offsets", "commit_transaction"]
    assert not pub.in_transaction


def test_a_retriable_commit_error_retries_the_commit_only():
    producer = ScriptedKafka(commit_transaction=[KafkaError(KafkaError._TIMED_OUT, "slow", retriable=True)])
    pub = publisher(producer)
    pub.send(record())
    pub.commit([], None, retry)
    assert producer.calls == ["begin", "produce", "send_offsets", "commit_transaction", "commit_transaction"]


def test_an_abortable_error_aborts_and_tells_the_caller_to_rewind():
    abortable = KafkaError(KafkaError.INVALID_PRODUCER_EPOCH, "epoch bumped", txn_requires_abort=True)
    assert not is_transient(KafkaException(abortable))  # not waited out: aborted
    producer = ScriptedKafka(send_offsets=[abortable])
    pub = publisher(producer)
    pub.send(record())
    with pytest.raises(TransactionAborted):
        pub.commit([], None, retry)
    assert producer.calls == ["begin", "produce", "send_offsets", "abort"]
    assert not pub.in_transaction
    pub.send(record())  # the next cycle opens a new transaction
    assert producer.calls[-2:] == ["begin", "produce"]


def test_a_fatal_error_is_raised_without_abort():
    fenced = KafkaError(KafkaError._FENCED, "fenced by a newer instance", fatal=True)
    producer = ScriptedKafka(commit_transaction=[fenced])
    pub = publisher(producer)
    pub.send(record())
    with pytest.raises(KafkaException) as raised:
        pub.commit([], None, retry)
    assert raised.value.args[0].fatal()
    assert "abort" not in producer.calls


def test_abort_discards_an_open_transaction_and_is_a_no_op_without_one():
    producer = ScriptedKafka()
    pub = publisher(producer)
    pub.abort(retry)
    assert producer.calls == []
    pub.send(record())
    pub.abort(retry)
    assert producer.calls == ["begin", "produce", "abort"] and not pub.in_transaction


def test_a_stop_grace_waits_then_stops():
    from streamer.retry import StopGrace, Stopped

    stop = threading.Event()
    grace = StopGrace(stop, "kafka", grace_s=0.05)
    cause = KafkaException(KafkaError(KafkaError._TIMED_OUT))
    assert grace.check(cause) is False  # no stop asked for: keep waiting for the dependency
    stop.set()
    assert StopGrace(stop, "redis", grace_s=60.0).check(cause) is True  # within the grace
    assert grace.check(cause) is True  # first sight of the stop starts the grace
    import time
    time.sleep(0.1)
    with pytest.raises(Stopped) as raised:
        grace.check(cause)
    assert str(raised.value) == "kafka" and raised.value.__cause__ is cause
