"""``jetscale simulate``: the fleet, its router and the HPA on a virtual clock (``jetscale.sim``).

One manifest (``--hpa FILE``) gives one run; ``--compare A.yaml B.yaml ...`` runs each manifest on the
same requests and adds a table and an overlay of replicas over time. Every summary shows the cost
against the oracle's (the cheapest schedule that meets the SLOs, docs/simulate.md). See docs/simulate.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from jetscale.sim.cost import PriceTable
    from jetscale.sim.oracle import OracleSchedule
    from jetscale.sim.result import SimResult
    from jetscale.sim.scenario import Scenario

__all__ = ["register"]

_EXAMPLE = (
    "jetscale simulate --hpa examples/hpa/backlog.yaml --preset v5e-8/llama2-7b --workload sharegpt-like "
    "--rate 20 --shape diurnal --duration 3600 --seed 1 --slo ttft_p95=2s,e2e_p99=30s --out DIR"
)


def simulate_command(
    manifests: Annotated[
        list[Path] | None, typer.Argument(metavar="[HPA.yaml...]", help="Manifests to compare (with --compare).")
    ] = None,
    hpa: Annotated[list[Path] | None, typer.Option("--hpa", help="An autoscaling/v2 HPA manifest.")] = None,
    compare: Annotated[bool, typer.Option("--compare", help="Run every manifest given on the same requests.")] = False,
    preset: Annotated[str, typer.Option("--preset", help="Replica preset (jetscale serve --list-presets).")] = (
        "v5e-8/llama2-7b"
    ),
    replica: Annotated[
        Path | None, typer.Option("--replica", help="Replica YAML: preset plus overrides, or every field.")
    ] = None,
    workload: Annotated[str, typer.Option("--workload", metavar="SPEC", help="As jetscale load.")] = "sharegpt-like",
    rate: Annotated[str | None, typer.Option("--rate", metavar="RPS", help="Open loop: peak requests/s.")] = None,
    shape: Annotated[
        str | None, typer.Option("--shape", metavar="SPEC", help="constant|step|ramp|spike|diurnal[:...]|csv:FILE.")
    ] = None,
    users: Annotated[str | None, typer.Option("--users", metavar="N", help="Closed loop: users.")] = None,
    think_time: Annotated[str | None, typer.Option("--think-time", metavar="DURATION")] = None,
    think: Annotated[str, typer.Option("--think", help="Think time: fixed or exponential.")] = "fixed",
    ramp_up: Annotated[str | None, typer.Option("--ramp-up", metavar="DURATION")] = None,
    trace: Annotated[str | None, typer.Option("--trace", metavar="FILE", help="Replay a JSONL/CSV trace.")] = None,
    trace_speed: Annotated[str | None, typer.Option("--trace-speed", metavar="X")] = None,
    duration: Annotated[str | None, typer.Option("--duration", metavar="DURATION", help="Simulated time.")] = None,
    max_requests: Annotated[str | None, typer.Option("--max-requests", metavar="N")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the requests and the start-up delays.")] = 0,
    slo: Annotated[str, typer.Option("--slo", metavar="SPEC", help="e.g. ttft_p95=2s,e2e_p99=30s.")] = (
        "ttft_p95=2s,e2e_p99=30s"
    ),
    router: Annotated[str, typer.Option("--router", help="round-robin or least-outstanding.")] = "round-robin",
    startup: Annotated[
        str | None,
        typer.Option(
            "--startup",
            metavar="SPEC",
            help="provision=0s,pull=20s..40s,load=preset,ready=10s (fixed 30s, uniform 20s..40s, lognormal:60s:0.3).",
        ),
    ] = None,
    initial_replicas: Annotated[str | None, typer.Option("--initial-replicas", metavar="N")] = None,
    scrape_interval: Annotated[str, typer.Option("--scrape-interval", metavar="DURATION")] = "15s",
    metrics_lag: Annotated[str, typer.Option("--metrics-lag", metavar="DURATION", help="Scrape to HPA.")] = "0s",
    sync_period: Annotated[str, typer.Option("--sync-period", metavar="DURATION", help="HPA sync period.")] = "15s",
    tolerance: Annotated[str | None, typer.Option("--tolerance", help="HPA tolerance flag (0.1).")] = None,
    drain_after: Annotated[
        str, typer.Option("--drain-after", metavar="DURATION", help="Time for requests in flight at the end.")
    ] = "600s",
    prices: Annotated[Path | None, typer.Option("--prices", help="Price per chip-hour YAML.")] = None,
    oracle: Annotated[bool, typer.Option("--oracle/--no-oracle", help="Compute the oracle's cost.")] = True,
    oracle_window: Annotated[str, typer.Option("--oracle-window", metavar="DURATION")] = "300s",
    oracle_max: Annotated[str, typer.Option("--oracle-max", metavar="N", help="Most replicas it may use.")] = "256",
    records: Annotated[bool, typer.Option("--records", help="Write requests.csv, one row per request.")] = False,
    scale_to_zero: Annotated[bool, typer.Option("--scale-to-zero", help="HPAScaleToZero feature gate.")] = False,
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Where the reports go.")] = Path("sim-report"),
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Simulate the HPA scaling a JetStream fleet under a workload; report latency, SLOs and cost."""
    from jetscale.cli.hpa import load_hpa_file
    from jetscale.errors import ConfigError
    from jetscale.load.stats import parse_slos
    from jetscale.sim import options
    from jetscale.sim.fleet import parse_router
    from jetscale.sim.scenario import Scenario, parse_startup

    paths = [*(hpa or []), *(manifests or [])]
    if not paths:
        raise ConfigError("give a manifest: '--hpa FILE', or '--compare A.yaml B.yaml ...' (got none)")
    if len(paths) > 1 and not compare:
        raise ConfigError(f"'--compare' is needed to run several manifests (got {len(paths)})")
    specs = [load_hpa_file(p, scale_to_zero=scale_to_zero) for p in paths]
    traffic, duration_s = options.build_traffic(
        rate=rate, shape=shape, users=users, think_time=think_time, think=think, ramp_up=ramp_up, trace=trace,
        trace_speed=trace_speed, workload=workload, duration=duration, max_requests=max_requests, seed=seed,
    )  # fmt: skip
    parse_router(router)
    price_table = options.read_prices(prices)
    names = _unique([p.stem for p in paths])
    scenarios = [
        Scenario(
            replica=options.replica_option(preset, replica),
            traffic=traffic,
            duration_s=duration_s,
            hpa=spec,
            controller=options.controller_config(sync_period, tolerance),
            initial_replicas=options.positive_int(initial_replicas, "--initial-replicas", minimum=0),
            startup=parse_startup(startup),
            router=router,
            scrape_interval_s=options.duration_option(scrape_interval, "--scrape-interval") or 15.0,
            metrics_lag_s=options.duration_option(metrics_lag, "--metrics-lag", positive=False) or 0.0,
            drain_after_s=options.duration_option(drain_after, "--drain-after", positive=False) or 0.0,
            slos=parse_slos(slo),
            seed=seed,
            records=records,
            name=name,
        )
        for spec, name in zip(specs, names, strict=True)
    ]
    _run(
        scenarios,
        out=out,
        prices=price_table,
        with_oracle=oracle,
        oracle_window_s=options.duration_option(oracle_window, "--oracle-window") or 300.0,
        oracle_max=options.positive_int(oracle_max, "--oracle-max") or 256,
        compare=compare,
        quiet=quiet,
    )


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}-{seen[name]}")
    return out


