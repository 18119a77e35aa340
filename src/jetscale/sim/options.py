"""``jetscale simulate``'s flags, as typed, turned into ``Scenario`` values; every bad value is one
``ConfigError`` naming the flag.

The traffic flags mean what they mean to ``jetscale load``: ``--rate`` (peak requests/s) with ``--shape``
for an open loop, ``--users`` for a closed loop, ``--trace`` for a replay; ``--workload`` for sizes.
Files are read here (the pure parsers take their lines).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from jetscale.engine.presets import ReplicaConfig, replica_config_from_mapping, resolve_preset
from jetscale.errors import ConfigError
from jetscale.hpa.types import ControllerConfig
from jetscale.load.arrivals import ClosedLoop, ThinkKind, parse_shape
from jetscale.load.trace import parse_trace
from jetscale.load.workload import parse_workload
from jetscale.sim.cost import PriceTable, parse_prices
from jetscale.sim.scenario import ClosedTraffic, OpenTraffic, TraceTraffic, Traffic
from jetscale.units import parse_duration_s

__all__ = [
    "DEFAULT_PRESET",
    "DEFAULT_PRICES_FILE",
    "admission_option",
    "build_traffic",
    "controller_config",
    "duration_option",
    "manifest_path",
    "one_replica_option",
    "positive_int",
    "read_lines",
    "read_prices",
    "replica_option",
]

DEFAULT_PRESET = "v5e-8/llama2-7b"
DEFAULT_PRICES_FILE = Path(__file__).resolve().parents[3] / "examples" / "prices.yaml"


def read_lines(path: str) -> Iterator[str]:
    """The lines of ``path``; ``ConfigError`` naming it when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: cannot be read (not UTF-8 text)") from None
    return iter(text.splitlines())


def duration_option(raw: str | None, flag: str, *, positive: bool = True) -> float | None:
    if raw is None:
        return None
    value = parse_duration_s(raw, f"'{flag}'")
    if positive and value <= 0:
        raise ConfigError(f"'{flag}' must be > 0 (got {raw!r})")
    return value


def positive_int(raw: str | None, flag: str, *, minimum: int = 1) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"'{flag}' must be a whole number (got {raw!r})") from None
    if value < minimum:
        raise ConfigError(f"'{flag}' must be >= {minimum} (got {raw!r})")
    return value


def _rate(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"'--rate' must be > 0 requests per second (got {raw!r})")
    return value


def build_traffic(
    *,
    rate: str | None,
    shape: str | None,
    users: str | None,
    think_time: str | None,
    think: str,
    ramp_up: str | None,
    trace: str | None,
    trace_speed: str | None,
    workload: str,
    duration: str | None,
    max_requests: str | None,
    seed: int,
    time_unit: str = "auto",
) -> tuple[Traffic, float]:
    """The traffic and the run's duration (a trace runs to its last request when ``--duration`` is unset)."""
    modes = [flag for flag, value in (("--rate", rate), ("--users", users), ("--trace", trace)) if value is not None]
    csv_shape = shape is not None and (shape.startswith("csv:") or shape.endswith(".csv"))
    if not modes and csv_shape:
        modes = ["--shape"]
    if len(modes) != 1:
        raise ConfigError(
            "give exactly one traffic mode: '--rate' (open loop, with '--shape'), '--users' (closed loop) "
            f"or '--trace' (got {', '.join(modes) or 'none'})"
        )
    if shape is not None and (users is not None or trace is not None):
        raise ConfigError(f"'--shape' applies to an open loop ('--rate'), not to {modes[0]}")
    if users is None and (think_time is not None or ramp_up is not None):
        raise ConfigError("'--think-time' and '--ramp-up' apply to a closed loop ('--users')")
    duration_s = duration_option(duration, "--duration")
    n_max = positive_int(max_requests, "--max-requests")
    if trace is not None:
        try:
            speed = float(trace_speed) if trace_speed is not None else 1.0
        except ValueError:
            raise ConfigError(f"'--trace-speed' must be a number > 0 (got {trace_speed!r})") from None
        replay = parse_trace(read_lines(trace), source=trace, speed=speed, time_unit=time_unit)
        end = duration_s if duration_s is not None else replay.duration_s + 1.0
        return TraceTraffic(trace=replay, max_requests=n_max, name=trace), end
    if duration_s is None:
        raise ConfigError("'--duration' must be given for an open or closed loop (got none)")
    parsed = parse_workload(workload, read_lines=read_lines)
    if users is not None:
        try:
            think_kind = ThinkKind(think)
        except ValueError:
            raise ConfigError(f"'--think' must be fixed or exponential (got {think!r})") from None
        loop = ClosedLoop(
            users=positive_int(users, "--users") or 1,
            think_time_s=duration_option(think_time, "--think-time", positive=False) or 0.0,
            think=think_kind,
            ramp_up_s=duration_option(ramp_up, "--ramp-up", positive=False) or 0.0,
        )
        return ClosedTraffic(loop=loop, workload=parsed, seed=seed, max_requests=n_max), duration_s
    rate_shape = parse_shape(shape or "constant", rate_rps=_rate(rate), duration_s=duration_s, read_lines=read_lines)
    return OpenTraffic(shape=rate_shape, workload=parsed, seed=seed, max_requests=n_max), duration_s


