"""The simulated Deployment on the event queue: it scales to what the HPA asks, moves its replicas
through their lives (``jetscale.sim.fleet``) and keeps the router's set of ready replicas.

Scale-up creates pods at once; each then waits its own start-up delays, drawn from the seed in creation
order (provisioning, pull, model load, readiness). Scale-down deletes the pods a ReplicaSet would
(``scale_down_order``): one not yet ready is gone at once; a ready one leaves the router, finishes its
requests in flight, then is gone (its engine events are scheduled so the moment is exact; a request
its client abandons counts as ended when it is cancelled).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from jetscale.engine.api import Completion
from jetscale.engine.factory import make_engine
from jetscale.engine.presets import ReplicaConfig
from jetscale.hpa.types import Pod
from jetscale.sim.clock import EventKind, EventQueue, Priority
from jetscale.sim.fleet import Replica, ReplicaState, Router, scale_down_order
from jetscale.sim.result import ReplicaSpan
from jetscale.sim.scenario import Startup

__all__ = ["Deployment", "Finished"]

Finished = Callable[[Replica, Sequence[Completion], float], None]  # (replica, completions, now)

_ENGINE = int(EventKind.ENGINE)
_SCHEDULED = int(EventKind.SCHEDULED)
_STARTED = int(EventKind.STARTED)
_READY = int(EventKind.READY)


class Deployment:
    """Replicas of one shape under one name; see the module docstring."""

    def __init__(
        self,
        *,
        name: str,
        config: ReplicaConfig,
        startup: Startup,
        rng: np.random.Generator,
        router: Router[Replica],
        queue: EventQueue,
        finished: Finished,
    ) -> None:
        self.name = name
        self.config = config
        self.startup = startup
        self.router = router
        self.replicas: list[Replica] = []  # every replica not yet gone
        self.desired = 0  # scale.spec.replicas
        self._rng = rng
        self._queue = queue
        self._finished = finished
        self._all: list[Replica] = []
        self._configs: dict[float | None, ReplicaConfig] = {None: config}

    # --- counts and views -----------------------------------------------------------------------------
    def live(self) -> list[Replica]:
        """Replicas not being deleted (scale.status.replicas counts these)."""
        return [r for r in self.replicas if r.state < ReplicaState.DRAINING]

    def pods(self) -> tuple[Pod, ...]:
        return tuple(r.pod() for r in self.replicas)

    def spans(self) -> list[ReplicaSpan]:
        return [
            ReplicaSpan(name=r.name, created_s=r.created_s, ready_s=r.ready_s, deleted_s=r.deleted_s, gone_s=r.gone_s)
            for r in self._all
        ]

    # --- scaling ----------------------------------------------------------------------------------------
    def start(self, replicas: int) -> None:
        """``replicas`` ready replicas at t = 0 (the Deployment as it was when the run began)."""
        for _ in range(replicas):
            replica = self._new(0.0)
            replica.engine = make_engine(self.config)
            replica.state = ReplicaState.READY
            replica.scheduled_s = replica.started_s = replica.ready_s = 0.0
            self.router.add(replica)
        self.desired = replicas

    def scale(self, now: float, desired: int) -> None:
        """Write scale.spec.replicas = ``desired``: create or delete pods to match."""
        self.desired = desired
        live = self.live()
        for _ in range(desired - len(live)):
            self._create(now)
        for replica in scale_down_order(live)[: max(0, len(live) - desired)]:
            self._delete(replica, now)

    def _new(self, now: float) -> Replica:
        index = len(self._all)
        replica = Replica(index=index, name=f"{self.name}-{index}", created_s=now)
        self.replicas.append(replica)
        self._all.append(replica)
        return replica

    def _create(self, now: float) -> None:
        startup, rng = self.startup, self._rng
        replica = self._new(now)
        replica.provision_s = startup.provision.sample(rng)
        replica.pull_s = startup.pull.sample(rng)
        replica.load_s = startup.load.sample(rng) if startup.load is not None else None
        replica.readiness_s = startup.ready.sample(rng)
        self._queue.push(now + replica.provision_s, Priority.LIFECYCLE, _SCHEDULED, (replica, replica.token))

    def _config(self, load_s: float | None) -> ReplicaConfig:
        config = self._configs.get(load_s)
        if config is None:
            assert load_s is not None  # None is in the cache from the start
            config = self._configs[load_s] = dataclasses.replace(self.config, model_load_s=load_s)
        return config

    def lifecycle(self, kind: int, payload: tuple[Replica, int], now: float) -> None:
        """A SCHEDULED, STARTED or READY event."""
        replica, token = payload
        if token != replica.token:
            return  # deleted meanwhile
        if kind == _SCHEDULED:
            replica.state = ReplicaState.PULLING
            replica.scheduled_s = now
            self._queue.push(now + replica.pull_s, Priority.LIFECYCLE, _STARTED, payload)
        elif kind == _STARTED:
            replica.state = ReplicaState.STARTING
            ready_at = replica.start_engine(now, self._config(replica.load_s))
            self._queue.push(ready_at + replica.readiness_s, Priority.LIFECYCLE, _READY, payload)
        else:
            replica.state = ReplicaState.READY
            replica.ready_s = now
            self.router.add(replica)

    def _delete(self, replica: Replica, now: float) -> None:
        replica.deleted_s = now
        replica.token += 1
        if replica.state is not ReplicaState.READY:
            self._gone(replica, now)
            return
        self.router.remove(replica)
        replica.state = ReplicaState.DRAINING
        engine = replica.engine
        assert engine is not None
        done = engine.advance(now)[1]
        if done:
            self._finished(replica, done, now)
        nxt = engine.next_event_time()
        if nxt is None:
            self._gone(replica, now)
        else:
            self.watch(replica, nxt)

    def _gone(self, replica: Replica, now: float) -> None:
        replica.state = ReplicaState.GONE
        replica.gone_s = now
        replica.engine = None
        self.replicas.remove(replica)
        self.router.forget(replica)

    # --- engines ----------------------------------------------------------------------------------------
    def watch(self, replica: Replica, next_s: float) -> bool:
        """Make sure an engine event is queued at or before ``next_s``; True if one was pushed."""
        if next_s < replica.wake_s:
            replica.wake_s = next_s
            self._queue.push(next_s, Priority.ENGINE, _ENGINE, replica)
            return True
        return False

    def engine_event(self, replica: Replica, now: float, *, keep_watching: bool) -> None:
        """The replica's engine has an event at ``now``: collect what finished, then queue the next one
        if it is watched (or draining: it is gone when its last request ends)."""
        if replica.wake_s != now or replica.state is ReplicaState.GONE:
            return  # superseded by an earlier event, or the replica is gone
        replica.wake_s = math.inf
        self.settle(replica, now, keep_watching=keep_watching)

    def settle(self, replica: Replica, now: float, *, keep_watching: bool) -> None:
        """Collect what the replica's engine finished by ``now`` and queue its next event if it is watched
        (or draining: it is gone when its last request ends). After an engine event, and after a request
        was cancelled (its next event may be earlier, and it may have been a draining replica's last)."""
        engine = replica.engine
        assert engine is not None
        done = engine.advance(now)[1]
        if done:
            self._finished(replica, done, now)
        nxt = engine.next_event_time()
        draining = replica.state is ReplicaState.DRAINING
        if draining and nxt is None:
            self._gone(replica, now)
        elif nxt is not None and (keep_watching or draining):
            self.watch(replica, nxt)

    def advance_all(self, now: float) -> None:
        """Run every engine up to ``now`` and hand over what finished."""
        for replica in self.replicas:
            engine = replica.engine
            if engine is not None:
                done = engine.advance(now)[1]
                if done:
                    self._finished(replica, done, now)
