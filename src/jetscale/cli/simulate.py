"""``jetscale simulate``: the fleet, its router and the HPA on a virtual clock (``jetscale.sim``).

One manifest (``--hpa FILE``) gives one run; ``--compare A.yaml B.yaml ...`` runs each manifest on the
same requests and adds a table and an overlay of replicas over time. Every summary shows the cost
against the oracle's (the cheapest schedule that meets the SLOs, docs/simulate.md).

Exit status: 0 done; 2 bad flags; 3 with ``--check`` when a run missed an SLO (``EXIT_SLO_MISSED``, for
CI); 130 interrupted (Ctrl-C: the runs finished so far, and the one under way up to where it stopped, go
to ``OUT/partial.json`` marked ``"partial": true``). ``--json`` prints one JSON document on stdout
(``simulate_document``) and everything else on stderr. See docs/simulate.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from jetscale.sim.cost import PriceTable
    from jetscale.sim.oracle import OracleSchedule
    from jetscale.sim.result import SimResult
    from jetscale.sim.scenario import Scenario
    from jetscale.sim.simulator import Simulator
    from jetscale.sim.summary import RunSummary

__all__ = ["EXIT_SLO_MISSED", "register", "simulate_document"]

EXIT_SLO_MISSED = 3  # --check: some run missed an SLO

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
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset",
            help="Replica preset (see `jetscale presets`; default v5e-8/llama2-7b, or the shape a tune bundle's "
            "HPA was tuned at).",
        ),
    ] = None,
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
    time_unit: Annotated[
        str, typer.Option("--time-unit", help="The trace's numeric times: auto (epoch ms detected), s or ms.")
    ] = "auto",
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
    client_timeout: Annotated[
        str | None,
        typer.Option(
            "--client-timeout",
            metavar="DURATION",
            help="Clients give up on a request not finished this long after it arrived: it is cancelled and "
            "counted as abandoned (default: they wait).",
        ),
    ] = None,
    max_queue_wait: Annotated[
        str | None,
        typer.Option(
            "--max-queue-wait",
            metavar="DURATION",
            help="Every replica sheds a request whose expected wait for its prefill is longer (queue_wait).",
        ),
    ] = None,
    prefill_backlog_limit: Annotated[
        str | None,
        typer.Option(
            "--prefill-backlog-limit",
            metavar="N",
            help="Every replica sheds beyond N prompts waiting for prefill (backlog_full; default the replica's).",
        ),
    ] = None,
    prices: Annotated[Path | None, typer.Option("--prices", help="Price per chip-hour YAML.")] = None,
    oracle: Annotated[bool, typer.Option("--oracle/--no-oracle", help="Compute the oracle's cost.")] = True,
    oracle_window: Annotated[str, typer.Option("--oracle-window", metavar="DURATION")] = "300s",
    oracle_max: Annotated[str, typer.Option("--oracle-max", metavar="N", help="Most replicas it may use.")] = "256",
    records: Annotated[bool, typer.Option("--records", help="Write requests.csv, one row per request.")] = False,
    scale_to_zero: Annotated[bool, typer.Option("--scale-to-zero", help="HPAScaleToZero feature gate.")] = False,
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Where the reports go.")] = Path("sim-report"),
    check: Annotated[
        bool, typer.Option("--check", help=f"Exit {EXIT_SLO_MISSED} when a run misses an SLO (for CI).")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the summaries as one JSON document on stdout, nothing else.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Simulate the HPA scaling a JetStream fleet under a workload; report latency, SLOs and cost."""
    from jetscale.cli.hpa import load_hpa_file
    from jetscale.errors import ConfigError
    from jetscale.load.stats import parse_slos
    from jetscale.sim import options
    from jetscale.sim.fleet import parse_router
    from jetscale.sim.scenario import Scenario, parse_startup
    from jetscale.sim.signals import check_exported

    paths = [*(hpa or []), *(manifests or [])]
    if not paths:
        raise ConfigError("give a manifest: '--hpa FILE', or '--compare A.yaml B.yaml ...' (got none)")
    if len(paths) > 1 and not compare:
        raise ConfigError(f"'--compare' is needed to run several manifests (got {len(paths)})")
    specs = [load_hpa_file(options.manifest_path(p), scale_to_zero=scale_to_zero) for p in paths]
    traffic, duration_s = options.build_traffic(
        rate=rate, shape=shape, users=users, think_time=think_time, think=think, ramp_up=ramp_up, trace=trace,
        trace_speed=trace_speed, workload=workload, duration=duration, max_requests=max_requests, seed=seed,
        time_unit=time_unit,
    )  # fmt: skip
    parse_router(router)
    price_table = options.read_prices(prices)
    timeout_s = options.duration_option(client_timeout, "--client-timeout")
    names = _unique([p.stem for p in paths])
    scenarios = [
        Scenario(
            replica=options.admission_option(
                options.replica_option(preset, replica, hpa=path),
                max_queue_wait=max_queue_wait,
                prefill_backlog_limit=prefill_backlog_limit,
            ),
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
            client_timeout_s=timeout_s,
            name=name,
        )
        for spec, name, path in zip(specs, names, paths, strict=True)
    ]
    for scenario, path in zip(scenarios, paths, strict=True):
        if scenario.hpa is not None:
            try:
                check_exported(scenario.hpa, scenario.replica.kind, stack=scenario.replica.stack.value)
            except ConfigError as error:
                raise ConfigError(f"{path}: {error}") from None
    _run(
        scenarios,
        out=out,
        prices=price_table,
        with_oracle=oracle,
        oracle_window_s=options.duration_option(oracle_window, "--oracle-window") or 300.0,
        oracle_max=options.positive_int(oracle_max, "--oracle-max") or 256,
        compare=compare,
        quiet=quiet,
        check=check,
        json_out=json_out,
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
    check: bool = False,
    json_out: bool = False,
) -> None:
    from jetscale.cli.output import make_console, print_json
    from jetscale.sim.oracle import oracle_schedule
    from jetscale.sim.output import write_comparison, write_run
    from jetscale.sim.scenario import ClosedTraffic
    from jetscale.sim.simulator import Simulator
    from jetscale.sim.summary import compare_table, summarize_run

    console = make_console(stderr=json_out)
    err = make_console(stderr=True)  # progress: the bar on a terminal, else one line per stage
    first = scenarios[0]
    oracle_note = ""
    if with_oracle and not first.slos:
        with_oracle, oracle_note = False, "no oracle: it needs an --slo"
    if with_oracle and isinstance(first.traffic, ClosedTraffic):
        with_oracle, oracle_note = False, "no oracle: a closed loop's arrivals depend on the fleet"
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeElapsedColumn(),
        console=err, disable=quiet, transient=True,
    )  # fmt: skip
    stage = _stage_lines(err, quiet)
    results: list[SimResult] = []
    schedule: OracleSchedule | None = None
    running: tuple[Simulator, float] | None = None
    try:
        with progress:
            for scenario in scenarios:
                task = progress.add_task(f"simulate {scenario.name}", total=scenario.duration_s)
                simulator = Simulator(scenario, progress=_advance(progress, task))
                running = (simulator, time.perf_counter())
                stage(f"simulate {scenario.name}: {scenario.duration_s:g} s of simulated time")
                results.append(simulator.run())
                running = None
            if with_oracle:
                stage("oracle")
                task = progress.add_task("oracle", total=first.duration_s)
                schedule = oracle_schedule(
                    first,
                    window_s=oracle_window_s,
                    max_replicas=oracle_max,
                    progress=_advance(progress, task),
                )
    except KeyboardInterrupt:
        _interrupted(scenarios, results, running, out=out, prices=prices, console=console, json_out=json_out)
    summaries = [
        summarize_run(result, scenario, prices=prices, oracle=schedule)
        for scenario, result in zip(scenarios, results, strict=True)
    ]
    reports = [
        write_run(result, summary, out / scenario.name if compare else out, oracle=schedule)
        for scenario, result, summary in zip(scenarios, results, summaries, strict=True)
    ]
    report = write_comparison(results, summaries, out, oracle=schedule) if compare else reports[0]
    if json_out:
        print_json(simulate_document(summaries, report=report, check=check, note=oracle_note))
    elif compare:
        console.print(compare_table(summaries, title="HPA manifests on one trace"))
        console.print(f"report: {report}")
    else:
        console.print(_summary_table(summaries[0].rows(), f"jetscale simulate: {scenarios[0].name}"))
        console.print(f"report: {report}")
    if oracle_note:
        console.print(oracle_note)
    missed = [f"{s.name}: {o.label}" for s in summaries for o in s.slos if not o.met]
    if check and missed:
        console.print(f"[bold red]SLO missed[/] ({'; '.join(missed)}): exit {EXIT_SLO_MISSED}", soft_wrap=True)
        raise typer.Exit(EXIT_SLO_MISSED)


