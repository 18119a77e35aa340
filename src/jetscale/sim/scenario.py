"""What one simulation is asked: the traffic, the replica shape, the start-up delays, the autoscaler's
clocks, and the run's length.

Traffic is given in the formats of ``jetscale load`` and drawn from the same seeded streams
(``jetscale.load.config.streams``): an open loop's arrival times come from ``poisson_arrivals`` on the
arrivals stream and its sizes from the workload on the sizes stream, so a simulation and a load run with
the same seed send the same requests (exactly, for plans of up to ``SIZE_CHUNK`` requests: beyond that
the simulator draws sizes a chunk at a time to bound its memory). A trace is replayed as it is; a closed
loop draws sizes in send order, 4096 at a time, and each user's think times from its own generator, as
the load generator does.

Clients: with ``client_timeout_s`` a client gives up on a request that has not finished that long after
it arrived, and the request is cancelled in its engine as the live server cancels a request whose
client hung up (``jetscale.sim.simulator``).

Start-up: a new replica (pod) waits for a node (``provision``), pulls its image (``pull``), loads the
model (``load``; by default the preset's ``model_load_s``) and passes its readiness probe (``ready``).
Each is a ``Delay``, fixed or drawn per replica from the scenario's seed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np

from jetscale.engine.presets import ReplicaConfig
from jetscale.errors import ConfigError
from jetscale.hpa.types import ControllerConfig, HPASpec
from jetscale.load.arrivals import ClosedLoop, RateShape, poisson_arrivals
from jetscale.load.config import streams
from jetscale.load.stats import Slo
from jetscale.load.trace import Trace
from jetscale.load.workload import Workload
from jetscale.units import parse_duration_s

__all__ = [
    "CLOSED_SIZE_CHUNK",
    "SIZE_CHUNK",
    "ArrivalChunk",
    "ClosedTraffic",
    "Delay",
    "DelayKind",
    "OpenTraffic",
    "Scenario",
    "Startup",
    "TraceTraffic",
    "Traffic",
    "parse_delay",
    "parse_startup",
]

SIZE_CHUNK = 1 << 20  # open-loop sizes drawn this many at a time
CLOSED_SIZE_CHUNK = 4096  # as jetscale.load.users draws them


class DelayKind(StrEnum):
    FIXED = "fixed"
    UNIFORM = "uniform"
    LOGNORMAL = "lognormal"


@dataclass(frozen=True, slots=True, kw_only=True)
class Delay:
    """A duration in seconds: fixed (``low``), uniform on [low, high], or log-normal (mean, cv)."""

    kind: DelayKind = DelayKind.FIXED
    low_s: float = 0.0
    high_s: float = 0.0
    mean: float = 0.0
    cv: float = 0.0

    def __post_init__(self) -> None:
        if not (self.low_s >= 0 and math.isfinite(self.low_s)):
            raise ConfigError(f"'low_s' must be a finite duration >= 0 (got {self.low_s})")
        if self.kind is DelayKind.UNIFORM and not (math.isfinite(self.high_s) and self.high_s >= self.low_s):
            raise ConfigError(f"'high_s' must be >= low_s ({self.low_s}) (got {self.high_s})")
        if self.kind is DelayKind.LOGNORMAL and not (self.mean > 0 and self.cv > 0):
            raise ConfigError(f"'mean' and 'cv' must be > 0 (got {self.mean} and {self.cv})")

    @property
    def mean_s(self) -> float:
        if self.kind is DelayKind.UNIFORM:
            return (self.low_s + self.high_s) / 2
        if self.kind is DelayKind.LOGNORMAL:
            return self.mean
        return self.low_s

    def sample(self, rng: np.random.Generator) -> float:
        if self.kind is DelayKind.UNIFORM:
            return float(rng.uniform(self.low_s, self.high_s))
        if self.kind is DelayKind.LOGNORMAL:
            sigma = math.sqrt(math.log1p(self.cv * self.cv))
            return float(rng.lognormal(math.log(self.mean) - sigma * sigma / 2, sigma))
        return self.low_s

    def describe(self) -> str:
        if self.kind is DelayKind.UNIFORM:
            return f"{self.low_s:g}s..{self.high_s:g}s"
        if self.kind is DelayKind.LOGNORMAL:
            return f"lognormal:{self.mean:g}s:{self.cv:g}"
        return f"{self.low_s:g}s"


def parse_delay(text: str, field_name: str) -> Delay:
    """``30s`` (fixed), ``30s..90s`` (uniform) or ``lognormal:60s:0.3`` (mean, coefficient of variation)."""
    raw = text.strip()
    if raw.startswith("lognormal:"):
        parts = raw.split(":")
        if len(parts) != 3:
            raise ConfigError(f"'{field_name}' must be lognormal:MEAN:CV such as lognormal:60s:0.3 (got {text!r})")
        try:
            cv = float(parts[2])
        except ValueError:
            raise ConfigError(f"'{field_name}' cv must be a number (got {parts[2]!r})") from None
        return Delay(kind=DelayKind.LOGNORMAL, mean=parse_duration_s(parts[1], f"'{field_name}'"), cv=cv)
    low, sep, high = raw.partition("..")
    if sep:
        return Delay(
            kind=DelayKind.UNIFORM,
            low_s=parse_duration_s(low, f"'{field_name}'"),
            high_s=parse_duration_s(high, f"'{field_name}'"),
        )
    return Delay(low_s=parse_duration_s(raw, f"'{field_name}'"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Startup:
    """How long a new replica takes: node, image, model, readiness probe. ``load`` None: the preset's."""

    provision: Delay = field(default_factory=Delay)
    pull: Delay = field(default_factory=lambda: Delay(kind=DelayKind.UNIFORM, low_s=20.0, high_s=40.0))
    load: Delay | None = None
    ready: Delay = field(default_factory=lambda: Delay(low_s=10.0))

    def mean_s(self, config: ReplicaConfig) -> float:
        """The expected time from creation to ready (what the oracle plans with)."""
        load = self.load.mean_s if self.load is not None else config.model_load_s
        return self.provision.mean_s + self.pull.mean_s + load + self.ready.mean_s

    def describe(self) -> str:
        load = self.load.describe() if self.load is not None else "preset"
        return (
            f"provision={self.provision.describe()},pull={self.pull.describe()},load={load},"
            f"ready={self.ready.describe()}"
        )


