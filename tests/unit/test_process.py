import os
import socket
import sys

from vigil.services.process import ManagedProcess, port_open


def _sleeper(tmp_path, marker="vigil-test-sleeper"):
    return ManagedProcess("sleeper", tmp_path / "s.pid", tmp_path / "s.log", marker)


def test_started_process_is_recognised_and_stopped(tmp_path):
    proc = _sleeper(tmp_path)
    pid = proc.start([sys.executable, "-c", "import time; time.sleep(60)", "vigil-test-sleeper"])
    assert proc.pid() == pid
    assert proc.stop(timeout_s=5) == pid
    assert proc.pid() is None and not (tmp_path / "s.pid").exists()
    assert not os.path.exists(f"/proc/{pid}") or "Z" in open(f"/proc/{pid}/stat").read().split(")")[1][:3]


def test_stale_pid_file_naming_another_process_is_never_signalled(tmp_path):
    proc = _sleeper(tmp_path)
    (tmp_path / "s.pid").write_text(f"{os.getpid()}\n")  # our own pid: alive, but not the sleeper
    assert proc.pid() is None
    assert proc.stop() is None  # nothing signalled: this test process is still here to assert
    assert not (tmp_path / "s.pid").exists()


def test_process_that_dies_at_once_is_reported_gone(tmp_path):
    proc = _sleeper(tmp_path)
    proc.start([sys.executable, "-c", "print('boom'); raise SystemExit(3)", "vigil-test-sleeper"])
    import time

    deadline = time.monotonic() + 10
    while proc.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.pid() is None
    assert "boom" in proc.log_tail()


def test_port_open_sees_a_listener():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert port_open("127.0.0.1", port)
    assert not port_open("127.0.0.1", port)
