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

from dataclasses import astuple, dataclass, field, replace

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
        return cls(meta.get(sensor_meta.ALERT_ID) or "",
                   *(sensor_meta.int_field(meta, name) for name in sensor_meta.ALERT_FIELDS[1:]))

    def to_meta(self) -> dict[str, str]:
        # The dataclass's fields are named after the meta fields, in ALERT_FIELDS order.
        return {name: str(value) for name, value in zip(sensor_meta.ALERT_FIELDS, astuple(self))}


@dataclass(frozen=True)
class Decision:
    record: AlertRecord | None  # the alert or cleared record to publish, if any
    state: AlertState


class AlertPolicy:
    def __init__(self, settings: AlertSettings, window_ms: int, bin_ms: int):
        self.settings = settings
        self.warmup_ms = settings.warmup_fraction * window_ms
        self.for_ms = settings.span_ms("for_duration", window_ms, bin_ms)
        self.clear_for_ms = settings.span_ms("clear_for", window_ms, bin_ms)
        self.cooldown_ms = settings.span_ms("cooldown", window_ms, bin_ms)

    def warming_up(self, window: ScoredWindow) -> bool:
        return window.history_ms < self.warmup_ms

    def decide(self, window: ScoredWindow, state: AlertState, threshold: float, model_version: str,
               scored_at: int) -> Decision:
        if self.warming_up(window):
            return Decision(None, state)  # a warming-up score neither counts towards nor against an alert
        end, above = window.window_end, window.score >= threshold
        state = replace(state, above_n=state.above_n + 1 if above else 0,
                        above_since=(state.above_since or end) if above else 0)
        persistent = state.above_n >= self.settings.for_points and end - state.above_since >= self.for_ms

        def record(kind: str, **extra) -> AlertRecord:
            return AlertRecord(alert_id=alert_id(window.sensor_id, end, window.n_events, model_version, kind),
                               kind=kind, sensor_id=window.sensor_id, window_start=window.window_start,
                               window_end=end, n_events=window.n_events, score=window.score,
                               threshold=threshold, model_version=model_version, scored_at=scored_at,
                               explanation=window.explanation, **extra)

        if not state.alert_id:
            if not persistent:
                return Decision(None, state)
            opened = record("alert")
            return Decision(opened, replace(state, alert_id=opened.alert_id, alert_end=end, below_since=0))
        if window.score < threshold * self.settings.clear_ratio:
            below_since = state.below_since or end
            if end - below_since < self.clear_for_ms:
                return Decision(None, replace(state, below_since=below_since))
            cleared = record("cleared", clears=state.alert_id)
            return Decision(cleared, replace(state, alert_id="", alert_end=end, below_since=0))
        state = replace(state, below_since=0)
        if persistent and end - state.alert_end >= self.cooldown_ms:
            repeated = record("alert")  # supersedes the open alert
            return Decision(repeated, replace(state, alert_id=repeated.alert_id, alert_end=end))
        return Decision(None, state)

