"""``jetscale demo``: what ``make demo`` runs.

A real local fleet (``jetscale up``'s) of ``v5e-8/llama2-7b`` replicas at speed 10, driven through its
router by ``jetscale load``'s generator with a load that ramps up, holds, spikes and falls, so that the
HPA (``examples/demo/hpa.yaml``) scales up and, once its 300 s window has passed, back down. ``--kind
vllm`` runs the same with vLLM replicas (``vllm-h100/llama3.1-8b``) scaled on vLLM's queue
(``examples/demo/hpa-vllm.yaml``). About two
minutes on two cores. Writes ``results/demo/report.html`` (PNG plots of the timeline, summary, scaling
events), ``timeline.csv`` and the generator's reports, and prints the summary. See docs/fleet.md.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

__all__ = ["demo", "register"]


def demo(
    out: Annotated[Path, typer.Option("--out", help="Where the report goes.")] = Path("results/demo"),
    prometheus: Annotated[
        bool, typer.Option("--prometheus", help="Metrics through a real Prometheus instead of direct scrapes.")
    ] = False,
    speed: Annotated[float, typer.Option("--speed", help="Time compression (the plan is sized for 10).")] = 10.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of arrivals, sizes and text.")] = 0,
    kind: Annotated[
        str, typer.Option("--kind", help="jetstream (v5e-8 Llama-2-7B) or vllm (H100 Llama-3.1-8B, vLLM's queue).")
    ] = "jetstream",
    json_out: Annotated[
        bool, typer.Option("--json", help="The summary and scaling events as JSON on stdout (the rest on stderr).")
    ] = False,
) -> None:
    """Run the autoscaling demo: a real fleet scales up and down under a load ramp, plateau, spike and fall."""
    from dataclasses import asdict

    from jetscale.cli.output import make_console, print_json
    from jetscale.errors import ConfigError
    from jetscale.fleet.demo import DemoPlan, run_demo, summary_table

    if kind not in ("jetstream", "vllm"):
        raise ConfigError(f"'--kind' must be jetstream or vllm (got {kind!r})")
    plan = DemoPlan(prometheus=prometheus, speed=speed, seed=seed)
    if kind == "vllm":
        plan = DemoPlan.vllm(prometheus=prometheus, speed=speed, seed=seed)
    console = make_console(stderr=json_out)
    console.print(
        f"jetscale demo: {plan.preset} (batch {plan.batch_size}) at speed {plan.speed:g}x, HPA {plan.hpa_path.name}, "
        f"{plan.duration_s:g} model s of load ({plan.duration_s / plan.speed:.0f} wall s)"
    )
    result = asyncio.run(run_demo(plan, out, console=console))
    if json_out:
        print_json({
            "command": "demo", "ended": str(result.ended), "report": str(result.report),
            "summary": result.summary, "failed_requests": result.failed_requests,
            "scaling_events": [asdict(e) for e in result.timeline.events],
        })  # fmt: skip
    console.print(summary_table(result))
    console.print(f"report: {result.report}")
    if result.ended != "task":
        console.print(f"stopped early ({result.ended}): the report covers the run so far")


def register(app: typer.Typer) -> None:
    """Add ``demo`` to the ``jetscale`` app."""
    app.command(name="demo")(demo)
