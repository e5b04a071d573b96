"""A synthetic sensor fleet with known alerting sensors: drives the demo, tests and benchmarks."""

from vigil.simulate.fleet import ANOMALY_KINDS, Fleet, FleetSpec, generate_fleet

__all__ = ["ANOMALY_KINDS", "Fleet", "FleetSpec", "generate_fleet"]
