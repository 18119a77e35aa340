"""What the HPA can see: metric scrapes of the replicas, and the readings one sync builds from the latest
scrape that has reached the metrics API.

A scrape at ``t`` reads every replica whose model is loaded (``signal_value`` of its snapshot) and
becomes visible ``lag`` seconds later (the metrics pipeline: Prometheus, the adapter). A sync reads the
newest visible scrape. Pods metrics become ``PodMetrics`` in milli-units (``round(value x 1000)``, as a
Kubernetes quantity holds them), one sample per pod that was scraped; External metrics become the
values of every scraped series. A metric no replica exports, or an Object/Resource metric (not
modeled), is a ``MetricUnavailable``: the HPA handles it as a failed metric, as it would on a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass

from jetscale.hpa.types import (
    ExternalMetric,
    HPASpec,
    MetricReading,
    MetricSourceType,
    MetricUnavailable,
    PodMetric,
    PodMetrics,
)
from jetscale.sim.fleet import Replica, ReplicaState
from jetscale.sim.signals import is_known_signal, signal_value

__all__ = ["Scrape", "fleet_average", "metric_names", "readings", "scrape"]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Scrape:
    """One scrape: ``values[metric][pod]``; ``draining`` names the pods that were being deleted."""

    t_s: float
    visible_s: float
    values: Mapping[str, Mapping[str, float]]
    draining: frozenset[str]


def metric_names(spec: HPASpec | None, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The known signals a run must scrape: those the HPA reads, then ``extra``, without repeats."""
    names: list[str] = []
    wanted = [m.name for m in spec.metrics] if spec is not None else []
    for name in [*wanted, *extra]:
        if is_known_signal(name) and name not in names:
            names.append(name)
    return tuple(names)


def scrape(replicas: Iterable[Replica], names: tuple[str, ...], now_s: float, lag_s: float) -> Scrape:
    """Read every loaded replica at ``now_s`` (each snapshot once: it also closes the duty-cycle window)."""
    values: dict[str, dict[str, float]] = {name: {} for name in names}
    draining: set[str] = set()
    for replica in replicas:
        engine = replica.engine
        if engine is None or not engine.is_ready(now_s) or replica.state is ReplicaState.GONE:
            continue
        snapshot = engine.snapshot(now_s)
        for name in names:
            value = signal_value(name, snapshot)
            if value is not None:
                values[name][replica.name] = value
        if replica.state is ReplicaState.DRAINING:
            draining.add(replica.name)
    return Scrape(t_s=now_s, visible_s=now_s + lag_s, values=values, draining=frozenset(draining))


def fleet_average(scraped: Scrape, name: str) -> float:
    """The average of ``name`` over the scraped replicas that are not being deleted (NaN: none)."""
    per_pod = scraped.values.get(name, {})
    kept = [v for pod, v in per_pod.items() if pod not in scraped.draining]
    return sum(kept) / len(kept) if kept else math.nan


def _current(scraped: Scrape | None, name: str, pods: Set[str]) -> dict[str, float]:
    if scraped is None:
        return {}
    return {pod: v for pod, v in scraped.values.get(name, {}).items() if pod in pods}


def _milli(value: float) -> int:
    return round(value * 1000)


def readings(spec: HPASpec, scraped: Scrape | None, *, window_s: float, pods: Set[str]) -> tuple[MetricReading, ...]:
    """One reading per ``spec.metrics`` entry from ``scraped`` (None: nothing visible yet), for the pods
    that exist now (the metrics API is asked about the pods the selector matches)."""
    out: list[MetricReading] = []
    for metric in spec.metrics:
        known = is_known_signal(metric.name)
        per_pod = _current(scraped, metric.name, pods)
        if metric.type is MetricSourceType.PODS and known:
            t = scraped.t_s if scraped is not None else 0.0
            out.append(
                PodMetrics(
                    values={
                        pod: PodMetric(value_milli=_milli(v), timestamp_s=t, window_s=window_s)
                        for pod, v in per_pod.items()
                    }
                )
            )
        elif metric.type is MetricSourceType.EXTERNAL and known:
            out.append(
                ExternalMetric(
                    values_milli=tuple(_milli(v) for v in per_pod.values()),
                    timestamp_s=scraped.t_s if scraped is not None else 0.0,
                )
            )
        elif metric.type in (MetricSourceType.PODS, MetricSourceType.EXTERNAL):
            out.append(MetricUnavailable(error=f"the server could not find the metric {metric.name} for pods"))
        else:
            out.append(
                MetricUnavailable(
                    error=f"the simulator models no {metric.type.value} metric {metric.name!r}; "
                    "use a Pods or External metric of the replicas (jetscale.sim.signals)"
                )
            )
    return tuple(out)
