"""Stage 3 (docs/architecture.md) with ``stream.score_every`` 0: which sensors' windows are ready.

A window is ready when the sensor has at least ``min_events`` stored events and a new event since
its last score. A sensor is scored once per batch, at its newest event, however many events it
received since. (With a cadence, the buffer's apply stops at each scoring point and the streamer
scores those windows at once: vigil/buffer/cadence.py; nothing waits here.)
"""

from __future__ import annotations

from vigil.buffer import SensorState


class ReadySet:
    def __init__(self, min_events: int = 1):
        self.min_events = min_events
        # sensor → (state, when it became ready); insertion order is readiness order, and a newer
        # state for a sensor already waiting keeps its place and its clock.
        self.ready: dict[str, tuple[SensorState, float]] = {}

    def __len__(self) -> int:
        return len(self.ready)

    def offer(self, states: dict[str, SensorState], now: float) -> None:
        for sensor_id, state in states.items():
            if state.pending >= 1 and state.n_stored >= self.min_events:
                waiting = self.ready.get(sensor_id)
                self.ready[sensor_id] = (state, waiting[1] if waiting else now)

    @property
    def first_ready_at(self) -> float | None:
        """When the longest-waiting ready sensor became ready (its batch deadline counts from it)."""
        return next(iter(self.ready.values()))[1] if self.ready else None

    def take(self, limit: int | None = None) -> list[SensorState]:
        """The ``limit`` longest-waiting ready sensors (all by default), removed from the set."""
        sensor_ids = list(self.ready)[:limit]
        return [self.ready.pop(sensor_id)[0] for sensor_id in sensor_ids]

    def drop_partitions(self, partitions: set[int]) -> None:
        """Forget sensors of partitions this replica no longer owns (their new owner scores them)."""
        self.ready = {k: v for k, v in self.ready.items() if v[0].partition not in partitions}
