"""``vigil models list | promote VERSION | prune --keep N``: the model registry by hand."""

from __future__ import annotations

import argparse
import json

from vigil.cli.args import add_model_dir, positive_int
from vigil.cli.output import table
from vigil.errors import VigilError
from vigil.settings import VigilSettings


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list, promote (roll back) or prune model versions",
                            description="The model registry: versions with their gate verdicts and metrics; "
                                        "`promote VERSION` points CURRENT at any version (a rollback).")
    add_model_dir(parser)
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="every version, newest last")
    listing.add_argument("--json", action="store_true", help="one JSON document instead of a table")
    promote = actions.add_parser("promote", help="make VERSION current (also to roll back)")
    promote.add_argument("version")
    prune = actions.add_parser("prune", help="delete all but the newest N versions (never the current one)")
    prune.add_argument("--keep", type=positive_int, required=True)
    for action in (listing, promote, prune):
        add_model_dir(action, keep_earlier=True)
    parser.set_defaults(handler=_models)


def _models(args: argparse.Namespace, settings: VigilSettings) -> int:
    from vigil.registry import META_FILE, ModelMeta, ModelRegistry  # Keras loads here

    registry = ModelRegistry(args.model_dir or settings.models_path)
    if args.action == "promote":
        registry.promote(args.version)
        print(f"CURRENT → {args.version}")
        return 0
    if args.action == "prune":
        print(json.dumps({"deleted": registry.prune(args.keep)}))
        return 0
    current = registry.current_version()
    rows = []
    for version in registry.versions():
        meta = ModelMeta.model_validate_json((registry.root / version / META_FILE).read_text())
        gate = registry.gate_of(version) or {}
        rows.append({"version": version, "current": version == current, "created_at": meta.created_at,
                     "parent": meta.parent_version, "status": gate.get("status", "-"),
                     "reason": gate.get("reason"), "threshold": meta.threshold.get("value"),
                     "pr_auc": meta.metrics.get("pr_auc"), "code_version": meta.code_version})
    if args.json:
        print(json.dumps({"root": str(registry.root), "current": current, "versions": rows}, indent=2))
    elif not rows:
        raise VigilError(f"no model versions in {registry.root}")
    else:
        print(table([(("* " if r["current"] else "  ") + r["version"], r["created_at"], r["status"],
                      f"{r['threshold']:.4g}", "-" if r["pr_auc"] is None else f"{r['pr_auc']:.3f}")
                     for r in rows], ("version", "created", "gate", "threshold", "pr_auc")))
    return 0
