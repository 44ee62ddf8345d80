"""The structure drawn from the imports of every module of ``bihuan``: no circle anywhere, and the arrows between
packages point one way — core imports no app; the register builds only on core (and hands a leaving person's
loops back through the engine); policy builds on the register; pushes on policy; control on pushes."""

from __future__ import annotations

import ast
from pathlib import Path

import bihuan

ROOT = Path(bihuan.__file__).parent


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


def test_no_module_imports_in_a_circle():
    graph = _graph()
    assert _cycle(graph, set(graph)) == []


def test_the_arrows_between_packages_point_one_way():
    graph = _graph()

    def arrows(source: str, *targets: str) -> list[tuple[str, str]]:
        return sorted((a, b) for a, bs in graph.items() if a.startswith(source + ".") or a == source
                      for b in bs if b.startswith(tuple(t + "." for t in targets)) or b in targets)

    apps = ("bihuan.register", "bihuan.notify", "bihuan.loops", "bihuan.directives", "bihuan.policy",
            "bihuan.pushes", "bihuan.control", "bihuan.demo")
    assert arrows("bihuan.core", *apps) == []
    assert arrows("bihuan.register", *[a for a in apps if a not in ("bihuan.register", "bihuan.loops")]) == []
    assert {b for _a, b in arrows("bihuan.register", "bihuan.loops")} <= {"bihuan.loops", "bihuan.loops.engine"}  # hand back
    assert arrows("bihuan.loops", "bihuan.directives", "bihuan.pushes", "bihuan.control", "bihuan.policy") == []
    assert arrows("bihuan.policy", "bihuan.pushes", "bihuan.control") == []
    assert arrows("bihuan.pushes", "bihuan.control") == []  # control builds on pushes, not the other way
    assert arrows("bihuan.control", "bihuan.policy")  # control reads the protocol editions from policy itself


def test_the_structure_test_sees_a_circle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}, {"a", "b", "c"}) == ["a", "b", "c", "a"]
