"""A private Kafka broker and Redis server for the tests that stop, restart or pause them.

They run on their own ports with their own data directory, so an outage never disturbs the
instance the rest of the suite (or another test run on this machine) uses. Started once per
session; each test that asks for them gets them running (a test before may have left one down).
"""

from __future__ import annotations

import pytest

from vigil.services.local import services_down, services_up
from vigil.services.process import port_open
from tests.conftest import own_services

PRIVATE_KAFKA, PRIVATE_CONTROLLER, PRIVATE_REDIS = 29092, 29093, 26379


@pytest.fixture(scope="session")
def private_stack(settings, tmp_path_factory):
    own_services()
    for port in (PRIVATE_KAFKA, PRIVATE_CONTROLLER, PRIVATE_REDIS):
        if port_open("127.0.0.1", port):
            pytest.skip(f"port {port} is busy on this machine")
    private = settings.model_copy(update={
        "data_dir": tmp_path_factory.mktemp("private") / "var",
        "kafka": settings.kafka.model_copy(update={"bootstrap_servers": f"127.0.0.1:{PRIVATE_KAFKA}"}),
        "services": settings.services.model_copy(update={"kafka_controller_port": PRIVATE_CONTROLLER}),
        "redis": settings.redis.model_copy(update={"url": f"redis://127.0.0.1:{PRIVATE_REDIS}/0"}),
    })
    private = private.model_validate(private.model_dump())  # re-validate the SecretStr URL
    try:
        services_up(private)
        yield private
    finally:
        services_down(private)  # by the private data dir's pid files only


@pytest.fixture
def private_services(private_stack):
    """Settings pointing at the private Kafka and Redis, both running (``services_up`` is idempotent)."""
    services_up(private_stack)
    return private_stack
