"""The gateway contract (docs/gateways.md) with producers Vigil did not write: kcat (librdkafka's
own CLI) feeds hostile and resent events, the real streamer ingests them, and the dead letters
must carry the reason, the original key and the producer's headers."""

import json
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from datetime import timedelta

import pytest

from streamer.app import Streamer
from vigil.buffer import BufferLayout, RollingBuffer
from vigil.kafka.clients import make_producer
from vigil.kafka.dlq import REPLAYED_FROM, replay_dead_letters
from vigil.redis_client import connect

from tests.integration.streaming import (counter, end_offsets_of, env_of, isolated_settings, read_all, running,
                                         topics_of, wait_consumed)

DAY = 86_400_000
KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def event(sensor_id, ts, f1=1.0, f2=2.0) -> str:
    return json.dumps({"sensor_id": sensor_id, "timestamp": ts, "feature_1": f1, "feature_2": f2})


def kcat(cfg, lines: list[tuple[str, str]], *options: str) -> None:
    """Produce ``(key, value)`` lines with kcat (tab between key and value)."""
    text = "".join(f"{key}\t{value}\n" for key, value in lines)
    subprocess.run([KCAT, "-P", "-b", cfg.kafka.bootstrap_servers, "-t", cfg.topics.events, "-K", "\t", *options],
                   input=text.encode(), check=True, timeout=60)


def buffered(cfg, sensor_id):
    buffer = RollingBuffer(connect(cfg), BufferLayout.from_settings(cfg), cfg.topics.events)
    return buffer.inspect(sensor_id)


@pytest.mark.skipif(KCAT is None, reason="kcat is not installed (deploy/local/setup.sh installs it)")
def test_kcat_hostile_input_dead_letters_with_reason_key_and_headers(settings):
    cfg = isolated_settings(settings, scoring=False)
    now = int(time.time() * 1000)
    newest = now - DAY
    murmur2 = ("-X", "partitioner=murmur2_random", "-H", "traceparent=00-kcat-01")
    hostile = [
        ("s-1", event("s-1", newest)),                                   # valid: s-1's newest
        ("s-1", event("s-1", newest - 11 * DAY)),                        # older than the window
        ("bad-json", "{not json"),
        ("bad-year", event("bad-year", "9999-12-31T23:59:59Z")),
        ("bad-seconds-text", event("bad-seconds-text", "1767225600")),
        ("   ", event("   ", newest)),                                   # an id of spaces
        ("future", event("future", now + 3 * DAY)),
        ("big", event("big", newest)[:-1] + ', "pad": "' + "x" * 20_000 + '"}'),
        ("s-2", event("s-2", newest, 5.0)),
        ("s-2", event("s-2", newest, 5.0)),                              # resent by the gateway
        (" pad ", event(" pad ", newest)),                               # opaque id: kept as sent
    ]
    expected = {"too_old": ["s-1"], "not_json": ["bad-json"], "bad_timestamp": ["bad-seconds-text", "bad-year"],
                "bad_sensor_id": ["   "], "future_timestamp": ["future"], "oversized": ["big"]}
    # The same keys once through librdkafka's default partitioner (not murmur2): split sensors.
    split_keys = [f"split-{i}" for i in range(8)]
    with topics_of(cfg):
        kcat(cfg, hostile, *murmur2)
        kcat(cfg, [(k, event(k, newest)) for k in split_keys], *murmur2)
        kcat(cfg, [(k, event(k, newest + 1000)) for k in split_keys])  # consistent_random (CRC32)
        total = sum(end_offsets_of(cfg).values())
        with running(Streamer(cfg)) as streamer:
            wait_consumed(streamer, total)
        dead = read_all(cfg, cfg.topics.dlq)
        events = read_all(cfg, cfg.topics.events)
        s2, pad = buffered(cfg, "s-2"), buffered(cfg, " pad ")
        tail = subprocess.run([sys.executable, "-m", "vigil.cli.main", "tail", "dlq", "--from-beginning", "--json",
                               "--idle-exit", "3"], env=env_of(cfg), capture_output=True, text=True, timeout=120)
        lag = subprocess.run([sys.executable, "-m", "vigil.cli.main", "lag", "--json"], env=env_of(cfg),
                             capture_output=True, text=True, timeout=120)

    by_reason = defaultdict(list)
    for m in dead:
        headers = {k: v.decode() for k, v in m.headers()}
        by_reason[headers["vigil.reason"]].append((m.key().decode(), headers))
    assert {reason: sorted(key for key, _ in records) for reason, records in by_reason.items()} == expected
    for records in by_reason.values():
        for _key, headers in records:
            assert headers["traceparent"] == "00-kcat-01"  # the producer's header survives
            assert headers["vigil.detail"] and headers["vigil.source.topic"] == cfg.topics.events
    details = " ".join(headers["vigil.detail"] for _key, headers in by_reason["bad_timestamp"])
    assert '"9999-12-31T23:59:59Z"' in details and '"1767225600"' in details  # quoted as sent

    assert counter(streamer, "vigil_buffer_writes_total", result="resent") == 1
    assert s2["n_events"] == 1 and pad["sensor_id"] == " pad " and pad["n_events"] == 1
    partitions_of = defaultdict(set)
    for m in events:
        if m.key().decode() in split_keys:
            partitions_of[m.key().decode()].add(m.partition())
    split = sum(len(p) > 1 for p in partitions_of.values())
    assert split > 0, "the two partitioners happened to agree on every key"
    assert counter(streamer, "vigil_sensors_on_several_partitions_total") == split
    assert counter(streamer, "vigil_processing_seconds_count") > 0

    lines = tail.stdout.splitlines()
    assert len(lines) == len(dead)
    assert sorted(json.loads(line)["key"] for line in lines) == sorted(m.key().decode() for m in dead)
    assert json.loads(lag.stdout)["total_lag"] == 0, lag.stderr


