#!/usr/bin/env bash
# The test command: set up, start the real Kafka and Redis, run every test (arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/setup.sh

echo; echo "==> Local services"
was_running=0
.venv/bin/vigil services status >/dev/null 2>&1 && was_running=1
.venv/bin/vigil services up
# Leave running what was already running; stop what this run started.
[ "$was_running" -eq 1 ] || trap '.venv/bin/vigil services down || true' EXIT

echo; echo "==> Tests"
.venv/bin/python -m pytest "$@"
