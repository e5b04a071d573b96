"""The scorer with XLA against without, per batch size, in one run.

``BatchPredictor`` scores full batches (``xla_from``, 512) with an XLA twin of the scorer
(``vigil.model.predictor.xla_twin``), which Keras leaves off on a CPU-only TensorFlow. This bench
scores the same windows with XLA at every size (``xla_from=8``) and without (``xla_from=None``),
with the default model (``bench/scoring.py`` ``default_scorer``: built, not trained; weights do
not change a forward pass's cost), at each power-of-two bucket from 8 to 512 windows, the repeats
alternating, and reports microseconds per window and the ratio (plain / XLA: above 1, XLA is
faster). The largest score difference between the two is printed too. It measures the model call
alone, in one thread: in the streamer, on a busy host, small batches measured otherwise
(bench/README.md, "XLA").

The last stdout line is one JSON object: per batch size both figures and ``ratio``, and
``ratio_at_512`` and ``ratio_at_64`` (a full batch; a scoring cadence's typical batch).

    .venv/bin/python bench/xla.py              # 5 repeats, 2,048 windows a size
    .venv/bin/python bench/xla.py --quick      # 2 repeats, 512 windows a size
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter off stderr

import keras  # noqa: E402
import numpy as np  # noqa: E402

from _common import fill_unset, fmt, log, print_table  # noqa: E402
from scoring import DAY_MS, default_scorer  # noqa: E402
from vigil.features import WindowSpec  # noqa: E402
from vigil.model.predictor import BatchPredictor, xla_scoring  # noqa: E402

SIZES = (8, 16, 32, 64, 128, 256, 512)


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="2 repeats of 512 windows a batch size")
    p.add_argument("--repeats", type=int, help="timed repeats per scorer and size (default 5; --quick 2)")
    p.add_argument("--windows", type=int, help="windows scored per repeat and size (default 2048; --quick 512)")
    p.add_argument("--steps", type=int, default=240, help="window steps (default 240, the default window)")
    args = p.parse_args(argv)
    fill_unset(args, quick={"repeats": 2, "windows": 512}, full={"repeats": 5, "windows": 2048})
    return args


def per_window_us(predictor: BatchPredictor, x: np.ndarray, size: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(x), size):
        predictor(x[start : start + size])
    return (time.perf_counter() - started) / len(x) * 1e6


def main(argv: list[str]) -> int:
    args = parse(argv)
    if not xla_scoring():
        log(f"XLA scoring is off on the {keras.backend.backend()} backend: nothing to compare")
        return 1
    spec = WindowSpec(length_ms=10 * DAY_MS, steps=args.steps, n_features=2)
    config, _, scorer = default_scorer(spec)
    scorers = {"xla": BatchPredictor(scorer, xla_from=SIZES[0]), "plain": BatchPredictor(scorer, xla_from=None)}
    x = np.random.default_rng(0).normal(size=(args.windows, spec.steps, spec.channels)).astype(np.float32)
    for name, predictor in scorers.items():
        started = time.perf_counter()
        predictor.warm_up(spec.steps, spec.channels)
        log(f"{name}: every bucket compiled in {time.perf_counter() - started:.1f} s")
    difference = float(np.max(np.abs(scorers["xla"](x).scores - scorers["plain"](x).scores)))
    times: dict[int, dict[str, list[float]]] = {size: {"xla": [], "plain": []} for size in SIZES}
    for repeat in range(args.repeats):
        for size in SIZES:
            for name in (("xla", "plain") if repeat % 2 == 0 else ("plain", "xla")):
                times[size][name].append(per_window_us(scorers[name], x, size))
        log(f"repeat {repeat + 1} of {args.repeats} done")
    sizes = {}
    for size in SIZES:
        xla_us, plain_us = (statistics.median(times[size][name]) for name in ("xla", "plain"))
        sizes[size] = {"xla_us_per_window": round(xla_us, 1), "plain_us_per_window": round(plain_us, 1),
                       "ratio": round(plain_us / xla_us, 2)}
    print_table(f"Scorer µs per window ({spec.steps} steps × {spec.channels} channels, LSTM {config.latent_dim} "
                f"→ {config.bottleneck}; median of {args.repeats}, {args.windows} windows a size)",
                ["batch", "XLA", "plain", "plain / XLA"],
                [[size, fmt(r["xla_us_per_window"]), fmt(r["plain_us_per_window"]), fmt(r["ratio"], ".2f")]
                 for size, r in sizes.items()])
    print(f"\nlargest score difference, XLA against plain: {difference:.2e}")
    print(json.dumps({"backend": keras.backend.backend(), "steps": spec.steps, "channels": spec.channels,
                      "latent_dim": config.latent_dim, "repeats": args.repeats, "windows": args.windows,
                      "cpus": os.cpu_count(), "max_score_difference": difference,
                      "sizes": {str(k): v for k, v in sizes.items()},
                      "ratio_at_512": sizes[512]["ratio"], "ratio_at_64": sizes[64]["ratio"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
