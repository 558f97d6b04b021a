"""The layering of mlkit's modules, read from their source (ast), not from a running import.

- Compute packages never reach the views: nothing under mlkit/{data,train,tune,jobs,monitor,serve,
  track,cluster} imports mlkit.widgets or mlkit.magics, at module level or inside a function,
  nor names them in a string (``importlib.import_module("mlkit.widgets...")``) or as an
  attribute (``mlkit.widgets.x``). They hand state objects to mlkit._display, which finds the
  widget that draws them.
- No import cycle among mlkit's modules at module level (imports inside functions and under
  ``if TYPE_CHECKING:`` do not run at import time and are left out).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mlkit"
COMPUTE = ("data", "train", "tune", "jobs", "monitor", "serve", "track", "cluster")
VIEWS = ("mlkit.widgets", "mlkit.magics")


def _name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _package(module: str) -> str:
    return module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]


def _absolute(module: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = _package(module).split(".")
    base = base[: len(base) - node.level + 1]
    return ".".join([*base, node.module] if node.module else base)


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The modules an import statement names: ``from a import b`` is ``a.b`` when that is a
    module, else ``a``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = _absolute(module, node)
    out = [base]
    out += [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
    return out


def _is_view(name: str) -> bool:
    return any(name == v or name.startswith(v + ".") for v in VIEWS)


def _view_uses(module: str, tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        where = f"{module}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import | ast.ImportFrom):
            found += [f"{where} imports {t}" for t in _targets(module, node) if _is_view(t)]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if _is_view(node.value.split(":")[0]):
                found.append(f"{where} names {node.value!r}")
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "mlkit"
            and node.attr in ("widgets", "magics")
        ):
            found.append(f"{where} uses mlkit.{node.attr}")
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: top level, and inside module-level
    if/try/with blocks, but not in functions, classes' methods or ``if TYPE_CHECKING:``."""
    out: list[ast.Import | ast.ImportFrom] = []
    for stmt in body:
        if isinstance(stmt, ast.Import | ast.ImportFrom):
            out.append(stmt)
        elif isinstance(stmt, ast.If):
            if not _is_type_checking(stmt.test):
                out += _module_level_imports(stmt.body)
            out += _module_level_imports(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, stmt.orelse, stmt.finalbody):
                out += _module_level_imports(block)
            for handler in stmt.handlers:
                out += _module_level_imports(handler.body)
        elif isinstance(stmt, ast.With):
            out += _module_level_imports(stmt.body)
        elif isinstance(stmt, ast.ClassDef):  # a class body runs at import time
            out += _module_level_imports(stmt.body)
    return out


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def import_graph() -> dict[str, set[str]]:
    """module -> the mlkit modules importing it runs at once. Importing ``a.b.c`` also runs
    ``a`` and ``a.b`` (their ``__init__``), except the importer's own packages, which are
    already being imported."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        own = set(_ancestors(module))
        edges: set[str] = set()
        for node in _module_level_imports(tree.body):
            for target in _targets(module, node):
                for name in [*_ancestors(target), target]:
                    if name in MODULES and name != module and name not in own:
                        edges.add(name)
        graph[module] = edges
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def test_the_module_list_is_read():
    # the checks below mean nothing if the walk found no modules
    assert "mlkit._display" in MODULES and "mlkit.tune._tune" in MODULES
    assert len([m for m in MODULES if m.split(".")[1:2] in [[p] for p in COMPUTE]]) > 50


@pytest.mark.parametrize("package", COMPUTE)
def test_compute_packages_never_reach_widgets_or_magics(package):
    uses = []
    for module, path in MODULES.items():
        if module == f"mlkit.{package}" or module.startswith(f"mlkit.{package}."):
            uses += _view_uses(module, ast.parse(path.read_text(), str(path)))
    assert not uses, (
        "compute modules hand state to mlkit._display instead of importing views:\n"
        + "\n".join(uses)
    )


def test_no_import_cycles_at_module_level():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles among mlkit modules: " + "; ".join(
        " <-> ".join(c) for c in cycles
    )


def test_the_checks_see_a_violation_and_a_cycle():
    # the detectors themselves: a function-level widget import, a string lookup, and a cycle
    code = (
        "import mlkit\n"
        "def f():\n    from mlkit.widgets.tune import TuneWidget\n"
        "g = __import__('importlib').import_module('mlkit.magics')\n"
        "h = mlkit.widgets\n"
    )
    assert len(_view_uses("mlkit.tune._x", ast.parse(code))) == 3
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_every_drawn_state_names_a_real_class_and_widget():
    # mlkit._display.WIDGETS is looked up by strings: a renamed class must fail here, not in
    # a user's notebook
    import importlib

    from mlkit._display import WIDGETS

    for state, spec in WIDGETS.items():
        module, _, cls = state.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), cls), type), state
        wmodule, _, wcls = spec.partition(":")
        drawn = getattr(importlib.import_module(wmodule), wcls)
        assert callable(getattr(drawn, "show", None)), f"{spec} has no show()"


def _public_modules() -> set[str]:
    """Each package's __init__ and the modules it exports from: explicit imports, and the
    submodules its lazy_loader stub (``__init__.pyi``) imports from."""
    out = set()
    for module, path in MODULES.items():
        if path.name != "__init__.py" or any(p.startswith("_") for p in module.split(".")):
            continue  # a private package (data._prep) is public only through what exports it
        out.add(module)
        tree = ast.parse(path.read_text(), str(path))
        for node in _module_level_imports(tree.body):
            out.update(t for t in _targets(module, node) if t in MODULES)
        stub = path.with_suffix(".pyi")  # lazy_loader.attach_stub: the stub names the exports
        if stub.exists():
            for node in ast.parse(stub.read_text(), str(stub)).body:
                if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                    out.add(f"{module}.{node.module}")
    return out


def test_mypy_checks_every_public_module():
    import tomllib

    config = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())["tool"]["mypy"]
    checked = {_name(ROOT.parent / f) for f in config["files"]}
    missing = sorted(m for m in _public_modules() if m not in checked and m.startswith("mlkit"))
    assert "mlkit.tune._tune" in _public_modules()
    assert not missing, f"add to [tool.mypy] files in pyproject.toml: {missing}"
