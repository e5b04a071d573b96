"""Per-sensor rolling windows in Redis (docs/architecture.md, stage 2)."""

from vigil.buffer.batch import EventBatch
from vigil.buffer.layout import BufferLayout
from vigil.buffer.rolling import ApplyResult, RollingBuffer, SensorState, SensorWindow

__all__ = ["ApplyResult", "BufferLayout", "EventBatch", "RollingBuffer", "SensorState", "SensorWindow"]
