"""GPU device check: scoring windows/s on the GPU against the CPU, on one host, in one run.

For each Keras backend whose module is installed (JAX first, then PyTorch, then TensorFlow),
``bench/scoring.py`` runs twice in fresh processes: once as the backend finds the GPU, once with
the GPU hidden (``JAX_PLATFORMS=cpu`` / ``CUDA_VISIBLE_DEVICES``). A backend that finds no GPU is
reported as such rather than passed off as one. The last stdout line is one JSON object:
per backend the two windows/s and ``ratio_gpu_vs_cpu``.

    bash bench/gpu.sh                 # --quick scoring runs (1024 windows)
    bash bench/gpu.sh --windows 8192  # any bench/scoring.py options
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

from _common import fmt, log, print_table

HERE = Path(__file__).resolve().parent
BACKENDS = {"jax": "jax", "torch": "torch", "tensorflow": "tensorflow"}  # Keras backend → its module
HIDE_GPU = {"jax": {"JAX_PLATFORMS": "cpu"}, "torch": {"CUDA_VISIBLE_DEVICES": ""},
            "tensorflow": {"CUDA_VISIBLE_DEVICES": "-1"}}


def score(backend: str, hide_gpu: bool, options: list[str]) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, **(HIDE_GPU[backend] if hide_gpu else {})}
    # --no-raw: the raw-path baseline needs git history, which a device's copy of the tree lacks.
    result = subprocess.run([sys.executable, str(HERE / "scoring.py"), "--no-raw", *options], env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{backend} ({'cpu' if hide_gpu else 'gpu'}) failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    options = argv or ["--quick"]
    report: dict[str, dict] = {}
    for backend, module in BACKENDS.items():
        if importlib.util.find_spec(module) is None:
            log(f"{backend}: not installed, skipped")
            continue
        log(f"{backend}: scoring with the GPU, then with the GPU hidden")
        try:
            on_gpu, on_cpu = score(backend, False, options), score(backend, True, options)
        except RuntimeError as exc:
            log(str(exc))
            report[backend] = {"error": str(exc).splitlines()[0]}
            continue
        found_gpu = on_gpu["device"] == "gpu"
        report[backend] = {
            "gpu_found": found_gpu,
            "gpu_windows_per_s": on_gpu["windows_per_s"] if found_gpu else None,
            "cpu_windows_per_s": on_cpu["windows_per_s"],
            "ratio_gpu_vs_cpu": round(on_gpu["windows_per_s"] / on_cpu["windows_per_s"], 2) if found_gpu else None,
            "gpu_end_to_end_windows_per_s": on_gpu["end_to_end_windows_per_s"] if found_gpu else None,
            "cpu_end_to_end_windows_per_s": on_cpu["end_to_end_windows_per_s"],
            "windows": on_gpu["windows"], "cpus": on_cpu["cpus"],
        }
        if not found_gpu:
            log(f"{backend}: no GPU visible to this backend; only its CPU figure is reported")
    rows = [[b, "yes" if r.get("gpu_found") else "no", fmt(r.get("gpu_windows_per_s"), ",.0f"),
             fmt(r.get("cpu_windows_per_s"), ",.0f"), fmt(r.get("ratio_gpu_vs_cpu"), ".1f")]
            for b, r in report.items() if "error" not in r]
    print_table("Scoring windows/s, GPU vs CPU (BatchPredictor, max_batch 512)",
                ["backend", "GPU", "GPU windows/s", "CPU windows/s", "GPU/CPU"], rows)
    print(json.dumps({"backends": report, "ratio_gpu_vs_cpu": next(
        (r["ratio_gpu_vs_cpu"] for r in report.values() if r.get("ratio_gpu_vs_cpu")), None)}))
    return 0 if report else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
