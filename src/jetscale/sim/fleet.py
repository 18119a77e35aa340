"""The simulated Deployment: replicas through their life (pod phases as Kubernetes shows them), the
router in front of them (the Service), and which pods a scale-down removes.

A replica's life, and the ``Pod`` the HPA sees at each stage:

==============  ===============================================  ==========================================
state           what is happening                                Pod (phase, Ready, start time, deleting)
==============  ===============================================  ==========================================
``PENDING``     waiting for a node (provisioning)                Pending, no Ready condition, unset, no
``PULLING``     scheduled; pulling the image                     Pending, Ready=False, scheduled, no
``STARTING``    container running; loading the model, then       Running, Ready=False, scheduled, no
                waiting for the readiness probe
``READY``       in the router, serving                           Running, Ready=True, scheduled, no
``DRAINING``    deleted: out of the router, finishing its        Running, Ready=True, scheduled, yes
                requests in flight
``GONE``        its last request ended (or it was deleted        not listed
                before it served any)
==============  ===============================================  ==========================================

A replica reports metrics once its model is loaded (JetStream's gauges exist only then), so a loaded
replica still waiting for its readiness probe reports an empty backlog: the HPA counts such a pod (it is
Running) exactly as it would on a cluster.

Scale-down picks its victims as the ReplicaSet controller ranks pods (``ActivePodsWithRanks``):
unscheduled before scheduled, Pending before Running, not ready before ready, then the most recently
ready, then the newest.

Routing (``Router``): round-robin over the ready replicas in the order they became ready (the k-th
request goes to ``ready[k mod n]``), or least-outstanding (fewest requests in flight, the earliest
ready first among equals). The router is generic, so the live fleet can route with the same rules.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Hashable
from enum import IntEnum, StrEnum
from typing import Generic, TypeVar

from jetscale.engine.api import EngineRequest
from jetscale.engine.factory import make_engine
from jetscale.engine.presets import ReplicaConfig
from jetscale.engine.replica import ReplicaEngine
from jetscale.engine.vllm import VllmEngine
from jetscale.errors import ConfigError
from jetscale.hpa.types import ConditionStatus, Pod, PodPhase

__all__ = [
    "Replica",
    "ReplicaState",
    "Router",
    "RouterPolicy",
    "make_request",
    "parse_router",
    "scale_down_order",
]

T = TypeVar("T", bound=Hashable)


class RouterPolicy(StrEnum):
    ROUND_ROBIN = "round-robin"
    LEAST_OUTSTANDING = "least-outstanding"


def parse_router(name: str) -> RouterPolicy:
    try:
        return RouterPolicy(name)
    except ValueError:
        choices = ", ".join(p.value for p in RouterPolicy)
        raise ConfigError(f"'--router' must be one of {choices} (got {name!r})") from None


class Router(Generic[T]):
    """The ready backends and the choice of one per request. ``outstanding`` is kept by the caller
    through ``started``/``finished`` (only least-outstanding reads it)."""

    __slots__ = ("_count", "_outstanding", "_round_robin", "backends", "policy")

    def __init__(self, policy: RouterPolicy = RouterPolicy.ROUND_ROBIN) -> None:
        self.policy = policy
        self._round_robin = policy is RouterPolicy.ROUND_ROBIN
        self.backends: list[T] = []  # in the order they became ready
        self._count = 0  # requests routed so far
        self._outstanding: dict[T, int] = {}  # backend -> requests in flight

    def add(self, backend: T) -> None:
        self.backends.append(backend)
        self._outstanding.setdefault(backend, 0)

    def remove(self, backend: T) -> None:
        self.backends.remove(backend)

    def outstanding(self, backend: T) -> int:
        return self._outstanding.get(backend, 0)

    def started(self, backend: T, n: int = 1) -> None:
        self._outstanding[backend] = self._outstanding.get(backend, 0) + n

    def finished(self, backend: T, n: int = 1) -> None:
        left = self._outstanding.get(backend, 0) - n
        if left < 0:
            raise ValueError(f"'finished' must not exceed the requests started (got {-left} too many)")
        self._outstanding[backend] = left

    def forget(self, backend: T) -> None:
        """The backend is gone: drop its count."""
        self._outstanding.pop(backend, None)

    def pick(self) -> T | None:
        """The backend for the next request; None when none is ready."""
        backends = self.backends
        if not backends:
            return None
        if self._round_robin:
            k = self._count
            self._count = k + 1
            return backends[k % len(backends)]
        return min(backends, key=self._outstanding.__getitem__)


class ReplicaState(IntEnum):
    """Also the scale-down rank: lower states are removed first."""

    PENDING = 0
    PULLING = 1
    STARTING = 2
    READY = 3
    DRAINING = 4
    GONE = 5


class Replica:
    """One simulated replica: its pod's life and, once its container runs, its engine."""

    __slots__ = (
        "created_s",
        "deleted_s",
        "engine",
        "gone_s",
        "index",
        "load_s",
        "name",
        "provision_s",
        "pull_s",
        "readiness_s",
        "ready_s",
        "scheduled_s",
        "started_s",
        "state",
        "token",
        "wake_s",
    )

    def __init__(self, *, index: int, name: str, created_s: float) -> None:
        self.index = index
        self.name = name
        self.state = ReplicaState.PENDING
        self.created_s = created_s
        self.scheduled_s = math.nan
        self.started_s = math.nan
        self.ready_s = math.nan
        self.deleted_s = math.nan
        self.gone_s = math.nan
        self.provision_s = 0.0
        self.pull_s = 0.0
        self.load_s: float | None = None  # None: the config's model_load_s
        self.readiness_s = 0.0
        self.engine: ReplicaEngine | VllmEngine | None = None
        self.token = 0  # bumped to cancel this replica's pending lifecycle events
        self.wake_s = math.inf  # time of its pending engine event in the queue (inf: none)

    def start_engine(self, now_s: float, config: ReplicaConfig) -> float:
        """The container starts at ``now_s``: make the engine and begin loading. Returns the ready time."""
        self.engine = make_engine(config)
        self.started_s = now_s
        return self.engine.start(now_s)

    def pod(self) -> Pod:
        """The pod as the HPA lists it."""
        state = self.state
        if state is ReplicaState.PENDING:
            return Pod(name=self.name, phase=PodPhase.PENDING, ready=None, start_time_s=None)
        if state is ReplicaState.PULLING or state is ReplicaState.STARTING:
            phase = PodPhase.PENDING if state is ReplicaState.PULLING else PodPhase.RUNNING
            return Pod(
                name=self.name,
                phase=phase,
                ready=ConditionStatus.FALSE,
                ready_transition_s=self.scheduled_s,
                start_time_s=self.scheduled_s,
            )
        return Pod(
            name=self.name,
            phase=PodPhase.RUNNING,
            ready=ConditionStatus.TRUE,
            ready_transition_s=self.ready_s,
            start_time_s=self.scheduled_s,
            deleting=state is ReplicaState.DRAINING,
        )

    def __repr__(self) -> str:
        return f"Replica({self.name}, {self.state.name})"


