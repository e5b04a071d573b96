"""`vigil services` end to end, on a second, isolated pair of services (own ports, own data dir),
so the instance the rest of the suite uses is never disturbed."""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from vigil.services.local import local_kafka
from vigil.services.process import port_open
from vigil.settings import VigilSettings

from tests.conftest import own_services

KAFKA, CONTROLLER, REDIS = 19092, 19093, 16379


def vigil(env, *args, check=True, timeout=300):
    result = subprocess.run([sys.executable, "-m", "vigil.cli.main", *args], env=env,
                            capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"vigil {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def isolated_env(tmp_path):
    own_services()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")}
    env.update(
        VIGIL_DATA_DIR=str(tmp_path / "var"),
        VIGIL_KAFKA__BOOTSTRAP_SERVERS=f"127.0.0.1:{KAFKA}",
        VIGIL_SERVICES__KAFKA_CONTROLLER_PORT=str(CONTROLLER),
        VIGIL_REDIS__URL=f"redis://127.0.0.1:{REDIS}/0",
        VIGIL_TOPICS__EVENTS_PARTITIONS="4",
        VIGIL_LOG_FORMAT="json",
    )
    yield env
    vigil(env, "services", "down", check=False)  # never leave our processes behind


def _alive(pid):
    return Path(f"/proc/{pid}").exists() and Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_up_twice_status_and_down_leave_nothing_running(isolated_env):
    for port in (KAFKA, CONTROLLER, REDIS):
        if port_open("127.0.0.1", port):
            pytest.skip(f"port {port} is busy on this machine")

    first = json.loads(vigil(isolated_env, "services", "up", "--json").stdout)
    assert {s["name"]: s["started_now"] for s in first["services"]} == {"redis": True, "kafka": True}
    assert {t["name"]: t["partitions"] for t in first["topics"]}["sensor-events"] == 4

    second = json.loads(vigil(isolated_env, "services", "up", "--json").stdout)
    assert {s["name"]: s["started_now"] for s in second["services"]} == {"redis": False, "kafka": False}
    assert [s["pid"] for s in second["services"]] == [s["pid"] for s in first["services"]]
    assert all(not t["created"] for t in second["topics"])

    status = json.loads(vigil(isolated_env, "services", "status", "--json").stdout)
    by_name = {s["name"]: s for s in status}
    assert by_name["kafka"]["running"] and by_name["kafka"]["address"] == f"127.0.0.1:{KAFKA}"
    assert by_name["redis"]["running"] and by_name["redis"]["address"] == f"127.0.0.1:{REDIS}"
    pids = [s["pid"] for s in status]
    assert all(_alive(pid) for pid in pids)
    assert redis.Redis(port=REDIS).ping()
    table = vigil(isolated_env, "services", "status").stdout
    assert "kafka" in table and "running" in table and str(by_name["kafka"]["pid"]) in table

    down = json.loads(vigil(isolated_env, "services", "down", "--json").stdout)
    assert sorted(s["pid"] for s in down) == sorted(pids)
    assert not any(_alive(pid) for pid in pids)
    assert not any(port_open("127.0.0.1", p) for p in (KAFKA, CONTROLLER, REDIS))
    after = vigil(isolated_env, "services", "status", check=False)
    assert after.returncode == 3 and "stopped" in after.stdout


def test_a_port_taken_by_someone_else_is_a_clear_error(isolated_env):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        isolated_env["VIGIL_REDIS__URL"] = f"redis://127.0.0.1:{port}/0"
        result = vigil(isolated_env, "services", "up", check=False)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is taken by a process that vigil did not start" in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_on_a_broker_that_just_started(isolated_env, tmp_path, monkeypatch):
    """The broker answers metadata requests before its group coordinator has loaded (no
    __consumer_offsets yet): the demo, started at once, must wait for it rather than fail."""
    for port in (KAFKA, CONTROLLER, REDIS):
        if port_open("127.0.0.1", port):
            pytest.skip(f"port {port} is busy on this machine")
    for key, value in isolated_env.items():
        if key.startswith("VIGIL_"):
            monkeypatch.setenv(key, value)
    settings = VigilSettings()
    local_kafka(settings).start(settings.services.kafka_ready_timeout_s)  # returns on metadata only
    env = {**isolated_env, "VIGIL_MODEL_DIR": str(tmp_path / "models"), "VIGIL_STREAM__METRICS_PORT": "0"}
    result = vigil(env, "demo", "--sensors", "30", "--days", "11", "--train-sensors", "40", "--epochs", "1",
                   "--alert-fraction", "0.1", "--seed", "4", timeout=900)
    out = result.stdout
    assert "Traceback" not in result.stderr and "absl::InitializeLog" not in result.stderr
    assert "Coordinator load in progress" not in result.stderr  # producers start once ids are handed out
    sent, scored = re.search(r"events published (\d+); windows scored (\d+)", out).groups()
    assert int(sent) > 30 * 11 * 100 and int(scored) >= 30  # every sensor's window at least once
    assert "truly anomalous sensors alerted after their onset:" in out and "of 3;" in out
    assert re.search(r"alert precision [-\d.]+ .*; sensor recall [-\d.]+; false alerts per 100 normal sensor-days", out)
    assert "streamer stopped with exit code 0" in out
