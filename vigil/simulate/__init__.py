"""A synthetic sensor fleet with known alerting sensors: drives the demo, tests and benchmarks."""

from vigil.simulate.anomalies import ALL_ANOMALY_KINDS, ANOMALY_KINDS
from vigil.simulate.fleet import Fleet, FleetSpec, generate_fleet
from vigil.simulate.profiles import PROFILES

__all__ = ["ALL_ANOMALY_KINDS", "ANOMALY_KINDS", "PROFILES", "Fleet", "FleetSpec", "generate_fleet"]
