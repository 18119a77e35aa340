"""The replica calculator of the autoscaling/v2 HPA: what one metric proposes.

``replicas_for_metric`` is the single entry point the controller calls; it does what ``horizontal.go``'s
``computeReplicasForMetric`` and ``computeStatusFor*Metric`` do for one metric spec: dispatch on the
metric type and target, name the metric as the rescale reason does, and turn a failed reading or a
calculator error into a ``MetricFailure`` with the condition reason Kubernetes sets.

This module mirrors the Object/External half of ``replica_calculator.go`` (newest master):
``GetObjectMetricReplicas``, ``GetObjectPerPodMetricReplicas``, ``GetExternalMetricReplicas``,
``GetExternalPerPodMetricReplicas``, ``getUsageRatioReplicaCount`` and ``getPerPodUsage``;
``jetscale.hpa.pods`` has the per-pod half (Resource, ContainerResource, Pods) and re-exports here.
The metrics client and the pod lister become arguments (a ``MetricReading``, the listed ``pods``) and
the clock becomes ``now_s``. The core formula is ``desired = ceil(usage / target x N)``, N being the
ready pods, or absent for AverageValue targets of Object/External metrics (``ceil(total / target)``).
"""

from __future__ import annotations

from collections.abc import Sequence

from jetscale.hpa.pods import (
    CalcError,
    ReplicaCalculation,
    calc_plain_metric_replicas,
    calculate_requests,
    format_ratio,
    get_metric_replicas,
    get_raw_resource_replicas,
    get_resource_replicas,
    go_ceil,
    go_float_div,
    group_pods,
    metric_usage_ratio,
    ready_pod_count,
    resource_utilization_ratio,
    to_int32,
    within_tolerance_line,
    wrap_int64,
)
from jetscale.hpa.types import (
    MAX_INT64,
    ControllerConfig,
    CrossVersionObjectReference,
    ExternalMetric,
    MetricFailure,
    MetricProposal,
    MetricReading,
    MetricSourceType,
    MetricSpec,
    MetricTargetType,
    MetricUnavailable,
    ObjectMetric,
    Pod,
    PodMetrics,
    Tolerances,
)
from jetscale.units import format_milli

__all__ = [
    "UNABLE_TO_COMPUTE",
    "CalcError",
    "ReplicaCalculation",
    "calc_plain_metric_replicas",
    "calculate_requests",
    "get_external_metric_replicas",
    "get_external_per_pod_metric_replicas",
    "get_metric_replicas",
    "get_object_metric_replicas",
    "get_object_per_pod_metric_replicas",
    "get_per_pod_usage",
    "get_raw_resource_replicas",
    "get_resource_replicas",
    "get_usage_ratio_replica_count",
    "group_pods",
    "label_selector_string",
    "metric_usage_ratio",
    "replicas_for_metric",
    "resource_utilization_ratio",
]

# A failed metric's ScalingActive=False message: "<UNABLE_TO_COMPUTE>: <MetricFailure.message>"
# (getUnableComputeReplicaCountCondition).
UNABLE_TO_COMPUTE = "the HPA was unable to compute the replica count"
Selector = tuple[tuple[str, str], ...] | None


# ------------------------------------------------------------------------------------ Object, External


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


# ------------------------------------------------------------------------ computeReplicasForMetric


def _proposal(result: ReplicaCalculation, metric_name: str) -> MetricProposal:
    return MetricProposal(
        replicas=result.replicas,
        metric_name=metric_name,
        usage_ratio=result.usage_ratio,
        usage_milli=result.usage_milli,
        utilization=result.utilization,
        timestamp_s=result.timestamp_s,
        explanation=result.explanation,
    )


def _outcome(
    result: ReplicaCalculation | CalcError, reason: str, metric_name: str, error_prefix: str = ""
) -> MetricProposal | MetricFailure:
    if isinstance(result, CalcError):
        return MetricFailure(reason=reason, message=(result.wrap(error_prefix) if error_prefix else result).message)
    return _proposal(result, metric_name)


