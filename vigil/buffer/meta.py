"""The sensor meta hash: its field names and their parsing, in one place.

Each sensor's buffer has a small Redis hash beside its chunks (``BufferLayout.meta_key``). Three
parties write it:

* the Lua apply script (``vigil/buffer/scripts.py``): the newest event time, events stored
  (``n``) and since the last score (``pending``), the grid the bins were written on (``grid``),
  events written to the resend tail (``tail``), the latest label, the partition the sensor first
  came from, when it last set the keys' TTL (``ttl_at``), and per events partition the last
  applied offset (``o:<p>``) and the recent too-old offsets (``old:<p>``);
* the streamer, after a score: ``pending`` back to 0, ``scored_end``, the explanation, and the
  alert state (:class:`vigil.alerts.AlertState`, fields ``ALERT_FIELDS``);
* the streamer, after a silence alert or its clear (``SILENT_FIELDS``, ``streamer/silence.py``);
* the alert journal, settling a dead owner's alerts (the same alert and silence state).

Readers: :class:`~vigil.buffer.RollingBuffer` (states, ``inspect``), the alert policy, the trainer's
sample. The Lua script cannot import Python names, so ``tests/unit/test_sensor_meta.py`` checks
that every field it reads or writes is one of these.
"""

from __future__ import annotations

NEWEST = "newest"  # the newest event time (ms)
STORED = "n"  # events in the window's bins
GRID = "grid"  # the bins string's layout (BufferLayout.grid): another one rebuilds the bins
TAIL = "tail"  # events ever written to the resend tail (the next slot is this modulo its size)
PENDING = "pending"  # events applied since the last score
LABEL = "label"  # the latest labelled event's label ("0"/"1")
HOME_PARTITION = "part"  # the events partition the sensor first arrived on
TTL_AT = "ttl_at"  # when the apply last set the sensor's keys' TTL (Redis clock, ms)
APPLIED_PREFIX = "o:"  # o:<partition>: the last offset applied from that partition
TOO_OLD_PREFIX = "old:"  # old:<partition>: comma-separated offsets of its latest too-old events

SCORED_END = "scored_end"  # window_end of the last score
EXPLANATION = "explanation"  # the last score's explanation (JSON)

ALERT_ID = "alert_id"
ALERT_END = "alert_end"
ABOVE_N = "above_n"
ABOVE_SINCE = "above_since"
BELOW_SINCE = "below_since"
ALERT_FIELDS = (ALERT_ID, ALERT_END, ABOVE_N, ABOVE_SINCE, BELOW_SINCE)

SILENT_ID = "silent_id"  # the open silence alert, "" when none
SILENT_END = "silent_end"  # the newest event time that silence alert was about: a newer event clears it
SILENT_FIELDS = (SILENT_ID, SILENT_END)

WRITTEN_BY_APPLY = (NEWEST, STORED, PENDING, GRID, TAIL, LABEL, HOME_PARTITION, TTL_AT)
READ_BY_APPLY = (SCORED_END,)  # a scoring point already scored is not a point again
PREFIXES = (APPLIED_PREFIX, TOO_OLD_PREFIX)


def text(value: bytes | str) -> str:
    """A Redis reply as text: bytes unless the client decodes responses."""
    return value.decode() if isinstance(value, bytes) else value


def text_fields(mapping: dict) -> dict[str, str]:
    """A hash read from Redis (``HGETALL``) as text keys and values."""
    return {text(k): text(v) for k, v in mapping.items()}


def applied_offsets(meta: dict[str, str]) -> dict[int, int]:
    """partition → the last offset applied from it, for every partition the sensor came from."""
    return {int(k[len(APPLIED_PREFIX):]): int(v) for k, v in meta.items() if k.startswith(APPLIED_PREFIX)}


def scored(window_end: int, explanation_json: str | None) -> dict[str, str | int]:
    """What a score writes besides the alert state: nothing pending, where the window ended, and why."""
    fields: dict[str, str | int] = {PENDING: 0, SCORED_END: window_end}
    if explanation_json is not None:
        fields[EXPLANATION] = explanation_json
    return fields


def int_field(meta: dict[str, str], name: str, default: int = 0) -> int:
    value = meta.get(name)
    return int(value) if value else default
