"""``jetscale up``: a local fleet of replicas behind one router, autoscaled by the HPA manifest.

Example: ``jetscale up --hpa examples/hpa/backlog.yaml --preset v5e-8/llama2-7b --speed 10`` then send
load to the router (``jetscale load --target http://127.0.0.1:8000 ...``). Ctrl-C stops everything: the
router, then every replica drains and exits; no process is left behind. What the fleet did (requests,
scaling events) is printed and written to ``LOG_DIR/partial.json`` (``"partial": true``: the run had no
planned end). A second Ctrl-C while the replicas drain exits at once (they are killed with it). See
docs/fleet.md.
"""

from __future__ import annotations

import asyncio
import signal
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from jetscale.cli.interrupt import exit_now, write_partial
from jetscale.cli.output import make_console
from jetscale.errors import ConfigError

__all__ = ["register", "up"]


def up(
    hpa: Annotated[Path, typer.Option("--hpa", help="The autoscaling/v2 HorizontalPodAutoscaler manifest.")],
    preset: Annotated[str, typer.Option("--preset", help="Replica shape; see `jetscale presets`.")] = (
        "v5e-8/llama2-7b"
    ),
    speed: Annotated[float, typer.Option("--speed", help="Time compression for replicas and the HPA alike.")] = 1.0,
    prometheus: Annotated[
        bool, typer.Option("--prometheus", help="Read metrics through a real Prometheus (PromQL), not directly.")
    ] = False,
    router: Annotated[str, typer.Option("--router", help="round-robin or least-outstanding.")] = "round-robin",
    port: Annotated[int, typer.Option("--port", help="The router's port (0: any free port).")] = 8000,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Stop after this many wall seconds (default: until Ctrl-C).")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Decode slots per replica.")] = None,
    model_load_s: Annotated[
        float | None, typer.Option("--model-load-s", help="Replica start-up in model seconds (default: preset's).")
    ] = None,
    replicas: Annotated[
        int | None, typer.Option("--replicas", help="Replicas to start with (default: minReplicas).")
    ] = None,
    sync_period_s: Annotated[
        float, typer.Option("--sync-period-s", help="HPA sync period, model seconds (kube default 15).")
    ] = 15.0,
    scrape_interval_s: Annotated[
        float, typer.Option("--scrape-interval-s", help="Metrics scrape interval, model seconds.")
    ] = 15.0,
    log_dir: Annotated[
        Path | None, typer.Option("--log-dir", help="Replica and Prometheus logs (default: a temporary folder).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the replicas' generated text.")] = 0,
) -> None:
    """Run a local autoscaled fleet: replicas as processes, a router, metrics, and the Kubernetes HPA."""
    from jetscale.cli.hpa import load_hpa_file
    from jetscale.engine.presets import resolve_preset
    from jetscale.fleet import Fleet, FleetConfig, RoutingPolicy, ServeCommand
    from jetscale.fleet.run import run_fleet, stop_on_signals

    try:
        policy = RoutingPolicy(router)
    except ValueError:
        choices = ", ".join(p.value for p in RoutingPolicy)
        raise ConfigError(f"'--router' must be one of {choices} (got {router!r})") from None
    if duration is not None and duration <= 0:
        raise ConfigError(f"'--duration' must be > 0 seconds (got {duration:g})")
    overrides: dict[str, object] = {}
    if batch_size is not None:
        overrides["decode_slots"] = batch_size
    if model_load_s is not None:
        overrides["model_load_s"] = model_load_s
    shape = resolve_preset(preset, **overrides)  # a bad preset or batch fails here, not in every replica
    spec = load_hpa_file(hpa)
    logs = log_dir or Path(tempfile.mkdtemp(prefix="jetscale-up-"))
    command = ServeCommand(
        preset=preset, speed=speed, batch_size=batch_size, model_load_s=model_load_s, seed=seed,
    )  # fmt: skip
    config = FleetConfig(
        hpa=spec,
        command=command,
        speed=speed,
        policy=policy,
        port=port,
        prometheus=prometheus,
        sync_period_s=sync_period_s,
        scrape_interval_s=scrape_interval_s,
        initial_replicas=replicas,
        log_dir=logs,
        ready_timeout_wall_s=60.0 + shape.model_load_s / speed,
    )
    console = make_console()

    async def main() -> None:
        fleet = Fleet(config)
        console.print(
            f"starting {config.start_replicas} x {preset} ({shape.decode_slots} slots, ready in "
            f"{shape.model_load_s / speed:.3g} s) at speed {speed:g}; logs in {logs}"
        )
        with stop_on_signals() as stop:
            async with fleet:
                console.print(f"router on {fleet.url}: send JetStream (/v1/generate) or OpenAI (/v1/completions) load")
                ended = await run_fleet(fleet, console=console, stop=stop, duration_wall_s=duration)
                # a second Ctrl-C while draining: exit now (the replicas die with this process)
                asyncio.get_running_loop().add_signal_handler(signal.SIGINT, exit_now, signal.SIGINT, None)
                console.print(f"stopping ({ended}): draining {len(fleet.views())} replica(s)")
        totals = fleet.router.totals()
        events = fleet.controller.timeline.events
        console.print(
            f"stopped: {totals.arrivals} requests ({totals.ok} ok, {totals.failed} failed, {totals.retries} retried), "
            f"{len(events)} scaling events"
        )
        if ended == "signal":
            path = write_partial(logs, {
                "command": "up", "ended": "signal", "hpa": str(hpa), "preset": preset, "speed": speed,
                "requests": {"arrivals": totals.arrivals, "ok": totals.ok, "failed": totals.failed,
                             "retries": totals.retries},
                "scaling_events": [asdict(e) for e in events],
            })  # fmt: skip
            console.print(f"what the fleet did: {path}")

    asyncio.run(main())


def register(app: typer.Typer) -> None:
    """Add ``up`` to the ``jetscale`` app."""
    app.command("up")(up)
