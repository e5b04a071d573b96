"""Stage 4 (docs/architecture.md): ready sensors → bins read from Redis in one pipeline → one tensor → one model call.

Featurisation is :func:`vigil.features.channels_many`, the function training and ``vigil
evaluate`` use, on the same per-bin records (a file's events accumulate into them by the same
arithmetic), so an online score equals the offline one. A model with coarser bins than the
buffer's gets them merged (``WindowBatch.windows``).
Each window's explanation (:mod:`vigil.model.explain`) comes out of the same model call.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from vigil.alerts import ScoredWindow
from vigil.buffer import RollingBuffer, SensorState
from vigil.buffer.bins import BinStats
from vigil.buffer.rolling import WindowBatch
from vigil.features import FleetStats, WindowSpec, channels_many
from vigil.features.heads import HeadStats, head_statistics
from vigil.model.explain import explain_scored, head_values
from vigil.model.predictor import Scored
from streamer.model_watch import ActiveModel


@dataclass(frozen=True)
class PreparedBatch:
    """A batch read and featurised, waiting for its model call: what :func:`finish_batch` needs
    besides the model's output. The streamer predicts it in a second thread while it prepares the
    next batch (docs/architecture.md, "Overlap")."""

    model: ActiveModel
    batch: WindowBatch
    keep: np.ndarray  # the batch's rows with enough events
    n: np.ndarray  # every row's event count
    bins: BinStats  # the kept windows' bins
    x: np.ndarray  # their [k, steps, channels] tensor
    heads: HeadStats

    @property
    def sensor_ids(self) -> list[str]:
        return [self.batch.sensor_ids[i] for i in self.keep]

    def predict(self) -> Scored:
        return self.model.predict(self.x)


def prepare_batch(buffer: RollingBuffer, model: ActiveModel, states: list[SensorState],
                  min_events: int) -> PreparedBatch | None:
    """Read the sensors' windows ending at their newest events and featurise them; None when no
    sensor has ``min_events`` events."""
    spec, stats = model.loaded.spec, model.loaded.stats
    batch = buffer.read_batch(states)
    keep, n, bins, x, baselines = batch_tensor(batch, spec, stats, min_events)
    if not len(keep):
        return None
    return PreparedBatch(model, batch, keep, n, bins, x, head_statistics(bins, baselines))


def finish_batch(prepared: PreparedBatch, autoencoder: Scored) -> list[ScoredWindow]:
    """The batch's scored windows from the model's output: calibrated heads, scores, explanations."""
    p, loaded = prepared, prepared.model.loaded
    spec = loaded.spec
    scored = loaded.combine(autoencoder, p.heads)
    ends = p.batch.newest_ms[p.keep]
    history = ends - p.bins.first_event_bin_ms()
    picked = [(p.batch.sensor_ids[i], p.batch.metas[i], int(end), int(p.n[i]), int(h))
              for i, end, h in zip(p.keep, ends, history)]
    explanations = explain_scored(scored, p.heads, spec, loaded.stats, loaded.meta.features, ends) or [None] * len(picked)
    per_head = head_values(scored)
    return [
        ScoredWindow(sensor_id=sensor_id, window_start=end - spec.length_ms, window_end=end, n_events=count,
                     score=float(s), history_ms=h, meta=meta, explanation=e, heads=v)
        for (sensor_id, meta, end, count, h), s, e, v in zip(picked, scored.scores, explanations, per_head)
    ]


def batch_tensor(batch: WindowBatch, spec: WindowSpec, stats: FleetStats,
                 min_events: int) -> tuple[np.ndarray, np.ndarray, BinStats, np.ndarray, list]:
    """The model's input for the batch's windows that hold ``min_events`` events: their rows in
    the batch, every window's event count, their bins, their ``[k, steps, channels]`` tensor and
    their sensors' saved references (the heads read them too)."""
    bins = batch.windows(spec.bin_ms, spec.steps)
    n = bins.count.sum(axis=1).astype(np.int64)
    keep = np.flatnonzero(n >= min_events)
    bins = bins.take(keep)
    baselines = [stats.baseline_for(batch.sensor_ids[i]) for i in keep]
    return keep, n, bins, channels_many(bins, spec, stats, baselines), baselines


class ModelThread:
    """The model call of one batch at a time, in a second thread (``stream.overlap``), so the loop
    reads, featurises and applies the next events while it runs: the model releases the GIL.

    ``submit`` hands a prepared batch over; ``take`` waits for it and returns it with its output.
    The streamer takes the batch before it submits the next, before a cycle's delivery and before
    partitions change hands, so batches leave in the order they were read and nothing is in flight
    when a cycle is committed. Without overlap, or for a batch of fewer than ``min_windows``
    windows, the call runs in ``submit``.
    """

    def __init__(self, overlap: bool, min_windows: int = 1):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="model-call") if overlap else None
        self.min_windows = min_windows  # a smaller batch's call runs in submit: see stream.overlap_min_windows
        self._in_flight: tuple[PreparedBatch, Future | Scored, object] | None = None
        self._ends: dict[str, int] = {}  # sensor → window end, of the batch in flight

    def submit(self, prepared: PreparedBatch, context: object = None) -> bool:
        """Start the batch's model call; ``context`` comes back with it. The previous batch must
        have been taken. True: the call runs in the second thread; False: it has run here."""
        assert self._in_flight is None, "take the batch in flight first"
        threaded = self._pool is not None and len(prepared.keep) >= self.min_windows
        call = self._pool.submit(prepared.predict) if threaded else prepared.predict()
        self._in_flight = (prepared, call, context)
        self._ends = dict(zip(prepared.sensor_ids, prepared.batch.newest_ms[prepared.keep].tolist()))
        return threaded

    def done(self) -> bool:
        """A batch waits to be taken and its model call has returned."""
        return self._in_flight is not None and (not isinstance(self._in_flight[1], Future) or self._in_flight[1].done())

    def take(self) -> tuple[PreparedBatch, Scored, object] | None:
        """The batch in flight with its model output (waiting for it); None when there is none.
        The model call's exception, if it raised, is raised here."""
        if self._in_flight is None:
            return None
        prepared, call, context = self._in_flight
        self._in_flight, self._ends = None, {}
        return prepared, call.result() if isinstance(call, Future) else call, context

    def window_end(self, sensor_id: str) -> int | None:
        """The window end the batch in flight scores for the sensor (None: not in it)."""
        return self._ends.get(sensor_id)

    def discard(self) -> None:
        """Forget the batch in flight (its cycle was aborted); its call is left to finish."""
        self._in_flight, self._ends = None, {}

    def close(self) -> None:
        self.discard()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