def simulate_document(
    summaries: Sequence[RunSummary], *, report: Path | None, check: bool, note: str = "", partial: bool = False
) -> dict[str, object]:
    """The ``--json`` document (and, with ``partial``, ``OUT/partial.json``): every run's summary as in its
    ``summary.json``; ``slos_met`` over all runs. Keys are stable; a missing value is ``null``."""
    return {
        "command": "simulate",
        "partial": partial,
        "slos_met": all(s.slos_met for s in summaries),
        "check": check,
        "runs": [s.to_dict() for s in summaries],
        "report": str(report) if report is not None else None,
        "note": note or None,
    }


def _stage_lines(console: Console, quiet: bool) -> Callable[[str], None]:
    """Where the progress bar cannot be drawn (a file, a CI log): one line per stage on stderr."""

    def say(line: str) -> None:
        if not quiet and not console.is_terminal:
            console.print(f"jetscale simulate: {line} ...", markup=False)

    return say


def _interrupted(
    scenarios: Sequence[Scenario],
    results: Sequence[SimResult],
    running: tuple[Simulator, float] | None,
    *,
    out: Path,
    prices: PriceTable,
    console: Console,
    json_out: bool,
) -> NoReturn:
    """Ctrl-C: summarize the runs finished and the one under way (to where it stopped) into
    ``OUT/partial.json``, say what was done, exit 130. A second Ctrl-C exits at once."""
    from jetscale.cli.interrupt import EXIT_INTERRUPTED, second_interrupt_exits, write_partial
    from jetscale.sim.summary import summarize_run

    with second_interrupt_exits():
        summaries = [summarize_run(r, sc, prices=prices) for sc, r in zip(scenarios, results, strict=False)]
        lines = [f"{len(results)} of {len(scenarios)} run(s) finished"]
        if running is not None:
            simulator, started = running
            partial = simulator.result_so_far(wall_s=time.perf_counter() - started)
            summary = summarize_run(partial, simulator.scenario, prices=prices)
            summaries.append(replace(summary, duration_s=partial.duration_s, partial=True))
            lines.append(
                f"{partial.name} stopped at {partial.duration_s:,.0f} of {simulator.scenario.duration_s:,.0f} "
                f"simulated s ({partial.counts.arrived} requests arrived, {partial.counts.done} done, "
                f"{partial.counts.abandoned} abandoned)"
            )
        elif len(results) == len(scenarios):
            lines.append("the oracle did not finish")
        document = simulate_document(summaries, report=None, check=False, partial=True)
        path = write_partial(out, document)
        if json_out:
            from jetscale.cli.output import print_json

            print_json(document)
        console.print(f"interrupted: {'; '.join(lines)}; partial results in {path}", soft_wrap=True)
    raise typer.Exit(EXIT_INTERRUPTED)


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
