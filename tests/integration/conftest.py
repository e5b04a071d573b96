"""Integration tests run against the real local Kafka broker and Redis server (fixtures: tests/conftest.py)."""
