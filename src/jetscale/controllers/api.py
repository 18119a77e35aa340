"""The autoscaler interface that every controller implements: observations and history in, desired
replicas and a reason out. No clock: ``now_s`` is a parameter, and the state is a frozen value that
the caller keeps (``Policy.decide``) or that ``ControllerLoop`` keeps for it.

Models: what one sync of an autoscaler reads (``Observation``: the scale's current and ready replica
counts, per-pod metric values by name, the requests that arrived, finished and were in flight over the
interval since the previous sync, their mean time to first token, and whether the metrics source failed)
and what it writes (``Decision``: desired replicas, a ``Reason`` from a closed set, one line of detail).

Does not model: the write of the scale (the caller applies ``desired_replicas``) or any I/O.

Each controller is a ``Policy[S]`` over its own state type ``S``:
``policy.decide(state, observation, now_s) -> (decision, new_state)`` with ``policy.initial_state()``
for a controller that has never synced. The policy object is immutable and holds only the spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, Protocol, TypeVar

from jetscale.errors import ConfigError

__all__ = ["ControllerLoop", "Decision", "Observation", "Policy", "Reason", "clamp"]


class Reason(StrEnum):
    """Why a controller chose its count; one closed set shared by every controller."""

    HPA = "HPA"  # the Kubernetes HPA algorithm decided (KEDA's 1 <-> N path); detail has its reason
    ACTIVATED = "Activated"  # KEDA: a trigger went above its activationThreshold while at 0 (or idle)
    DEACTIVATED = "Deactivated"  # KEDA: every trigger inactive for cooldownPeriod: to idle or min (0)
    COOLDOWN = "Cooldown"  # KEDA: every trigger inactive, cooldownPeriod not over yet
    FALLBACK = "Fallback"  # KEDA: failureThreshold exceeded, the HPA sized on fallback replicas
    METRICS_UNAVAILABLE = "MetricsUnavailable"  # no usable metric: keep the current count
    IDLE = "Idle"  # at zero (or idle) with nothing to do
    STABLE = "Stable"  # KPA: stable mode, sized on the stable window
    PANIC = "Panic"  # KPA: panic mode, sized on the panic window, never down
    RATE_LIMITED = "RateLimited"  # KPA: held to max-scale-up-rate / max-scale-down-rate
    SCALE_TO_ZERO_GRACE = "ScaleToZeroGrace"  # KPA: wants 0, waits for the stable window / grace period
    SCALED_TO_ZERO = "ScaledToZero"  # KPA: the grace period is over: 0
    SLO_SIZED = "SloSized"  # queueing: the fewest replicas whose predicted TTFT meets the SLO
    SLO_INFEASIBLE = "SloInfeasible"  # queueing: no count within max meets the SLO: max
    STABILIZED = "Stabilized"  # held up by a scale-down stabilization window
    BOUNDED = "Bounded"  # clamped to the configured min or max


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What one sync reads.

    ``pod_metrics`` maps a metric name (``jetstream_prefill_backlog_size``) to one value per ready pod,
    as a scrape of each pod's ``/metrics`` gives it; a metric a controller needs that is absent, or any
    metric while ``metrics_failed``, is a failed read. The request counters cover the ``interval_s``
    seconds that end at this sync: ``in_flight_requests`` is the fleet-wide mean number of requests in
    flight (queued at the router included, as Knative's activator counts them at zero replicas), and
    ``mean_ttft_s`` the mean time to first token of the requests whose first token came in the interval
    (None: none did).
    """

    current_replicas: int  # scale.spec.replicas
    ready_replicas: int
    interval_s: float
    pod_metrics: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    metrics_failed: bool = False
    arrived_requests: int = 0
    completed_requests: int = 0
    in_flight_requests: float = 0.0
    mean_ttft_s: float | None = None

    def __post_init__(self) -> None:
        if self.current_replicas < 0 or self.ready_replicas < 0:
            raise ConfigError(
                f"'observation' replica counts must be >= 0 (got current {self.current_replicas}, "
                f"ready {self.ready_replicas})"
            )
        if not self.interval_s > 0:
            raise ConfigError(f"'observation.interval_s' must be > 0 (got {self.interval_s})")
        if self.arrived_requests < 0 or self.completed_requests < 0 or self.in_flight_requests < 0:
            raise ConfigError("'observation' request counts must be >= 0")

    @property
    def arrival_rate_rps(self) -> float:
        return self.arrived_requests / self.interval_s

    @property
    def throughput_rps(self) -> float:
        return self.completed_requests / self.interval_s


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """One sync's outcome: the count to write (``desired_replicas``; equal to current: no write)."""

    current_replicas: int
    desired_replicas: int
    reason: Reason
    detail: str = ""

    @property
    def rescale(self) -> bool:
        return self.desired_replicas != self.current_replicas


S = TypeVar("S")


class Policy(Protocol[S]):
    """An autoscaler: a pure function of (its spec, its state, one observation, now)."""

    @property
    def name(self) -> str: ...

    @property
    def min_replicas(self) -> int: ...

    @property
    def max_replicas(self) -> int: ...

    def initial_state(self) -> S: ...

    def decide(self, state: S, observation: Observation, now_s: float) -> tuple[Decision, S]: ...


class ControllerLoop(Generic[S]):
    """Keeps one policy's state between syncs; the constructor only stores its argument."""

    def __init__(self, policy: Policy[S]) -> None:
        self._policy = policy
        self._state = policy.initial_state()

    @property
    def policy(self) -> Policy[S]:
        return self._policy

    @property
    def state(self) -> S:
        return self._state

    def step(self, observation: Observation, now_s: float) -> Decision:
        decision, self._state = self._policy.decide(self._state, observation, now_s)
        return decision


def clamp(replicas: int, min_replicas: int, max_replicas: int) -> int:
    return max(min_replicas, min(max_replicas, replicas))
