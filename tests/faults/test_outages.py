"""Outages while streaming: the Kafka broker restarts, redis-server restarts, Redis stops answering.

Each test runs against the private Kafka and Redis of tests/faults/conftest.py (they are stopped,
killed and paused here), and compares every sensor's buffer with the reference computed from the
produced events alone (tests/faults/reference.py): nothing lost, nothing applied twice.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import redis

from streamer.app import Streamer
from vigil.buffer import BufferLayout
from vigil.kafka.clients import make_producer
from vigil.kafka.produce import frame_values, produce_frame
from vigil.services.local import local_kafka, local_redis
from vigil.simulate import FleetSpec, generate_fleet

from tests.faults.reference import buffer_mismatches
from tests.integration.streaming import (committed, counter, end_offsets_of, env_of, free_port, http_get,
                                         isolated_settings, running, snapshot, topics_of, wait_consumed, wait_for)


def produce(cfg, frame: pd.DataFrame) -> int:
    return produce_frame(make_producer(cfg), cfg.topics.events, frame)


def applied(client: redis.Redis, cfg) -> int:
    """Events the buffer has applied (sum over partitions of the last applied offset + 1)."""
    raw = client.hgetall(BufferLayout.from_settings(cfg).offsets_key(cfg.topics.events))
    return sum(int(v) + 1 for v in raw.values())


def all_committed(cfg) -> bool:
    """The group's committed offsets are the end of every partition that has messages."""
    return committed(cfg) == {p: o for p, o in end_offsets_of(cfg).items() if o > 0}


