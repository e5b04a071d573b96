#!/usr/bin/env bash
# Installs what Vigil needs on a fresh Debian/Ubuntu machine, idempotently:
#   Debian packages  redis-server, kcat (tests), a Java 17+ runtime and Maven (for the Kafka broker jars)
#   Python           a virtual environment at .venv with Vigil (editable) and its test extras
# The Kafka jars themselves are fetched from Maven Central by `vigil services up` (cached in ~/.m2).
set -euo pipefail
cd "$(dirname "$0")/../.."

step() { printf '\n==> %s\n' "$*"; }
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "setup: root rights are needed for: $*" >&2; exit 1
  fi
}

step "Debian packages"
packages=(redis-server kcat)  # kcat: a second, non-Python Kafka client the tests produce through
command -v java >/dev/null 2>&1 || packages+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || packages+=(maven)
# Debian's own python3 ships venv support separately.
"${PYTHON:-python3}" -c 'import ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
if command -v apt-get >/dev/null 2>&1; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  echo "installed or present: ${packages[*]}"
else
  for tool in redis-server java mvn; do
    command -v "$tool" >/dev/null 2>&1 || { echo "setup: $tool is missing and apt-get is not available; install it by hand" >&2; exit 1; }
  done
fi

step "Python virtual environment (.venv)"
PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' 2>/dev/null \
  || { echo "setup: Vigil needs Python 3.11+; set PYTHON=/path/to/python3.11" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv || {
    echo "setup: could not create .venv (on Debian: apt-get install python3-venv)" >&2; exit 1; }
fi
.venv/bin/python -m pip install -q --upgrade pip
# pip keeps its download cache (~/.cache/pip), so later runs reuse the TensorFlow wheel.
.venv/bin/python -m pip install -q -e ".[test]"
.venv/bin/vigil --version
