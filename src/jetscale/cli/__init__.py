"""The ``jetscale`` command: one Typer app; each area adds its sub-commands from its own module.

Errors that jetscale raises on purpose (``JetscaleError``) print one line and exit with status 2.
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from jetscale.errors import JetscaleError

__all__ = ["app", "main"]

app = typer.Typer(
    name="jetscale",
    help="Autoscale JetStream-style LLM servers the way Kubernetes does.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True, highlight=False)


_registered: list[bool] = []


def _register() -> None:
    """Add every area's sub-commands to ``app`` (once; later calls do nothing)."""
    if _registered:
        return
    _registered.append(True)
    from jetscale.cli import demo, hpa, k8s, load, serve, simulate, tune, up

    app.add_typer(hpa.app, name="hpa")
    for area in (serve, load, up, demo, simulate, tune, k8s):
        area.register(app)

def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    _register()
    try:
        app(args=argv, standalone_mode=True)
    except JetscaleError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(2)