def manifest_path(path: Path) -> Path:
    """The HPA manifest of ``--hpa PATH``: the file, or the ``hpa.yaml`` of a tune bundle directory."""
    if path.is_dir():
        from jetscale.tune.bundle import load_bundle

        return load_bundle(path).hpa
    return path


def replica_option(preset: str | None, replica_file: Path | None, *, hpa: Path | None = None) -> ReplicaConfig:
    """``--replica FILE`` (a YAML mapping: ``preset`` plus overrides, or every field); else, when the HPA
    ``hpa`` belongs to a tune bundle, the replica shape it was tuned at; else ``--preset`` (default
    ``DEFAULT_PRESET``). A ``--preset`` whose shape contradicts the bundle's is refused, naming both."""
    if replica_file is None:
        from jetscale.tune.bundle import find_bundle

        bundle = find_bundle(hpa) if hpa is not None else None
        if bundle is None:
            return resolve_preset(preset or DEFAULT_PRESET)
        if preset is not None:
            from jetscale.k8s.tuned import replica_shape

            chosen = replica_shape(resolve_preset(preset))
            if chosen != replica_shape(bundle.replica):
                raise ConfigError(
                    f"'--preset' {preset} ({chosen.describe()}) contradicts the bundle {bundle.manifest}, tuned at "
                    f"{bundle.shape.describe()}: leave --preset out to replay the tuned shape, or give "
                    "--replica FILE to replay the HPA at another one"
                )
        return bundle.replica
    from jetscale.safeload import load_yaml

    try:
        text = replica_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"'--replica' must be a readable file (got {str(replica_file)!r}: {why})") from None
    doc = load_yaml(text, what=f"'--replica' {replica_file}")
    if not isinstance(doc, dict):
        raise ConfigError(
            f"'--replica' {replica_file} must hold a mapping of replica fields (got {type(doc).__name__})"
        )
    try:
        config = replica_config_from_mapping(doc)
    except ConfigError as exc:
        raise ConfigError(f"'--replica' {replica_file}: {exc}") from None
    return config if config.name else replace(config, name=replica_file.stem)


def one_replica_option(preset: str | None, replica_file: Path | None) -> ReplicaConfig:
    """``replica_option`` for the commands where ``--preset`` and ``--replica`` are alternatives (serve, up,
    predict, profile): giving both is refused, naming both."""
    if preset is not None and replica_file is not None:
        raise ConfigError(
            f"'--preset' and '--replica' must not both be given (got {preset!r} and {str(replica_file)!r})"
        )
    return replica_option(preset, replica_file)


def admission_option(
    config: ReplicaConfig, *, max_queue_wait: str | None, prefill_backlog_limit: str | None
) -> ReplicaConfig:
    """``--max-queue-wait D`` (the engine's ``max_queue_wait_s``: shed a request whose expected wait for its
    prefill is longer) and ``--prefill-backlog-limit N`` (``prefill_backlog_limit``: shed beyond N queued
    prompts) over every replica of ``config``; what is not given stays as the replica shape has it."""
    wait_s = duration_option(max_queue_wait, "--max-queue-wait")
    if wait_s is not None:
        config = replace(config, max_queue_wait_s=wait_s)
    limit = positive_int(prefill_backlog_limit, "--prefill-backlog-limit")
    if limit is not None:
        config = replace(config, prefill_backlog_limit=limit)
    return config


def controller_config(sync_period: str, tolerance: str | None) -> ControllerConfig:
    base = ControllerConfig()
    period = duration_option(sync_period, "--sync-period") or base.sync_period_s
    if tolerance is None:
        return replace(base, sync_period_s=period)
    try:
        value = float(tolerance)
    except ValueError:
        value = math.nan
    if not 0 <= value < 1:
        raise ConfigError(f"'--tolerance' must be in [0, 1) (got {tolerance!r})")
    return replace(base, sync_period_s=period, tolerance=value)


def read_prices(path: Path | None) -> PriceTable:
    """``--prices FILE``; without it ``examples/prices.yaml`` when present, else the built-in table."""
    chosen = path if path is not None else (DEFAULT_PRICES_FILE if DEFAULT_PRICES_FILE.is_file() else None)
    if chosen is None:
        return PriceTable()
    try:
        text = chosen.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"'--prices' must be a readable file (got {str(chosen)!r}: {why})") from None
    return parse_prices(text, source=str(chosen))
