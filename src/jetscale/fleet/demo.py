"""The demo scenario: a real fleet, real load, the HPA scaling up and back down, and a report.

``DemoPlan`` says what runs: the replica shape (preset, batch size), the requests (a workload spec of
``jetscale load``), the time compression, the HPA manifest, and the load over time as knots of
``(model seconds, load)`` where load is in replicas' worth of modeled capacity (1.0 = what one replica
serves at full batch, from ``modeled_peak``), so the scenario keeps its meaning if the engine model is
recalibrated. The default is ramp, plateau, spike, fall, then a quiet tail long enough for the 300 s
scale-down window to pass: 960 model seconds, 96 wall seconds at speed 10.

The plan was sized with ``benchmarks/fleet.py``: at speed 10 two cores carry 8 replicas of batch 8 at
~90 streamed requests/s (24 at ~270/s unstreamed) within 2 % of the engine model's latency. Long answers
(768-1024 tokens) and 4 slots a replica keep the demo's request rate low for the capacity it asks for:
it peaks near 70 streamed requests/s (with the roofline's calibration of docs/calibration.md
8 slots would ask for 110/s, more than two cores send on time).

``run_demo`` starts the fleet, runs the generator on the plan's shape through the router, shows the
live view, and writes ``report.html`` (``jetscale.report.timeline``: PNG plots of the timeline,
summary, scaling events), ``timeline.csv`` and the generator's own reports under ``load/``.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.table import Table

from jetscale.errors import ConfigError
from jetscale.fleet.fleet import Fleet, FleetConfig
from jetscale.fleet.loadgen import LoadResult, run_generator, shape_csv
from jetscale.fleet.replicas import ServeCommand
from jetscale.fleet.run import Ended, run_fleet, stop_on_signals
from jetscale.hpa.types import HPASpec
from jetscale.report.timeline import Timeline, write_report

__all__ = ["DEMO_LOAD", "DemoPlan", "DemoResult", "demo_summary", "run_demo", "summary_table"]

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "hpa"

# (model seconds, load in replicas' worth of capacity): ramp, plateau, spike, fall, quiet tail
DEMO_LOAD: tuple[tuple[float, float], ...] = (
    (0.0, 0.5), (60.0, 0.5), (240.0, 2.5), (330.0, 2.5), (330.0, 7.0), (400.0, 7.0), (480.0, 0.3), (900.0, 0.3),
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoPlan:
    hpa_path: Path = EXAMPLES.parent / "demo" / "hpa.yaml"  # not in examples/hpa, beside the signal examples
    preset: str = "v5e-8/llama2-7b"
    batch_size: int = 4
    input_tokens: tuple[int, int] = (64, 192)  # uniform range
    output_tokens: tuple[int, int] = (768, 1024)
    speed: float = 10.0
    model_load_s: float = 20.0  # model seconds a new replica takes to become ready
    load: tuple[tuple[float, float], ...] = DEMO_LOAD
    sync_period_s: float = 15.0
    prometheus: bool = False
    stream: bool = True
    seed: int = 0
    title: str = "jetscale demo"
    extra: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def vllm(cls, **overrides: object) -> DemoPlan:
        """The demo with vLLM replicas (``batch_size`` running requests each, as the JetStream demo's slots)
        scaled on vLLM's queue, ``vllm:num_requests_waiting``."""
        fields: dict[str, object] = {
            "hpa_path": EXAMPLES.parent / "demo" / "hpa-vllm.yaml",
            "preset": "vllm-h100/llama3.1-8b",
            "title": "jetscale demo (vLLM)",
            **overrides,
        }
        return cls(**fields)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        if not (math.isfinite(self.speed) and self.speed > 0):
            raise ConfigError(f"'speed' must be > 0 (got {self.speed!r})")
        if len(self.load) < 2 or self.load[0][0] != 0.0 or self.load[-1][0] <= 0:
            raise ConfigError(f"'load' must start at t=0 and end after it (got {self.load!r})")

    @property
    def duration_s(self) -> float:
        """Model seconds of load."""
        return self.load[-1][0]

    @property
    def workload(self) -> str:
        (a, b), (c, d) = self.input_tokens, self.output_tokens
        return f"uniform:input={a}..{b},output={c}..{d}"

    def replica_rps(self) -> float:
        """Requests per model second one replica serves at full batch, for the plan's mean request."""
        from jetscale.engine.presets import modeled_peak, resolve_preset

        shape = resolve_preset(self.preset, decode_slots=self.batch_size)
        n_in = round(sum(self.input_tokens) / 2)
        n_out = round(sum(self.output_tokens) / 2)
        return modeled_peak(shape, input_tokens=n_in, output_tokens=n_out).output_tokens_s / n_out

    def rate_knots(self) -> list[tuple[float, float]]:
        """The load as (model seconds, requests per model second)."""
        per_replica = self.replica_rps()
        return [(t, load * per_replica) for t, load in self.load]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DemoResult:
    timeline: Timeline
    load: LoadResult | None  # None when the demo was stopped before the load ended
    ended: Ended
    report: Path
    summary: dict[str, object]
    failed_requests: int  # failures the router saw (429, 5xx, broken connections)


def _replica_seconds(timeline: Timeline) -> tuple[float, int]:
    """The integral of running replicas (ready + starting) over the run, and the peak count."""
    total, peak = 0.0, 0
    samples = timeline.samples
    for a, b in itertools.pairwise(samples):
        total += (a.replicas_ready + a.replicas_starting) * (b.t_s - a.t_s)
    for s in samples:
        peak = max(peak, s.replicas_ready + s.replicas_starting)
    return total, peak


def demo_summary(plan: DemoPlan, spec: HPASpec, timeline: Timeline, load: LoadResult | None,
                 router_failed: int) -> dict[str, object]:  # fmt: skip
    """The summary table of the report (times in model seconds)."""
    ups = sum(1 for e in timeline.events if e.to_replicas > e.from_replicas)
    downs = sum(1 for e in timeline.events if e.to_replicas < e.from_replicas)
    used, peak = _replica_seconds(timeline)
    span = timeline.samples[-1].t_s - timeline.samples[0].t_s if len(timeline.samples) > 1 else 0.0
    out: dict[str, object] = {
        "replica": f"{plan.preset}, batch {plan.batch_size}",
        "requests": f"{plan.workload} tokens",
        "HPA": f"{spec.namespace}/{spec.name}: {', '.join(m.name for m in spec.metrics)}; "
        f"min {spec.min_replicas}, max {spec.max_replicas}",
        "time": f"{span:.0f} model s at speed {plan.speed:g}x ({span / plan.speed:.0f} wall s)",
        "metrics": "Prometheus (PromQL)" if plan.prometheus else "direct scrape",
        "scaling": f"{ups} scale-ups, {downs} scale-downs, peak {peak} replicas",
        "replica-seconds": f"{used:.0f} (vs {peak * span:.0f} if {peak} ran throughout: {used / (peak * span):.0%})"
        if peak and span
        else "-",
        "router failures": router_failed,
    }
    if load is not None:
        s = load.summary
        k = plan.speed
        out["sent / ok / failed"] = f"{s.sent} / {s.ok} / {s.failed + s.unfinished}"
        out["e2e p50 / p95 / p99 (model s)"] = f"{s.e2e.p50_s * k:.2f} / {s.e2e.p95_s * k:.2f} / {s.e2e.p99_s * k:.2f}"
        if s.ttft.count:
            out["ttft p50 / p95 (model s)"] = f"{s.ttft.p50_s * k:.2f} / {s.ttft.p95_s * k:.2f}"
        out["generator"] = s.generator.verdict
    out.update(plan.extra)
    return out


async def run_demo(plan: DemoPlan, out_dir: Path, *, console: Console, live: bool | None = None) -> DemoResult:
    """Run the demo to the end of its load (or to Ctrl-C) and write the report under ``out_dir``."""
    from jetscale.cli.hpa import load_hpa_file
    from jetscale.load.config import parse_options

    spec = load_hpa_file(plan.hpa_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = ServeCommand(preset=plan.preset, speed=plan.speed, batch_size=plan.batch_size,
                           model_load_s=plan.model_load_s, seed=plan.seed)  # fmt: skip
    config = FleetConfig(hpa=spec, command=command, speed=plan.speed, port=0, prometheus=plan.prometheus,
                         sync_period_s=plan.sync_period_s, log_dir=out_dir / "logs")  # fmt: skip
    shape_path = out_dir / "load-shape.csv"
    shape_path.write_text(shape_csv(plan.rate_knots(), plan.speed), encoding="utf-8")
    fleet = Fleet(config)
    load: LoadResult | None = None
    with stop_on_signals() as stop:
        async with fleet:
            options = parse_options(
                target=fleet.url, api="openai", out_dir=str(out_dir / "load"), shape=f"csv:{shape_path}",
                duration=f"{plan.duration_s / plan.speed:g}s", workload=plan.workload, stream=plan.stream,
                seed=str(plan.seed), quiet=True, drain="30s", interval=f"{max(1.0, 15 / plan.speed):g}s",
            )  # fmt: skip
            task = asyncio.create_task(run_generator(options))
            ended = await run_fleet(fleet, console=console, stop=stop, until=task, live=live)
            if ended is Ended.TASK:
                load = task.result()
            else:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
    timeline = fleet.controller.timeline
    timeline.title = f"{plan.title}: {spec.name} on {plan.preset} (model time, speed {plan.speed:g}x)"
    failed = fleet.router.totals().failed
    summary = demo_summary(plan, spec, timeline, load, failed)
    report = write_report(timeline, out_dir, summary=summary)
    return DemoResult(timeline=timeline, load=load, ended=ended, report=report, summary=summary,
                      failed_requests=failed)  # fmt: skip


def summary_table(result: DemoResult) -> RenderableType:
    """The summary, then the scaling events, as the terminal shows them."""
    table = Table(title="jetscale demo", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for key, value in result.summary.items():
        table.add_row(key, str(value))
    if not result.timeline.events:
        return table
    events = Table(title="scaling events (model time)")
    for column in ("t (s)", "replicas", "reason"):
        events.add_column(column)
    for e in result.timeline.events:
        events.add_row(f"{e.t_s:.0f}", f"{e.from_replicas} -> {e.to_replicas}", e.reason)
    return Group(table, events)
