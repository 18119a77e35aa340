"""The replica calculator of the autoscaling/v2 HPA: what one metric proposes.

``replicas_for_metric`` is the single entry point the controller calls; it does what ``horizontal.go``'s
``computeReplicasForMetric`` and ``computeStatusFor*Metric`` do for one metric spec: dispatch on the
metric type and target, name the metric as the rescale reason does, and turn a failed reading or a
calculator error into a ``MetricFailure`` with the condition reason Kubernetes sets.

The calculators themselves (``replica_calculator.go``) live by metric type: ``jetscale.hpa.pods`` for
the per-pod metrics (Resource, ContainerResource, Pods) and ``jetscale.hpa.object_external`` for Object
and External metrics; both are re-exported here, as this module was their one home before. The metrics
client and the pod lister become arguments (a ``MetricReading``, the listed ``pods``) and the clock
becomes ``now_s``. The core formula is ``desired = ceil(usage / target x N)``, N being the ready pods,
or absent for AverageValue targets of Object/External metrics (``ceil(total / target)``).
"""

from __future__ import annotations

from collections.abc import Sequence

from jetscale.hpa.object_external import (
    get_external_metric_replicas,
    get_external_per_pod_metric_replicas,
    get_object_metric_replicas,
    get_object_per_pod_metric_replicas,
    get_per_pod_usage,
    get_usage_ratio_replica_count,
    label_selector_string,
)
from jetscale.hpa.pods import (
    CalcError,
    ReplicaCalculation,
    calc_plain_metric_replicas,
    calculate_requests,
    get_metric_replicas,
    get_raw_resource_replicas,
    get_resource_replicas,
    group_pods,
    metric_usage_ratio,
    resource_utilization_ratio,
)
from jetscale.hpa.types import (
    ControllerConfig,
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
