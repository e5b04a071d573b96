"""``vigil config show``: the effective configuration, secrets masked."""

from __future__ import annotations

import argparse
import json

import yaml

from vigil.settings import VigilSettings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("config", help="show the effective configuration")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show",
        help="print the configuration in effect (defaults, YAML, .env and VIGIL_* merged; secrets masked)",
    )
    show.add_argument("--json", action="store_true", help="print JSON instead of YAML")
    show.set_defaults(handler=_show)


def _show(args: argparse.Namespace, settings: VigilSettings) -> int:
    data = settings.masked()
    print(json.dumps(data, indent=2) if args.json else yaml.safe_dump(data, sort_keys=False).rstrip())
    return 0
