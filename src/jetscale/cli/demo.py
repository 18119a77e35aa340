"""``jetscale demo``: what ``make demo`` runs.

Until the local fleet exists, the demo shows the HPA core at work on the shipped manifests: the effective
spec of each example, then ten minutes of syncs (every 15 s) of the prefill-backlog HPA against a
scripted queue of waiting requests (ramp, plateau, spike, fall) that spreads evenly over the ready
replicas. New replicas take 60 s to start and report no metric meanwhile, as pending pods do. Each row is
one reconcile of ``jetscale.hpa``; the arithmetic of the first scale-up is printed in full.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from jetscale.cli.hpa import load_hpa_file, read_manifest, spec_table
from jetscale.hpa.controller import Decision, HorizontalController, Observation
from jetscale.hpa.types import MetricReading, Pod, PodMetric, PodMetrics, PodPhase

__all__ = ["demo", "queued_requests"]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "hpa"
SYNC_S = 15.0
STARTUP_S = 60.0
DURATION_S = 1200.0


def queued_requests(t_s: float) -> float:
    """Requests waiting for prefill across the fleet: ramp to 30, plateau, spike to 60, fall to 0."""
    if t_s < 180:
        return 30.0 * t_s / 180
    if t_s < 360:
        return 30.0
    if t_s < 450:
        return 60.0
    if t_s < 600:
        return 60.0 * (600 - t_s) / 150
    return 0.0


def _observe(started_s: dict[str, float], now_s: float) -> Observation:
    ready = [name for name, t in started_s.items() if now_s - t >= STARTUP_S]
    pods = tuple(
        Pod(
            name=name,
            phase=PodPhase.RUNNING if name in ready else PodPhase.PENDING,
            start_time_s=t,
            ready_transition_s=t + STARTUP_S,
        )
        for name, t in started_s.items()
    )
    per_pod = queued_requests(now_s) / max(1, len(ready))
    reading: MetricReading = PodMetrics(
        values={name: PodMetric(value_milli=round(per_pod * 1000), timestamp_s=now_s) for name in ready}
    )
    return Observation(spec_replicas=len(started_s), status_replicas=len(started_s), pods=pods, readings=(reading,))


def demo() -> None:
    """Show the HPA core on the example manifests: effective specs, then a scripted scaling timeline."""
    console = Console(highlight=False)
    for name in ("backlog", "slots", "hbm"):
        path = EXAMPLES / f"{name}.yaml"
        console.print(spec_table(load_hpa_file(path), read_manifest(path)))
    spec = load_hpa_file(EXAMPLES / "backlog.yaml")
    controller = HorizontalController(spec)
    started_s = {f"jetstream-{i}": -STARTUP_S for i in range(spec.min_replicas)}
    table = Table(title=f"{spec.name}: one reconcile every {SYNC_S:g}s (target {spec.metrics[0].name})")
    for col in ("t (s)", "queued", "pods", "ready", "per pod", "desired", "reason"):
        table.add_column(col, justify="right" if col != "reason" else "left")
    first_up: Decision | None = None
    serial = len(started_s)
    now = 0.0
    while now <= DURATION_S:
        observation = _observe(started_s, now)
        decision = controller.step(observation, now)
        ready = sum(1 for p in observation.pods if p.phase is PodPhase.RUNNING)
        per_pod = queued_requests(now) / max(1, ready)
        if decision.rescale or int(now) % 60 == 0:
            style = (
                "bold green"
                if decision.desired_replicas > decision.current_replicas
                else ("bold yellow" if decision.rescale else "")
            )
            table.add_row(
                f"{now:g}",
                f"{queued_requests(now):.1f}",
                str(len(started_s)),
                str(ready),
                f"{per_pod:.2f}",
                f"[{style}]{decision.desired_replicas}[/]" if style else str(decision.desired_replicas),
                escape(decision.reason),
            )
        if decision.rescale and first_up is None and decision.desired_replicas > decision.current_replicas:
            first_up = decision
        while len(started_s) < decision.desired_replicas:
            started_s[f"jetstream-{serial}"] = now
            serial += 1
        while len(started_s) > decision.desired_replicas:
            started_s.pop(next(reversed(started_s)))
        now += SYNC_S
    console.print(table)
    if first_up is not None:
        console.print("[bold]The first scale-up, step by step:[/]")
        for line in first_up.explanation:
            console.print(f"  {escape(line)}")


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo)
