"""The per-pod half of the replica calculator: metrics averaged over the pods of the scale target.

Mirrors ``GetResourceReplicas``, ``GetRawResourceReplicas``, ``GetMetricReplicas`` and
``calcPlainMetricReplicas`` of ``pkg/controller/podautoscaler/replica_calculator.go`` (newest master):
Resource, ContainerResource and Pods metrics, ``ceil(ratio x ready pods)``, then the conservative second
pass over pods without a metric and unready pods. Which pods count is ``jetscale.hpa.podgroups``; Go's
number rules are ``jetscale.hpa.gonum``; ``jetscale.hpa.replicas`` has the Object/External half.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from jetscale.hpa.gonum import go_ceil, go_float_div, go_int_div, to_int32, wrap_int64
from jetscale.hpa.podgroups import (
    CPU,
    NO_PODS,
    CalcError,
    PodGroups,
    UtilizationRatio,
    calculate_pod_level_requests,
    calculate_pod_requests_from_containers,
    calculate_requests,
    group_pods,
    metric_usage_ratio,
    ready_pod_count,
    resource_utilization_ratio,
)
from jetscale.hpa.types import (
    ControllerConfig,
    MetricUnavailable,
    Pod,
    PodMetrics,
    Tolerances,
)
from jetscale.units import format_milli

__all__ = [
    "CPU",
    "NO_PODS",
    "CalcError",
    "PodGroups",
    "ReplicaCalculation",
    "UtilizationRatio",
    "calc_plain_metric_replicas",
    "calculate_pod_level_requests",
    "calculate_pod_requests_from_containers",
    "calculate_requests",
    "format_ratio",
    "get_metric_replicas",
    "get_raw_resource_replicas",
    "get_resource_replicas",
    "go_ceil",
    "go_float_div",
    "go_int_div",
    "group_pods",
    "metric_usage_ratio",
    "ready_pod_count",
    "resource_utilization_ratio",
    "to_int32",
    "within_tolerance_line",
    "wrap_int64",
]

_NO_USABLE = "did not receive metrics for targeted pods (pods might be unready)"

# ------------------------------------------------------- Resource, ContainerResource, Pods (two passes)


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaCalculation:
    """A calculator result: replicas, the usage reported in status (average, total or per pod), the
    first-pass usage ratio, the utilization percentage for Utilization targets, and the arithmetic."""

    replicas: int
    usage_milli: int
    usage_ratio: float
    utilization: int | None = None
    timestamp_s: float = 0.0
    explanation: tuple[str, ...] = ()


def format_ratio(ratio: float) -> str:
    """A usage ratio in an explanation line."""
    return f"{ratio:.3f}"


def _band(tolerances: Tolerances) -> str:
    return f"[{1.0 - tolerances.scale_down:.3f}, {1.0 + tolerances.scale_up:.3f}]"


def within_tolerance_line(tolerances: Tolerances, ratio: float, current_replicas: int) -> str:
    """The explanation line for a ratio inside the tolerance band."""
    return f"ratio {format_ratio(ratio)} within tolerance {_band(tolerances)} -> keep {current_replicas} replicas"


def _groups_line(groups: PodGroups, listed: int) -> str:
    return (
        f"{listed} pods listed: {groups.ready_count} ready, {len(groups.unready)} unready or pending, "
        f"{len(groups.missing)} without a metric, {len(groups.ignored)} deleted or terminal (ignored)"
    )


def _fetched(metrics: PodMetrics | MetricUnavailable, fetch_error: str, api: str) -> PodMetrics | CalcError:
    """The metrics client's errors: its own failure, or an empty list from ``api``."""
    if isinstance(metrics, MetricUnavailable):
        return CalcError(message=f"{fetch_error}: {metrics.error}")
    if not metrics.values:
        return CalcError(message=f"{fetch_error}: no metrics returned from {api} metrics API")
    return metrics


def _timestamp(metrics: PodMetrics) -> float:
    """The client's timestamp: that of its first item."""
    return next(iter(metrics.values.values())).timestamp_s


_Recompute = Callable[[Mapping[str, int]], "tuple[float, str] | CalcError"]


