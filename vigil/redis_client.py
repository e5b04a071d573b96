"""The one place a Redis client is made from settings: a single server or a Redis Cluster."""

from __future__ import annotations

from typing import Any

import redis
from redis.cluster import RedisCluster

from vigil.settings import VigilSettings


def connect(settings: VigilSettings, **options: Any) -> redis.Redis | RedisCluster:
    url = settings.redis.url.get_secret_value()
    if settings.redis.cluster:
        return RedisCluster.from_url(url, **options)
    return redis.Redis.from_url(url, **options)
