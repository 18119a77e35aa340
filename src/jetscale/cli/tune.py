"""``jetscale tune``: find the HPA thresholds for a workload and SLO in the simulator (``jetscale.tune``).

Writes the recommended manifest (plain and GKE spellings) and an HTML report; exit status 0 when the
recommendation meets the SLO attainment (the share of minutes that meet the SLO), 1 when no
configuration does (the best reachable point is written and named), 2 for bad flags, 130 when stopped by
Ctrl-C (every candidate scored so far goes to ``OUT/partial.json``, marked ``"partial": true``; a second
Ctrl-C exits at once). ``--json`` prints ``tune.json`` (and the files written) on stdout, nothing else.
See docs/tune.md.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from jetscale.sim.cost import PriceTable
    from jetscale.sim.scenario import OpenTraffic, TraceTraffic
    from jetscale.tune.evaluate import CandidateScore
    from jetscale.tune.tuner import TuneConfig

__all__ = ["register"]

_EXAMPLE = (
    "jetscale tune --preset v5e-8/llama2-7b --workload sharegpt-like --rate 20 --shape diurnal --duration 24h "
    "--slo ttft_p95=2s,e2e_p99=30s --attainment 0.99 --signals all --seeds 3 --out DIR"
)
DEFAULT_TRAFFIC = ("20", "diurnal", "24h")  # --rate, --shape, --duration when no traffic is given


def _load_run(path: str) -> TraceTraffic:
    from jetscale.sim.options import read_lines
    from jetscale.sim.scenario import TraceTraffic
    from jetscale.tune.traffic import read_load_run

    file = Path(path) / "requests.csv" if Path(path).is_dir() else Path(path)
    return TraceTraffic(trace=read_load_run(read_lines(str(file)), source=str(file)), name=str(file))


def _traffic(
    *,
    rate: str | None,
    shape: str | None,
    trace: str | None,
    trace_speed: str | None,
    load_run: str | None,
    workload: str,
    duration: str | None,
    max_requests: str | None,
    seed: int,
    time_unit: str = "auto",
) -> tuple[OpenTraffic | TraceTraffic, float]:
    from jetscale.errors import ConfigError
    from jetscale.sim import options
    from jetscale.sim.scenario import ClosedTraffic

    if load_run is not None:
        if rate is not None or trace is not None or shape is not None:
            raise ConfigError("'--load-run' replaces '--rate', '--shape' and '--trace' (got more than one)")
        replay = _load_run(load_run)
        end = options.duration_option(duration, "--duration") or replay.trace.duration_s + 1.0
        return replay, end
    if rate is None and trace is None and shape is None:
        rate, shape = DEFAULT_TRAFFIC[0], DEFAULT_TRAFFIC[1]
        duration = duration or DEFAULT_TRAFFIC[2]
    traffic, duration_s = options.build_traffic(
        rate=rate,
        shape=shape,
        users=None,
        think_time=None,
        think="fixed",
        ramp_up=None,
        trace=trace,
        trace_speed=trace_speed,
        workload=workload,
        duration=duration,
        max_requests=max_requests,
        seed=seed,
        time_unit=time_unit,
    )
    assert not isinstance(traffic, ClosedTraffic)
    return traffic, duration_s


def _cores() -> int:
    """The cores this process may run on (a container's limit, not the host's), at most 8."""
    available = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    return max(1, min(8, len(available)))


def _fraction(raw: str, flag: str) -> float:
    from jetscale.errors import ConfigError

    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise ConfigError(f"'{flag}' must be a fraction in (0, 1] such as 0.99 (got {raw!r})")
    return value


def tune_command(
    preset: Annotated[str, typer.Option("--preset", help="Replica preset (jetscale presets).")] = "v5e-8/llama2-7b",
    replica: Annotated[
        Path | None, typer.Option("--replica", help="Replica YAML: preset plus overrides, or every field.")
    ] = None,
    workload: Annotated[str, typer.Option("--workload", metavar="SPEC", help="As jetscale load.")] = "sharegpt-like",
    rate: Annotated[
        str | None,
        typer.Option(
            "--rate",
            metavar="RPS",
            help="Open loop: peak requests/s (no traffic given: --rate 20 --shape diurnal --duration 24h).",
        ),
    ] = None,
    shape: Annotated[
        str | None, typer.Option("--shape", metavar="SPEC", help="constant|step|ramp|spike|diurnal[:...]|csv:FILE.")
    ] = None,
    trace: Annotated[str | None, typer.Option("--trace", metavar="FILE", help="Replay a JSONL/CSV trace.")] = None,
    trace_speed: Annotated[str | None, typer.Option("--trace-speed", metavar="X")] = None,
    time_unit: Annotated[
        str, typer.Option("--time-unit", help="The trace's numeric times: auto (epoch ms detected), s or ms.")
    ] = "auto",
    load_run: Annotated[
        str | None,
        typer.Option("--load-run", metavar="PATH", help="Replay a jetscale load run (its requests.csv or folder)."),
    ] = None,
    duration: Annotated[str | None, typer.Option("--duration", metavar="DURATION", help="Traffic length.")] = None,
    max_requests: Annotated[str | None, typer.Option("--max-requests", metavar="N")] = None,
    seed: Annotated[int, typer.Option("--seed", help="First seed (run i uses seed + i).")] = 0,
    client_timeout: Annotated[
        str | None,
        typer.Option("--client-timeout", metavar="DURATION", help="Clients give up (and cancel) after this long."),
    ] = None,
    slo: Annotated[str, typer.Option("--slo", metavar="SPEC", help="e.g. ttft_p95=2s,e2e_p99=30s.")] = (
        "ttft_p95=2s,e2e_p99=30s"
    ),
    attainment: Annotated[
        str,
        typer.Option(
            "--attainment", metavar="X", help="Share of minutes that must meet the SLO, a fraction (0.99, not 99)."
        ),
    ] = "0.99",
    signals: Annotated[
        str, typer.Option("--signals", help="backlog,slots,hbm (JetStream), waiting,running,kv (vLLM), or all.")
    ] = "all",
    min_replicas: Annotated[str, typer.Option("--min-replicas", metavar="N")] = "1",
    max_replicas: Annotated[str, typer.Option("--max-replicas", metavar="N")] = "16",
    seeds: Annotated[str, typer.Option("--seeds", metavar="N", help="Runs per candidate.")] = "3",
    batch_size: Annotated[
        str, typer.Option("--batch-size", metavar="auto|preset|N", help="Per-device batch: search, keep, or set.")
    ] = "auto",
    coarse_requests: Annotated[
        str, typer.Option("--coarse-requests", metavar="N", help="Requests per search run (0: no coarse pass).")
    ] = "100000",
    jobs: Annotated[
        str | None, typer.Option("--jobs", metavar="N", help="Worker processes (default: the cores, at most 8).")
    ] = None,
    router: Annotated[str, typer.Option("--router", help="round-robin or least-outstanding.")] = "round-robin",
    startup: Annotated[str | None, typer.Option("--startup", metavar="SPEC", help="As jetscale simulate.")] = None,
    scrape_interval: Annotated[str, typer.Option("--scrape-interval", metavar="DURATION")] = "15s",
    sync_period: Annotated[str, typer.Option("--sync-period", metavar="DURATION")] = "15s",
    tolerance: Annotated[str | None, typer.Option("--tolerance", help="HPA tolerance flag (0.1).")] = None,
    prices: Annotated[Path | None, typer.Option("--prices", help="Price per chip-hour YAML.")] = None,
    oracle: Annotated[bool, typer.Option("--oracle/--no-oracle", help="Compute the oracle's cost.")] = True,
    oracle_window: Annotated[str, typer.Option("--oracle-window", metavar="DURATION")] = "300s",
    name: Annotated[str, typer.Option("--name", help="metadata.name of the HPA.")] = "jetstream",
    namespace: Annotated[str, typer.Option("--namespace")] = "default",
    deployment: Annotated[str, typer.Option("--deployment", help="The Deployment it scales.")] = "jetstream-server",
    verify: Annotated[bool, typer.Option("--verify", help="Replay the winner on the local fleet (jetscale up).")] = (
        False
    ),
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Where the manifests and report go.")] = Path(
        "tune-report"
    ),
    json_out: Annotated[
        bool, typer.Option("--json", help="Print tune.json and the files written on stdout, nothing else.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Tune the HPA's signal, target and behavior for a workload and SLO; write the manifest and a report."""
    from jetscale.load.stats import parse_slos
    from jetscale.sim import options
    from jetscale.sim.fleet import parse_router
    from jetscale.sim.scenario import parse_startup
    from jetscale.tune.batch import parse_batch
    from jetscale.tune.candidates import ManifestNames, gke_sample, parse_signals
    from jetscale.tune.evaluate import Setup
    from jetscale.tune.tuner import TuneConfig

    traffic, duration_s = _traffic(
        rate=rate,
        shape=shape,
        trace=trace,
        trace_speed=trace_speed,
        load_run=load_run,
        workload=workload,
        duration=duration,
        max_requests=max_requests,
        seed=seed,
        time_unit=time_unit,
    )
    parse_router(router)
    setup = Setup(
        traffic=traffic,
        duration_s=duration_s,
        slos=parse_slos(slo),
        startup=parse_startup(startup),
        router=router,
        scrape_interval_s=options.duration_option(scrape_interval, "--scrape-interval") or 15.0,
        controller=options.controller_config(sync_period, tolerance),
        seed=seed,
        client_timeout_s=options.duration_option(client_timeout, "--client-timeout"),
    )
    config = TuneConfig(
        replica=options.replica_option(preset, replica),
        setup=setup,
        signals=parse_signals(signals),
        attainment=_fraction(attainment, "--attainment"),
        min_replicas=options.positive_int(min_replicas, "--min-replicas") or 1,
        max_replicas=options.positive_int(max_replicas, "--max-replicas") or 1,
        seeds=options.positive_int(seeds, "--seeds") or 1,
        batch=parse_batch(batch_size),
        coarse_requests=options.positive_int(coarse_requests, "--coarse-requests", minimum=0) or 0,
        jobs=options.positive_int(jobs, "--jobs") or _cores(),
        oracle=oracle,
        oracle_window_s=options.duration_option(oracle_window, "--oracle-window") or 300.0,
        names=ManifestNames(name=name, namespace=namespace, deployment=deployment),
    )
    # a bad --name, --namespace or --deployment fails now, not after the search
    config.hpa(gke_sample(config.replica.kind))
    if verify:
        from jetscale.tune.verify import check_available

        check_available(config)
    _run(config, out=out, prices=options.read_prices(prices), verify=verify, quiet=quiet, json_out=json_out)


