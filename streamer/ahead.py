"""``ReadAhead``: the next consume calls are read and decoded while the loop's thread applies events to Redis.

An apply is mostly a wait: the buffer's script runs in the Redis server's process, and the loop's
thread would sit through it. While the consumer is behind, a second thread takes the next calls
meanwhile (consume, then stage 1's decode) and stops when the apply has returned, when a call comes
back short (caught up: the loop's own calls wait for events from then on), or when it holds as many
events as the loop would gather before applying (``PendingEvents.enough``), so what waits in
memory is at most twice what it is without it.

The decoded calls are handed to the loop (``take``) in the order they were read. The consumer's
rebalance callbacks fire inside ``consume``, so here in the reading thread: they act on the
streamer's uncommitted work, so each one waits for the loop's thread to finish its apply, and
first hands over the calls read before it, so a revocation finishes, drops or keeps those events
with the rest. While the reading thread runs, the loop's thread touches the consumer no more than
it does during any apply: not at all.

    >>> import time
    >>> from types import SimpleNamespace
    >>> calls = [[1, 2], [3]]  # a full call of 2 messages, then a short one
    >>> consumer = SimpleNamespace(consume=lambda num, timeout: calls.pop(0))
    >>> taken = []
    >>> ahead = ReadAhead(consumer, decode=lambda messages: sum(messages),
    ...                   take=lambda decoded, n: taken.append((decoded, n)))
    >>> def apply():  # returns once both calls are read
    ...     while calls:
    ...         time.sleep(0.001)
    ...     return "applied"
    >>> ahead.during(apply, num=2, timeout=0.1, enough=lambda n, got: False)
    ('applied', False)
    >>> ahead.hand_over(); taken
    [(3, 2), (3, 1)]
    >>> ahead.close()
"""

from __future__ import annotations

import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

T = TypeVar("T")
SWITCH_INTERVAL_S = 0.0002


class ReadAhead:
    """``decode(messages)`` turns one call's messages into what ``take(decoded, n_messages)``
    hands to the loop; ``enough(n_messages, decoded)``, given each call read, says when to stop."""

    def __init__(self, consumer, decode: Callable[[list], Any], take: Callable[[Any, int], None]):
        self.consumer, self._decode, self._take = consumer, decode, take
        self._gate = threading.RLock()  # held by the loop's thread while its work runs
        self._read: list[tuple[Any, int]] = []  # decoded calls, not yet handed over
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="vigil-read-ahead")
        self._failed = False  # work raised: the run is ending

    def during(self, work: Callable[[], T], *, num: int, timeout: float,
               enough: Callable[[int, Any], bool]) -> tuple[T, bool | None]:
        """Run ``work`` in this thread while the reading thread reads calls of up to ``num``
        messages. Returns what ``work`` returned, and whether the last call read was full (None:
        no call was read). The decoded calls wait for :meth:`hand_over`. An error of ``work``
        wins over one of the reading thread."""
        done = threading.Event()
        last: list[bool] = []

        def read() -> None:
            messages = 0
            while not done.is_set():
                got = self.consumer.consume(num, timeout)
                self._read.append((self._decode(got), len(got)))
                messages += len(got)
                last[:] = [len(got) >= num]
                if len(got) < num or enough(messages, self._read[-1][0]):
                    return

        self._gate.acquire()
        switch = sys.getswitchinterval()
        # The work waits on Redis: when its reply comes, it must get the GIL back from the
        # reading thread's decoding at once, not a whole default interval (5 ms) later, once
        # per socket read.
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            reading = self._pool.submit(read)
            result = work()
        except BaseException:
            # The error ends the run, and what it holds is re-read: a callback that fires now
            # must not act on the half-done work (see callback()).
            self._failed = True
            sys.setswitchinterval(switch)
            done.set()
            self._gate.release()
            self._wait(reading, swallow=True)
            raise
        sys.setswitchinterval(switch)
        done.set()
        self._gate.release()  # a rebalance callback in the reading thread may run now
        self._wait(reading, swallow=False)
        return result, (last[0] if last else None)

    def hand_over(self) -> None:
        """Give the decoded calls to ``take``, in the order they were read."""
        read, self._read = self._read, []
        for decoded, n in read:
            self._take(decoded, n)

    def callback(self, fn: Callable[..., None]) -> Callable[..., None]:
        """``fn``, a rebalance callback, made safe to fire in the reading thread: it runs once the
        loop's thread is done with its work, after the calls read before it are handed over."""
        def guarded(*args) -> None:
            with self._gate:
                if self._failed:
                    return
                self.hand_over()
                fn(*args)
        return guarded

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    @staticmethod
    def _wait(reading, swallow: bool) -> None:
        try:
            reading.result()
        except BaseException:
            if not swallow:
                raise