def test_dlq_replay_republishes_once_the_cause_is_fixed(settings):
    strict = isolated_settings(settings, scoring=False, max_future=timedelta(hours=1))
    fixed = strict.model_copy(update={"stream": strict.stream.model_copy(update={"max_future": timedelta(days=7)})})
    ahead = int(time.time() * 1000) + 2 * DAY  # a gateway clock two days fast, say
    with topics_of(strict):
        producer = make_producer(strict)
        producer.produce(strict.topics.events, event("clock-fast", ahead).encode(), key=b"clock-fast",
                         headers=[("traceparent", b"00-py-01")])
        producer.produce(strict.topics.events, b"{broken", key=b"broken")
        assert producer.flush(30) == 0
        with running(Streamer(strict)) as streamer:
            wait_consumed(streamer, 2)
        assert buffered(strict, "clock-fast") is None

        dry = replay_dead_letters(fixed, "future_timestamp", dry_run=True)
        first = replay_dead_letters(fixed, "future_timestamp")
        again = replay_dead_letters(fixed, "future_timestamp")
        with running(Streamer(fixed)) as streamer:
            wait_consumed(streamer, 1)
        events = read_all(fixed, fixed.topics.events)
        stored = buffered(fixed, "clock-fast")

    assert (dry.replayed, first.replayed, again.replayed) == (1, 1, 0)
    assert first.skipped_reason == 1  # the broken one stays in the DLQ
    assert stored is not None and stored["last_timestamp_ms"] == ahead
    replayed = events[-1] if events[-1].key() == b"clock-fast" and len(events) == 3 else None
    assert replayed is not None, [m.key() for m in events]
    headers = dict(replayed.headers())
    assert headers["traceparent"] == b"00-py-01" and REPLAYED_FROM in headers
    assert not any(k.startswith("vigil.reason") for k in headers)
