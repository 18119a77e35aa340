"""The per-pod half of the replica calculator: metrics averaged over the pods of the scale target.

Mirrors, in ``pkg/controller/podautoscaler`` (newest master):

* ``groupPods``: which pods count as ready, unready, missing a metric, or ignored;
* ``calculateRequests``: each pod's request, from pod-level requests (PodLevelResources) or from its
  containers and sidecars (restartable init containers);
* ``getReadyPodsCount``: Running pods whose Ready condition is True;
* ``GetResourceUtilizationRatio`` / ``GetMetricUsageRatio`` (metrics/utilization.go): exact totals (Python
  integers, as upstream falls back to ``big.Int`` on int64 overflow), divisions truncated toward zero;
* ``GetResourceReplicas``, ``GetRawResourceReplicas``, ``GetMetricReplicas``, ``calcPlainMetricReplicas``:
  Resource, ContainerResource and Pods metrics, ``ceil(ratio x ready pods)`` then the conservative second
  pass over pods without a metric and unready pods.

It also holds the Go conversions the calculator relies on: float division by zero gives ``+-Inf``/``NaN``
instead of raising, ``ceil`` passes infinities through, and ``int32(x)`` saturates (Go leaves out-of-range
conversions implementation-defined; saturating keeps replica counts sane). Calculator errors are values
(``CalcError``) as Go's ``err`` results are. ``jetscale.hpa.replicas`` has the Object/External half.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from jetscale.hpa.types import (
    MAX_INT32,
    MIN_INT32,
    ConditionStatus,
    Container,
    ControllerConfig,
    MetricUnavailable,
    Pod,
    PodMetric,
    PodMetrics,
    PodPhase,
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

CPU = "cpu"
NO_PODS = "no pods returned by selector while calculating replica count"
_NO_USABLE = "did not receive metrics for targeted pods (pods might be unready)"
_MIN_INT64 = -(2**63)
# Resources that pod-level requests may set (resourcehelpers.IsSupportedPodLevelResource).
_POD_LEVEL_RESOURCES = frozenset({"cpu", "memory"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CalcError:
    """A calculator error: the message Kubernetes' ``err`` would carry at this point."""

    message: str

    def wrap(self, prefix: str) -> CalcError:
        """``fmt.Errorf("<prefix>: %w", err)``."""
        return CalcError(message=f"{prefix}: {self.message}")


# ------------------------------------------------------------------------------------- Go numerics


def go_float_div(numerator: float, denominator: float) -> float:
    """IEEE-754 division as Go does it: ``x/0`` is ``+Inf``/``-Inf``, ``0/0`` is ``NaN``."""
    if denominator == 0.0:
        if numerator == 0.0 or math.isnan(numerator):
            return math.nan
        negative = (numerator < 0) != (math.copysign(1.0, denominator) < 0)
        return -math.inf if negative else math.inf
    return numerator / denominator


