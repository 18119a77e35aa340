"""Which pods count, and what they request: the pod bookkeeping of the replica calculator.

Mirrors, in ``pkg/controller/podautoscaler`` (newest master):

* ``groupPods``: which pods count as ready, unready, missing a metric, or ignored;
* ``calculateRequests``: each pod's request, from pod-level requests (PodLevelResources) or from its
  containers and sidecars (restartable init containers);
* ``getReadyPodsCount``: Running pods whose Ready condition is True;
* ``GetResourceUtilizationRatio`` / ``GetMetricUsageRatio`` (metrics/utilization.go): exact totals (Python
  integers, as upstream falls back to ``big.Int`` on int64 overflow), divisions truncated toward zero.

Calculator errors are values (``CalcError``), as Go's ``err`` results are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from jetscale.hpa.gonum import go_float_div, go_int_div
from jetscale.hpa.types import MAX_INT32, MIN_INT32, ConditionStatus, Container, Pod, PodMetric, PodPhase

__all__ = [
    "CPU",
    "NO_PODS",
    "CalcError",
    "PodGroups",
    "UtilizationRatio",
    "calculate_pod_level_requests",
    "calculate_pod_requests_from_containers",
    "calculate_requests",
    "group_pods",
    "metric_usage_ratio",
    "ready_pod_count",
    "resource_utilization_ratio",
]

CPU = "cpu"
NO_PODS = "no pods returned by selector while calculating replica count"
# Resources that pod-level requests may set (resourcehelpers.IsSupportedPodLevelResource).
_POD_LEVEL_RESOURCES = frozenset({"cpu", "memory"})


@dataclass(frozen=True, slots=True, kw_only=True)
class CalcError:
    """A calculator error: the message Kubernetes' ``err`` would carry at this point."""

    message: str

    def wrap(self, prefix: str) -> CalcError:
        """``fmt.Errorf("<prefix>: %w", err)``."""
        return CalcError(message=f"{prefix}: {self.message}")


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
