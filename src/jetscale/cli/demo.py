"""``jetscale demo``: what ``make demo`` runs.

A real local fleet (``jetscale up``'s) of ``v5e-8/llama2-7b`` replicas at speed 10, driven through its
router by ``jetscale load``'s generator with a load that ramps up, holds, spikes and falls, so that the
HPA (``examples/demo/hpa.yaml``) scales up and, once its 300 s window has passed, back down. About two
minutes on two cores. Writes ``results/demo/report.html`` (PNG plots of the timeline, summary, scaling
events), ``timeline.csv`` and the generator's reports, and prints the summary. See docs/fleet.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["demo", "register"]


def demo(
    out: Annotated[Path, typer.Option("--out", help="Where the report goes.")] = Path("results/demo"),
    prometheus: Annotated[
        bool, typer.Option("--prometheus", help="Metrics through a real Prometheus instead of direct scrapes.")
    ] = False,
    speed: Annotated[float, typer.Option("--speed", help="Time compression (the plan is sized for 10).")] = 10.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of arrivals, sizes and text.")] = 0,
) -> None:
    """Run the autoscaling demo: a real fleet scales up and down under a load ramp, plateau, spike and fall."""
    from jetscale.fleet.demo import DemoPlan, run_demo, summary_table

    plan = DemoPlan(prometheus=prometheus, speed=speed, seed=seed)
    console = Console(highlight=False)
    console.print(
        f"jetscale demo: {plan.preset} (batch {plan.batch_size}) at speed {plan.speed:g}x, HPA {plan.hpa_path.name}, "
        f"{plan.duration_s:g} model s of load ({plan.duration_s / plan.speed:.0f} wall s)"
    )
    result = asyncio.run(run_demo(plan, out, console=console))
    console.print(summary_table(result))
    console.print(f"report: {result.report}")
    if result.ended != "task":
        console.print(f"stopped early ({result.ended}): the report covers the run so far")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``jetscale`` app."""
    app.command(name="demo")(demo)