def _run(
    config: TuneConfig, *, out: Path, prices: PriceTable, verify: bool, quiet: bool, json_out: bool = False
) -> None:
    from jetscale.cli.output import make_console, print_json
    from jetscale.tune.report import money, write_outputs
    from jetscale.tune.tuner import tune

    console = make_console(stderr=json_out)
    err = make_console(stderr=True)  # progress: the bar on a terminal, else one line per stage
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        disable=quiet,
        transient=True,
    )
    scored: list[CandidateScore] = []
    where: dict[str, str | int] = {"stage": "start", "done": 0}
    try:
        with progress:
            task = progress.add_task("tune", total=1)

            def update(stage: str, done: int, total: int) -> None:
                changed = stage != where["stage"]
                where["stage"], where["done"] = stage, done
                progress.update(task, description=stage[:70], completed=done, total=max(total, 1))
                if changed and not quiet and not err.is_terminal:
                    err.print(f"jetscale tune: {stage} ({done}/{total} simulations) ...", markup=False)

            result = tune(config, progress=update, scored=scored)
    except KeyboardInterrupt:
        stage, done = str(where["stage"]), int(where["done"])
        _interrupted(config, scored, stage, done, out=out, console=console, json_out=json_out)
    files = write_outputs(result, out, prices=prices)
    w = result.winner
    for line in result.warnings:
        console.print(f"[yellow]warning:[/] {line}", soft_wrap=True)
    if verify:
        from jetscale.tune.verify import verify_winner

        console.print("verify: replaying the recommendation on the local fleet and in the simulator ...")
        fleet_console = make_console(stderr=json_out, quiet=quiet)  # the fleet's own lines, one per HPA sync
        agreement = verify_winner(result, out / "verify", console=fleet_console, hpa_path=files.hpa)
        console.print(agreement.describe(), soft_wrap=True)
    if json_out:
        import json

        document = json.loads((out / "tune.json").read_text(encoding="utf-8"))
        files_doc = {"hpa": files.hpa, "hpa_gke": files.hpa_gke, "report": files.report, "replica": files.replica,
                     "bundle": files.bundle}  # fmt: skip
        print_json({"command": "tune", "partial": False, **document, "files": files_doc})
    head = f"{w.candidate.label}: {money(result, w.cost, prices)}, attainment {w.attainment:.3f} of minutes"
    console.print(f"manifest: {files.hpa} (GKE: {files.hpa_gke}); report: {files.report}", soft_wrap=True)
    console.print(
        f"bundle: {files.bundle} = the HPA + the replica shape it was tuned at ({files.replica}); deploy both with "
        f"`jetscale k8s render --bundle {out} --config DEPLOY.yaml`",
        soft_wrap=True,
    )
    if result.met:
        console.print(f"recommended {head}")
        return
    console.print(
        f"[bold red]the SLO cannot be met[/]: no configuration reached the attainment of {config.attainment:g} "
        f"within {config.min_replicas}..{config.max_replicas} replicas; best reachable point: {head}",
        soft_wrap=True,
    )
    raise typer.Exit(1)


