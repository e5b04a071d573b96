"""Redis 7 from Debian's ``redis-server`` package, with AOF persistence for the rolling buffers."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import redis

from vigil.errors import VigilError
from vigil.logging import get_logger
from vigil.services.process import ManagedProcess, port_open

log = get_logger("services.redis")


class LocalRedis:
    """``acl_file``: a Redis ACL file (users, passwords, key patterns) loaded at start; without one
    the default user needs no password, as in Debian's package."""

    def __init__(self, root: Path, host: str, port: int, acl_file: Path | None = None,
                 cluster_port: int | None = None):
        self.root, self.host, self.port = root, host, port
        self.acl_file = acl_file
        self.cluster_port = cluster_port  # set: a Redis Cluster node, its bus on this port
        self.data = root / "data"
        self.config = root / "redis.conf"
        # redis-server rewrites its process title to "redis-server HOST:PORT": that is the marker.
        marker = f"redis-server {host}:{port}"
        self.process = ManagedProcess("redis", root / "redis.pid", root / "redis.log", marker)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.process.log_file

    def write_config(self) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            f"bind {self.host}\n"
            f"port {self.port}\n"
            f"dir {self.data.resolve()}\n"
            "daemonize no\n"
            'logfile ""\n'
            # The buffer must survive a crash: append-only file, fsync once a second.
            "appendonly yes\n"
            "appendfsync everysec\n"
            "save 3600 1 300 100\n"
            + (f"aclfile {self.acl_file.resolve()}\n" if self.acl_file is not None else "")
            + (f"cluster-enabled yes\ncluster-config-file nodes.conf\ncluster-port {self.cluster_port}\n"
               if self.cluster_port is not None else "")
        )

    def start(self, ready_timeout_s: float) -> int:
        binary = ensure_redis_server()
        self.write_config()
        pid = self.process.start([binary, str(self.config.resolve())])
        self.wait_ready(ready_timeout_s)
        return pid

    def wait_ready(self, timeout_s: float) -> None:
        client = redis.Redis(host=self.host, port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.pid() is None:
                raise VigilError(f"redis-server exited during start-up; last log lines:\n{self.process.log_tail()}")
            try:
                if client.ping():
                    return
            except (redis.AuthenticationError, redis.exceptions.NoPermissionError):
                return  # it answers; this client just may not (an ACL file without a default user)
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise VigilError(f"Redis did not answer PING on {self.address} within {timeout_s:.0f}s")
            time.sleep(0.2)

    def ports_taken(self) -> list[int]:
        return [self.port] if port_open(self.host, self.port) else []


def ensure_redis_server() -> str:
    """The ``redis-server`` binary; installed from Debian's packages when missing and we can."""
    found = shutil.which("redis-server")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise VigilError("redis-server is not installed and apt-get is missing: install Redis 7 by hand")
    if os.geteuid() != 0:
        raise VigilError("redis-server is not installed: run `sudo apt-get install -y redis-server`")
    log.info("installing redis-server with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in ([apt, "update"], [apt, "install", "-y", "--no-install-recommends", "redis-server"]):
        result = subprocess.run(argv, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise VigilError(f"`{' '.join(argv)}` failed:\n{result.stderr[-2000:]}")
    found = shutil.which("redis-server")
    if not found:
        raise VigilError("apt-get installed redis-server but it is not on PATH")
    return found
