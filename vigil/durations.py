"""Human durations (``10d``, ``6h``, ``90s``, ``1h30m``) used by settings and the CLI."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

HOUR_MS = 3_600_000
DAY_MS = 86_400_000

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


@dataclass(frozen=True)
class Span:
    """A stretch of event time that may follow the window: a duration (``6h``), a count of the
    window's bins (``6 bins``) or a share of the window (``10%``). One set of defaults then serves
    10-second windows and 10-day ones."""

    kind: str  # "duration", "bins" or "fraction"
    amount: float  # ms, bins, or a fraction of the window

    def ms(self, window_ms: int, bin_ms: int) -> int:
        if self.kind == "bins":
            return int(round(self.amount * bin_ms))
        if self.kind == "fraction":
            return int(round(self.amount * window_ms))
        return int(round(self.amount))


def parse_span(text: str | int | float | timedelta | Span | dict) -> Span:
    """``6 bins``, ``10%`` or a duration (see :func:`parse_duration`); a ``Span`` as a dict too
    (settings dumped and validated again)."""
    if isinstance(text, Span):
        return text
    if isinstance(text, dict):
        return Span(str(text["kind"]), float(text["amount"]))
    if isinstance(text, str):
        compact = text.strip().lower().replace(" ", "")
        if m := re.fullmatch(r"(\d+(?:\.\d+)?)bins?", compact):
            return Span("bins", float(m.group(1)))
        if m := re.fullmatch(r"(\d+(?:\.\d+)?)%", compact):
            return Span("fraction", float(m.group(1)) / 100)
        try:
            return Span("duration", parse_duration(compact).total_seconds() * 1000)
        except ValueError:
            raise ValueError(f"not a span: {text!r}; use a duration (6h, 30m), a number of the window's bins "
                             "(6 bins) or a share of the window (10%)") from None
    return Span("duration", parse_duration(text).total_seconds() * 1000)


def format_span(span: Span | str | timedelta | dict) -> str:
    span = parse_span(span)
    if span.kind == "bins":
        return f"{span.amount:g} bin{'s' if span.amount != 1 else ''}"
    if span.kind == "fraction":
        return f"{span.amount * 100:g}%"
    return format_duration(timedelta(milliseconds=span.amount))