def _interrupted(
    config: TuneConfig,
    scored: Sequence[CandidateScore],
    stage: str,
    simulations: int,
    *,
    out: Path,
    console: Console,
    json_out: bool,
) -> NoReturn:
    """Ctrl-C: every candidate scored so far into ``OUT/partial.json``, the best of them named, exit 130."""
    from jetscale.cli.interrupt import EXIT_INTERRUPTED, second_interrupt_exits, write_partial
    from jetscale.tune.evaluate import rank_key
    from jetscale.tune.report import candidate_row

    with second_interrupt_exits():
        best = min(scored, key=rank_key) if scored else None
        document = {
            "command": "tune",
            "stage": stage,
            "simulations": simulations,
            "required_attainment": config.attainment,
            "best_so_far": candidate_row(best) if best is not None else None,
            "note": "scores of the search may be on compressed traffic (see 'compression'); none is confirmed",
            "candidates": [candidate_row(s) for s in scored],
        }
        path = write_partial(out, document)
        if json_out:
            from jetscale.cli.output import print_json

            print_json({"partial": True, **document})
        best_text = (
            f"; best so far {best.candidate.label} (attainment {best.attainment:.3f}, {best.cost:,.1f} replica-h, "
            f"{'meets' if best.feasible else 'misses'} {config.attainment:g}; not confirmed)"
            if best is not None
            else ""
        )
        console.print(
            f"interrupted during {stage}: {simulations} simulations, {len(scored)} candidates scored{best_text}; "
            f"partial results in {path}",
            soft_wrap=True,
        )
    raise typer.Exit(EXIT_INTERRUPTED)


def register(app: typer.Typer) -> None:
    """Add ``tune`` to the ``jetscale`` app."""
    app.command("tune", help=f"Tune HPA thresholds in the simulator. e.g. {_EXAMPLE}")(tune_command)
