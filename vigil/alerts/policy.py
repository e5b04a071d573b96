"""When a scored window raises or clears an alert: one implementation, run by the streamer on
each scoring point and by ``vigil backtest`` on an event file's scoring points.

A sensor alerts when its score has stayed at or above the threshold for ``for_points``
consecutive scores and ``for_duration`` of event time (Prometheus' ``for:``), and only once its
buffered history covers ``warmup_fraction`` of the window: a half-empty window looks unlike the
full ones the model learnt. An open alert clears only after the score has stayed below
``clear_ratio`` x threshold for ``clear_for`` (hysteresis), so a sensor near the threshold does
not flap. A sensor still anomalous ``cooldown`` after its alert is alerted again. The state is a
handful of fields kept in the sensor's buffer meta (:class:`AlertState`), so the policy survives
restarts and follows the sensor to whichever replica owns its partition.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Mapping, Sequence

import numpy as np

from vigil.buffer import meta as sensor_meta
from vigil.events.outputs import AlertRecord, Explanation, alert_id
from vigil.settings import AlertSettings


@dataclass(frozen=True, kw_only=True)
class ScoredWindow:
    sensor_id: str
    window_start: int
    window_end: int
    n_events: int
    score: float
    history_ms: int  # window_end - the window's oldest event: how much of the window the data covers
    meta: dict[str, str] = field(default_factory=dict)  # the sensor's buffer meta read with the window
    explanation: Explanation | None = None
    heads: dict[str, float] | None = None  # each detection head's calibrated value


@dataclass(frozen=True)
class AlertState:
    """A sensor's alert state; every field is written to its buffer meta after each score."""

    alert_id: str = ""  # the open alert, "" when none
    alert_end: int = 0  # window_end of the latest alert or cleared record: the cooldown counts from it
    above_n: int = 0  # consecutive scores at or above the threshold
    above_since: int = 0  # window_end of the first of them (0: none)
    below_since: int = 0  # open alert: window_end since which the score is below the clear level

    @classmethod
    def from_meta(cls, meta: dict[str, str]) -> "AlertState":
        return AlertStates.from_metas([meta]).state(0)

    def to_meta(self) -> dict[str, str]:
        return AlertStates.of([self]).to_metas()[0]


# AlertState's integer fields, named after their meta fields (ALERT_FIELDS after the id).
_COUNTERS = sensor_meta.ALERT_FIELDS[1:]


@dataclass(frozen=True)
class AlertStates:
    """Many sensors' :class:`AlertState` as columns: what the policy decides over a batch at once."""

    alert_id: np.ndarray  # object: str, "" when none
    alert_end: np.ndarray  # int64, as the AlertState fields
    above_n: np.ndarray
    above_since: np.ndarray
    below_since: np.ndarray

    @classmethod
    def of(cls, states: Sequence[AlertState]) -> "AlertStates":
        ids = np.array([s.alert_id for s in states], dtype=object)
        return cls(ids, *(np.array([getattr(s, f) for s in states], dtype=np.int64) for f in _COUNTERS))

    @classmethod
    def from_metas(cls, metas: Sequence[Mapping[str, str]]) -> "AlertStates":
        """The states kept in the sensors' buffer meta (a missing or empty field reads 0)."""
        ids = np.array([m.get(sensor_meta.ALERT_ID) or "" for m in metas], dtype=object)
        return cls(ids, *(np.array([sensor_meta.int_field(m, f) for m in metas], dtype=np.int64) for f in _COUNTERS))

    def __len__(self) -> int:
        return len(self.alert_id)

    def state(self, i: int) -> AlertState:
        return AlertState(str(self.alert_id[i]), *(int(getattr(self, f)[i]) for f in _COUNTERS))

    def to_metas(self) -> list[dict[str, str]]:
        """Each state's meta fields (ALERT_FIELDS), as text."""
        columns = [self.alert_id.tolist(), *(getattr(self, f).astype(str).tolist() for f in _COUNTERS)]
        return [dict(zip(sensor_meta.ALERT_FIELDS, row)) for row in zip(*columns)]

    def take(self, rows: np.ndarray) -> "AlertStates":
        return AlertStates(*(getattr(self, f.name)[rows] for f in fields(self)))

    def put(self, rows: np.ndarray, other: "AlertStates") -> None:
        for f in fields(self):
            getattr(self, f.name)[rows] = getattr(other, f.name)

    def copy(self) -> "AlertStates":
        return AlertStates(*(getattr(self, f.name).copy() for f in fields(self)))


@dataclass(frozen=True, kw_only=True)
class ScoredPoints:
    """Scored windows as columns (the many form of :class:`ScoredWindow`)."""

    sensor_id: np.ndarray  # object: str
    window_start: np.ndarray  # int64
    window_end: np.ndarray  # int64
    n_events: np.ndarray  # int64
    score: np.ndarray  # float64
    history_ms: np.ndarray  # int64
    explanation: Sequence[Explanation | None] | None = None

    @classmethod
    def of(cls, windows: Sequence[ScoredWindow]) -> "ScoredPoints":
        def ints(name: str) -> np.ndarray:
            return np.array([getattr(w, name) for w in windows], dtype=np.int64)

        return cls(sensor_id=np.array([w.sensor_id for w in windows], dtype=object), window_start=ints("window_start"),
                   window_end=ints("window_end"), n_events=ints("n_events"),
                   score=np.array([w.score for w in windows], dtype=np.float64), history_ms=ints("history_ms"),
                   explanation=[w.explanation for w in windows])

    def __len__(self) -> int:
        return len(self.sensor_id)


@dataclass(frozen=True)
class Decision:
    record: AlertRecord | None  # the alert or cleared record to publish, if any
    state: AlertState


