"""A local Redis Cluster: several ``redis-server --cluster-enabled yes`` on 127.0.0.1, no replicas.

For development and the integration test that streams a fleet through a real cluster; production
clusters are the user's own. Each node is a :class:`LocalRedis` (AOF on) with its cluster bus on
``bus_base + i`` (the default, port + 10000, would fall in Linux's ephemeral port range).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from vigil.errors import VigilError
from vigil.services.redis import LocalRedis


class LocalRedisCluster:
    def __init__(self, root: Path, host: str, ports: list[int], bus_base: int):
        if len(ports) < 3:
            raise VigilError("a Redis Cluster needs at least 3 primaries")
        self.host = host
        self.nodes = [LocalRedis(root / f"node-{port}", host, port, cluster_port=bus_base + i)
                      for i, port in enumerate(ports)]

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.nodes[0].port}/0"

    def start(self, ready_timeout_s: float = 60.0) -> None:
        for node in self.nodes:
            node.start(ready_timeout_s)
        probe = redis.Redis(host=self.host, port=self.nodes[0].port)
        if int(probe.cluster("info").get("cluster_slots_assigned", 0)) == 0:
            addresses = [node.address for node in self.nodes]
            result = subprocess.run(["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas", "0",
                                     "--cluster-yes"], capture_output=True, text=True)
            if result.returncode != 0:
                raise VigilError(f"redis-cli --cluster create failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        self._wait_ok(ready_timeout_s)

    def stop(self) -> None:
        for node in self.nodes:
            node.process.stop()

    def _wait_ok(self, timeout_s: float) -> None:
        """Every node must agree the cluster is up before a client can route by slot."""
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            client = redis.Redis(host=self.host, port=node.port)
            while client.cluster("info").get("cluster_state") != "ok":
                if time.monotonic() > deadline:
                    raise VigilError(f"the Redis Cluster on {node.address} is not ok after {timeout_s:.0f}s")
                time.sleep(0.2)
