"""Fixtures shared by the integration and fault tests: the real local Kafka broker and Redis.

`vigil services up` is idempotent: the README's test command starts the services first, and the
``settings`` fixture makes a bare `pytest tests/integration` (or tests/faults) work too.
"""

import uuid

import pytest
import redis
from confluent_kafka.admin import AdminClient, NewTopic

from vigil.services import services_up
from vigil.settings import VigilSettings


def pytest_collection_modifyitems(items):
    for item in items:
        if any(part in str(item.fspath) for part in ("tests/integration/", "tests/faults/")):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def settings() -> VigilSettings:
    settings = VigilSettings()
    services_up(settings)
    return settings


@pytest.fixture
def redis_client(settings):
    client = redis.Redis.from_url(settings.redis.url.get_secret_value())
    yield client
    client.close()


@pytest.fixture
def fresh_topic(settings):
    """A topic of 6 partitions used by one test only, deleted afterwards."""
    admin = AdminClient(settings.kafka.client_config())
    name = f"it-{uuid.uuid4().hex[:10]}"
    admin.create_topics([NewTopic(name, num_partitions=6, replication_factor=1)])[name].result()
    yield name
    admin.delete_topics([name])[name].result()


DAY = 86_400_000


@pytest.fixture(scope="session")
def registry(settings, tmp_path_factory):
    """A quickly trained model (a few epochs): good enough to separate clear anomalies."""
    from trainer.fit import fit_and_register
    from vigil.events.frame import event_table
    from vigil.features import WindowSpec
    from vigil.model.config import TrainConfig
    from vigil.registry import ModelRegistry
    from vigil.simulate import FleetSpec, generate_fleet

    registry = ModelRegistry(tmp_path_factory.mktemp("models"))
    fleet = generate_fleet(FleetSpec(sensors=200, days=11, seed=101))
    table = event_table(fleet.events, settings.features, settings.label_column)
    spec = WindowSpec(10 * DAY, settings.window.steps, len(settings.features))
    fit_and_register(table, spec, TrainConfig(epochs=4, dense_epochs=30), registry,
                     min_events=settings.window.min_events)
    return registry
