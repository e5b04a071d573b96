"""Human durations (``10d``, ``6h``, ``90s``, ``1h30m``) used by settings and the CLI."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": "milliseconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse ``10d``/``6h``/``10s``/``1h30m`` (or a number of seconds) into a timedelta.

    Raises ValueError naming the accepted units, so a CLI or settings error says how to fix it.
    """
    if isinstance(text, timedelta):
        return text
    if isinstance(text, (int, float)):
        return timedelta(seconds=float(text))
    compact = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", compact):
        return timedelta(seconds=float(compact))
    parts = _PART.findall(compact)
    if not parts or "".join(n + u for n, u in parts) != compact:
        raise ValueError(
            f"not a duration: {text!r}; use a number with a unit, e.g. 10d, 6h, 30m, 10s, 500ms, 1h30m"
        )
    return sum((timedelta(**{_UNITS[u]: float(n)}) for n, u in parts), timedelta())


def format_duration(value: timedelta) -> str:
    """The shortest ``parse_duration`` spelling of ``value`` (``timedelta(days=10)`` → ``10d``)."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)
