"""Kafka clients configured from settings, and topic administration."""
