"""Print the image's runtime requirements, one per line: the ``[project] dependencies`` of
pyproject.toml with TensorFlow swapped for the distribution chosen at build time, plus extras.

    python requirements.py pyproject.toml tensorflow-cpu               # the default, CPU image
    python requirements.py pyproject.toml "tensorflow[and-cuda]"       # NVIDIA GPU image
    python requirements.py pyproject.toml tensorflow-cpu "jax[cuda12]" # GPU through KERAS_BACKEND=jax

``tensorflow-cpu`` is the same ``tensorflow`` module without the CUDA kernels (a far smaller
wheel), but pip cannot know that it satisfies ``tensorflow>=...``; so the image installs these
requirements, then the Vigil wheel itself with ``--no-deps``. The version bound stays pyproject's.
"""

from __future__ import annotations

import re
import sys
import tomllib

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*(.*)$")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(pyproject: dict, tensorflow: str, extra: list[str]) -> list[str]:
    swapped, out = False, []
    for requirement in pyproject["project"]["dependencies"]:
        match = _REQUIREMENT.match(requirement)
        if match is None:
            raise SystemExit(f"cannot read the requirement {requirement!r}")
        if _canonical(match.group(1)) == "tensorflow":
            out.append(f"{tensorflow}{match.group(3)}")  # keep the version bound, e.g. >=2.21
            swapped = True
        else:
            out.append(requirement)
    if not swapped:
        raise SystemExit("pyproject.toml does not depend on tensorflow: nothing to swap")
    return out + extra


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    with open(argv[0], "rb") as handle:
        pyproject = tomllib.load(handle)
    print("\n".join(runtime_requirements(pyproject, argv[1], argv[2:])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
