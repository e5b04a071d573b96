"""The layout's import rules (docs/architecture.md): no module imports one that imports it back
(lazy imports inside functions count), and the data path's stages only import earlier ones."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("vigil", "streamer", "trainer")
# The data path, first stage first: a stage may import the ones before it, never one after.
STAGES = ("vigil.events", "vigil.buffer", "vigil.features", "vigil.model", "vigil.alerts")


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """module → the project modules it imports, at the top or inside functions."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:  # `from pkg import module` names the submodule itself
                    full = f"{node.module}.{alias.name}"
                    targets.add(full if full in modules else node.module)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _is_package_init(graph_key: str) -> bool:
    return (ROOT / Path(*graph_key.split(".")) / "__init__.py").exists()


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    # A package's __init__ re-exporting its submodules is not a cycle a reader trips over.
    graph = {m: {t for t in ts if not (_is_package_init(t) and m.startswith(t + "."))} for m, ts in graph.items()}
    assert _cycles(graph) == []


def test_the_checker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_stages_import_only_earlier_stages_and_the_library_never_the_jobs():
    def stage(module: str) -> int | None:
        return next((i for i, s in enumerate(STAGES) if module == s or module.startswith(s + ".")), None)

    upward = []
    for module, targets in import_graph().items():
        for target in targets:
            here, there = stage(module), stage(target)
            if here is not None and there is not None and there > here:
                upward.append(f"{module} → {target}")
            if module.startswith("vigil.") and not module.startswith("vigil.cli") and target.split(".")[0] in ("streamer", "trainer"):
                upward.append(f"{module} → {target}")
    assert upward == []
