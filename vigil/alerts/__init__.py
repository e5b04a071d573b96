"""Alerts: the policy that turns scores into alert and cleared records, the threshold a
false-alert budget allows, and the outcome of a run measured against the truth."""

from vigil.alerts.policy import AlertPolicy, AlertState, AlertStates, Decision, Decisions, ScoredPoints, ScoredWindow

__all__ = ["AlertPolicy", "AlertState", "AlertStates", "Decision", "Decisions", "ScoredPoints", "ScoredWindow"]