_STARTUP_KEYS = ("provision", "pull", "load", "ready")


def parse_startup(text: str | None) -> Startup:
    """``provision=0s,pull=20s..40s,load=preset,ready=10s``; keys left out keep their defaults."""
    base = Startup()
    if not text or not text.strip():
        return base
    values: dict[str, Delay | None] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or key not in _STARTUP_KEYS:
            raise ConfigError(
                f"'--startup' must be key=DELAY with key one of {', '.join(_STARTUP_KEYS)} (got {part!r})"
            )
        values[key] = None if key == "load" and value.strip() == "preset" else parse_delay(value, f"--startup {key}")
    provision, pull, ready = (values.get(k, getattr(base, k)) for k in ("provision", "pull", "ready"))
    assert provision is not None and pull is not None and ready is not None
    return Startup(provision=provision, pull=pull, load=values.get("load"), ready=ready)


# --- traffic ----------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ArrivalChunk:
    """Consecutive requests in arrival order, ids from ``first_id``: times (s) and sizes (tokens)."""

    first_id: int
    times_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray

    def __len__(self) -> int:
        return len(self.times_s)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class OpenTraffic:
    """Poisson arrivals under ``shape`` with sizes from ``workload``, seeded as ``jetscale load``."""

    shape: RateShape
    workload: Workload
    seed: int = 0
    max_requests: int | None = None

    def chunks(self, duration_s: float) -> Iterator[ArrivalChunk]:
        rng_arrivals, rng_sizes, _ = streams(self.seed)
        times = poisson_arrivals(self.shape, rng_arrivals, duration_s=duration_s, max_count=self.max_requests)
        for start in range(0, len(times), SIZE_CHUNK):
            part = times[start : start + SIZE_CHUNK]
            sizes = self.workload.sample(rng_sizes, len(part))
            yield ArrivalChunk(
                first_id=start, times_s=part, input_tokens=sizes.input_tokens, output_tokens=sizes.output_tokens
            )

    def describe(self) -> str:
        return f"open loop, {self.shape.describe()}, {self.workload.describe()}"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TraceTraffic:
    """A recorded trace, replayed as it is (requests at or after the run's end are left out)."""

    trace: Trace
    max_requests: int | None = None
    name: str = "trace"

    def chunks(self, duration_s: float) -> Iterator[ArrivalChunk]:
        times = self.trace.times_s
        n = int(np.searchsorted(times, duration_s, side="left"))
        if self.max_requests is not None:
            n = min(n, self.max_requests)
        for start in range(0, n, SIZE_CHUNK):
            stop = min(n, start + SIZE_CHUNK)
            yield ArrivalChunk(
                first_id=start,
                times_s=times[start:stop],
                input_tokens=self.trace.input_tokens[start:stop],
                output_tokens=self.trace.output_tokens[start:stop],
            )

    def describe(self) -> str:
        return f"trace {self.name}, {len(self.trace.times_s)} requests over {self.trace.duration_s:g}s"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ClosedTraffic:
    """``loop.users`` users; each sends its next request a think time after the previous one ends."""

    loop: ClosedLoop
    workload: Workload
    seed: int = 0
    max_requests: int | None = None

    def describe(self) -> str:
        return f"closed loop, {self.loop.users} users, think {self.loop.think_time_s:g}s, {self.workload.describe()}"


