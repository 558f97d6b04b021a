"""The lazy public names: each package's ``__init__.pyi`` (which ``lazy_loader.attach_stub`` reads
at import time, and editors and type checkers read too) lists exactly what the package exports,
and every name in it resolves."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mlkit"
PACKAGES = sorted(p.parent.name for p in ROOT.glob("*/__init__.pyi"))


def _stub(package: str) -> tuple[set[str], list[str]]:
    tree = ast.parse((ROOT / package / "__init__.pyi").read_text())
    imported: set[str] = set()
    listed: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            imported.update(a.asname or a.name for a in node.names)
        elif isinstance(node, ast.Assign) and node.targets[0].id == "__all__":  # type: ignore[attr-defined]
            listed = ast.literal_eval(node.value)
    return imported, listed


def test_every_lazy_package_has_a_stub():
    lazy = sorted(p.parent.name for p in ROOT.glob("*/__init__.py")
                  if "lazy_loader" in p.read_text())
    assert lazy and PACKAGES == lazy


@pytest.mark.parametrize("package", PACKAGES)
def test_the_stub_lists_what_the_package_exports_and_every_name_resolves(package):
    imported, listed = _stub(package)
    assert imported == set(listed) and len(listed) == len(set(listed))
    module = importlib.import_module(f"mlkit.{package}")
    assert sorted(module.__all__) == sorted(listed)
    for name in listed:
        assert getattr(module, name) is not None, f"mlkit.{package}.{name}"