def _wrong_reading(reason: str, metric: MetricSpec, reading: MetricReading, expected: str) -> MetricFailure:
    return MetricFailure(
        reason=reason,
        message=f"unable to get metric {metric.name}: {metric.type.value} metrics read {expected}, "
        f"got {type(reading).__name__}",
    )


def _resource_metric(
    metric: MetricSpec,
    reading: MetricReading,
    *,
    spec_replicas: int,
    pods: Sequence[Pod],
    tolerances: Tolerances,
    config: ControllerConfig,
    now_s: float,
) -> MetricProposal | MetricFailure:
    """``computeStatusForResourceMetricGeneric`` for Resource and ContainerResource metrics."""
    is_container = metric.type == MetricSourceType.CONTAINER_RESOURCE
    reason = "FailedGetContainerResourceMetric" if is_container else "FailedGetResourceMetric"
    if not isinstance(reading, PodMetrics | MetricUnavailable):
        return _wrong_reading(reason, metric, reading, "per-pod samples")
    resource, target = metric.name, metric.target
    if target.average_value_milli is not None:
        raw = get_raw_resource_replicas(
            current_replicas=spec_replicas,
            target_usage_milli=target.average_value_milli,
            resource=resource,
            tolerances=tolerances,
            pods=pods,
            metrics=reading,
            config=config,
            now_s=now_s,
        )
        return _outcome(raw, reason, f"{resource} resource", f"failed to get {resource} usage")
    if target.average_utilization is None:
        return MetricFailure(
            reason=reason,
            message="invalid resource metric source: neither an average utilization "
            "target nor an average value (usage) target was set",
        )
    result = get_resource_replicas(
        current_replicas=spec_replicas,
        target_utilization=target.average_utilization,
        resource=resource,
        tolerances=tolerances,
        pods=pods,
        metrics=reading,
        config=config,
        now_s=now_s,
        container=(metric.container or "") if is_container else "",
    )
    kind = "container resource" if is_container else "resource"
    return _outcome(
        result,
        reason,
        f"{resource} {kind} utilization (percentage of request)",
        f"failed to get {resource} utilization",
    )


def _pods_metric(
    metric: MetricSpec,
    reading: MetricReading,
    *,
    spec_replicas: int,
    pods: Sequence[Pod],
    tolerances: Tolerances,
    config: ControllerConfig,
    now_s: float,
) -> MetricProposal | MetricFailure:
    """``computeStatusForPodsMetric``."""
    reason = "FailedGetPodsMetric"
    if not isinstance(reading, PodMetrics | MetricUnavailable):
        return _wrong_reading(reason, metric, reading, "per-pod samples")
    if metric.target.average_value_milli is None:
        return MetricFailure(reason=reason, message="invalid pods metric source: an average value target must be set")
    result = get_metric_replicas(
        current_replicas=spec_replicas,
        target_usage_milli=metric.target.average_value_milli,
        metric_name=metric.name,
        tolerances=tolerances,
        pods=pods,
        metrics=reading,
        config=config,
        now_s=now_s,
    )
    return _outcome(result, reason, f"pods metric {metric.name}")


def _object_metric(
    metric: MetricSpec,
    reading: MetricReading,
    *,
    spec_replicas: int,
    status_replicas: int,
    pods: Sequence[Pod],
    tolerances: Tolerances,
) -> MetricProposal | MetricFailure:
    """``computeStatusForObjectMetric``. Like Kubernetes, an AverageValue target is named
    ``external metric <name>(<selector>)`` in the rescale reason."""
    reason = "FailedGetObjectMetric"
    if not isinstance(reading, ObjectMetric | MetricUnavailable):
        return _wrong_reading(reason, metric, reading, "one object's value")
    target, ref = metric.target, metric.described_object
    if target.type == MetricTargetType.VALUE and target.value_milli is not None:
        result = get_object_metric_replicas(
            current_replicas=spec_replicas,
            target_usage_milli=target.value_milli,
            metric_name=metric.name,
            object_ref=ref,
            tolerances=tolerances,
            pods=pods,
            metric=reading,
        )
        return _outcome(result, reason, f"{ref.kind if ref else ''} metric {metric.name}")
    if target.type == MetricTargetType.AVERAGE_VALUE and target.average_value_milli is not None:
        per_pod = get_object_per_pod_metric_replicas(
            status_replicas=status_replicas,
            target_average_usage_milli=target.average_value_milli,
            metric_name=metric.name,
            object_ref=ref,
            tolerances=tolerances,
            metric=reading,
        )
        return _outcome(per_pod, reason, f"external metric {metric.name}({label_selector_string(metric.selector)})")
    return MetricFailure(
        reason=reason,
        message="invalid object metric source: neither a value target nor an average value target was set",
    )


