"""``jetscale up``: a local fleet of replicas behind one router, autoscaled by the HPA manifest.

Example: ``jetscale up --hpa examples/hpa/backlog.yaml --preset v5e-8/llama2-7b --speed 10`` then send
load to the router (``jetscale load --target http://127.0.0.1:8000 ...``). Ctrl-C stops everything: the
router, then every replica drains and exits; no process is left behind. What the fleet did (requests,
scaling events) is printed and written to ``LOG_DIR/partial.json`` (``"partial": true``: the run had no
planned end). A second Ctrl-C while the replicas drain exits at once (they are killed with it). See
docs/fleet.md.

Every flag is checked here, before anything starts, and a bad one is one line naming it (exit status 2):
numbers in range, ``--log-dir`` created and writable (and made absolute: Prometheus runs in a folder of
its own), ``--port`` one the router can listen on. ``--prefill-backlog-limit`` and ``--max-queue-wait``
are handed to every replica.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import signal
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from jetscale.cli.interrupt import exit_now, write_partial
from jetscale.cli.output import make_console
from jetscale.cli.serve import MAX_QUEUE_WAIT_HELP, PREFILL_BACKLOG_HELP, parse_max_queue_wait
from jetscale.errors import ConfigError

__all__ = ["register", "up"]


def _require(ok: bool, flag: str, constraint: str, value: object) -> None:
    if not ok:
        raise ConfigError(f"'{flag}' must be {constraint} (got {value:g})" if isinstance(value, float) else
                          f"'{flag}' must be {constraint} (got {value!r})")  # fmt: skip


def _positive(flag: str, value: float) -> None:
    _require(math.isfinite(value) and value > 0, flag, "a finite number > 0", value)


def log_folder(path: Path | None) -> Path:
    """``--log-dir`` as an absolute folder that exists and takes files (a new temporary one when None)."""
    if path is None:
        return Path(tempfile.mkdtemp(prefix="jetscale-up-"))
    folder = path.expanduser().absolute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        blocking = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        reason = f"{blocking} is a file" if blocking is not None else (exc.strerror or str(exc)).lower()
        raise ConfigError(
            f"'--log-dir' must be a folder that can be created and written to (got '{path}': {reason})"
        ) from None
    return folder


def up(
    hpa: Annotated[Path, typer.Option("--hpa", help="The autoscaling/v2 HorizontalPodAutoscaler manifest.")],
    preset: Annotated[
        str | None, typer.Option("--preset", help="Replica shape; see `jetscale presets` (default v5e-8/llama2-7b).")
    ] = None,
    replica_file: Annotated[
        Path | None,
        typer.Option("--replica", help="Replica YAML (docs/replica.md) or a `jetscale profile` profile.yaml."),
    ] = None,
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
    prefill_backlog_limit: Annotated[
        int | None, typer.Option("--prefill-backlog-limit", help=f"{PREFILL_BACKLOG_HELP} Passed to every replica.")
    ] = None,
    max_queue_wait: Annotated[
        str | None,
        typer.Option("--max-queue-wait", metavar="DURATION", help=f"{MAX_QUEUE_WAIT_HELP} Passed to every replica."),
    ] = None,
) -> None:
    """Run a local autoscaled fleet: replicas as processes, a router, metrics, and the Kubernetes HPA."""
    from jetscale.cli.hpa import load_hpa_file
    from jetscale.fleet import Fleet, FleetConfig, RoutingPolicy, ServeCommand
    from jetscale.fleet.run import run_fleet, stop_on_signals
    from jetscale.server.config import ListenError
    from jetscale.sim.options import DEFAULT_PRESET, one_replica_option
    from jetscale.sim.signals import check_exported

    try:
        policy = RoutingPolicy(router)
    except ValueError:
        choices = ", ".join(p.value for p in RoutingPolicy)
        raise ConfigError(f"'--router' must be one of {choices} (got {router!r})") from None
    _positive("--speed", speed)
    _require(0 <= port <= 65535, "--port", "in 0..65535", port)
    if duration is not None:
        _require(math.isfinite(duration) and duration > 0, "--duration", "a finite number of seconds > 0", duration)
    _positive("--sync-period-s", sync_period_s)
    _positive("--scrape-interval-s", scrape_interval_s)
    if batch_size is not None:
        _require(batch_size >= 1, "--batch-size", "an integer >= 1", batch_size)
    if model_load_s is not None:
        _require(math.isfinite(model_load_s) and model_load_s >= 0, "--model-load-s", "a finite number >= 0",
                 model_load_s)  # fmt: skip
    if prefill_backlog_limit is not None:
        _require(prefill_backlog_limit >= 1, "--prefill-backlog-limit", "an integer >= 1", prefill_backlog_limit)
    max_queue_wait_s = parse_max_queue_wait(max_queue_wait)
    command = ServeCommand(
        preset=preset or DEFAULT_PRESET, replica_file=replica_file, speed=speed, batch_size=batch_size,
        model_load_s=model_load_s, seed=seed, prefill_backlog_limit=prefill_backlog_limit,
        max_queue_wait_s=max_queue_wait_s,
    )  # fmt: skip
    # a bad preset, replica file or batch fails here, not in every replica
    base = one_replica_option(preset, replica_file)
    shape = dataclasses.replace(base, **command.overrides())  # type: ignore[arg-type]
    preset = preset or (base.name if replica_file is not None else DEFAULT_PRESET)
    spec = load_hpa_file(hpa)
    try:
        check_exported(spec, shape.kind, stack=shape.stack.value)
    except ConfigError as error:
        raise ConfigError(f"{hpa}: {error}") from None
    if replicas is not None:
        _require(spec.min_replicas <= replicas <= spec.max_replicas, "--replicas",
                 f"within the HPA's {spec.min_replicas}..{spec.max_replicas}", replicas)  # fmt: skip
    logs = log_folder(log_dir)
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

    try:
        asyncio.run(main())
    except ListenError as exc:  # only the router listens in this process
        raise exc.flag_error("--port") from None


def register(app: typer.Typer) -> None:
    """Add ``up`` to the ``jetscale`` app."""
    app.command("up")(up)
