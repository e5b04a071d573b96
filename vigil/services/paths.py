"""Where the local services keep their files, and where the checkout's deploy/ files are."""

from __future__ import annotations

from pathlib import Path

from vigil.errors import VigilError

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_LOCAL = REPO_ROOT / "deploy" / "local"


def deploy_file(relative: str) -> Path:
    path = DEPLOY_LOCAL / relative
    if not path.is_file():
        raise VigilError(
            f"{path} not found: `vigil services` needs the source checkout's deploy/local/ "
            "(install Vigil with `pip install -e .` from a clone)"
        )
    return path
