"""The structure drawn from the imports of pushes and policy: no circle between their modules, pushes never
imports control (control builds on pushes), policy imports neither, core imports none of them; and no module
of theirs writes a loop row (only ``bihuan/loops`` does)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import bihuan

ROOT = Path(bihuan.__file__).parent
OWN = ("bihuan.pushes", "bihuan.policy")


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if "tests" in parts or "migrations" in parts:
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ``bihuan`` a module imports (at any depth of its code: a function's import counts)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known}
    found.discard(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]], nodes: set[str]) -> list[str]:
    """A circle among ``nodes`` (as a path that comes back to its start), or []."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str]:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph.get(n, ()) & nodes):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return []

    for n in sorted(nodes):
        if n not in state and (found := visit(n)):
            return found
    return []


def test_no_module_of_pushes_or_policy_imports_in_a_circle():
    graph = _graph()
    assert _cycle(graph, {n for n in graph if n.startswith(OWN)}) == []


def test_the_arrows_between_packages_point_one_way():
    graph = _graph()

    def arrows(source: str, target: str) -> list[tuple[str, str]]:
        return sorted((a, b) for a, bs in graph.items() if a.startswith(source) for b in bs if b.startswith(target))

    assert arrows("bihuan.pushes", "bihuan.control") == []  # control builds on pushes, not the other way
    assert arrows("bihuan.policy", "bihuan.pushes") == [] and arrows("bihuan.policy", "bihuan.control") == []
    assert arrows("bihuan.core", "bihuan.pushes") == [] and arrows("bihuan.core", "bihuan.policy") == []
    assert arrows("bihuan.control", "bihuan.policy")  # control reads the protocol editions from policy itself


WRITES = re.compile(r"\bLoop(Event)?\.objects\b[^\n]*\.(create|bulk_create|get_or_create|update_or_create|update|"
                    r"delete)\(|\bLoop(Event)?\(|INSERT INTO \{(loop|event)")


def test_pushes_and_policy_write_no_loop_rows_themselves():
    modules = _modules()
    offenders = [f"{name}: {m.group(0)}" for name, path in modules.items() if name.startswith(OWN)
                 for m in WRITES.finditer(path.read_text(encoding="utf-8"))]
    assert offenders == []
