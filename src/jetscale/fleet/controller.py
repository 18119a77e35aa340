"""The fleet's HPA loop: every sync period, observe the replicas, run ``jetscale.hpa``, set the count.

One sync is what kube-controller-manager does for one HPA (``reconcileAutoscaler``), with the fleet in
the cluster's place:

1. the scale: ``spec.replicas`` is the count the fleet was last asked for; ``status.replicas`` the
   replicas that exist and are not terminating;
2. the pods, as the HPA sees them (``pods_for``): a starting replica is a Pending pod; a ready one is
   Running and Ready; a restarting one (its process died) is Running and not Ready; a draining one is
   being deleted, so the HPA ignores it;
3. the readings of every metric, from the metrics source, for the Running pods: a pod without a value
   (never scraped yet, last scrape failed, process down) is a *missing* pod to the HPA, which assumes
   it at 0 when scaling up and at the target when scaling down; an outage of the whole source is
   ``MetricUnavailable`` and the HPA holds;
4. ``HorizontalController.step`` at the model time (wall x speed, so windows and policies scale) and,
   on a rescale, ``ReplicaSet.scale``.

Each sync is kept (``SyncRecord``) and added to the run's ``Timeline`` (``jetscale.report.timeline``):
replicas by state, the fleet signals, and what the router saw since the last sync, in model time
(request rate per model second, latencies in model seconds).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from jetscale.fleet.clock import FleetClock
from jetscale.fleet.replicas import ReplicaSet, ReplicaState, ReplicaView
from jetscale.fleet.router import Router, RouterWindow
from jetscale.fleet.scrape import MetricsSource, ScrapeTarget
from jetscale.hpa.controller import Decision, HorizontalController, Observation
from jetscale.hpa.types import ConditionStatus, MetricReading, MetricTargetType, Pod, PodPhase
from jetscale.report.timeline import Sample, ScalingEvent, Timeline

__all__ = [
    "FleetController",
    "SyncRecord",
    "metric_pods",
    "observe",
    "pod_for",
    "sample_for",
    "scrape_targets",
    "signal_targets",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncRecord:
    """One sync: when (model seconds), what the HPA observed, what it decided."""

    t_s: float
    observation: Observation
    decision: Decision


def pod_for(replica: ReplicaView) -> Pod | None:
    """The pod the HPA sees for a replica (None once it is gone)."""
    start = replica.created_s
    if replica.state is ReplicaState.STARTING:
        return Pod(name=replica.name, phase=PodPhase.PENDING, ready=ConditionStatus.FALSE,
                   ready_transition_s=start, start_time_s=start)  # fmt: skip
    if replica.state is ReplicaState.READY:
        ready_at = replica.ready_s if replica.ready_s is not None else start
        return Pod(name=replica.name, phase=PodPhase.RUNNING, ready=ConditionStatus.TRUE,
                   ready_transition_s=ready_at, start_time_s=start)  # fmt: skip
    if replica.state is ReplicaState.RESTARTING:
        return Pod(name=replica.name, phase=PodPhase.RUNNING, ready=ConditionStatus.FALSE,
                   ready_transition_s=start, start_time_s=start)  # fmt: skip
    if replica.state is ReplicaState.DRAINING:
        return Pod(name=replica.name, phase=PodPhase.RUNNING, ready=ConditionStatus.FALSE,
                   ready_transition_s=start, start_time_s=start, deleting=True)  # fmt: skip
    return None


def metric_pods(replicas: Sequence[ReplicaView]) -> list[str]:
    """The pods whose metrics are read: the Running ones that are not being deleted."""
    return [r.name for r in replicas if r.state in (ReplicaState.READY, ReplicaState.RESTARTING)]


def scrape_targets(replicas: Sequence[ReplicaView]) -> list[ScrapeTarget]:
    """What the metrics pipeline scrapes: every Running replica that has an address."""
    return [
        ScrapeTarget(pod=r.name, url=r.url)
        for r in replicas
        if r.url is not None and r.state in (ReplicaState.READY, ReplicaState.RESTARTING)
    ]


def observe(replicas: Sequence[ReplicaView], desired: int, readings: Sequence[MetricReading]) -> Observation:
    """The scale, pods and readings of one sync."""
    pods = tuple(p for r in replicas if (p := pod_for(r)) is not None)
    existing = sum(1 for r in replicas if r.state not in (ReplicaState.DRAINING, ReplicaState.STOPPED))
    return Observation(spec_replicas=desired, status_replicas=existing, pods=pods, readings=tuple(readings))


def _percentiles(values: Sequence[float], scale: float) -> tuple[float, float, float]:
    if not values:
        return math.nan, math.nan, math.nan
    p50, p95, p99 = np.percentile(np.asarray(values, dtype=float) * scale, (50, 95, 99))
    return float(p50), float(p95), float(p99)


def sample_for(
    t_s: float,
    *,
    desired: int,
    replicas: Sequence[ReplicaView],
    signals: dict[str, float],
    window: RouterWindow,
    speed: float,
) -> Sample:
    """The timeline row of one sync, in model time (rates per model second, latencies in model seconds)."""
    states = [r.state for r in replicas]
    model_window_s = window.wall_s * speed
    ttft = _percentiles(window.ttfb_s, speed)
    e2e = _percentiles(window.e2e_s, speed)
    return Sample(
        t_s=t_s,
        replicas_desired=desired,
        replicas_ready=states.count(ReplicaState.READY),
        replicas_starting=states.count(ReplicaState.STARTING) + states.count(ReplicaState.RESTARTING),
        replicas_draining=states.count(ReplicaState.DRAINING),
        prefill_backlog=signals.get("prefill_backlog", math.nan),
        slots_used=signals.get("slots_used", math.nan),
        hbm_usage=signals.get("hbm_usage", math.nan),
        request_rate_rps=window.arrivals / model_window_s if model_window_s > 0 else math.nan,
        ttft_p50_s=ttft[0],
        ttft_p95_s=ttft[1],
        ttft_p99_s=ttft[2],
        e2e_p50_s=e2e[0],
        e2e_p95_s=e2e[1],
        e2e_p99_s=e2e[2],
    )


_SIGNAL_OF_METRIC = {
    "jetstream_prefill_backlog_size": "prefill_backlog",
    "jetstream_slots_used_percentage": "slots_used",
    "memory_used_percentage": "hbm_usage",
}


def signal_targets(hpa: HorizontalController) -> dict[str, float]:
    """The HPA's AverageValue targets of the timeline's signals, for the plot's dashed lines."""
    out: dict[str, float] = {}
    for metric in hpa.spec.metrics:
        column = _SIGNAL_OF_METRIC.get(metric.name)
        target = metric.target
        if column is not None and target.type is MetricTargetType.AVERAGE_VALUE and target.average_value_milli:
            out[column] = target.average_value_milli / 1000
    return out


