#!/usr/bin/env bash
# The test command: set up, start the real Kafka and Redis, run every test (arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/setup.sh

if [ "${VIGIL_TEST_SERVICES:-local}" = external ]; then
  # The configured Kafka and Redis already run (VIGIL_KAFKA__BOOTSTRAP_SERVERS, VIGIL_REDIS__URL):
  # nothing is started or stopped; tests that manage servers themselves skip and say why.
  echo; echo "==> External services (VIGIL_TEST_SERVICES=external): starting nothing"
else
  echo; echo "==> Local services"
  was_running=0
  .venv/bin/vigil services status >/dev/null 2>&1 && was_running=1
  .venv/bin/vigil services up
  # Leave running what was already running; stop what this run started.
  [ "$was_running" -eq 1 ] || trap '.venv/bin/vigil services down || true' EXIT
fi

echo; echo "==> Tests"
.venv/bin/python -m pytest "$@"
