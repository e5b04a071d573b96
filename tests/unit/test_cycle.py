"""A cycle's uncommitted work (streamer/cycle.py) and the two delivery protocols that commit it
(streamer/delivery.py), against a scripted producer and consumer: only their decision logic and
order are under test here; tests/faults/ runs them against the real broker and Redis."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import KafkaError, KafkaException

from streamer.cycle import Cycle
from streamer.delivery import AtLeastOnce, ExactlyOnce, Outcome
from streamer.health import Health
from streamer.metrics import StreamMetrics
from streamer.publish import Outgoing
from streamer.retry import Retrier
from tests.unit.scripted_kafka import ScriptedKafka


def protocol(kind, kafka: ScriptedKafka):
    stop = threading.Event()
    retry = Retrier(stop, Health(), StreamMetrics().retries, max_backoff_s=0.01)
    return kind(kafka, kafka, "events", stop, retry)


def scored_cycle() -> Cycle:
    cycle = Cycle()
    cycle.add_ingested({0: 41, 3: 7}, 1_000)
    cycle.add_ingested({0: 45}, 2_000)
    cycle.add_scored("s-1", 0, {"pending": 0, "scored_end": 10}, 10)
    cycle.add_journaled(0, ["a1"])
    return cycle


# -- the cycle ---------------------------------------------------------------------------------
def test_the_cycle_keeps_the_highest_offset_and_commits_the_next_one():
    cycle = scored_cycle()
    assert cycle.offsets == {0: 45, 3: 7} and cycle.record_ms == [1_000, 2_000]
    assert [(tp.partition, tp.offset) for tp in cycle.offsets_to_commit("events")] == [(0, 46), (3, 8)]


def test_a_second_score_in_one_cycle_continues_from_the_first():
    cycle = scored_cycle()
    assert cycle.unsaved_meta("s-1") == {"pending": 0, "scored_end": 10}
    cycle.add_scored("s-1", 0, {"scored_end": 20, "alert_id": "x"}, 20)
    assert cycle.scored["s-1"] == {"pending": 0, "scored_end": 20, "alert_id": "x"}
    assert cycle.window_ends == [10, 20]


def test_lost_partitions_take_their_offsets_scores_and_journal_entries_with_them():
    cycle = scored_cycle()
    cycle.add_scored("s-2", 3, {"pending": 0}, 11)
    cycle.drop_partitions({0})
    assert cycle.offsets == {3: 7} and set(cycle.scored) == {"s-2"} and cycle.journaled == {}
    cycle.keep_partitions({5})
    assert cycle.offsets == {} and cycle.scored == {}


def test_after_a_commit_the_next_cycle_is_fresh_and_after_a_deferred_one_it_keeps_the_offsets():
    cycle = scored_cycle()
    assert cycle.next(committed=True) == Cycle()
    kept = cycle.next(committed=False)
    assert kept.offsets == cycle.offsets and kept.scored == {} and kept.journaled == {}
    kept.offsets[0] = 99
    assert cycle.offsets[0] == 45  # a copy, not the same dict


# -- at-least-once ------------------------------------------------------------------------------
def test_at_least_once_acknowledges_records_then_records_state_then_commits():
    kafka = ScriptedKafka()
    delivery = protocol(AtLeastOnce, kafka)
    delivery.send(Outgoing("scores", b"s-1", b"{}"))
    outcome = delivery.deliver(scored_cycle(), lambda: kafka.calls.append("record_scored"))
    assert outcome is Outcome.COMMITTED
    assert kafka.calls == ["produce", "flush", "record_scored", "commit"]
    assert kafka.committed == [[(0, 46), (3, 8)]]


def test_at_least_once_with_nothing_consumed_commits_nothing():
    kafka = ScriptedKafka()
    assert protocol(AtLeastOnce, kafka).deliver(Cycle(), lambda: None) is Outcome.NOTHING
    assert "commit" not in kafka.calls


def test_at_least_once_defers_a_commit_refused_by_a_rebalance():
    kafka = ScriptedKafka(commit=[KafkaError(KafkaError.REBALANCE_IN_PROGRESS, "rebalancing")])
    assert protocol(AtLeastOnce, kafka).deliver(scored_cycle(), lambda: None) is Outcome.DEFERRED


def test_at_least_once_raises_a_commit_error_that_is_neither_transient_nor_a_rebalance():
    kafka = ScriptedKafka(commit=[KafkaError(KafkaError.GROUP_AUTHORIZATION_FAILED, "denied")])
    with pytest.raises(KafkaException):
        protocol(AtLeastOnce, kafka).deliver(scored_cycle(), lambda: None)


def test_a_commit_held_without_a_coordinator_is_counted_as_a_wait_for_kafka(monkeypatch):
    import streamer.delivery

    monkeypatch.setattr(streamer.delivery, "COMMIT_PATIENCE_S", 0.0)
    kafka, back = ScriptedKafka(), threading.Event()
    commit = kafka.commit

    def held(**kwargs):  # librdkafka's sync commit while the broker is away: no return, no callback
        assert back.wait(30)
        return commit(**kwargs)

    kafka.commit = held
    stop = threading.Event()
    metrics, health = StreamMetrics(), Health()
    delivery = AtLeastOnce(kafka, kafka, "events", stop, Retrier(stop, health, metrics.retries, max_backoff_s=0.01))
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(delivery.deliver(scored_cycle(), lambda: None)))
    worker.start()
    waits = lambda: metrics.registry.get_sample_value("vigil_retries_total", {"dependency": "kafka"}) or 0  # noqa: E731
    waited = threading.Event()
    for _ in range(300):  # up to 30 s
        if waits() >= 2 or waited.wait(0.1):
            break
    assert waits() >= 2 and not health.ready()[0]  # the outage shows while the commit waits
    back.set()
    worker.join(30)
    assert outcome == [Outcome.COMMITTED] and kafka.committed == [[(0, 46), (3, 8)]]
    delivery.close(failed=False)


def test_at_least_once_waits_out_a_coordinator_that_moved():
    kafka = ScriptedKafka(commit=[KafkaError(KafkaError.NOT_COORDINATOR, "moved")])
    assert protocol(AtLeastOnce, kafka).deliver(scored_cycle(), lambda: None) is Outcome.COMMITTED
    assert kafka.calls.count("commit") == 2


def test_at_least_once_never_has_a_transaction_to_abort():
    assert protocol(AtLeastOnce, ScriptedKafka()).abort_open() is False


# -- exactly-once -------------------------------------------------------------------------------
def test_exactly_once_commits_records_and_offsets_in_one_transaction_then_records_state():
    kafka = ScriptedKafka()
    delivery = protocol(ExactlyOnce, kafka)
    delivery.send(Outgoing("scores", b"s-1", b"{}"))
    outcome = delivery.deliver(scored_cycle(), lambda: kafka.calls.append("record_scored"))
    assert outcome is Outcome.COMMITTED
    assert kafka.calls == ["begin", "produce", "send_offsets", "commit_transaction", "record_scored"]
    assert kafka.committed == [[(0, 46), (3, 8)]] and "commit" not in kafka.calls


def test_exactly_once_aborted_transaction_records_nothing_and_asks_for_a_rewind():
    abortable = KafkaError(KafkaError.INVALID_PRODUCER_EPOCH, "epoch bumped", txn_requires_abort=True)
    kafka = ScriptedKafka(commit_transaction=[abortable])
    delivery = protocol(ExactlyOnce, kafka)
    delivery.send(Outgoing("scores", b"s-1", b"{}"))
    outcome = delivery.deliver(scored_cycle(), lambda: kafka.calls.append("record_scored"))
    assert outcome is Outcome.ABORTED
    assert "record_scored" not in kafka.calls and kafka.calls[-1] == "abort"


def test_exactly_once_with_nothing_consumed_or_sent_opens_no_transaction():
    kafka = ScriptedKafka()
    assert protocol(ExactlyOnce, kafka).deliver(Cycle(), lambda: kafka.calls.append("record_scored")) is Outcome.NOTHING
    assert kafka.calls == ["record_scored"]


def test_exactly_once_aborts_an_open_transaction_on_request_only():
    kafka = ScriptedKafka()
    delivery = protocol(ExactlyOnce, kafka)
    assert delivery.abort_open() is False
    delivery.send(Outgoing("scores", b"s-1", b"{}"))
    assert delivery.abort_open() is True and kafka.calls[-1] == "abort"


def test_error_code_reads_a_kafka_exceptions_code_and_tolerates_one_without():
    from vigil.kafka.clients import error_code

    assert error_code(KafkaException(KafkaError(KafkaError._NO_OFFSET, "nothing"))) == KafkaError._NO_OFFSET
    assert error_code(KafkaException("a message only")) is None
    assert error_code(KafkaException()) is None
