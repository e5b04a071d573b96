"""Stage 3 (docs/architecture.md): which sensors' windows are ready to score.

A window is ready when the sensor has at least ``min_events`` stored events and
``every_events`` new events since its last score; with ``min_interval_s`` a sensor is scored at
most once per that wall-clock interval (its window waits, deferred, and is scored when the
interval has passed even if no further event arrives). A sensor is scored once per batch, at its
newest event, however many events it received since.
"""

from __future__ import annotations

from vigil.buffer import SensorState


class ReadySet:
    def __init__(self, every_events: int = 1, min_interval_s: float = 0.0, min_events: int = 1):
        self.every_events = every_events
        self.min_interval_s = min_interval_s
        self.min_events = min_events
        # sensor → (state, when it became ready); insertion order is readiness order, and a newer
        # state for a sensor already waiting keeps its place and its clock.
        self.ready: dict[str, tuple[SensorState, float]] = {}
        self.deferred: dict[str, tuple[float, SensorState]] = {}
        self._last_scored: dict[str, float] = {}
        self._prune_at = 1024

    def __len__(self) -> int:
        return len(self.ready)

    def offer(self, states: dict[str, SensorState], now: float) -> None:
        for sensor_id, state in states.items():
            if state.pending < self.every_events or state.n_stored < self.min_events:
                continue
            due = self._last_scored.get(sensor_id, -float("inf")) + self.min_interval_s
            if due > now:
                self.deferred[sensor_id] = (due, state)
            else:
                self.deferred.pop(sensor_id, None)
                self._add(sensor_id, state, now)

    def release_due(self, now: float, everything: bool = False) -> None:
        """Move deferred sensors whose interval has passed (or all of them) to ready."""
        for sensor_id, (due, state) in list(self.deferred.items()):
            if everything or due <= now:
                del self.deferred[sensor_id]
                self._add(sensor_id, state, now)

    @property
    def remembered(self) -> int:
        """Sensors whose last score time is kept (for ``min_interval_s``)."""
        return len(self._last_scored)

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
        self.deferred = {k: v for k, v in self.deferred.items() if v[1].partition not in partitions}

    def mark_scored(self, sensor_ids: list[str], now: float) -> None:
        if self.min_interval_s <= 0:
            return
        self._last_scored.update(dict.fromkeys(sensor_ids, now))
        if len(self._last_scored) > self._prune_at:
            # A score older than the interval defers nothing: forget it, so a churning fleet
            # (sensor ids that come and go) does not grow this map forever. Amortised O(1).
            horizon = now - self.min_interval_s
            self._last_scored = {k: t for k, t in self._last_scored.items() if t > horizon}
            self._prune_at = max(1024, 2 * len(self._last_scored))

    def _add(self, sensor_id: str, state: SensorState, now: float) -> None:
        waiting = self.ready.get(sensor_id)
        self.ready[sensor_id] = (state, waiting[1] if waiting else now)
