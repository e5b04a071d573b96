"""Small helpers for what the CLI prints: tables for people, JSON for scripts, progress."""

from __future__ import annotations

import sys
import time
from typing import Any, Sequence


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    cells = [[str(c) for c in header]] + [[("-" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


class Progress:
    """``done/total (pct, rate)`` on stderr: redrawn in place on a terminal, every few seconds otherwise."""

    def __init__(self, label: str, total: int | None = None, every_s: float = 5.0):
        self.label, self.total, self.every_s = label, total, every_s
        self.start = self.last = time.monotonic()
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        final = self.total is not None and done >= self.total
        if not (self.tty or final or now - self.last >= self.every_s):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        of = f"/{self.total} ({100 * done / self.total:.0f}%)" if self.total else ""
        end = "\n" if final or not self.tty else ""
        print(f"\r{self.label}: {done}{of}, {rate:,.0f}/s", end=end, file=sys.stderr, flush=True)
