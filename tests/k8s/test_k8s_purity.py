"""The renderers are pure: no clock, no I/O, no network. Only ``validate`` may run promtool and read schemas."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import jetscale.k8s

PACKAGE = Path(jetscale.k8s.__file__).parent
IMPURE = {"validate.py"}
FORBIDDEN = {"time", "datetime", "asyncio", "socket", "subprocess", "os", "random", "shutil", "tempfile", "urllib"}


@pytest.mark.parametrize("module", sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in IMPURE))
def test_renderer_imports_no_clock_or_io(module: str) -> None:
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN, f"{module} imports {sorted(imported & FORBIDDEN)}"
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "open" not in calls and "print" not in calls, module


def test_schemas_ship_with_the_package() -> None:
    assert sorted(p.name for p in (PACKAGE / "schemas").glob("*.json")) == ["podmonitoring.json", "scaledobject.json"]
