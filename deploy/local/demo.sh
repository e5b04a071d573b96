#!/usr/bin/env bash
# The main job: set up, start the local Kafka and Redis, run `vigil demo` (arguments go to it).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash deploy/local/setup.sh

echo; echo "==> Local services"
.venv/bin/vigil services up

echo; echo "==> Demo"
.venv/bin/vigil demo "$@"
echo
echo "Kafka and Redis keep running; stop them with: .venv/bin/vigil services down"