def _two_pass(
    *,
    current_replicas: int,
    usage_ratio: float,
    groups: PodGroups,
    samples: Mapping[str, int],
    tolerances: Tolerances,
    missing_on_scale_down: Callable[[str], int],
    missing_note: str,
    recompute: _Recompute,
    lines: list[str],
) -> int | CalcError:
    """The shared tail of GetResourceReplicas and calcPlainMetricReplicas: the first-pass shortcut, then
    the conservative second pass over missing and unready pods, with its direction guards."""
    scale_up_with_unready = bool(groups.unready) and usage_ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if tolerances.is_within(usage_ratio):
            lines.append(within_tolerance_line(tolerances, usage_ratio, current_replicas))
            return current_replicas
        replicas = to_int32(go_ceil(usage_ratio * float(groups.ready_count)))
        lines.append(f"ceil({format_ratio(usage_ratio)} x {groups.ready_count} ready pods) = {replicas}")
        return replicas
    filled = dict(samples)
    if groups.missing:
        if usage_ratio < 1.0:
            filled.update({name: missing_on_scale_down(name) for name in groups.missing})
            lines.append(f"{len(groups.missing)} pods without a metric counted at {missing_note} (scale-down)")
        elif usage_ratio > 1.0:
            filled.update(dict.fromkeys(groups.missing, 0))
            lines.append(f"{len(groups.missing)} pods without a metric counted at 0 (scale-up)")
        else:
            lines.append(f"ratio exactly 1: {len(groups.missing)} pods without a metric left out")
    if scale_up_with_unready:
        filled.update(dict.fromkeys(groups.unready, 0))
        lines.append(f"{len(groups.unready)} unready pods counted at 0 (scale-up)")
    recomputed = recompute(filled)
    if isinstance(recomputed, CalcError):
        return recomputed
    new_ratio, description = recomputed
    lines.append(f"recomputed over {len(filled)} samples: {description}")
    if tolerances.is_within(new_ratio) or (usage_ratio < 1.0 < new_ratio) or (usage_ratio > 1.0 > new_ratio):
        lines.append(
            f"ratio {format_ratio(new_ratio)} within tolerance {_band(tolerances)} or direction reversed "
            f"-> keep {current_replicas} replicas"
        )
        return current_replicas
    replicas = to_int32(go_ceil(new_ratio * float(len(filled))))
    if (new_ratio < 1.0 and replicas > current_replicas) or (new_ratio > 1.0 and replicas < current_replicas):
        lines.append(
            f"ceil({format_ratio(new_ratio)} x {len(filled)}) = {replicas} reverses direction "
            f"-> keep {current_replicas} replicas"
        )
        return current_replicas
    lines.append(f"ceil({format_ratio(new_ratio)} x {len(filled)} samples) = {replicas}")
    return replicas


def get_resource_replicas(
    *,
    current_replicas: int,
    target_utilization: int,
    resource: str,
    tolerances: Tolerances,
    pods: Sequence[Pod],
    metrics: PodMetrics | MetricUnavailable,
    config: ControllerConfig,
    now_s: float,
    container: str = "",
    pod_level_resources: bool = True,
) -> ReplicaCalculation | CalcError:
    """``GetResourceReplicas``: a Utilization target (percent of request) for a resource or a container."""
    fetched = _fetched(metrics, f"unable to get metrics for resource {resource}", "resource")
    if isinstance(fetched, CalcError):
        return fetched
    if not pods:
        return CalcError(message=NO_PODS)
    groups = group_pods(
        pods, fetched.values, resource, config.cpu_initialization_period_s, config.initial_readiness_delay_s, now_s
    )
    dropped = groups.ignored | groups.unready
    usable = {n: s.value_milli for n, s in fetched.values.items() if n not in dropped}
    if not usable:
        return CalcError(message=_NO_USABLE)
    requests = calculate_requests(pods, container, resource, pod_level_resources=pod_level_resources)
    if isinstance(requests, CalcError):
        return requests
    first = resource_utilization_ratio(usable, requests, target_utilization)
    if isinstance(first, CalcError):
        return first
    lines = [
        _groups_line(groups, len(pods)),
        f"{resource} usage {format_milli(first.metrics_total_milli)} / request "
        f"{format_milli(first.requests_total_milli)} over {first.counted} pods = {first.utilization}% "
        f"(average {format_milli(first.raw_average_milli)})",
        f"{first.utilization}% / target {target_utilization}% = ratio {format_ratio(first.usage_ratio)}",
    ]
    fallback = max(100, target_utilization)

    def recompute(filled: Mapping[str, int]) -> tuple[float, str] | CalcError:
        again = resource_utilization_ratio(filled, requests, target_utilization)
        if isinstance(again, CalcError):
            return again
        return (
            again.usage_ratio,
            f"{again.utilization}% / target {target_utilization}% = ratio {format_ratio(again.usage_ratio)}",
        )

    replicas = _two_pass(
        current_replicas=current_replicas,
        usage_ratio=first.usage_ratio,
        groups=groups,
        samples=usable,
        tolerances=tolerances,
        missing_on_scale_down=lambda name: requests[name] * fallback // 100,
        missing_note=f"{fallback}% of request",
        recompute=recompute,
        lines=lines,
    )
    if isinstance(replicas, CalcError):
        return replicas
    return ReplicaCalculation(
        replicas=replicas,
        usage_milli=first.raw_average_milli,
        usage_ratio=first.usage_ratio,
        utilization=first.utilization,
        timestamp_s=_timestamp(fetched),
        explanation=tuple(lines),
    )


