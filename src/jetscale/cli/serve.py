"""``jetscale serve`` (one JetStream- or vLLM-compatible replica) and ``jetscale presets`` (the replica
shapes, with where each one's efficiency comes from; ``--replica FILE`` adds a replica YAML's setup).

``serve`` resolves a preset with the flags' overrides, builds the engine of the replica's kind
(``make_engine``: JetStream's scheduler, or vLLM's for ``stack: vllm``) and runs ``ModelServer`` until
SIGTERM/SIGINT, then drains within the grace period and exits 0. ``--kind`` (default: the replica's own)
picks the API: ``jetstream`` (JetStream HTTP and gRPC, OpenAI, JetStream's metrics) or ``vllm`` (vLLM's
OpenAI-compatible server and metrics, no gRPC; docs/vllm-server.md); a kind the replica's stack does not
run is refused, naming both. Once listening it prints one line to stdout:
``serving <preset> as <id>: http=<host>:<port> grpc=<host>:<port> speed=<x> ready_in=<s>s`` (useful with
``--port 0``, which picks a free port; grpc=off for vLLM). Logs go to stderr.

Every flag is checked before anything starts: a bad value, or an address the server cannot listen on
(``--host`` that is not an address of this machine, ``--port`` taken or not allowed), is one line on stderr
and exit status 2. Admission: ``--prefill-backlog-limit`` bounds the queue by count and ``--max-queue-wait``
by time (model seconds); either refuses with 429 and ``Retry-After`` (docs/replica.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jetscale.engine.accelerator import EfficiencyKind
from jetscale.engine.config import ServerKind
from jetscale.engine.factory import make_engine
from jetscale.engine.presets import ReplicaConfig, list_presets, modeled_peak
from jetscale.errors import ConfigError
from jetscale.server.app import ModelServer, serve_until_signalled
from jetscale.server.config import ListenError, ServerConfig
from jetscale.sim.options import DEFAULT_PRESET, one_replica_option
from jetscale.units import parse_duration_s

__all__ = ["MAX_QUEUE_WAIT_HELP", "PREFILL_BACKLOG_HELP", "build_server", "parse_max_queue_wait", "register"]

_GIB = 2**30
_LISTEN_FLAGS = {"host": "--host", "port": "--port", "grpc_port": "--grpc-port"}  # ListenError.field -> flag
MAX_QUEUE_WAIT_HELP = (
    "Shed (429, vLLM: 503, + Retry-After) a request whose expected wait for its prefill is over this many model "
    "seconds: 2s, 500ms, 1m (default: no bound by time, as in JetStream)."
)
_BACKLOG_DEFAULT = next(f.default for f in dataclasses.fields(ReplicaConfig) if f.name == "prefill_backlog_limit")
PREFILL_BACKLOG_HELP = (
    f"Shed (429, vLLM: 503, + Retry-After) a request beyond this many prompts queued for prefill (default "
    f"{_BACKLOG_DEFAULT})."
)


def parse_max_queue_wait(text: str | None) -> float | None:
    """``--max-queue-wait``: model seconds > 0 from a duration (``2s``, ``500ms``, ``1m``), or None."""
    if text is None:
        return None
    try:
        seconds = parse_duration_s(text, "--max-queue-wait")
    except ConfigError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigError(f"'--max-queue-wait' must be a duration > 0 such as 2s, 500ms or 1m (got {text!r})")
    return seconds


def _server_id(flag: str | None) -> str:
    if flag is not None:
        return flag
    return os.environ.get("HOSTNAME") or f"jetscale-{os.getpid()}"


def _kind(flag: ServerKind | str | None, replica: ReplicaConfig) -> ServerKind:
    """``--kind``: the replica's own kind when absent; one its stack does not run is refused, naming both."""
    if flag is None:
        return replica.kind
    if flag not in tuple(ServerKind):
        choices = ", ".join(k.value for k in ServerKind)
        raise ConfigError(f"'--kind' must be one of {choices} (got {flag!r})")
    kind = ServerKind(str(flag))
    if kind is not replica.kind:
        raise ConfigError(f"'--kind' must be the replica's kind, {replica.kind.value} (its stack is "
                          f"{replica.stack.value}) (got {kind.value})")  # fmt: skip
    return kind


