"""The server package has no import circle: app.py assembles the front ends; they depend on contract.py.

Two checks: a static scan of every module's imports (TYPE_CHECKING blocks and function bodies included),
which must form no cycle and must not reach ``jetscale.server.app`` from anything but the package itself;
and a fresh interpreter that imports every front end and finds the app was never loaded.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jetscale.server

PACKAGE = Path(jetscale.server.__file__).parent
APP = "jetscale.server.app"


def _modules() -> dict[str, Path]:
    return {f"jetscale.server.{path.stem}": path for path in sorted(PACKAGE.glob("*.py")) if path.stem != "__init__"}


def _server_imports(path: Path) -> set[str]:
    """The ``jetscale.server.*`` modules ``path`` imports anywhere in its body."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            # ``from jetscale.server import http`` imports the submodule; ``from jetscale.server.x import y`` x
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        out |= {name for name in names if name in MODULES}
    return out


MODULES = _modules()
FRONT_ENDS = ("http", "openai_api", "grpc_service", "sidecar", "vllm_api")


def test_the_scan_sees_the_app_reach_every_front_end() -> None:
    # the scan works: it finds the imports that must be there (http.py mounts the OpenAI and sidecar routes)
    reached, todo = set(), [APP]
    while todo:
        for name in _server_imports(MODULES[todo.pop()]) - reached:
            reached.add(name)
            todo.append(name)
    assert {f"jetscale.server.{name}" for name in FRONT_ENDS} <= reached
    assert {"jetscale.server.http", "jetscale.server.grpc_service", "jetscale.server.vllm_api"} <= _server_imports(
        MODULES[APP]
    )
    for name in FRONT_ENDS:
        assert "jetscale.server.contract" in _server_imports(MODULES[f"jetscale.server.{name}"]), name


def test_no_module_of_the_package_imports_the_app() -> None:
    importers = sorted(name for name, path in MODULES.items() if name != APP and APP in _server_imports(path))
    assert importers == []


def test_the_package_imports_form_no_cycle() -> None:
    graph = {name: _server_imports(path) - {name} for name, path in MODULES.items()}
    done: set[str] = set()

    def visit(name: str, trail: tuple[str, ...]) -> None:
        assert name not in trail, f"import cycle: {' -> '.join((*trail[trail.index(name) :], name))}"
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, (*trail, name))
        done.add(name)

    for name in sorted(graph):
        visit(name, ())


def test_importing_every_front_end_alone_leaves_the_app_unloaded() -> None:
    modules = [f"jetscale.server.{name}" for name in (*FRONT_ENDS, "contract", "vllm_metrics", "vllm_protocol")]
    script = "import importlib, sys\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules)
    script += f"print({APP!r} in sys.modules)\n"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
