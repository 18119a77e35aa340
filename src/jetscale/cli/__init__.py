"""The ``jetscale`` command: one Typer app; each area adds its sub-commands from its own module.

Errors that jetscale raises on purpose (``JetscaleError``) print one line and exit with status 2.
Every command writes through ``jetscale.cli.output`` (tables fitted to a terminal, whole in files and
pipes; ``--json`` on every command that prints a result) and stops on Ctrl-C as ``jetscale.cli.interrupt``
says (partial results, status 130).
"""

from __future__ import annotations

import sys

import typer

from jetscale.cli.output import make_console
from jetscale.errors import JetscaleError

__all__ = ["app", "main"]

app = typer.Typer(
    name="jetscale",
    help="Autoscale JetStream-style LLM servers the way Kubernetes does.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = make_console(stderr=True)


_registered: list[bool] = []


def _register() -> None:
    """Add every area's sub-commands to ``app`` (once; later calls do nothing)."""
    if _registered:
        return
    _registered.append(True)
    from jetscale.cli import demo, hpa, k8s, load, predict, profile, serve, simulate, tune, up

    app.add_typer(hpa.app, name="hpa")
    for area in (serve, load, up, demo, simulate, tune, k8s, profile, predict):
        area.register(app)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script."""
    _register()
    try:
        app(args=argv, standalone_mode=True)
    except JetscaleError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(2)