def build_server(
    *,
    preset: str | None = None,
    replica_file: Path | None = None,
    batch_size: int | None = None,
    port: int = 9000,
    grpc_port: int | None = 9001,
    speed: float = 1.0,
    seed: int = 0,
    host: str = "127.0.0.1",
    model_load_s: float | None = None,
    server_id: str | None = None,
    prefill_backlog_limit: int | None = None,
    max_queue_wait_s: float | None = None,
    grace_period_s: float = 30.0,
    kind: ServerKind | str | None = None,
) -> tuple[ModelServer, ReplicaConfig]:
    """The server ``jetscale serve`` runs, from its flags (``ConfigError`` names the bad one): the replica is
    ``--replica FILE`` (a replica YAML or a profile.yaml) or ``--preset`` (default ``DEFAULT_PRESET``), with
    the other flags applied on top; ``kind`` None is the replica's own. A vLLM-kind server has no gRPC:
    ``grpc_port`` must be None."""
    overrides: dict[str, object] = {}
    if batch_size is not None:
        overrides["decode_slots"] = batch_size
    if model_load_s is not None:
        overrides["model_load_s"] = model_load_s
    if prefill_backlog_limit is not None:
        overrides["prefill_backlog_limit"] = prefill_backlog_limit
    if max_queue_wait_s is not None:
        overrides["max_queue_wait_s"] = max_queue_wait_s
    base = one_replica_option(preset, replica_file)
    replica = dataclasses.replace(base, **overrides) if overrides else base  # type: ignore[arg-type]
    server_kind = _kind(kind, replica)
    if server_kind is ServerKind.VLLM and grpc_port is not None:
        raise ConfigError(f"'--grpc-port' must be -1 (off) with kind vllm: vLLM serves no gRPC (got {grpc_port})")
    config = ServerConfig(
        server_id=_server_id(server_id),
        model_name=replica.model.name,
        kind=server_kind,
        host=host,
        http_port=port,
        grpc_port=grpc_port,
        speed=speed,
        seed=seed,
        model_load_engine_s=replica.model_load_s,
        max_prefill_length=replica.max_prefill_length,
        max_output_tokens=replica.max_target_length - replica.max_prefill_length,
        max_model_len=replica.max_target_length,
        grace_period_s=grace_period_s,
    )
    return ModelServer(make_engine(replica), config), replica


def serve(
    preset: Annotated[
        str | None, typer.Option("--preset", help=f"Replica shape; see `jetscale presets` (default {DEFAULT_PRESET}).")
    ] = None,
    replica_file: Annotated[
        Path | None,
        typer.Option("--replica", help="Replica YAML (docs/replica.md) or a `jetscale profile` profile.yaml."),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Decode slots (per-device batch size x chips).")
    ] = None,
    port: Annotated[int, typer.Option("--port", help="HTTP port (every HTTP API, /metrics); 0 = any.")] = 9000,
    grpc_port: Annotated[
        int | None,
        typer.Option("--grpc-port", help="gRPC port (kind jetstream; default 9001); 0 = any, -1 = no gRPC."),
    ] = None,
    kind: Annotated[
        str | None,
        typer.Option("--kind", help="API and metrics: jetstream or vllm (default: the replica's stack's kind)."),
    ] = None,
    speed: Annotated[float, typer.Option("--speed", help="Time compression: engine seconds per wall second.")] = 1.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the generated text.")] = 0,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    model_load_s: Annotated[
        float | None, typer.Option("--model-load-s", help="Model load time in engine seconds (default: preset's).")
    ] = None,
    server_id: Annotated[
        str | None, typer.Option("--server-id", help="The metrics' `id` label (default: $HOSTNAME).")
    ] = None,
    prefill_backlog_limit: Annotated[
        int | None, typer.Option("--prefill-backlog-limit", help=PREFILL_BACKLOG_HELP)
    ] = None,
    max_queue_wait: Annotated[
        str | None, typer.Option("--max-queue-wait", metavar="DURATION", help=MAX_QUEUE_WAIT_HELP)
    ] = None,
    grace_period_s: Annotated[
        float, typer.Option("--grace-period-s", help="SIGTERM: wall seconds in-flight requests may take.")
    ] = 30.0,
) -> None:
    """Serve one JetStream-compatible replica (HTTP, gRPC, OpenAI, /metrics) on a simulated accelerator, or a
    vLLM-compatible one (vLLM's OpenAI server and metrics) for a replica of stack vllm (--kind vllm).

    Admission: a request is shed with 429 (vLLM: 503) and Retry-After when the prefill backlog is full
    (--prefill-backlog-limit) or when its expected wait for a prefill is over --max-queue-wait.
    """
    if grpc_port is not None and grpc_port < -1:
        raise ConfigError(f"'grpc_port' must be -1 (off) or in 0..65535 (got {grpc_port})")
    if kind is not None and kind not in tuple(ServerKind):
        raise ConfigError(f"'--kind' must be one of {', '.join(k.value for k in ServerKind)} (got {kind!r})")
    if grpc_port is None:  # the kind's default: 9001, none for vLLM (which has no gRPC)
        chosen = ServerKind(kind) if kind is not None else one_replica_option(preset, replica_file).kind
        grpc: int | None = None if chosen is ServerKind.VLLM else 9001
    else:
        grpc = None if grpc_port == -1 else grpc_port
    server, replica = build_server(
        preset=preset,
        replica_file=replica_file,
        batch_size=batch_size,
        port=port,
        grpc_port=grpc,
        speed=speed,
        seed=seed,
        host=host,
        model_load_s=model_load_s,
        server_id=server_id,
        prefill_backlog_limit=prefill_backlog_limit,
        max_queue_wait_s=parse_max_queue_wait(max_queue_wait),
        grace_period_s=grace_period_s,
        kind=kind,
    )

    label = preset or (replica.name if replica_file is not None else DEFAULT_PRESET)

    def started(s: ModelServer) -> None:
        grpc = f"{s.config.host}:{s.grpc_port}" if s.grpc_port is not None else "off"
        ready_in = replica.model_load_s / s.config.speed
        print(
            f"serving {label} as {s.config.server_id}: http={s.config.host}:{s.http_port} grpc={grpc} "
            f"speed={s.config.speed:g} slots={replica.decode_slots} ready_in={ready_in:.3g}s",
            flush=True,
        )

    def log(line: str) -> None:
        print(f"jetscale serve: {line}", file=sys.stderr, flush=True)

    try:
        code = asyncio.run(serve_until_signalled(server, on_started=started, log=log))
    except ListenError as exc:
        raise exc.flag_error(_LISTEN_FLAGS[exc.field]) from None
    raise typer.Exit(code)


