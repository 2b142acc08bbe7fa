"""The package's rooms import each other in one direction only: no cycles.

Every module of ``neural_engine`` is parsed (not imported) and each import it makes,
at the top or inside a function, becomes an edge to the module it names. The edges
are then taken at two grains: between modules, and between rooms (a subpackage such as
``sampler``, or one top-level module such as ``neural_engine.schema``). A cycle at
either grain fails, naming the import lines that close it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "neural_engine"


def modules() -> dict[str, Path]:
    """Dotted name → file of every module of the package."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_edges(mods: dict[str, Path]) -> dict[str, dict[str, str]]:
    """module → {module it imports: 'file:line' of the first such import}."""

    def known(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, dict[str, str]] = defaultdict(dict)
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                target = known(name)
                if target is not None and target != mod:
                    where = f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
                    edges[mod].setdefault(target, where)
    return edges


def room(mod: str) -> str:
    parts = mod.split(".")
    if len(parts) > 1 and (PACKAGE / parts[1]).is_dir():
        return parts[1]
    return mod


def cycles(edges: dict[str, dict[str, str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            visit(v)
    return found


def explain(component: list[str], edges: dict[str, dict[str, str]]) -> str:
    inside = set(component)
    lines = [f"  {a} -> {b} ({where})" for a in component
             for b, where in sorted(edges.get(a, {}).items()) if b in inside]
    return " <-> ".join(component) + "\n" + "\n".join(lines)


def test_no_two_modules_import_each_other_even_through_others():
    edges = import_edges(modules())
    found = cycles(edges)
    assert not found, "module import cycles:\n" + "\n".join(explain(c, edges) for c in found)


def test_no_two_rooms_import_each_other_even_through_others():
    rooms: dict[str, dict[str, str]] = defaultdict(dict)
    for a, targets in import_edges(modules()).items():
        for b, where in targets.items():
            if room(a) != room(b):
                rooms[room(a)].setdefault(room(b), where)
    found = cycles(rooms)
    assert not found, "room import cycles:\n" + "\n".join(explain(c, rooms) for c in found)


def test_the_graph_sees_relative_and_function_level_imports(tmp_path):
    """The parser itself: a cycle hidden in a function body or a relative import counts."""
    edges = {"a": {"b": "x"}, "b": {"c": "y"}, "c": {"a": "z"}, "d": {"a": "w"}}
    assert cycles(edges) == [["a", "b", "c"]]
    mods = import_edges(modules())
    assert "neural_engine.errors" in mods["neural_engine.schema"]


def test_pyproject_lists_every_package_and_installs_kernels_under_the_engines_name():
    try:
        import tomllib
    except ImportError:                     # Python 3.10
        import tomli as tomllib

    root = PACKAGE.parent
    setup = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    tree = sorted(".".join(p.parent.relative_to(root).parts)
                  for top in ("neural_engine", "games") for p in (root / top).rglob("__init__.py"))
    listed = setup["packages"]
    assert sorted(p for p in listed if p != "neural_engine_kernels") == tree
    assert "neural_engine_kernels" in listed and "kernels" not in listed
    assert setup["package-dir"] == {"neural_engine_kernels": "kernels"}
