import uuid

import numpy as np
import pytest

from vigil.services.local import local_redis

from tests.conftest import EXTERNAL


def test_write_and_read_back_through_a_pipeline(redis_client):
    key = f"it:{uuid.uuid4().hex}"
    records = np.arange(300, dtype=np.float32).reshape(100, 3)
    pipe = redis_client.pipeline(transaction=True)
    pipe.set(f"{key}:raw", records.tobytes())
    pipe.hset(f"{key}:meta", mapping={"n_events": 100, "last_ts": 1709294400000})
    pipe.zadd(f"{key}:z", {"a": 1.0, "b": 2.0})
    pipe.expire(f"{key}:raw", 60)
    pipe.execute()
    back = np.frombuffer(redis_client.get(f"{key}:raw"), dtype=np.float32).reshape(100, 3)
    assert np.array_equal(back, records)
    assert redis_client.hgetall(f"{key}:meta") == {b"n_events": b"100", b"last_ts": b"1709294400000"}
    assert redis_client.zrange(f"{key}:z", 0, -1) == [b"a", b"b"]
    assert 0 < redis_client.ttl(f"{key}:raw") <= 60
    redis_client.delete(f"{key}:raw", f"{key}:meta", f"{key}:z")


@pytest.mark.skipif(EXTERNAL, reason="VIGIL_TEST_SERVICES=external: checks how `vigil services up` configures "
                                     "its own Redis")
def test_redis_runs_with_append_only_persistence(redis_client):
    assert redis_client.config_get("appendonly") == {"appendonly": "yes"}
    assert redis_client.config_get("appendfsync") == {"appendfsync": "everysec"}
    assert redis_client.config_get("bind")["bind"] == "127.0.0.1"


@pytest.mark.own_services
def test_data_survives_a_redis_restart(settings, redis_client):
    key = f"it:durable:{uuid.uuid4().hex}"
    redis_client.set(key, b"kept")
    svc = local_redis(settings)
    old_pid = svc.process.stop()
    assert old_pid is not None
    new_pid = svc.start(settings.services.redis_ready_timeout_s)
    assert new_pid != old_pid
    assert redis_client.get(key) == b"kept"
    redis_client.delete(key)
