"""A load run's configuration, validated once from the command line, and the plan it implies.

``LoadConfig`` is everything ``jetscale load`` was told, checked: exactly one traffic mode (open loop
``--rate``, closed loop ``--users``, or ``--trace``), a bound (``--duration`` and/or ``--max-requests``),
a target on loopback unless ``--allow-remote``. It round-trips through JSON so that the generator
process (which runs under gevent) gets exactly what the CLI validated.

``build_plan`` turns a config into what to send: for an open loop or a trace, every request's scheduled
time and size, drawn from independent seeded streams (arrivals, sizes, users) so that changing the
rate does not change the sizes; for a closed loop, the workload to draw from as users go.
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from jetscale.errors import ConfigError
from jetscale.load.arrivals import ClosedLoop, RateShape, ThinkKind, parse_shape, poisson_arrivals
from jetscale.load.protocol import Api, Target, parse_target
from jetscale.load.stats import Slo, parse_slos
from jetscale.load.trace import parse_trace
from jetscale.load.workload import Sizes, Workload, parse_workload
from jetscale.safeload import load_json
from jetscale.units import parse_duration_s

__all__ = ["LoadConfig", "Mode", "Plan", "build_plan", "is_loopback_literal", "parse_options", "streams"]

ReadLines = Callable[[str], Iterable[str]]


class Mode(StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    TRACE = "trace"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadConfig:
    target: Target
    api: Api
    mode: Mode
    out_dir: str
    rate_rps: float | None = None
    shape: str = "constant"
    users: int = 0
    think_time_s: float = 0.0
    think: ThinkKind = ThinkKind.FIXED
    ramp_up_s: float = 0.0
    trace: str | None = None
    trace_speed: float = 1.0
    time_unit: str = "auto"  # of the trace's numeric times: auto, s or ms (jetscale.load.trace)
    workload: str = "sharegpt-like"
    duration_s: float | None = None
    max_requests: int | None = None
    slo: str = ""
    seed: int = 0
    interval_s: float = 10.0
    timeout_s: float = 300.0
    drain_s: float = 30.0
    max_in_flight: int = 4096
    model: str = ""  # empty: the first model the server lists at /v1/models (``jetscale.load.runner``)
    stream: bool = True
    ignore_eos: bool = False
    allow_remote: bool = False
    quiet: bool = False
    html: bool = True

    @property
    def slos(self) -> tuple[Slo, ...]:
        return parse_slos(self.slo)

    @property
    def closed_loop(self) -> ClosedLoop:
        return ClosedLoop(users=self.users, think_time_s=self.think_time_s, think=self.think, ramp_up_s=self.ramp_up_s)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LoadConfig:
        raw: dict[str, Any] = load_json(text, what="load config")
        raw["target"] = Target(**raw["target"])
        raw["api"], raw["mode"], raw["think"] = Api(raw["api"]), Mode(raw["mode"]), ThinkKind(raw["think"])
        return cls(**raw)


def is_loopback_literal(host: str) -> bool | None:
    """True/False for an IP literal or ``localhost``; None for a name that must be resolved to tell."""
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return None


def _number(raw: str | None, flag: str, *, kind: type = float, minimum: float = 0.0, strict: bool = True) -> Any:
    if raw is None:
        return None
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"'{flag}' must be {what} (got {raw!r})") from None
    if not math.isfinite(value) or value < minimum or (strict and value == minimum):
        raise ConfigError(f"'{flag}' must be {'>' if strict else '>='} {minimum:g} (got {raw!r})")
    return value


def _duration(raw: str | None, flag: str, *, positive: bool = True) -> float | None:
    if raw is None:
        return None
    value = parse_duration_s(raw, f"'{flag}'")
    if positive and value <= 0:
        raise ConfigError(f"'{flag}' must be > 0 (got {raw!r})")
    return value


def parse_options(
    *,
    target: str,
    api: str = "jetstream-http",
    out_dir: str = "load-report",
    rate: str | None = None,
    shape: str | None = None,
    users: str | None = None,
    think_time: str | None = None,
    think: str = "fixed",
    ramp_up: str | None = None,
    trace: str | None = None,
    trace_speed: str | None = None,
    time_unit: str = "auto",
    workload: str = "sharegpt-like",
    duration: str | None = None,
    max_requests: str | None = None,
    slo: str | None = None,
    seed: str = "0",
    interval: str = "10s",
    timeout: str = "300s",
    drain: str = "30s",
    max_in_flight: str = "4096",
    model: str = "",
    stream: bool = True,
    ignore_eos: bool = False,
    allow_remote: bool = False,
    quiet: bool = False,
    html: bool = True,
) -> LoadConfig:
    """Validate the ``jetscale load`` flags (as typed) into a ``LoadConfig``; raises ``ConfigError``."""
    try:
        api_enum = Api(api)
    except ValueError:
        raise ConfigError(f"'--api' must be one of {', '.join(a.value for a in Api)} (got {api!r})") from None
    modes = [flag for flag, value in (("--rate", rate), ("--users", users), ("--trace", trace)) if value is not None]
    csv_shape = shape is not None and (shape.startswith("csv:") or shape.endswith(".csv"))
    if not modes and csv_shape:
        modes = ["--shape"]
    if len(modes) != 1 or (csv_shape and modes == ["--users"]) or (csv_shape and modes == ["--trace"]):
        raise ConfigError(
            "give exactly one traffic mode: '--rate' (open loop, with '--shape'), '--users' (closed loop) "
            f"or '--trace' (got {', '.join(modes) or 'none'})"
        )
    mode = Mode.CLOSED if users is not None else Mode.TRACE if trace is not None else Mode.OPEN
    if shape is not None and mode is not Mode.OPEN:
        raise ConfigError(f"'--shape' applies to an open loop ('--rate'), not to {modes[0]}")
    if mode is not Mode.CLOSED and (think_time is not None or ramp_up is not None):
        raise ConfigError("'--think-time' and '--ramp-up' apply to a closed loop ('--users')")
    duration_s = _duration(duration, "--duration")
    n_max = _number(max_requests, "--max-requests", kind=int)
    if duration_s is None and n_max is None and mode is not Mode.TRACE:
        raise ConfigError("every run needs a bound: give '--duration' and/or '--max-requests'")
    try:
        think_kind = ThinkKind(think)
    except ValueError:
        raise ConfigError(f"'--think' must be fixed or exponential (got {think!r})") from None
    config = LoadConfig(
        target=parse_target(target, api_enum),
        api=api_enum,
        mode=mode,
        out_dir=out_dir,
        rate_rps=_number(rate, "--rate"),
        shape=shape or "constant",
        users=_number(users, "--users", kind=int) or 0,
        think_time_s=_duration(think_time, "--think-time", positive=False) or 0.0,
        think=think_kind,
        ramp_up_s=_duration(ramp_up, "--ramp-up", positive=False) or 0.0,
        trace=trace,
        trace_speed=_number(trace_speed, "--trace-speed") or 1.0,
        time_unit=time_unit,
        workload=workload,
        duration_s=duration_s,
        max_requests=n_max,
        slo=slo or "",
        seed=_number(seed, "--seed", kind=int, strict=False),
        interval_s=_duration(interval, "--interval") or 10.0,
        timeout_s=_duration(timeout, "--timeout") or 300.0,
        drain_s=_duration(drain, "--drain", positive=False) or 0.0,
        max_in_flight=_number(max_in_flight, "--max-in-flight", kind=int),
        model=model,
        stream=stream,
        ignore_eos=ignore_eos,
        allow_remote=allow_remote,
        quiet=quiet,
        html=html,
    )
    config.slos  # noqa: B018 - validates the SLO spec now, not after the run
    if not allow_remote and is_loopback_literal(config.target.host) is False:
        raise ConfigError(
            f"'--target' {config.target.host} is not on loopback; pass '--allow-remote' to load a remote server"
        )
    return config


def streams(seed: int) -> tuple[np.random.Generator, np.random.Generator, np.random.Generator]:
    """Independent generators for (arrivals, sizes, users) from one seed."""
    arrivals, sizes, users = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    return arrivals, sizes, users


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Plan:
    """What to send. Open loop and trace: ``times_s`` and ``sizes`` per request; closed loop: ``workload``."""

    mode: Mode
    workload: Workload
    times_s: np.ndarray
    sizes: Sizes | None
    shape: RateShape | None = None
    trace_prompts: tuple[str | None, ...] = ()

    def prompt(self, index: int) -> str | None:
        if self.mode is Mode.TRACE:
            return self.trace_prompts[index] if 0 <= index < len(self.trace_prompts) else None
        return self.workload.prompt(index)


def build_plan(config: LoadConfig, read_lines: ReadLines) -> Plan:
    """The requests a config asks for (pure apart from ``read_lines``, which reads workload and trace files)."""
    workload = parse_workload(config.workload, read_lines=read_lines)
    rng_arrivals, rng_sizes, _ = streams(config.seed)
    if config.mode is Mode.CLOSED:
        config.closed_loop  # noqa: B018 - validates users and think time
        return Plan(mode=config.mode, workload=workload, times_s=np.empty(0), sizes=None)
    if config.mode is Mode.OPEN:
        shape = parse_shape(config.shape, rate_rps=config.rate_rps, duration_s=config.duration_s, read_lines=read_lines)
        times = poisson_arrivals(shape, rng_arrivals, duration_s=config.duration_s, max_count=config.max_requests)
        return Plan(
            mode=config.mode,
            workload=workload,
            times_s=times,
            sizes=workload.sample(rng_sizes, len(times)),
            shape=shape,
        )
    assert config.trace is not None
    trace = parse_trace(
        read_lines(config.trace), source=config.trace, speed=config.trace_speed, time_unit=config.time_unit
    )
    keep = np.ones(len(trace.times_s), dtype=bool)
    if config.duration_s is not None:
        keep &= trace.times_s < config.duration_s
    n = int(np.count_nonzero(keep))
    if config.max_requests is not None:
        n = min(n, config.max_requests)
    index = np.arange(len(trace.times_s))[keep][:n]
    has_prompt = np.array([p is not None for p in trace.prompts], dtype=bool) if trace.prompts else None
    sizes = Sizes(
        input_tokens=trace.input_tokens[index],
        output_tokens=trace.output_tokens[index],
        prompt_index=np.where(has_prompt[index], index, -1) if has_prompt is not None else np.full(n, -1),
        prompt_offset=rng_sizes.integers(0, 1 << 16, size=n),
    )
    return Plan(
        mode=config.mode, workload=workload, times_s=trace.times_s[index], sizes=sizes, trace_prompts=trace.prompts
    )
