"""ReadAhead's own logic with a scripted consumer (the streamer's use of it runs against the real
Kafka and Redis in tests/integration and tests/faults): what is read while the work runs, when it
stops, and how a rebalance callback that fires in the reading thread is kept out of the work."""

import threading
from types import SimpleNamespace

import pytest

from streamer.ahead import ReadAhead
from streamer.app import Streamer
from streamer.ingest import EVENTS_PER_SENSOR, Ingested, PendingEvents
from streamer.readiness import ReadySet
from vigil.buffer import EventBatch
from vigil.events.schema import SensorEvent
from vigil.settings import VigilSettings


class Calls:
    """A consumer whose consume calls return the given message lists, then empty ones; a call may
    first run a rebalance callback, as librdkafka does inside consume."""

    def __init__(self, calls, callbacks=None):
        self.calls, self.callbacks = list(calls), dict(callbacks or {})
        self.made = 0
        self._made = threading.Condition()

    def consume(self, num, timeout):
        with self._made:
            at = self.made
            self.made += 1
            self._made.notify_all()
        if at in self.callbacks:
            self.callbacks[at]()
        return self.calls[at] if at < len(self.calls) else []

    def wait_made(self, n):
        """Until n calls have started (the timeout only keeps a broken reader from hanging the test)."""
        with self._made:
            assert self._made.wait_for(lambda: self.made >= n, timeout=30)


def reader(consumer, taken):
    return ReadAhead(consumer, decode=lambda messages: list(messages),
                     take=lambda decoded, n: taken.append((decoded, n)))


def test_calls_read_during_the_work_are_handed_over_in_order_and_a_short_call_stops_reading():
    consumer, taken = Calls([[1, 2], [3, 4], [5], [6, 7]]), []
    ahead = reader(consumer, taken)
    result, full = ahead.during(lambda: consumer.wait_made(3) or "applied", num=2, timeout=0.0,
                                enough=lambda n, got: False)
    ahead.close()
    assert result == "applied"
    assert full is False  # the last call read came back short: caught up
    assert taken == []  # nothing reaches the loop before hand_over
    ahead.hand_over()
    assert taken == [([1, 2], 2), ([3, 4], 2), ([5], 1)]
    assert consumer.made == 3  # [6, 7] stays in Kafka for the loop's own next call


def test_reading_stops_once_enough_is_read_and_reports_the_consumer_still_behind():
    consumer, taken = Calls([[1, 2]] * 10), []
    ahead = reader(consumer, taken)
    _, full = ahead.during(lambda: consumer.wait_made(3), num=2, timeout=0.0, enough=lambda n, got: n >= 6)
    ahead.close()
    ahead.hand_over()
    assert consumer.made == 3 and len(taken) == 3
    assert full is True


def test_reading_stops_when_the_work_returns():
    class Endless(Calls):  # a consumer far behind: every call is full
        def consume(self, num, timeout):
            super().consume(num, timeout)
            return [1, 2]

    consumer, taken = Endless([]), []
    ahead = reader(consumer, taken)
    _, full = ahead.during(lambda: consumer.wait_made(5), num=2, timeout=0.0, enough=lambda n, got: False)
    made = consumer.made  # during() returned: the reading thread has ended
    ahead.close()
    ahead.hand_over()
    assert full is True and made >= 5 and consumer.made == made == len(taken)


def test_a_rebalance_callback_in_the_reading_thread_waits_for_the_work_and_sees_the_calls_read_before_it():
    taken, seen, order = [], [], []
    working = threading.Event()

    def on_revoke():
        order.append("revoke")
        seen.append(list(taken))

    consumer = Calls([[1, 2], [3, 4], [5]])
    ahead = reader(consumer, taken)
    guarded = ahead.callback(lambda *_: on_revoke())
    consumer.callbacks = {1: lambda: guarded(None, [])}  # fires inside the second call

    def work():
        working.set()
        consumer.wait_made(2)  # the call that fires the callback has started
        order.append("work done")
        return "applied"

    ahead.during(work, num=2, timeout=0.0, enough=lambda n, got: False)
    ahead.hand_over()
    ahead.close()
    assert order == ["work done", "revoke"]
    assert seen == [[([1, 2], 2)]]  # the call read before the callback was the loop's when it ran
    assert taken == [([1, 2], 2), ([3, 4], 2)]  # the work was done: no call after the callback's
    assert consumer.made == 2


