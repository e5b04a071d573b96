"""Stage 4's model (docs/architecture.md), hot-swapped: the registry's ``CURRENT`` pointer is checked every ``model_poll``;
a new version is loaded (and its smallest batch shape compiled) in a background thread, and the
streamer switches to it between batches. A version that does not fit the stream (other features,
a longer window than the buffer keeps) is refused with an error log and the old one stays.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import redis

from vigil.logging import get_logger
from vigil.model.predictor import BatchPredictor
from vigil.registry import LoadedModel, ModelRegistry, announcement_channel

log = get_logger("streamer")


@dataclass
class ActiveModel:
    loaded: LoadedModel
    predict: BatchPredictor

    @property
    def version(self) -> str:
        return self.loaded.version


class ModelWatcher:
    def __init__(self, registry: ModelRegistry, features: list[str], window_ms: int, max_batch: int, poll_s: float,
                 announcements=None, bin_ms: int = 1):
        self.registry = registry
        self.features = list(features)
        self.window_ms = window_ms
        self.bin_ms = bin_ms
        self.max_batch = max_batch
        self.poll_s = poll_s
        self.active: ActiveModel | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="model-loader")
        self._loading: tuple[str, Future] | None = None
        self._refused: set[str] = set()
        self._next_check = 0.0
        self._announcements = announcements  # a Redis pub/sub: a promotion makes the next poll look now

    def poll(self) -> ActiveModel | None:
        """Between batches: start loading a new current version, or switch to one that loaded."""
        if self._loading is not None and self._loading[1].done():
            version, future = self._loading
            self._loading = None
            try:
                self.active = future.result()
                log.info("model in use", version=version, threshold=self.active.loaded.threshold,
                         xla_from=self.active.predict.xla_from)
            except Exception as exc:  # a broken artifact must not stop the stream
                self._refused.add(version)
                log.error("cannot use model version", version=version, error=str(exc))
        now = time.monotonic()
        if self._announced():
            self._next_check = now
        if self._loading is None and now >= self._next_check:
            self._next_check = now + self.poll_s
            current = self.registry.current_version()
            in_use = self.active.version if self.active else None
            if current and current != in_use and current not in self._refused:
                self._loading = (current, self._pool.submit(self._load, current))
        return self.active

    def _announced(self) -> bool:
        if self._announcements is None:
            return False
        try:
            heard = False
            while (message := self._announcements.get_message(timeout=0)) is not None:
                heard = heard or message.get("type") == "message"
            return heard
        except redis.RedisError:
            return False  # polling the pointer still finds the new version

    def wait_loaded(self, timeout_s: float) -> ActiveModel | None:
        """Block (startup) until the first model is usable or ``timeout_s`` passes."""
        deadline = time.monotonic() + timeout_s
        while self.poll() is None and self._loading is not None and time.monotonic() < deadline:
            time.sleep(0.05)  # (a refused version ends the wait: nothing else is loading)
        return self.active

    def _load(self, version: str) -> ActiveModel:
        loaded = self.registry.load(version)
        if list(loaded.meta.features) != self.features:
            raise ValueError(f"model features {loaded.meta.features} differ from the stream's {self.features}")
        refusal = grid_refusal(loaded.spec.length_ms, loaded.spec.bin_ms, self.window_ms, self.bin_ms)
        if refusal:
            raise ValueError(refusal)
        predict = BatchPredictor(loaded.scorer, max_batch=self.max_batch)
        predict.warm_up(loaded.spec.steps, loaded.spec.channels)  # compile every batch shape off the hot path
        return ActiveModel(loaded, predict)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def grid_refusal(length_ms: int, bin_ms: int, buffer_ms: int, buffer_bin_ms: int) -> str | None:
    """Why the buffer's bins cannot serve a model's window (None when they can): the window must
    fit in the buffer's, and each of its bins be a whole number of the buffer's bins."""
    if length_ms > buffer_ms:
        return (f"model window {length_ms} ms is longer than the buffer's {buffer_ms} ms: the buffer keeps no "
                "older bins (raise window.length, and let the buffers refill, to serve it)")
    if bin_ms % buffer_bin_ms:
        return (f"model bins of {bin_ms} ms are not a whole number of the buffer's {buffer_bin_ms} ms bins "
                f"(window.length / window.steps): retrain with steps that divide into them, or change the "
                "buffer's grid (its history rebuilds)")
    return None


def model_announcements(client: redis.Redis, key_prefix: str):
    """The trainer job's promotion announcements (Redis pub/sub), so a swap need not wait for the
    next poll; None when Redis is away now: polling the registry's pointer suffices then."""
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(announcement_channel(key_prefix))
    except redis.RedisError as exc:
        log.warning("no model announcements; polling the pointer only", error=str(exc))
        return None
    return pubsub
