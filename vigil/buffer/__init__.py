"""Per-sensor rolling windows in Redis (docs/architecture.md, stage 2)."""

from vigil.buffer.batch import EventBatch
from vigil.buffer.cadence import Cadence
from vigil.buffer.layout import BufferLayout
from vigil.buffer.rolling import ApplyResult, RollingBuffer, ScoringPoints, SensorState, SensorWindow

__all__ = ["ApplyResult", "BufferLayout", "Cadence", "EventBatch", "RollingBuffer", "ScoringPoints", "SensorState",
           "SensorWindow"]
