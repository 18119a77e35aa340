"""The Object and External half of the replica calculator: what a metric about one object, or about
series outside the cluster, proposes.

Mirrors ``replica_calculator.go`` (newest master): ``GetObjectMetricReplicas``,
``GetObjectPerPodMetricReplicas``, ``GetExternalMetricReplicas``, ``GetExternalPerPodMetricReplicas``,
``getUsageRatioReplicaCount`` and ``getPerPodUsage``. ``jetscale.hpa.pods`` has the per-pod half
(Resource, ContainerResource, Pods); ``jetscale.hpa.replicas`` dispatches one metric spec to either.
A Value target proposes ``ceil(usage / target x ready pods)`` (``ceil(ratio)`` from zero replicas); an
AverageValue target proposes ``ceil(total / target)``, its tolerance judged against the status replicas.
"""

from __future__ import annotations

from collections.abc import Sequence

from jetscale.hpa.pods import (
    CalcError,
    ReplicaCalculation,
    format_ratio,
    go_ceil,
    go_float_div,
    ready_pod_count,
    to_int32,
    within_tolerance_line,
    wrap_int64,
)
from jetscale.hpa.types import (
    MAX_INT64,
    CrossVersionObjectReference,
    ExternalMetric,
    MetricUnavailable,
    ObjectMetric,
    Pod,
    Tolerances,
)
from jetscale.units import format_milli

__all__ = [
    "Selector",
    "get_external_metric_replicas",
    "get_external_per_pod_metric_replicas",
    "get_object_metric_replicas",
    "get_object_per_pod_metric_replicas",
    "get_per_pod_usage",
    "get_usage_ratio_replica_count",
    "label_selector_string",
]

Selector = tuple[tuple[str, str], ...] | None


def label_selector_string(selector: Selector) -> str:
    """A metric selector as Go's ``%+v`` prints a ``*metav1.LabelSelector`` (matchLabels only)."""
    if selector is None:
        return "nil"
    labels = "".join(f"{key}: {value}," for key, value in sorted(dict(selector).items()))
    return (
        f"&LabelSelector{{MatchLabels:map[string]string{{{labels}}},MatchExpressions:[]LabelSelectorRequirement{{}},}}"
    )


def get_usage_ratio_replica_count(
    *, current_replicas: int, usage_ratio: float, tolerances: Tolerances, pods: Sequence[Pod]
) -> tuple[int, str] | CalcError:
    """``getUsageRatioReplicaCount``: (replicas, the arithmetic). From zero replicas, ``ceil(ratio)``
    regardless of tolerance and pods; otherwise ``ceil(ratio x ready pods)``, saturated at MaxInt32."""
    if current_replicas == 0:
        replicas = to_int32(go_ceil(usage_ratio))
        return replicas, f"from zero replicas: ceil({format_ratio(usage_ratio)}) = {replicas}"
    if tolerances.is_within(usage_ratio):
        return current_replicas, within_tolerance_line(tolerances, usage_ratio, current_replicas)
    ready = ready_pod_count(pods)
    if isinstance(ready, CalcError):
        return ready.wrap("unable to calculate ready pods")
    replicas = to_int32(go_ceil(usage_ratio * float(ready)))  # saturates at MaxInt32, as Go checks
    return replicas, f"ceil({format_ratio(usage_ratio)} x {ready} ready pods) = {replicas}"


def _object_fetch_error(metric_name: str, object_ref: CrossVersionObjectReference | None) -> str:
    kind, name = (object_ref.kind, object_ref.name) if object_ref is not None else ("", "")
    return f"unable to get metric {metric_name} on {kind} {name}"


def get_object_metric_replicas(
    *,
    current_replicas: int,
    target_usage_milli: int,
    metric_name: str,
    object_ref: CrossVersionObjectReference | None,
    tolerances: Tolerances,
    pods: Sequence[Pod],
    metric: ObjectMetric | MetricUnavailable,
) -> ReplicaCalculation | CalcError:
    """``GetObjectMetricReplicas``: an Object metric with a Value target. Like Go, the timestamp it
    returns is the zero time (0.0): the object's own timestamp is dropped."""
    if isinstance(metric, MetricUnavailable):
        return CalcError(message=f"{_object_fetch_error(metric_name, object_ref)}: {metric.error}")
    usage = metric.value_milli
    usage_ratio = go_float_div(float(usage), float(target_usage_milli))
    counted = get_usage_ratio_replica_count(
        current_replicas=current_replicas, usage_ratio=usage_ratio, tolerances=tolerances, pods=pods
    )
    if isinstance(counted, CalcError):
        return counted
    replicas, line = counted
    head = (
        f"value {format_milli(usage)} / target {format_milli(target_usage_milli)} = ratio {format_ratio(usage_ratio)}"
    )
    return ReplicaCalculation(replicas=replicas, usage_milli=usage, usage_ratio=usage_ratio, explanation=(head, line))


def get_per_pod_usage(usage_milli: int, status_replicas: int) -> int:
    """``getPerPodUsage``: ``ceil(usage / replicas)``; MaxInt64 if the usage is saturated, 0 with no replicas."""
    if float(usage_milli) >= float(MAX_INT64):
        return MAX_INT64
    if status_replicas == 0:
        return 0
    return int(go_ceil(float(usage_milli) / float(status_replicas)))