def thirds(frame: pd.DataFrame) -> list[pd.DataFrame]:
    n = len(frame)
    return [frame.iloc[: n // 3], frame.iloc[n // 3 : 2 * n // 3], frame.iloc[2 * n // 3 :]]


class Background:
    """``fn()`` in a thread; ``result()`` joins it and returns its value or raises its exception."""

    def __init__(self, fn):
        self._out: list = []
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn) -> None:
        try:
            self._out.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            self._out.append((False, exc))

    def result(self, timeout_s: float = 180.0):
        self._thread.join(timeout_s)
        assert self._out, "the background call did not finish"
        ok, value = self._out[0]
        if not ok:
            raise value
        return value


# -- Kafka -------------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_broker_restart_while_streaming_makes_the_streamer_wait_and_loses_nothing(private_services):
    cfg = isolated_settings(private_services, scoring=False)
    events = generate_fleet(FleetSpec(sensors=40, days=3, seed=808)).events
    before, during = events.iloc[: len(events) // 2], events.iloc[len(events) // 2 :]
    kafka = local_kafka(cfg)
    with topics_of(cfg):
        with running(Streamer(cfg)) as streamer:
            produce(cfg, before)
            wait_consumed(streamer, len(before) // 4)  # mid-stream: the broker goes while batches flow
            kafka.process.stop()  # SIGTERM: a broker restart (controlled shutdown), KRaft log kept
            # The gateways keep producing: their producer holds the events until the broker is back.
            gateway = Background(lambda: produce(cfg, during))
            wait_for(lambda: counter(streamer, "vigil_retries_total", dependency="kafka") > 0,
                     what="the streamer to notice the broker is gone")
            wait_for(lambda: not streamer.health.ready()[0], what="readiness to drop")
            probes = []
            for _ in range(30):  # and it stays down while the broker does, cycles and all
                probes.append(streamer.health.ready())
                time.sleep(0.1)
            assert [reason for ok, reason in probes if ok] == []
            assert all("kafka" in reason for _ok, reason in probes)
            kafka.start(cfg.services.kafka_ready_timeout_s)
            assert gateway.result() == len(during)
            wait_consumed(streamer, len(events))
            wait_for(lambda: not streamer.status().pending_offsets, what="the commit after recovery")
            # Back to ready once librdkafka has been quiet for a while (streamer.app.KAFKA_QUIET_S).
            wait_for(lambda: streamer.health.ready()[0], what="readiness after the broker came back")
        assert counter(streamer, "vigil_buffer_writes_total", result="added") == len(events)
        assert all_committed(cfg)
        assert buffer_mismatches(cfg, events) == {}


# -- Redis restart -----------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"  # a zombie (exited, not reaped yet) is gone


def take_down(service, how: str) -> None:
    """Stop our redis-server: ``shutdown`` (SIGTERM: fsync the AOF, exit) or ``kill-9`` (no goodbye)."""
    if how == "shutdown":
        assert service.process.stop() is not None
        return
    pid = service.process.pid()
    assert pid is not None, "the private redis-server is not running"
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not _alive(pid), timeout_s=30, what="redis-server to die")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["shutdown", "kill-9"])
def test_a_redis_restart_while_streaming_keeps_the_buffer_and_the_streamer_resumes(private_services, how):
    cfg = isolated_settings(private_services, scoring=False)
    events = generate_fleet(FleetSpec(sensors=40, days=3, seed=909)).events
    first, second, third = thirds(events)
    service = local_redis(cfg)
    url = cfg.redis.url.get_secret_value()
    prefix = cfg.redis.key_prefix
    with redis.Redis.from_url(url) as client:
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
    with topics_of(cfg):
        with running(Streamer(cfg)) as streamer:
            produce(cfg, first)
            with redis.Redis.from_url(url) as client:
                wait_for(lambda: applied(client, cfg) == len(first), what="the first third applied")
                wait_for(lambda: not streamer.status().pending_offsets, what="the first third committed")
                held = snapshot(client, prefix)
            assert buffer_mismatches(cfg, first) == {}

            # 1. Restarted while the streamer runs: right after the restart (before anything else
            # is streamed) Redis holds exactly what it held, loaded from the append-only file.
            log_size = service.log_path.stat().st_size
            take_down(service, how)
            service.start(cfg.services.redis_ready_timeout_s)
            with redis.Redis.from_url(url) as client:
                assert snapshot(client, prefix) == held
            assert buffer_mismatches(cfg, first) == {}
            with open(service.log_path, "rb") as log:
                log.seek(log_size)
                assert b"DB loaded from append only file" in log.read()

            # The streamer's connection died with the old server; the next events go through.
            produce(cfg, second)
            with redis.Redis.from_url(url) as client:
                wait_for(lambda: applied(client, cfg) == len(first) + len(second), what="the second third applied")

            # 2. Down while events arrive: the streamer waits (not ready), then applies them.
            take_down(service, how)
            produce(cfg, third)
            wait_for(lambda: counter(streamer, "vigil_retries_total", dependency="redis") > 0, what="retries")
            ok, reason = streamer.health.ready()
            assert not ok and "redis" in reason
            service.start(cfg.services.redis_ready_timeout_s)
            wait_consumed(streamer, len(events))
            wait_for(lambda: not streamer.status().pending_offsets, what="the commit after recovery")
            assert streamer.health.ready()[0], streamer.health.ready()[1]
        assert counter(streamer, "vigil_buffer_writes_total", result="added") == len(events)
        assert all_committed(cfg)
        assert buffer_mismatches(cfg, events) == {}


# -- Redis paused ------------------------------------------------------------------------------

PAUSE_S = 12
REDIS_TIMEOUT_S = 2  # the streamer's socket timeout for this test (its default is 30 s)
# librdkafka's consumer defaults (the streamer sets none of them). Before each fetch request it
# checks its queue and fetches no more once that holds queued.min.messages messages or
# queued.max.messages.kbytes of them; the one fetch response already on its way (one request in
# flight per broker) adds at most max.partition.fetch.bytes of stored (compressed) records per partition.
QUEUED_MIN_MESSAGES = 100_000
QUEUED_MAX_KBYTES = 65_536
MAX_PARTITION_FETCH_BYTES = 1_048_576
LIBRDKAFKA_BYTES_PER_MESSAGE = 512  # its op and message structs, payload aside (measured: ~370 B)
PYTHON_BYTES_PER_EVENT = 2048  # one consume call (stream.poll_events): Message objects, EventBatch rows


def prefetch_bound(cfg, n_events: int, msg_bytes: float) -> tuple[float, float]:
    """(most messages the streamer's consumer may hold, most bytes it and one consume call may hold)."""
    stored = sum(f.stat().st_size for f in local_kafka(cfg).data.glob(f"{cfg.topics.events}-*/*.log"))
    per_stored_byte = n_events / stored  # messages per byte as the broker stores (and sends) them
    in_flight = cfg.topics.events_partitions * MAX_PARTITION_FETCH_BYTES * per_stored_byte
    messages = min(QUEUED_MIN_MESSAGES, QUEUED_MAX_KBYTES * 1024 / msg_bytes) + in_flight
    return messages, (messages * (msg_bytes + LIBRDKAFKA_BYTES_PER_MESSAGE)
                      + cfg.stream.poll_events * PYTHON_BYTES_PER_EVENT)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def metric(text: str, name: str, **labels) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    pattern = re.escape(name + (f"{{{wanted}}}" if labels else "")) + r" (\S+)"
    found = re.search(r"^" + pattern + r"$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@pytest.mark.slow
def test_a_paused_redis_makes_the_streamer_back_off_and_its_memory_stays_bounded(private_services, tmp_path):
    """``CLIENT PAUSE`` with a million events waiting: the streamer blocks on Redis, times out, backs
    off; it does not consume ahead, so its RSS grows by at most librdkafka's prefetch queue plus one
    consume call, not with the backlog. Afterwards everything is applied, once."""
    base = isolated_settings(private_services, scoring=False)
    # The streamer's Redis client gives up on a silent server after REDIS_TIMEOUT_S (a URL option
    # redis-py honours over the streamer's default of 30 s), so the pause shows as retries.
    url = f"{base.redis.url.get_secret_value()}?socket_timeout={REDIS_TIMEOUT_S}"
    cfg = base.model_copy(update={"redis": base.redis.model_copy(update={"url": url})})
    cfg = cfg.model_validate(cfg.model_dump())  # re-validate the SecretStr URL
    events = generate_fleet(FleetSpec(sensors=700, days=10, seed=4321)).events  # ~1.0 M events
    warm, flood = events.iloc[:20_000], events.iloc[20_000:]
    msg_bytes = sum(len(v) for v in frame_values(events)) / len(events)

    port = free_port()
    env = {**env_of(cfg), "VIGIL_STREAM__METRICS_PORT": str(port)}
    log_path = tmp_path / "streamer.log"
    pauser = redis.Redis.from_url(url)
    pauser.ping()  # connected now: a new connection's handshake would itself wait out a pause
    samples: list[int] = []
    with topics_of(cfg), open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "vigil.cli.main", "stream", "--no-score"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            produce(cfg, warm)
            with redis.Redis.from_url(url) as client:
                wait_for(lambda: applied(client, cfg) == len(warm), what="the warm-up applied")
            # Frozen while the flood is produced, so the whole pause is spent with it waiting in Kafka.
            proc.send_signal(signal.SIGSTOP)
            try:
                produce(cfg, flood)
                prefetchable, bound = prefetch_bound(cfg, len(events), msg_bytes)
                baseline = rss_bytes(proc.pid)
                pauser.execute_command("CLIENT", "PAUSE", PAUSE_S * 1000, "ALL")
                paused_until = time.monotonic() + PAUSE_S
            finally:
                proc.send_signal(signal.SIGCONT)
            while time.monotonic() < paused_until - 0.2:
                samples.append(rss_bytes(proc.pid))
                time.sleep(0.1)

            with redis.Redis.from_url(url) as client:
                wait_for(lambda: applied(client, cfg) == len(events), timeout_s=300, what="everything applied")
            status, metrics = http_get(f"http://127.0.0.1:{port}/metrics")
            assert status == 200, metrics
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(120) == 0
            assert all_committed(cfg)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            pauser.close()

    growth = max(samples) - baseline
    print(f"streamer RSS {baseline / 2**20:.0f} MiB before the pause, at most +{growth / 2**20:.1f} MiB "
          f"during it ({len(samples)} samples); bound {bound / 2**20:.0f} MiB for {prefetchable:.0f} "
          f"prefetched messages; {len(flood)} events ({len(flood) * msg_bytes / 2**20:.0f} MiB) waiting; "
          f"growth each second (MiB): {[round((r - baseline) / 2**20) for r in samples[::10]]}")
    # Not vacuous: the flood is several times what the consumer may prefetch.
    assert len(flood) > 4 * prefetchable
    assert growth < bound

    # It timed out and backed off (waits doubling from 0.1 s), rather than giving up or spinning.
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    waits = [line["wait_s"] for line in lines
             if line.get("event") == "dependency unavailable, retrying" and line.get("dependency") == "redis"]
    assert waits, log_path.read_text()[-3000:]
    print(f"redis retries logged with waits {waits}")
    assert waits[:3] == [0.1, 0.2, 0.4][: len(waits)]
    assert metric(metrics, "vigil_retries_total", dependency="redis") >= len(waits)
    # Each consumed event was applied once or found already applied (a timed-out transaction that
    # Redis ran after all); either way the buffers below hold it once.
    writes = sum(metric(metrics, "vigil_buffer_writes_total", result=r) for r in ("added", "duplicate", "too_old"))
    assert writes >= len(events)
    assert buffer_mismatches(cfg, events) == {}