def calc_plain_metric_replicas(
    *,
    samples: PodMetrics,
    current_replicas: int,
    target_usage_milli: int,
    tolerances: Tolerances,
    pods: Sequence[Pod],
    resource: str,
    config: ControllerConfig,
    now_s: float,
) -> ReplicaCalculation | CalcError:
    """``calcPlainMetricReplicas``: an AverageValue target over per-pod samples (readiness judged for
    ``cpu`` only; Pods metrics pass ``resource=""``). The timestamp is left to the caller."""
    if not pods:
        return CalcError(message=NO_PODS)
    groups = group_pods(
        pods, samples.values, resource, config.cpu_initialization_period_s, config.initial_readiness_delay_s, now_s
    )
    dropped = groups.ignored | groups.unready
    usable = {n: s.value_milli for n, s in samples.values.items() if n not in dropped}
    if not usable:
        return CalcError(message=_NO_USABLE)
    usage_ratio, usage = metric_usage_ratio(usable, target_usage_milli)
    target = format_milli(target_usage_milli)
    lines = [
        _groups_line(groups, len(pods)),
        f"average {format_milli(usage)} over {len(usable)} pods / target {target} = ratio {format_ratio(usage_ratio)}",
    ]

    def recompute(filled: Mapping[str, int]) -> tuple[float, str]:
        ratio, average = metric_usage_ratio(filled, target_usage_milli)
        return ratio, f"average {format_milli(average)} / target {target} = ratio {format_ratio(ratio)}"

    replicas = _two_pass(
        current_replicas=current_replicas,
        usage_ratio=usage_ratio,
        groups=groups,
        samples=usable,
        tolerances=tolerances,
        missing_on_scale_down=lambda _name: target_usage_milli,
        missing_note=f"the target {target}",
        recompute=recompute,
        lines=lines,
    )
    if isinstance(replicas, CalcError):
        return replicas
    return ReplicaCalculation(replicas=replicas, usage_milli=usage, usage_ratio=usage_ratio, explanation=tuple(lines))


def get_raw_resource_replicas(
    *,
    current_replicas: int,
    target_usage_milli: int,
    resource: str,
    tolerances: Tolerances,
    pods: Sequence[Pod],
    metrics: PodMetrics | MetricUnavailable,
    config: ControllerConfig,
    now_s: float,
) -> ReplicaCalculation | CalcError:
    """``GetRawResourceReplicas``: an AverageValue target for a resource (or a container's samples)."""
    fetched = _fetched(metrics, f"unable to get metrics for resource {resource}", "resource")
    if isinstance(fetched, CalcError):
        return fetched
    result = calc_plain_metric_replicas(
        samples=fetched,
        current_replicas=current_replicas,
        target_usage_milli=target_usage_milli,
        tolerances=tolerances,
        pods=pods,
        resource=resource,
        config=config,
        now_s=now_s,
    )
    return result if isinstance(result, CalcError) else replace(result, timestamp_s=_timestamp(fetched))


def get_metric_replicas(
    *,
    current_replicas: int,
    target_usage_milli: int,
    metric_name: str,
    tolerances: Tolerances,
    pods: Sequence[Pod],
    metrics: PodMetrics | MetricUnavailable,
    config: ControllerConfig,
    now_s: float,
) -> ReplicaCalculation | CalcError:
    """``GetMetricReplicas``: a Pods metric (AverageValue of a per-pod custom metric)."""
    fetched = _fetched(metrics, f"unable to get metric {metric_name}", "custom")
    if isinstance(fetched, CalcError):
        return fetched
    result = calc_plain_metric_replicas(
        samples=fetched,
        current_replicas=current_replicas,
        target_usage_milli=target_usage_milli,
        tolerances=tolerances,
        pods=pods,
        resource="",
        config=config,
        now_s=now_s,
    )
    return result if isinstance(result, CalcError) else replace(result, timestamp_s=_timestamp(fetched))
