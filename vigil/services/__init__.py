"""Local Kafka and Redis for development, tests and the demo (``vigil services up|down|status``)."""

from vigil.services.local import ServiceStatus, services_down, services_status, services_up

__all__ = ["ServiceStatus", "services_down", "services_status", "services_up"]