def _run(
    scenarios: list[Scenario],
    *,
    out: Path,
    prices: PriceTable,
    with_oracle: bool,
    oracle_window_s: float,
    oracle_max: int,
    compare: bool,
    quiet: bool,
) -> None:
    from jetscale.sim.oracle import oracle_schedule
    from jetscale.sim.output import write_comparison, write_run
    from jetscale.sim.scenario import ClosedTraffic
    from jetscale.sim.simulator import simulate
    from jetscale.sim.summary import compare_table, summarize_run

    console = Console(highlight=False)
    first = scenarios[0]
    oracle_note = ""
    if with_oracle and not first.slos:
        with_oracle, oracle_note = False, "no oracle: it needs an --slo"
    if with_oracle and isinstance(first.traffic, ClosedTraffic):
        with_oracle, oracle_note = False, "no oracle: a closed loop's arrivals depend on the fleet"
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
        console=console, disable=quiet, transient=True,
    )  # fmt: skip
    results: list[SimResult] = []
    summaries = []
    schedule: OracleSchedule | None = None
    with progress:
        for scenario in scenarios:
            task = progress.add_task(f"simulate {scenario.name}", total=scenario.duration_s)
            results.append(simulate(scenario, progress=_advance(progress, task)))
        if with_oracle:
            task = progress.add_task("oracle", total=first.duration_s)
            schedule = oracle_schedule(
                first,
                window_s=oracle_window_s,
                max_replicas=oracle_max,
                progress=_advance(progress, task),
            )
    for scenario, result in zip(scenarios, results, strict=True):
        summary = summarize_run(result, scenario, prices=prices, oracle=schedule)
        summaries.append(summary)
        folder = out / scenario.name if compare else out
        report = write_run(result, summary, folder, oracle=schedule)
        if not compare:
            console.print(_summary_table(summary.rows(), f"jetscale simulate: {scenario.name}"))
            console.print(f"report: {report}")
    if compare:
        console.print(compare_table(summaries, title="HPA manifests on one trace"))
        console.print(f"report: {write_comparison(results, summaries, out, oracle=schedule)}")
    if oracle_note:
        console.print(oracle_note)


def _advance(progress: Progress, task: TaskID) -> Callable[[float, float], None]:
    def update(done: float, total: float) -> None:
        progress.update(task, completed=done, total=total)

    return update


def _summary_table(rows: dict[str, str], title: str) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold", no_wrap=True)
    table.add_column("", overflow="fold")
    for key, value in rows.items():
        table.add_row(key, value)
    return table


def register(app: typer.Typer) -> None:
    """Add ``simulate`` to the ``jetscale`` app."""
    app.command("simulate", help=f"Simulate the HPA scaling a JetStream fleet. e.g. {_EXAMPLE}")(simulate_command)
