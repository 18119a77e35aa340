"""The live terminal view of a fleet: replicas by state, each HPA metric against its target, the last
decision and why, and what the router sees (request rate, outcomes, latency percentiles).

``snapshot(fleet)`` copies what the view needs at one instant; ``render(snapshot)`` turns it into rich
renderables (pure: tests render a hand-made snapshot). ``jetscale up`` redraws it under ``rich.live``.
Times and latencies are model seconds (wall x speed), the units of the HPA and of the engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from jetscale.fleet.controller import SyncRecord
from jetscale.fleet.fleet import Fleet
from jetscale.fleet.replicas import ReplicaState, ReplicaView
from jetscale.fleet.router import RouterTotals
from jetscale.hpa.types import HPASpec, MetricFailure, MetricProposal, MetricSpec, MetricTargetType
from jetscale.report.timeline import Sample
from jetscale.units import format_milli

__all__ = ["FleetSnapshot", "render", "snapshot"]

_STATE_STYLE = {
    ReplicaState.STARTING: "yellow",
    ReplicaState.READY: "green",
    ReplicaState.RESTARTING: "red",
    ReplicaState.DRAINING: "magenta",
    ReplicaState.STOPPED: "dim",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetSnapshot:
    t_s: float
    speed: float
    router_url: str
    policy: str
    metrics_source: str
    spec: HPASpec
    desired: int
    replicas: tuple[ReplicaView, ...]
    outstanding: dict[str, int]
    last: SyncRecord | None
    sample: Sample | None
    totals: RouterTotals


def snapshot(fleet: Fleet) -> FleetSnapshot:
    config = fleet.config
    source = (
        f"Prometheus {fleet.prometheus.url}" if fleet.prometheus is not None else "direct scrape"
    ) + f", every {config.scrape_interval_s:g} model s"
    samples = fleet.controller.timeline.samples
    return FleetSnapshot(
        t_s=fleet.clock.model_s(),
        speed=config.speed,
        router_url=fleet.url,
        policy=str(fleet.router.policy),
        metrics_source=source,
        spec=config.hpa,
        desired=fleet.replicas.desired,
        replicas=fleet.views(),
        outstanding=fleet.router.outstanding(),
        last=fleet.controller.last,
        sample=samples[-1] if samples else None,
        totals=fleet.router.totals(),
    )


def _target(metric: MetricSpec) -> str:
    target = metric.target
    if target.type is MetricTargetType.AVERAGE_VALUE and target.average_value_milli is not None:
        return f"{format_milli(target.average_value_milli)} avg"
    if target.type is MetricTargetType.VALUE and target.value_milli is not None:
        return format_milli(target.value_milli)
    return f"{target.average_utilization}%"


def _seconds(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _replica_table(snap: FleetSnapshot) -> Table:
    counts = {state: sum(1 for r in snap.replicas if r.state is state) for state in ReplicaState}
    summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    table = Table(title=f"replicas: {len(snap.replicas)} ({summary or 'none'}), desired {snap.desired}",
                  title_justify="left", expand=False)  # fmt: skip
    for column in ("replica", "state", "address", "in flight", "restarts", "ready since (s)"):
        table.add_column(column, justify="left" if column in ("replica", "state", "address") else "right")
    for r in snap.replicas:
        style = _STATE_STYLE[r.state]
        table.add_row(
            r.name,
            f"[{style}]{r.state}[/]",
            (r.url or "-").removeprefix("http://"),
            str(snap.outstanding.get(r.name, 0)),
            str(r.restarts),
            f"{r.ready_s:.0f}" if r.ready_s is not None and r.state is ReplicaState.READY else "-",
        )
    return table


def _metric_table(snap: FleetSnapshot) -> Table:
    table = Table(title=f"HPA {snap.spec.namespace}/{snap.spec.name}: metrics ({snap.metrics_source})",
                  title_justify="left")  # fmt: skip
    for column in ("metric", "type", "current", "target", "proposes"):
        table.add_column(column)
    proposals = snap.last.decision.proposals if snap.last is not None else ()
    for i, metric in enumerate(snap.spec.metrics):
        result = proposals[i] if i < len(proposals) else None
        if isinstance(result, MetricProposal):
            current = format_milli(result.usage_milli) if result.usage_milli is not None else "-"
            proposes = str(result.replicas)
        elif isinstance(result, MetricFailure):
            current, proposes = "[red]unavailable[/]", f"[red]{escape(result.reason)}[/]"
        else:
            current, proposes = "-", "-"
        table.add_row(escape(metric.name), str(metric.type), current, _target(metric), proposes)
    return table


def _decision(snap: FleetSnapshot) -> Text:
    if snap.last is None:
        return Text("no sync yet")
    d = snap.last.decision
    arrow = f"{d.current_replicas} -> {d.desired_replicas}" if d.rescale else f"stay at {d.current_replicas}"
    active = next((c for c in d.conditions if c.type == "ScalingActive"), None)
    line = Text.assemble(
        ("last decision ", "bold"),
        f"at t={snap.last.t_s:.0f} s: ",
        (arrow, "bold green" if d.desired_replicas > d.current_replicas else "bold yellow" if d.rescale else ""),
        f"  [{d.reason}]",
    )
    if active is not None:
        style = "green" if active.status == "True" else "red"
        line.append(f"  ScalingActive={active.status}/{active.reason}", style=style)
    return line


def _traffic(snap: FleetSnapshot) -> Table:
    s, t = snap.sample, snap.totals
    table = Table(title="router (model time)", title_justify="left")
    for column in ("req/s", "in flight", "ok", "failed", "retried", "e2e p50", "e2e p95", "e2e p99", "ttft p50",
                   "ttft p95", "backlog avg", "slots avg"):  # fmt: skip
        table.add_column(column, justify="right")
    nan = math.nan
    table.add_row(
        f"{s.request_rate_rps:.1f}" if s is not None and not math.isnan(s.request_rate_rps) else "-",
        str(t.in_flight),
        str(t.ok),
        f"[red]{t.failed}[/]" if t.failed else "0",
        str(t.retries),
        *(_seconds(getattr(s, f, nan) if s is not None else nan) for f in ("e2e_p50_s", "e2e_p95_s", "e2e_p99_s")),
        *(_seconds(getattr(s, f, nan) if s is not None else nan) for f in ("ttft_p50_s", "ttft_p95_s")),
        f"{s.prefill_backlog:.2f}" if s is not None and not math.isnan(s.prefill_backlog) else "-",
        f"{s.slots_used:.2f}" if s is not None and not math.isnan(s.slots_used) else "-",
    )
    return table


def render(snap: FleetSnapshot) -> RenderableType:
    header = Text.assemble(
        ("jetscale fleet ", "bold"),
        f"router {snap.router_url} ({snap.policy})  speed {snap.speed:g}x  t={snap.t_s:.0f} s model time",
    )
    return Group(header, _replica_table(snap), _metric_table(snap), _decision(snap), _traffic(snap))