@dataclass(frozen=True)
class Decisions:
    """A batch's decisions: the records to publish (by the point's row) and each sensor's state
    after its point."""

    records: dict[int, AlertRecord]  # row → its alert or cleared record, in row order
    states: AlertStates  # row → the state it leaves


class AlertPolicy:
    def __init__(self, settings: AlertSettings, window_ms: int, bin_ms: int):
        self.settings = settings
        self.warmup_ms = settings.warmup_fraction * window_ms
        self.for_ms = settings.span_ms("for_duration", window_ms, bin_ms)
        self.clear_for_ms = settings.span_ms("clear_for", window_ms, bin_ms)
        self.cooldown_ms = settings.span_ms("cooldown", window_ms, bin_ms)

    def warming_up(self, window: ScoredWindow) -> bool:
        return window.history_ms < self.warmup_ms

    def warming_up_many(self, points: ScoredPoints) -> np.ndarray:
        return points.history_ms < self.warmup_ms

    def decide(self, window: ScoredWindow, state: AlertState, threshold: float, model_version: str,
               scored_at: int) -> Decision:
        many = self.decide_many(ScoredPoints.of([window]), AlertStates.of([state]), threshold, model_version, scored_at)
        return Decision(many.records.get(0), many.states.state(0))

    def decide_many(self, points: ScoredPoints, states: AlertStates, threshold: float, model_version: str,
                    scored_at: int | None) -> Decisions:
        """Every point's decision at once. ``states[i]`` is point i's sensor's state before this
        batch; a sensor with several points (in window_end order) goes through them in turn, each
        from the state the one before left. ``scored_at`` None: each record is stamped with its
        window's end (a replay has no wall clock)."""
        after = states.copy()
        previous, rounds = _earlier_points(points.sensor_id)
        records: dict[int, AlertRecord] = {}
        for r in range(int(rounds.max(initial=-1)) + 1):
            rows = np.flatnonzero(rounds == r)
            # A sensor's later point continues from the state its earlier point left.
            before = states.take(rows) if r == 0 else after.take(previous[rows])
            state, kinds = self._step(points, rows, before, threshold)
            for k in np.flatnonzero(kinds).tolist():  # the few points that decide: their records
                i = int(rows[k])
                record = self._record(points, i, "cleared" if kinds[k] == _CLEARED else "alert", threshold,
                                      model_version, scored_at, clears=before.alert_id[k] or None)
                if record.kind == "alert":
                    state.alert_id[k] = record.alert_id
                records[i] = record
            after.put(rows, state)
        return Decisions(dict(sorted(records.items())), after)

    @staticmethod
    def _record(points: ScoredPoints, i: int, kind: str, threshold: float, model_version: str,
                scored_at: int | None, clears: str | None) -> AlertRecord:
        end, sensor, n = int(points.window_end[i]), str(points.sensor_id[i]), int(points.n_events[i])
        return AlertRecord(alert_id=alert_id(sensor, end, n, model_version, kind), kind=kind, sensor_id=sensor,
                           window_start=int(points.window_start[i]), window_end=end, n_events=n,
                           score=float(points.score[i]), threshold=threshold, model_version=model_version,
                           scored_at=end if scored_at is None else scored_at,
                           explanation=points.explanation[i] if points.explanation is not None else None,
                           clears=clears if kind == "cleared" else None)

    def _step(self, points: ScoredPoints, rows: np.ndarray, state: AlertStates,
              threshold: float) -> tuple[AlertStates, np.ndarray]:
        """One point per sensor: the state each leaves and what it decides (0, _OPENED, _CLEARED,
        _REPEATED). A new alert's id is left for the caller (it hashes the point)."""
        end, score = points.window_end[rows], points.score[rows]
        warming = points.history_ms[rows] < self.warmup_ms  # neither counts towards nor against an alert
        above = score >= threshold
        above_n = np.where(above, state.above_n + 1, 0)
        above_since = np.where(above, np.where(state.above_since != 0, state.above_since, end), 0)
        persistent = (above_n >= self.settings.for_points) & (end - above_since >= self.for_ms)
        open_ = state.alert_id != ""
        low = score < threshold * self.settings.clear_ratio
        below_since = np.where(state.below_since != 0, state.below_since, end)
        opened = ~open_ & persistent
        cleared = open_ & low & (end - below_since >= self.clear_for_ms)
        repeated = open_ & ~low & persistent & (end - state.alert_end >= self.cooldown_ms)  # supersedes the open one
        below_since = np.where(open_, np.where(low & ~cleared, below_since, 0),
                               np.where(opened, 0, state.below_since))
        acted = opened | cleared | repeated
        new = AlertStates(np.where(cleared, "", state.alert_id).astype(object),
                          np.where(acted, end, state.alert_end), above_n, above_since, below_since)
        kind = np.select([opened, cleared, repeated], [_OPENED, _CLEARED, _REPEATED], 0).astype(np.int8)
        kind[warming] = 0
        keep = np.flatnonzero(warming)
        new.put(keep, state.take(keep))
        return new, kind


_OPENED, _CLEARED, _REPEATED = 1, 2, 3


def _earlier_points(sensor_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per point: the row of its sensor's previous point (-1: none) and how many points of its
    sensor come before it (the round it is decided in)."""
    previous = np.full(len(sensor_ids), -1, dtype=np.int64)
    rounds = np.zeros(len(sensor_ids), dtype=np.int64)
    last: dict[str, int] = {}
    for i, sensor in enumerate(sensor_ids.tolist()):
        j = last.get(sensor)
        if j is not None:
            previous[i], rounds[i] = j, rounds[j] + 1
        last[sensor] = i
    return previous, rounds