def test_a_failed_work_is_raised_after_the_reading_thread_ends_and_later_callbacks_do_nothing():
    consumer, taken, called = Calls([[1, 2]] * 3), [], []
    ahead = reader(consumer, taken)
    guarded = ahead.callback(lambda *_: called.append(True))

    def work():
        raise ConnectionError("redis went away")

    with pytest.raises(ConnectionError):
        ahead.during(work, num=2, timeout=0.0, enough=lambda n, got: n >= 4)
    guarded(None, [])  # e.g. the revocation of the consumer's close: the run is ending
    ahead.close()
    assert called == []


def test_an_error_of_the_reading_thread_is_raised_once_the_work_is_done():
    class Broken(Calls):
        def consume(self, num, timeout):
            super().consume(num, timeout)
            raise RuntimeError("consumer closed")

    consumer, done = Broken([]), []
    ahead = reader(consumer, [])
    with pytest.raises(RuntimeError, match="consumer closed"):
        ahead.during(lambda: done.append(consumer.wait_made(1)), num=2, timeout=0.0, enough=lambda n, got: False)
    ahead.close()
    assert done == [None]


K = EVENTS_PER_SENSOR


@pytest.mark.parametrize("events, sensors, limit, expected", [
    ((K - 1) * 100, 100, 50_000, False),  # under K events a sensor
    (K * 100, 100, 50_000, True),  # K a sensor: each sensor's events share one call
    (49_999, 50_000 // K, 50_000, True),  # as many sensors as the limit / K: apply now
    (40_000, 50_000 // K - 1, 50_000, False),
    (50_000, 50_000 // K - 1, 50_000, True),  # the limit
])
def test_enough_is_the_pending_events_rule(events, sensors, limit, expected):
    assert PendingEvents.enough(events, sensors, limit) is expected


def pending_of(n_sensors: int, now: float) -> PendingEvents:
    got = Ingested(EventBatch(1))
    for i in range(n_sensors):
        got.batch.add(SensorEvent(f"s-{i}", 1_767_225_600_000, (0.5,), None), partition=0, offset=i)
        got.last_offsets[0] = i
    pending = PendingEvents(1)
    pending.add(got, now)
    return pending


def loop_state(pending: PendingEvents) -> SimpleNamespace:
    """What Streamer._consume_timeout reads of the streamer: its settings, ready set and pending events."""
    state = SimpleNamespace(settings=VigilSettings(), ready=ReadySet(), pending=pending)
    state._deadline = lambda now: Streamer._deadline(state, now)
    return state


def test_the_next_consume_call_does_not_wait_when_events_read_ahead_are_already_due():
    s = VigilSettings().stream
    half_wait = s.max_wait.total_seconds() / 2
    state = loop_state(PendingEvents(1))
    assert Streamer._consume_timeout(state, 100.0, backlogged=False) == pytest.approx(half_wait)
    # A few events wait and the consumer is behind: the call waits to gather more, as before.
    state = loop_state(pending_of(3, now=100.0))
    assert Streamer._consume_timeout(state, 100.0, backlogged=True) == pytest.approx(half_wait)
    # The last call read ahead was short (caught up): they are due, so the call takes only what is there.
    assert Streamer._consume_timeout(state, 100.0, backlogged=False) == 0.0
    # Enough wait, although the consumer is still behind.
    state = loop_state(pending_of(s.apply_events // EVENTS_PER_SENSOR, now=100.0))
    assert Streamer._consume_timeout(state, 100.0, backlogged=True) == 0.0