def _per_pod(
    *, usage: int, status_replicas: int, target_per_pod_milli: int, tolerances: Tolerances, head: str
) -> tuple[int, float, tuple[str, ...]]:
    """The shared arithmetic of the two AverageValue paths: tolerance against
    ``usage / (target x status replicas)``, then ``ceil(usage / target)`` saturated at MaxInt32."""
    usage_ratio = go_float_div(float(usage), float(target_per_pod_milli) * float(status_replicas))
    lines = [
        f"{head} = {format_milli(usage)} / (target {format_milli(target_per_pod_milli)} x "
        f"{status_replicas} replicas) = ratio {format_ratio(usage_ratio)}"
    ]
    if tolerances.is_within(usage_ratio):
        lines.append(within_tolerance_line(tolerances, usage_ratio, status_replicas))
        return status_replicas, usage_ratio, tuple(lines)
    replicas = to_int32(go_ceil(go_float_div(float(usage), float(target_per_pod_milli))))  # saturates, as Go checks
    lines.append(f"ceil({format_milli(usage)} / {format_milli(target_per_pod_milli)}) = {replicas}")
    return replicas, usage_ratio, tuple(lines)


def get_object_per_pod_metric_replicas(
    *,
    status_replicas: int,
    target_average_usage_milli: int,
    metric_name: str,
    object_ref: CrossVersionObjectReference | None,
    tolerances: Tolerances,
    metric: ObjectMetric | MetricUnavailable,
) -> ReplicaCalculation | CalcError:
    """``GetObjectPerPodMetricReplicas``: an Object metric with an AverageValue target."""
    if isinstance(metric, MetricUnavailable):
        return CalcError(message=f"{_object_fetch_error(metric_name, object_ref)}: {metric.error}")
    replicas, usage_ratio, lines = _per_pod(
        usage=metric.value_milli,
        status_replicas=status_replicas,
        target_per_pod_milli=target_average_usage_milli,
        tolerances=tolerances,
        head="value",
    )
    return ReplicaCalculation(
        replicas=replicas,
        usage_milli=get_per_pod_usage(metric.value_milli, status_replicas),
        usage_ratio=usage_ratio,
        timestamp_s=metric.timestamp_s,
        explanation=lines,
    )


def _external_fetched(
    metric_name: str, selector: Selector, metric: ExternalMetric | MetricUnavailable
) -> ExternalMetric | CalcError:
    """The external metrics client's errors: its own failure, or no matching series."""
    fetch_error = f"unable to get external metric {metric_name}/{label_selector_string(selector)}"
    if isinstance(metric, MetricUnavailable):
        return CalcError(message=f"{fetch_error}: {metric.error}")
    if not metric.values_milli:
        return CalcError(message=f"{fetch_error}: no metrics returned from external metrics API")
    return metric


def get_external_metric_replicas(
    *,
    current_replicas: int,
    target_usage_milli: int,
    metric_name: str,
    selector: Selector,
    tolerances: Tolerances,
    pods: Sequence[Pod],
    metric: ExternalMetric | MetricUnavailable,
) -> ReplicaCalculation | CalcError:
    """``GetExternalMetricReplicas``: the sum of every matching series (capped at MaxInt64) against a
    Value target. As in Go, the returned timestamp is the zero time (0.0)."""
    fetched = _external_fetched(metric_name, selector, metric)
    if isinstance(fetched, CalcError):
        return fetched
    values = fetched.values_milli
    usage = 0
    for value in values:
        if value > 0 and usage > MAX_INT64 - value:
            usage = MAX_INT64
            break
        usage = wrap_int64(usage + value)
    usage_ratio = go_float_div(float(usage), float(target_usage_milli))
    counted = get_usage_ratio_replica_count(
        current_replicas=current_replicas, usage_ratio=usage_ratio, tolerances=tolerances, pods=pods
    )
    if isinstance(counted, CalcError):
        return counted
    replicas, line = counted
    head = (
        f"total {format_milli(usage)} over {len(values)} series / target {format_milli(target_usage_milli)} "
        f"= ratio {format_ratio(usage_ratio)}"
    )
    return ReplicaCalculation(replicas=replicas, usage_milli=usage, usage_ratio=usage_ratio, explanation=(head, line))


def get_external_per_pod_metric_replicas(
    *,
    status_replicas: int,
    target_usage_per_pod_milli: int,
    metric_name: str,
    selector: Selector,
    tolerances: Tolerances,
    metric: ExternalMetric | MetricUnavailable,
) -> ReplicaCalculation | CalcError:
    """``GetExternalPerPodMetricReplicas``: the sum (MaxInt64 once it wraps below zero) against an
    AverageValue target."""
    fetched = _external_fetched(metric_name, selector, metric)
    if isinstance(fetched, CalcError):
        return fetched
    values = fetched.values_milli
    usage = 0
    for value in values:
        usage = wrap_int64(usage + value)
        if usage < 0:  # Go reads any negative running sum as an int64 overflow
            usage = MAX_INT64
            break
    replicas, usage_ratio, lines = _per_pod(
        usage=usage,
        status_replicas=status_replicas,
        target_per_pod_milli=target_usage_per_pod_milli,
        tolerances=tolerances,
        head=f"total over {len(values)} series",
    )
    return ReplicaCalculation(
        replicas=replicas,
        usage_milli=get_per_pod_usage(usage, status_replicas),
        usage_ratio=usage_ratio,
        timestamp_s=fetched.timestamp_s,
        explanation=lines,
    )
