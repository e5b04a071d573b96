"""``/metrics`` (Prometheus), ``/healthz`` (the loop is turning) and ``/readyz`` (partitions
assigned, dependencies reachable, a model loaded when scoring) on one small HTTP server thread."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from vigil.errors import VigilError

STALL_S = 120.0  # a loop silent this long is stuck (a batch takes seconds, an outage wait logs and ticks)


class Health:
    def __init__(self) -> None:
        self.heartbeat = time.monotonic()
        self.reasons_not_ready: dict[str, str] = {"startup": "starting"}

    def beat(self) -> None:
        self.heartbeat = time.monotonic()

    def set(self, key: str, problem: str | None) -> None:
        if problem is None:
            self.reasons_not_ready.pop(key, None)
        else:
            self.reasons_not_ready[key] = problem

    def alive(self) -> tuple[bool, str]:
        age = time.monotonic() - self.heartbeat
        return age < STALL_S, f"last loop {age:.1f}s ago"

    def ready(self) -> tuple[bool, str]:
        if self.reasons_not_ready:
            return False, "; ".join(f"{k}: {v}" for k, v in sorted(self.reasons_not_ready.items()))
        return True, "ready"


def serve(host: str, port: int, registry: CollectorRegistry, health: Health) -> ThreadingHTTPServer:
    routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
        "/metrics": lambda: (200, CONTENT_TYPE_LATEST, generate_latest(registry)),
        "/healthz": lambda: _check(health.alive),
        "/readyz": lambda: _check(health.ready),
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            route = routes.get(self.path.split("?")[0])
            status, ctype, body = route() if route else (404, "text/plain", b"not found: try /metrics, /healthz, /readyz\n")
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:  # probes every few seconds would flood the log
            pass

    try:
        server = ThreadingHTTPServer((host, port), Handler)
    except OSError as exc:
        raise VigilError(f"cannot serve metrics on {host}:{port}: {exc.strerror} "
                         "(choose another with --metrics-port, or 0 for none)") from None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="health-http", daemon=True).start()
    return server


def _check(probe: Callable[[], tuple[bool, str]]) -> tuple[int, str, bytes]:
    ok, text = probe()
    return (200 if ok else 503), "text/plain", (text + "\n").encode()
