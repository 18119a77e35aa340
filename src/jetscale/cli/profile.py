"""``jetscale profile``: measure a running server and fit a replica config to it (docs/profile.md).

Example: ``jetscale profile --target http://127.0.0.1:9000 --api jetstream-http --preset v5e-8/llama2-7b
--out prof`` writes ``prof/profile.yaml`` (pass it as ``--replica`` to simulate, tune, serve, up and
k8s render), ``prof/report.html`` and ``prof/points.json`` (what was measured; a second run with the same
``--out`` resumes from it). ``--preset``/``--replica`` names the chip and model the server runs (for HBM
and the longest prompt); the timing and the slot count come from the measurements. Against a server
whose time is compressed (``serve --speed 10``), ``--server-speed 10`` turns wall times into model times.
Exit status: 0 done (also when it stopped early: what was measured is fitted and kept), 2 bad flags or an
unreachable server, 130 on Ctrl-C (points.json keeps what was measured).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from jetscale.cli.output import make_console, print_json
from jetscale.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console

    from jetscale.profile.fit import Fit
    from jetscale.profile.points import Measurements

__all__ = ["profile_command", "register"]

APIS = ("jetstream-http", "jetstream-grpc", "openai")


def profile_command(
    target: Annotated[str, typer.Option("--target", help="The server's base URL, e.g. http://127.0.0.1:9000.")],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Where profile.yaml, the report and points go.")],
    api: Annotated[str, typer.Option("--api", help=f"The API to profile through: {', '.join(APIS)}.")] = (
        "jetstream-http"
    ),
    preset: Annotated[
        str | None, typer.Option("--preset", help="The chip and model the server runs (see `jetscale presets`).")
    ] = None,
    replica: Annotated[
        Path | None, typer.Option("--replica", help="The chip and model as a replica YAML (docs/replica.md).")
    ] = None,
    server_speed: Annotated[
        float, typer.Option("--server-speed", help="The server's time compression (serve --speed); 1 for real.")
    ] = 1.0,
    budget: Annotated[str, typer.Option("--budget", metavar="DURATION", help="Wall time for it all.")] = "10m",
    max_concurrency: Annotated[
        int, typer.Option("--max-concurrency", help="Most requests in flight at once (the ceiling).")
    ] = 64,
    model: Annotated[str | None, typer.Option("--model", help="OpenAI API: the model name to send.")] = None,
    metrics: Annotated[
        str | None,
        typer.Option("--metrics", help="The server's /metrics base URL where it is not --target (JetStream's 9100)."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the fit as one JSON document on stdout.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Profile a running server (JetStream or OpenAI API) and fit a replica config to it."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from jetscale.profile.fit import fit_measurements
    from jetscale.profile.output import capacity_rows, write_profile, write_report
    from jetscale.profile.runner import ProfileOptions, run_profile
    from jetscale.sim.options import one_replica_option
    from jetscale.units import parse_duration_s

    if api not in APIS:
        raise ConfigError(f"'--api' must be one of {', '.join(APIS)} (got {api!r})")
    if api == "jetstream-grpc":
        if "://" in target.removeprefix("grpc://") or ":" not in target.removeprefix("grpc://"):
            raise ConfigError(f"'--target' for jetstream-grpc must be host:port or grpc://host:port (got {target!r})")
    elif not target.startswith(("http://", "https://")):
        raise ConfigError(f"'--target' must be an http:// or https:// URL (got {target!r})")
    if metrics is not None and not metrics.startswith(("http://", "https://")):
        raise ConfigError(f"'--metrics' must be an http:// or https:// URL (got {metrics!r})")
    if not server_speed > 0 or server_speed != server_speed or server_speed == float("inf"):
        raise ConfigError(f"'--server-speed' must be a number > 0 (got {server_speed!r})")
    if max_concurrency < 1:
        raise ConfigError(f"'--max-concurrency' must be an integer >= 1 (got {max_concurrency})")
    if preset is None and replica is None:
        raise ConfigError(
            "'--preset' or '--replica' must name the chip and model the server runs, for its HBM and prompt "
            "lengths (got neither)"
        )
    budget_s = parse_duration_s(budget, "--budget")
    base = one_replica_option(preset, replica)
    options = ProfileOptions(
        target=target.rstrip("/"), api=api, out=out, max_prompt_tokens=base.max_prefill_length,
        max_output_tokens=base.max_target_length - base.max_prefill_length, server_speed=server_speed,
        budget_s=budget_s, max_concurrency=max_concurrency, model=model,
        metrics=metrics.rstrip("/") if metrics else None,
    )  # fmt: skip
    console = make_console(stderr=json_out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"'--out' must be a folder that can be written (got {str(out)!r}: {exc.strerror})") from None

    with Progress(
        TextColumn("[bold]profile[/]"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
        console=console, disable=quiet, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("profile", total=None)
        try:
            points = asyncio.run(
                run_profile(
                    options,
                    say=console.print,
                    advance=lambda n: progress.advance(task, n),
                    total=lambda n: progress.update(task, total=n),
                )
            )
        except KeyboardInterrupt:
            _interrupted(console, out)
    source = f"jetscale profile of {options.target} ({api}) at {points.started}"
    fit = fit_measurements(points, base=base, source=source)
    fit = dataclasses.replace(fit, config=dataclasses.replace(fit.config, name=f"profile of {options.target}"))
    path = write_profile(out, fit, points)
    report = write_report(out, fit, points)
    capacity = capacity_rows(fit, points)
    if json_out:
        from jetscale.engine.timing import timing_to_mapping

        print_json({
            "profile": str(path), "report": str(report), "slots": fit.config.decode_slots,
            "slots_source": points.slots_source, "client_overhead_s": fit.client_overhead_s,
            "timing": timing_to_mapping(fit.timing), "notes": list(fit.notes), "stopped": points.stopped or None,
            "decode_fit": dataclasses.asdict(fit.decode.quality),
            "prefill_fit": dataclasses.asdict(fit.prefill.quality),
            "capacity": capacity,
        })  # fmt: skip
        return
    _print_summary(console, fit, points, capacity, path, report)


def _interrupted(console: Console, out: Path) -> NoReturn:
    """Ctrl-C: points.json already holds every point measured (it is saved after each); say so, mark the
    run partial and exit 130. A second Ctrl-C meanwhile exits at once."""
    from jetscale.cli.interrupt import EXIT_INTERRUPTED, second_interrupt_exits, write_partial
    from jetscale.profile.points import Measurements
    from jetscale.profile.runner import POINTS_FILE

    with second_interrupt_exits():
        points_file = out / POINTS_FILE
        counts: dict[str, int] = {}
        if points_file.is_file():
            points = Measurements.from_json(points_file.read_text(encoding="utf-8"), source=str(points_file))
            counts = {"prefill": len(points.prefill), "decode": len(points.decode), "capacity": len(points.capacity)}
        write_partial(out, {"command": "profile", "points": str(points_file), "measured": counts})
        console.print(f"interrupted: what was measured is in {points_file} ({counts or 'nothing yet'}); run the "
                      "same command again to resume")  # fmt: skip
    raise typer.Exit(EXIT_INTERRUPTED)


def _print_summary(
    console: Console, fit: Fit, points: Measurements, capacity: list[dict[str, float]],
    path: Path, report: Path,
) -> None:  # fmt: skip
    from rich.table import Table

    from jetscale.profile.output import describe

    timing = fit.timing
    table = Table(title=f"profile of {points.target}")
    table.add_column("coefficient")
    table.add_column("value", justify="right")
    table.add_column("fit")
    table.add_row("decode step, fixed", f"{timing.decode_step_fixed_s * 1e3:.3f} ms", describe(fit.decode))
    table.add_row("decode step, per context token", f"{timing.decode_step_per_token_s * 1e6:.4f} µs", "")
    table.add_row("prefill, fixed", f"{timing.prefill_fixed_s * 1e3:.3f} ms", describe(fit.prefill))
    table.add_row("prefill, per prompt token", f"{timing.prefill_per_token_s * 1e6:.3f} µs", "")
    table.add_row("prefill buckets", ", ".join(map(str, timing.prefill_buckets or ())) or "none", "")
    table.add_row("client overhead in TTFT", f"{fit.client_overhead_s * 1e3:.3f} ms", "not the server's")
    table.add_row("slots", str(fit.config.decode_slots), points.slots_source)
    for row in capacity:
        table.add_row(f"closed loop x{row['concurrency']:.0f}", f"{row['measured_tokens_s']:.1f} tok/s",
                      f"predicted {row['predicted_tokens_s']:.1f} ({row['error']:+.1%})")  # fmt: skip
    console.print(table)
    for note in fit.notes:
        console.print(f"note: {note}")
    if points.stopped:
        console.print(f"stopped early: {points.stopped}")
    console.print(f"wrote {path} and {report}")


def register(app: typer.Typer) -> None:
    """Add ``profile`` to the ``jetscale`` app."""
    app.command("profile")(profile_command)
