#!/usr/bin/env bash
# GPU device check: scoring windows/s on the GPU vs the CPU, same host, same run (bench/gpu.py).
#
#   bash bench/gpu.sh [bench/scoring.py options]      default: --quick
#
# Python: $PYTHON, else .venv/bin/python, else python3. Vigil must be importable by it; on a host
# without a package index, put wheels (keras, pydantic, pydantic-settings, structlog, orjson,
# pandas, ...) in $VIGIL_WHEELS and they are installed from there without touching the network.
# Keras backends: JAX (`pip install "jax[cuda12]"`), PyTorch (a CUDA build of torch), TensorFlow
# (`pip install "tensorflow[and-cuda]"`); each one installed is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
if ! "$PY" -c "import vigil" 2>/dev/null; then
  if [ -n "${VIGIL_WHEELS:-}" ]; then
    "$PY" -m pip install -q --no-index --find-links "$VIGIL_WHEELS" --no-deps -e .
    "$PY" -m pip install -q --no-index --find-links "$VIGIL_WHEELS" keras pydantic pydantic-settings structlog orjson pandas
  else
    echo "bench/gpu.sh: vigil is not importable by $PY; run deploy/local/setup.sh or set VIGIL_WHEELS" >&2
    exit 2
  fi
fi
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2 || true
else
  echo "bench/gpu.sh: no nvidia-smi on this host: expect CPU figures only" >&2
fi
export TF_CPP_MIN_LOG_LEVEL=2
exec "$PY" bench/gpu.py "$@"
