"""Sensor events: the schema every stage validates against, and event files."""

from vigil.events.schema import EventError, EventSchema, SensorEvent

__all__ = ["EventError", "EventSchema", "SensorEvent"]
