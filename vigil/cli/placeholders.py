"""Commands named in DESIGN.md whose implementation lands with later issues."""

from __future__ import annotations

import argparse

from vigil.errors import VigilError

PENDING = {
    "stream": "run the streamer: Kafka → Redis rolling buffers → batched scoring → scores and alerts",
}


def register(sub: argparse._SubParsersAction) -> None:
    for name, help_text in PENDING.items():
        parser = sub.add_parser(name, help=f"{help_text} (not implemented yet)", add_help=True)
        parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
        parser.set_defaults(handler=_pending, pending=name)


def _pending(args: argparse.Namespace, _settings: object) -> int:
    raise VigilError(f"`vigil {args.pending}` is not implemented yet")
