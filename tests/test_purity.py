"""The pure cores do no I/O and read no clock: a check on their imports (STYLE.md, "Pure cores").

``hpa``, ``engine`` and ``load.workload`` (with the other pure load modules) may import the standard
library's pure parts, numpy, yaml (parsing text only) and, of jetscale, only each other, ``errors``,
``units`` and ``safeload`` (parsing with limits; itself checked here). A module that imports a clock, a
socket, a process or a shell module fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).parents[1] / "src" / "jetscale"
PURE = sorted(
    [*SRC.joinpath("hpa").glob("*.py"), *SRC.joinpath("engine").glob("*.py"), *SRC.joinpath("controllers").glob("*.py")]
    + [SRC / "load" / name for name in ("workload.py", "arrivals.py", "trace.py") if (SRC / "load" / name).exists()]
    + [SRC / "errors.py", SRC / "units.py", SRC / "safeload.py"]
)
FORBIDDEN = {
    "time",
    "asyncio",
    "socket",
    "subprocess",
    "threading",
    "multiprocessing",
    "signal",
    "random",
    "urllib",
    "http",
    "aiohttp",
    "grpc",
    "requests",
    "shutil",
}
JETSCALE_ALLOWED = (
    "jetscale.errors",
    "jetscale.units",
    "jetscale.safeload",
    "jetscale.hpa",
    "jetscale.engine",
    "jetscale.controllers",
    "jetscale.load.workload",
    "jetscale.load.arrivals",
    "jetscale.load.trace",
)


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(SRC)))
def test_pure_module_imports(path: Path) -> None:
    for name in _imports(path):
        top = name.split(".")[0]
        assert top not in FORBIDDEN, f"{path.name} imports {name}"
        if top == "jetscale":
            assert name.startswith(JETSCALE_ALLOWED), f"{path.name} imports {name}"


@pytest.mark.parametrize("path", PURE, ids=lambda p: str(p.relative_to(SRC)))
def test_pure_module_reads_no_environment_or_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    for needle in (
        "os.environ",
        "getenv(",
        ".now(",
        "utcnow(",
        "today(",
        "open(",
        "read_text(",
        "write_text(",
        "np.random.seed",
        "default_rng()",
    ):
        assert needle not in text, f"{path.name} uses {needle}"