def presets(
    replica: Annotated[
        list[Path] | None,
        typer.Option("--replica", help="Also show this replica YAML's setup (docs/replica.md); repeatable."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="The setups as one JSON document on stdout, only.")] = False,
) -> None:
    """List the replica presets with their modeled peak throughput, HBM use at full batch, and where each
    setup's efficiency comes from (calibrated, borrowed from a calibrated setup, or fitted to a profile)."""
    from jetscale.engine.calibration import CALIBRATED_EFFICIENCY, setup_name
    from jetscale.sim.options import replica_option

    setups = [(p.name, p.config()) for p in list_presets()]
    setups += [(path.name, replica_option("", path)) for path in replica or []]
    table = Table(title="Replica presets (peak: every slot busy, prompts of half the prefill length)")
    for column in ("preset", "accelerator", "model"):
        table.add_column(column, no_wrap=True)
    for column in ("slots", "prefill/target", "peak out tok/s", "step ms", "HBM used/total GiB", "load s"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("HBM mode", no_wrap=True)
    table.add_column("efficiency", no_wrap=True)
    notes: dict[str, int] = {}  # a note's text -> its number
    calibrated = {setup_name(key): eff for key, eff in CALIBRATED_EFFICIENCY.items()}

    def note(text: str) -> str:
        return f"[{notes.setdefault(text, len(notes) + 1)}]"

    def on(setup: str) -> str:
        return f"{setup}, calibrated on {calibrated[setup].source}"

    rows: list[dict[str, object]] = []  # --json
    for name, config in setups:
        peak = modeled_peak(config)
        eff = config.resolved_efficiency
        if config.timing is not None:  # a profile's measured timing: the roofline is not used
            label = f"fitted {note(config.timing.source or 'measured timing')}"
        elif eff.kind is EfficiencyKind.CALIBRATED and config.efficiency is None:
            label = f"calibrated {note(on(setup_name((config.accelerator.family, config.model.family))))}"
        elif eff.kind is EfficiencyKind.BORROWED and eff.borrowed_from in calibrated:
            label = f"borrowed {note(on(eff.borrowed_from))}"
        else:  # set in the replica YAML
            label = f"{eff.kind.value} {note(eff.provenance)}"
        table.add_row(
            name,
            config.accelerator.name,
            config.model.name,
            str(config.decode_slots),
            f"{config.max_prefill_length}/{config.max_target_length}",
            f"{peak.output_tokens_s:,.0f}",
            f"{1000 * peak.decode_step_s:.1f}",
            f"{peak.hbm_used_bytes / _GIB:.1f}/{peak.hbm_total_bytes / _GIB:.0f} "
            f"({100 * peak.hbm_used_bytes / peak.hbm_total_bytes:.0f}%)",
            f"{config.model_load_s:g}",
            config.hbm_mode.value,
            label,
        )
        rows.append({
            "preset": name, "accelerator": config.accelerator.name, "model": config.model.name,
            "decode_slots": config.decode_slots, "max_prefill_length": config.max_prefill_length,
            "max_target_length": config.max_target_length, "peak_output_tokens_s": peak.output_tokens_s,
            "decode_step_s": peak.decode_step_s, "hbm_used_bytes": peak.hbm_used_bytes,
            "hbm_total_bytes": peak.hbm_total_bytes, "model_load_s": config.model_load_s,
            "hbm_mode": config.hbm_mode.value, "efficiency": eff.kind.value, "efficiency_note": label,
        })  # fmt: skip
    if json_out:
        from jetscale.cli.output import print_json

        print_json({"command": "presets", "setups": rows, "notes": {str(n): t for t, n in notes.items()}})
        return
    from jetscale.cli.output import make_console

    console = make_console()
    console.print(table)
    console.print(
        "efficiency: calibrated = fitted to published figures of that chip and model (docs/calibration.md); "
        "borrowed = the efficiency of the calibrated setup [n], reused where no figure exists (its throughput is a "
        "guess); fitted = from a measured profile (`jetscale profile`); given = set in a replica YAML.",
        soft_wrap=True,
        markup=False,
    )
    for text, number in notes.items():
        console.print(f"  [{number}] {text}", soft_wrap=True, markup=False)


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``presets`` to the ``jetscale`` app."""
    app.command("serve")(serve)
    app.command("presets")(presets)
