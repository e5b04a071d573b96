"""Step 5's alert policy: alert when a score crosses the threshold, not again while the sensor
stays anomalous (until ``cooldown`` of event time has passed), and publish ``cleared`` when it
recovers. The open alert lives in the sensor's buffer meta (``alert_id``, ``alert_end``), so the
policy survives restarts and follows the sensor to whichever replica owns its partition.
"""

from __future__ import annotations

from vigil.events.outputs import AlertRecord, alert_id
from streamer.scoring import ScoredWindow


class AlertPolicy:
    def __init__(self, cooldown_ms: int):
        self.cooldown_ms = cooldown_ms

    def decide(
        self, window: ScoredWindow, threshold: float, model_version: str, scored_at: int
    ) -> tuple[AlertRecord | None, dict[str, str]]:
        """The record to publish (if any) and the meta fields that record the new alert state."""
        open_id = window.meta.get("alert_id") or None
        last_end = int(window.meta.get("alert_end") or 0)
        common = dict(sensor_id=window.sensor_id, window_start=window.window_start, window_end=window.window_end,
                      n_events=window.n_events, score=window.score, threshold=threshold,
                      model_version=model_version, scored_at=scored_at, explanation=window.explanation)
        if window.score >= threshold:
            if open_id is not None and window.window_end - last_end < self.cooldown_ms:
                return None, {}
            new_id = alert_id(window.sensor_id, window.window_end, window.n_events, model_version, "alert")
            return (AlertRecord(alert_id=new_id, kind="alert", **common),
                    {"alert_id": new_id, "alert_end": str(window.window_end)})
        if open_id is None:
            return None, {}
        cleared = AlertRecord(alert_id=alert_id(window.sensor_id, window.window_end, window.n_events, model_version, "cleared"),
                              kind="cleared", clears=open_id, **common)
        return cleared, {"alert_id": "", "alert_end": str(window.window_end)}