Traffic = OpenTraffic | TraceTraffic | ClosedTraffic


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Scenario:
    """One simulation's inputs. ``hpa`` None runs a fixed fleet of ``initial_replicas`` (no autoscaler)."""

    replica: ReplicaConfig
    traffic: Traffic
    duration_s: float
    hpa: HPASpec | None = None
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    initial_replicas: int | None = None  # None: the HPA's minReplicas (1 without an HPA)
    startup: Startup = field(default_factory=Startup)
    router: str = "round-robin"
    scrape_interval_s: float = 15.0
    metrics_lag_s: float = 0.0  # a scrape is visible to the HPA this long after it was taken
    drain_after_s: float = 600.0  # after the last arrival, how long in-flight requests may still finish
    slos: tuple[Slo, ...] = ()
    seed: int = 0  # of the start-up delays (traffic carries its own)
    records: bool = False  # keep one row per request
    # a client gives up on a request not finished this long after it arrived; None: clients wait forever
    client_timeout_s: float | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.duration_s) and self.duration_s > 0):
            raise ConfigError(f"'duration_s' must be > 0 (got {self.duration_s})")
        if not self.scrape_interval_s > 0:
            raise ConfigError(f"'scrape_interval_s' must be > 0 (got {self.scrape_interval_s})")
        if not self.metrics_lag_s >= 0:
            raise ConfigError(f"'metrics_lag_s' must be >= 0 (got {self.metrics_lag_s})")
        if not self.drain_after_s >= 0:
            raise ConfigError(f"'drain_after_s' must be >= 0 (got {self.drain_after_s})")
        if not self.controller.sync_period_s > 0:
            raise ConfigError(f"'sync_period_s' must be > 0 (got {self.controller.sync_period_s})")
        timeout = self.client_timeout_s
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                    or not 0.0 < timeout < math.inf):  # fmt: skip
            raise ConfigError(f"'client_timeout_s' must be a number of seconds > 0 (got {timeout!r})")
        n = self.initial_replicas
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
            raise ConfigError(f"'initial_replicas' must be an integer >= 0 (got {n!r})")

    @property
    def start_replicas(self) -> int:
        if self.initial_replicas is not None:
            return self.initial_replicas
        return self.hpa.min_replicas if self.hpa is not None else 1