def go_int_div(numerator: int, denominator: int) -> int:
    """Go integer division: truncates toward zero (Python's ``//`` floors)."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator < 0) == (denominator < 0) else -quotient


def go_ceil(value: float) -> float:
    """``math.Ceil``: infinities and NaN pass through (Python's ``math.ceil`` raises on them)."""
    return float(math.ceil(value)) if math.isfinite(value) else value


def to_int32(value: float) -> int:
    """``int32(value)`` for a value already rounded: truncates, saturating at the int32 bounds (NaN -> 0)."""
    if math.isnan(value):
        return 0
    if value >= MAX_INT32:
        return MAX_INT32
    if value <= MIN_INT32:
        return MIN_INT32
    return int(value)


def wrap_int64(value: int) -> int:
    """Two's-complement int64 wrap-around, as Go's ``+`` overflows."""
    return (value - _MIN_INT64) % 2**64 + _MIN_INT64


# ------------------------------------------------------------------------------------------ groupPods


@dataclass(frozen=True, slots=True, kw_only=True)
class PodGroups:
    """``groupPods``' four results."""

    ready_count: int
    unready: frozenset[str]
    missing: frozenset[str]
    ignored: frozenset[str]


def _is_terminal(pod: Pod) -> bool:
    return pod.phase in (PodPhase.FAILED, PodPhase.SUCCEEDED)


def _cpu_unready(
    pod: Pod, sample: PodMetric, cpu_initialization_period_s: float, initial_readiness_delay_s: float, now_s: float
) -> bool:
    if pod.ready is None or pod.start_time_s is None:
        return True
    if pod.start_time_s + cpu_initialization_period_s > now_s:
        # Still initializing: drop the sample if the pod is unready, or if a full metric window has not
        # passed since its readiness last changed.
        return pod.ready == ConditionStatus.FALSE or sample.timestamp_s < pod.ready_transition_s + sample.window_s
    # Past initialization: drop it only if the pod is unready and has never been ready.
    return pod.ready == ConditionStatus.FALSE and pod.start_time_s + initial_readiness_delay_s > pod.ready_transition_s


def group_pods(
    pods: Sequence[Pod],
    metrics: Mapping[str, PodMetric],
    resource: str,
    cpu_initialization_period_s: float,
    initial_readiness_delay_s: float,
    now_s: float,
) -> PodGroups:
    """``groupPods``: deleted or terminal pods are ignored, Pending pods unready, pods without a sample
    missing; readiness (Ready condition, start time, CPU initialization period) is judged for ``cpu`` only.
    Every time comparison is strict, as Go's ``After``/``Before``."""
    ready = 0
    unready: set[str] = set()
    missing: set[str] = set()
    ignored: set[str] = set()
    for pod in pods:
        if pod.deleting or _is_terminal(pod):
            ignored.add(pod.name)
            continue
        if pod.phase == PodPhase.PENDING:
            unready.add(pod.name)
            continue
        sample = metrics.get(pod.name)
        if sample is None:
            missing.add(pod.name)
            continue
        if resource == CPU and _cpu_unready(pod, sample, cpu_initialization_period_s, initial_readiness_delay_s, now_s):
            unready.add(pod.name)
            continue
        ready += 1
    return PodGroups(
        ready_count=ready, unready=frozenset(unready), missing=frozenset(missing), ignored=frozenset(ignored)
    )


def ready_pod_count(pods: Sequence[Pod]) -> int | CalcError:
    """``getReadyPodsCount``: Running pods whose Ready condition is True (no deletion or CPU checks)."""
    if not pods:
        return CalcError(message=NO_PODS)
    return sum(1 for pod in pods if pod.phase == PodPhase.RUNNING and pod.ready == ConditionStatus.TRUE)


# ---------------------------------------------------------------------------------- calculateRequests


def _pod_level_requests_set(pod: Pod) -> bool:
    """``resourcehelpers.IsPodLevelRequestsSet``."""
    requests = pod.pod_requests_milli
    return bool(requests) and any(
        name in _POD_LEVEL_RESOURCES or name.startswith("hugepages-") for name in requests or ()
    )


def _counted_containers(pod: Pod) -> Iterable[Container]:
    """The app containers, then the sidecars (init containers with restartPolicy Always)."""
    yield from (c for c in pod.containers if not c.init and not c.restartable_init)
    yield from (c for c in pod.containers if c.restartable_init)


def calculate_pod_requests_from_containers(pod: Pod, container: str, resource: str) -> int | CalcError:
    """``calculatePodRequestsFromContainers``: the sum over app containers and sidecars, or the one
    ``container`` named; plain init containers never count."""
    total = 0
    for c in _counted_containers(pod):
        if container in ("", c.name):
            request = c.requests_milli.get(resource)
            if request is None:
                return CalcError(message=f"missing request for {resource} in container {c.name} of Pod {pod.name}")
            total += request
        if container == c.name:
            return total
    if container:
        return CalcError(message=f"container {container} not found in Pod {pod.name}")
    return total


def calculate_pod_level_requests(pod: Pod, resource: str) -> int | CalcError:
    """``calculatePodLevelRequests``: the pod-level request, or for a resource the pod level leaves out,
    the containers' sum (``resourcehelpers.PodRequests``; init-container peaks are not modelled)."""
    pod_level = pod.pod_requests_milli or {}
    if resource in pod_level:
        return pod_level[resource]
    values = [c.requests_milli[resource] for c in _counted_containers(pod) if resource in c.requests_milli]
    if not values:
        return CalcError(message=f"missing pod-level request for {resource} in Pod {pod.name}")
    return sum(values)


def calculate_requests(
    pods: Sequence[Pod], container: str, resource: str, *, pod_level_resources: bool = True
) -> dict[str, int] | CalcError:
    """``calculateRequests``: pod name -> request (milli). Pod-level requests win when the
    PodLevelResources gate is on (beta, on by default), the pod sets them, and no container is named."""
    requests: dict[str, int] = {}
    for pod in pods:
        if pod_level_resources and not container and _pod_level_requests_set(pod):
            request = calculate_pod_level_requests(pod, resource)
        else:
            request = calculate_pod_requests_from_containers(pod, container, resource)
        if isinstance(request, CalcError):
            return request
        requests[pod.name] = request
    return requests


# --------------------------------------------------------------------------------------- ratios


@dataclass(frozen=True, slots=True, kw_only=True)
class UtilizationRatio:
    """``GetResourceUtilizationRatio``'s results, with the totals behind them."""

    usage_ratio: float
    utilization: int  # percent of request, truncated
    raw_average_milli: int  # average usage per counted pod, truncated
    metrics_total_milli: int
    requests_total_milli: int
    counted: int


def resource_utilization_ratio(
    metrics: Mapping[str, int], requests: Mapping[str, int], target_utilization: int
) -> UtilizationRatio | CalcError:
    """``GetResourceUtilizationRatio``: usage over request of the pods that have both, as a truncated
    percentage, divided by the target percentage. Samples of pods without a request are skipped."""
    metrics_total = requests_total = counted = 0
    for name, value in metrics.items():
        request = requests.get(name)
        if request is None:
            continue
        metrics_total += value
        requests_total += request
        counted += 1
    if requests_total == 0:
        return CalcError(message="no metrics returned matched known pods")
    percentage = go_int_div(metrics_total * 100, requests_total)
    if not MIN_INT32 <= percentage <= MAX_INT32:
        return CalcError(message=f"resource utilization {percentage} is outside the int32 range")
    return UtilizationRatio(
        usage_ratio=go_float_div(float(percentage), float(target_utilization)),
        utilization=percentage,
        raw_average_milli=go_int_div(metrics_total, counted),
        metrics_total_milli=metrics_total,
        requests_total_milli=requests_total,
        counted=counted,
    )


def metric_usage_ratio(metrics: Mapping[str, int], target_usage_milli: int) -> tuple[float, int]:
    """``GetMetricUsageRatio``: (average / target, average), the average truncated, over every sample."""
    if not metrics:
        raise ValueError("'metrics' must hold at least one sample (got 0)")
    average = go_int_div(sum(metrics.values()), len(metrics))
    return go_float_div(float(average), float(target_usage_milli)), average


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