def _external_metric(
    metric: MetricSpec,
    reading: MetricReading,
    *,
    spec_replicas: int,
    status_replicas: int,
    pods: Sequence[Pod],
    tolerances: Tolerances,
) -> MetricProposal | MetricFailure:
    """``computeStatusForExternalMetric``: an AverageValue target wins over a Value target."""
    reason = "FailedGetExternalMetric"
    if not isinstance(reading, ExternalMetric | MetricUnavailable):
        return _wrong_reading(reason, metric, reading, "the values of matching series")
    target, name = metric.target, f"external metric {metric.name}({label_selector_string(metric.selector)})"
    if target.average_value_milli is not None:
        per_pod = get_external_per_pod_metric_replicas(
            status_replicas=status_replicas,
            target_usage_per_pod_milli=target.average_value_milli,
            metric_name=metric.name,
            selector=metric.selector,
            tolerances=tolerances,
            metric=reading,
        )
        return _outcome(per_pod, reason, name)
    if target.value_milli is not None:
        result = get_external_metric_replicas(
            current_replicas=spec_replicas,
            target_usage_milli=target.value_milli,
            metric_name=metric.name,
            selector=metric.selector,
            tolerances=tolerances,
            pods=pods,
            metric=reading,
        )
        return _outcome(result, reason, name)
    return MetricFailure(
        reason=reason,
        message="invalid external metric source: neither a value target nor an average value target was set",
    )


def replicas_for_metric(
    metric: MetricSpec,
    reading: MetricReading,
    *,
    spec_replicas: int,
    status_replicas: int,
    pods: Sequence[Pod],
    tolerances: Tolerances,
    config: ControllerConfig,
    now_s: float,
) -> MetricProposal | MetricFailure:
    """``computeReplicasForMetric`` for one metric spec: the proposal, or why there is none.

    ``spec_replicas`` is ``scale.spec.replicas`` (Resource, Pods, and Value targets of Object/External);
    ``status_replicas`` is ``scale.status.replicas`` (AverageValue targets of Object/External). A failure's
    ``reason`` is the ScalingActive condition reason and its ``message`` the error Kubernetes puts after
    ``UNABLE_TO_COMPUTE``. ``tolerances`` come from the controller (flag and behavior); not computed here.
    """
    match metric.type:
        case MetricSourceType.RESOURCE | MetricSourceType.CONTAINER_RESOURCE:
            return _resource_metric(
                metric,
                reading,
                spec_replicas=spec_replicas,
                pods=pods,
                tolerances=tolerances,
                config=config,
                now_s=now_s,
            )
        case MetricSourceType.PODS:
            return _pods_metric(
                metric,
                reading,
                spec_replicas=spec_replicas,
                pods=pods,
                tolerances=tolerances,
                config=config,
                now_s=now_s,
            )
        case MetricSourceType.OBJECT:
            return _object_metric(
                metric,
                reading,
                spec_replicas=spec_replicas,
                status_replicas=status_replicas,
                pods=pods,
                tolerances=tolerances,
            )
        case MetricSourceType.EXTERNAL:
            return _external_metric(
                metric,
                reading,
                spec_replicas=spec_replicas,
                status_replicas=status_replicas,
                pods=pods,
                tolerances=tolerances,
            )
        case _:
            return MetricFailure(
                reason="InvalidMetricSourceType", message=f'unknown metric source type "{metric.type}"'
            )