def scale_down_order(replicas: list[Replica]) -> list[Replica]:
    """The live (not deleting) replicas in the order a ReplicaSet deletes them."""
    live = [r for r in replicas if r.state < ReplicaState.DRAINING]

    def rank(r: Replica) -> tuple[int, float, float]:
        ready = r.ready_s if r.state is ReplicaState.READY else -math.inf
        return (int(r.state), -ready, -r.created_s)

    return sorted(live, key=rank)


# --- requests -----------------------------------------------------------------------------------------------
def _setters() -> tuple[Callable[[object, object], None], ...] | None:
    names = ("request_id", "input_tokens", "output_tokens", "arrival_s")
    fields = tuple(f.name for f in dataclasses.fields(EngineRequest))
    if fields != names or "__slots__" not in EngineRequest.__dict__ or hasattr(EngineRequest, "__post_init__"):
        return None
    return tuple(EngineRequest.__dict__[n].__set__ for n in names)


_SETTERS = _setters()
_new = object.__new__


def make_request(request_id: int, input_tokens: int, output_tokens: int, arrival_s: float) -> EngineRequest:
    """An ``EngineRequest``, built by setting its slots (equal to the keyword constructor's, at less than
    half its cost: one is made per simulated request). Falls back to the constructor if its shape changes."""
    if _SETTERS is None:
        return EngineRequest(
            request_id=request_id, input_tokens=input_tokens, output_tokens=output_tokens, arrival_s=arrival_s
        )
    request: EngineRequest = _new(EngineRequest)
    s0, s1, s2, s3 = _SETTERS
    s0(request, request_id)
    s1(request, input_tokens)
    s2(request, output_tokens)
    s3(request, arrival_s)
    return request