class FleetController:
    """Runs the HPA over a ``ReplicaSet`` every ``sync_period_s`` model seconds. Inert until ``start()``."""

    def __init__(
        self,
        hpa: HorizontalController,
        *,
        replicas: ReplicaSet,
        source: MetricsSource,
        router: Router,
        clock: FleetClock,
        sync_period_s: float = 15.0,
        on_sync: Callable[[SyncRecord], None] = lambda _: None,
    ) -> None:
        self.hpa = hpa
        self._replicas = replicas
        self._source = source
        self._router = router
        self._clock = clock
        self._sync_period_s = sync_period_s
        self._on_sync = on_sync
        self.records: list[SyncRecord] = []
        self.timeline = Timeline(targets=signal_targets(hpa), title=f"HPA {hpa.spec.namespace}/{hpa.spec.name}")
        self._task: asyncio.Task[None] | None = None

    @property
    def last(self) -> SyncRecord | None:
        return self.records[-1] if self.records else None

    async def sync_once(self) -> SyncRecord:
        """One reconcile now: observe, decide, scale; recorded and added to the timeline."""
        views = self._replicas.views()
        self._source.set_targets(scrape_targets(views))
        pods = metric_pods(views)
        readings = await self._source.readings(self.hpa.spec.metrics, pods)
        now_s = self._clock.model_s()
        observation = observe(views, self._replicas.desired, readings)
        decision = self.hpa.step(observation, now_s)
        if decision.rescale:
            await self._replicas.scale(decision.desired_replicas)
            event = ScalingEvent(
                t_s=now_s,
                from_replicas=decision.current_replicas,
                to_replicas=decision.desired_replicas,
                reason=decision.reason,
            )
            self.timeline.events.append(event)
        record = SyncRecord(t_s=now_s, observation=observation, decision=decision)
        self.records.append(record)
        ready = [r.name for r in views if r.state is ReplicaState.READY]
        signals = await self._source.signals(ready)
        sample = sample_for(
            now_s,
            desired=self._replicas.desired,
            replicas=self._replicas.views(),
            signals=signals,
            window=self._router.take_window(),
            speed=self._clock.speed,
        )
        self.timeline.samples.append(sample)
        self._on_sync(record)
        return record

    async def start(self) -> None:
        if self._task is None:
            self._router.take_window()  # the first sample covers the time since the loop started
            self._task = asyncio.create_task(self._loop(), name="jetscale-hpa")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        period = self._clock.to_wall_s(self._sync_period_s)
        next_at = loop.time()
        while True:
            await self.sync_once()
            next_at += period
            await asyncio.sleep(max(0.0, next_at - loop.time()))
