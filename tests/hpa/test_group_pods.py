"""Pod classification and requests of the replica calculator, ported from Kubernetes' tables.

Source: kubernetes ``pkg/controller/podautoscaler/replica_calculator_test.go`` as of the newest-master
snapshot ``omerap12/kubernetes@a769d5884497dc246960b38f3e5aae2cc30dd062`` (TestGroupPods,
TestCalculateRequests, TestCalculatePodRequestsFromContainers_NonExistentContainer, TestGetPerPodUsage).
Facts only: the fixtures and expected values are Kubernetes'; the code is ours. Ids are the Go test and
sub-test names (spaces written as Go writes them, ``_``). Cases marked ``jetscale/`` are our own.

Go's ``time.Now()`` becomes ``NOW``; the test flags are a 2-minute CPU initialization period and a 10 s
readiness delay. A Go ``PodMetric{Value: 1}`` has a zero timestamp and a zero window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from jetscale.hpa.pods import (
    CalcError,
    PodGroups,
    calculate_pod_requests_from_containers,
    calculate_requests,
    go_ceil,
    go_float_div,
    go_int_div,
    group_pods,
    metric_usage_ratio,
    ready_pod_count,
    resource_utilization_ratio,
    to_int32,
    wrap_int64,
)
from jetscale.hpa.replicas import get_per_pod_usage
from jetscale.hpa.types import MAX_INT32, MAX_INT64, MIN_INT32, ConditionStatus, Container, Pod, PodMetric, PodPhase

NOW = 1_000_000.0
CPU_INIT_S = 120.0
READINESS_DELAY_S = 10.0
TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
ZERO_SAMPLE = PodMetric(value_milli=1, timestamp_s=0.0, window_s=0.0)  # Go's PodMetric{Value: 1}


def _pod(
    name: str,
    *,
    phase: PodPhase = PodPhase.RUNNING,
    start: float | None = None,
    ready: ConditionStatus | None = None,
    transition: float = 0.0,
    deleting: bool = False,
) -> Pod:
    return Pod(
        name=name, phase=phase, start_time_s=start, ready=ready, ready_transition_s=transition, deleting=deleting
    )


@dataclass(frozen=True, kw_only=True)
class GroupCase:
    id: str
    pods: tuple[Pod, ...]
    metrics: dict[str, PodMetric]
    resource: str = "cpu"
    ready: int = 0
    unready: frozenset[str] = frozenset()
    missing: frozenset[str] = frozenset()
    ignored: frozenset[str] = frozenset()


GROUP_CASES = [
    GroupCase(id="TestGroupPods/void", pods=(), metrics={}),
    GroupCase(
        id="TestGroupPods/count_in_a_ready_pod_-_memory",
        pods=(_pod("bentham"),),
        metrics={"bentham": PodMetric(value_milli=1, timestamp_s=NOW, window_s=60.0)},
        resource="memory",
        ready=1,
    ),
    GroupCase(
        id="TestGroupPods/unready_a_pod_without_ready_condition_-_CPU",
        pods=(_pod("lucretius", start=NOW),),
        metrics={"lucretius": ZERO_SAMPLE},
        unready=frozenset({"lucretius"}),
    ),
    GroupCase(
        id="TestGroupPods/count_in_a_ready_pod_with_fresh_metrics_during_initialization_period_-_CPU",
        pods=(_pod("bentham", start=NOW - 60, ready=TRUE, transition=NOW - 30),),
        metrics={"bentham": PodMetric(value_milli=1, timestamp_s=NOW, window_s=30.0)},
        ready=1,
    ),
    GroupCase(
        id="TestGroupPods/unready_a_ready_pod_without_fresh_metrics_during_initialization_period_-_CPU",
        pods=(_pod("bentham", start=NOW - 60, ready=TRUE, transition=NOW - 30),),
        metrics={"bentham": PodMetric(value_milli=1, timestamp_s=NOW, window_s=60.0)},
        unready=frozenset({"bentham"}),
    ),
    GroupCase(
        id="TestGroupPods/unready_an_unready_pod_during_initialization_period_-_CPU",
        pods=(_pod("lucretius", start=NOW - 600, ready=FALSE, transition=NOW - 594),),
        metrics={"lucretius": ZERO_SAMPLE},
        unready=frozenset({"lucretius"}),
    ),
    GroupCase(
        id="TestGroupPods/count_in_a_ready_pod_without_fresh_metrics_after_initialization_period_-_CPU",
        pods=(_pod("bentham", start=NOW - 180, ready=TRUE, transition=NOW - 180),),
        metrics={"bentham": PodMetric(value_milli=1, timestamp_s=NOW - 120, window_s=60.0)},
        ready=1,
    ),
    GroupCase(
        id="TestGroupPods/count_in_an_unready_pod_that_was_ready_after_initialization_period_-_CPU",
        pods=(_pod("lucretius", start=NOW - 600, ready=FALSE, transition=NOW - 540),),
        metrics={"lucretius": ZERO_SAMPLE},
        ready=1,
    ),
    GroupCase(
        # start + 10 s == lastTransitionTime exactly: "After" is strict, so the pod counts as ready.
        id="TestGroupPods/unready_pod_that_has_never_been_ready_after_initialization_period_-_CPU",
        pods=(_pod("lucretius", start=NOW - 600, ready=FALSE, transition=NOW - 590),),
        metrics={"lucretius": ZERO_SAMPLE},
        ready=1,
    ),
    GroupCase(
        id="TestGroupPods/a_missing_pod",
        pods=(_pod("epicurus", start=NOW - 180),),
        metrics={},
        missing=frozenset({"epicurus"}),
    ),
    GroupCase(
        id="TestGroupPods/several_pods",
        pods=(
            _pod("lucretius", start=NOW),
            _pod("niccolo", start=NOW - 180, ready=TRUE, transition=NOW - 180),
            _pod("epicurus", start=NOW - 180),
        ),
        metrics={"lucretius": ZERO_SAMPLE, "niccolo": ZERO_SAMPLE},
        ready=1,
        unready=frozenset({"lucretius"}),
        missing=frozenset({"epicurus"}),
    ),
    GroupCase(
        id="TestGroupPods/pending_pods_are_unreadied",
        pods=(_pod("unscheduled", phase=PodPhase.PENDING),),
        metrics={},
        unready=frozenset({"unscheduled"}),
    ),
    GroupCase(
        id="TestGroupPods/ignore_pods_with_deletion_timestamps",
        pods=(_pod("deleted", phase=PodPhase.PENDING, deleting=True),),
        metrics={"deleted": ZERO_SAMPLE},
        ignored=frozenset({"deleted"}),
    ),
    GroupCase(
        id="TestGroupPods/ignore_pods_in_a_failed_state",
        pods=(_pod("failed", phase=PodPhase.FAILED),),
        metrics={"failed": ZERO_SAMPLE},
        ignored=frozenset({"failed"}),
    ),
    GroupCase(
        id="TestGroupPods/ignore_pods_in_a_succeeded_state",
        pods=(_pod("succeeded", phase=PodPhase.SUCCEEDED),),
        metrics={"succeeded": ZERO_SAMPLE},
        ignored=frozenset({"succeeded"}),
    ),
    # jetscale: the edges the Go table leaves implicit.
    GroupCase(
        id="jetscale/readiness is judged for cpu only: an unready pod counts for a Pods metric",
        pods=(_pod("jetstream-0", start=NOW, ready=FALSE, transition=NOW),),
        metrics={"jetstream-0": ZERO_SAMPLE},
        resource="",
        ready=1,
    ),
    GroupCase(
        id="jetscale/Ready=Unknown behaves like True past the initialization period",
        pods=(_pod("a", start=NOW - 600, ready=ConditionStatus.UNKNOWN, transition=NOW - 599),),
        metrics={"a": ZERO_SAMPLE},
        ready=1,
    ),
    GroupCase(
        id="jetscale/start + init period == now is past initialization (strict After)",
        pods=(_pod("a", start=NOW - CPU_INIT_S, ready=TRUE, transition=NOW),),
        metrics={"a": PodMetric(value_milli=1, timestamp_s=NOW, window_s=60.0)},
        ready=1,
    ),
    GroupCase(
        id="jetscale/sample exactly one window after the transition is fresh (strict Before)",
        pods=(_pod("a", start=NOW - 60, ready=TRUE, transition=NOW - 60),),
        metrics={"a": PodMetric(value_milli=1, timestamp_s=NOW, window_s=60.0)},
        ready=1,
    ),
    GroupCase(
        id="jetscale/no start time is unready for cpu",
        pods=(_pod("a", start=None, ready=TRUE),),
        metrics={"a": ZERO_SAMPLE},
        unready=frozenset({"a"}),
    ),
]


@pytest.mark.parametrize("case", GROUP_CASES, ids=lambda c: c.id)
def test_group_pods(case: GroupCase) -> None:
    got = group_pods(case.pods, case.metrics, case.resource, CPU_INIT_S, READINESS_DELAY_S, NOW)
    assert got == PodGroups(ready_count=case.ready, unready=case.unready, missing=case.missing, ignored=case.ignored)


# ---------------------------------------------------------------------------------- calculateRequests


def _c(name: str, cpu: int | None = None, *, restartable_init: bool = False, init: bool = False) -> Container:
    return Container(
        name=name, requests_milli={} if cpu is None else {"cpu": cpu}, restartable_init=restartable_init, init=init
    )


def _requests_pod(*containers: Container, pod_level: dict[str, int] | None = None) -> Pod:
    return Pod(name="test-pod", containers=containers, pod_requests_milli=pod_level)


@dataclass(frozen=True, kw_only=True)
class RequestsCase:
    id: str
    pods: tuple[Pod, ...]
    container: str = ""
    resource: str = "cpu"
    pod_level_resources: bool = False
    expected: dict[str, int] | None = None
    error: str | None = None


REQUESTS_CASES = [
    RequestsCase(id="TestCalculateRequests/void", pods=(), expected={}),
    RequestsCase(
        id="TestCalculateRequests/Sum_container_requests_if_pod-level_feature_is_disabled",
        pods=(_requests_pod(_c("container1", 100), _c("container2", 50)),),
        expected={"test-pod": 150},
    ),
    RequestsCase(
        id="TestCalculateRequests/Pod-level_resources_are_enabled,_but_not_set:_fallback_to_sum_container_requests",
        pods=(_requests_pod(_c("container1", 100), _c("container2", 50)),),
        pod_level_resources=True,
        expected={"test-pod": 150},
    ),
    RequestsCase(
        id="TestCalculateRequests/Pod-level_resources_override_container_requests_when_feature_enabled_and_pod_"
        "resources_specified",
        pods=(_requests_pod(_c("container1", 100), _c("container2", 50), pod_level={"cpu": 800}),),
        pod_level_resources=True,
        expected={"test-pod": 800},
    ),
    RequestsCase(
        id="TestCalculateRequests/Fail_if_at_least_one_of_the_containers_is_missing_requests_and_pod-level_"
        "feature/requests_are_not_set",
        pods=(_requests_pod(_c("container1"), _c("container2", 50)),),
        error="missing request for cpu in container container1 of Pod test-pod",
    ),
    RequestsCase(
        id="TestCalculateRequests/Pod-level_resources_override_missing_container_requests_when_feature_enabled_"
        "and_pod_resources_specified",
        pods=(_requests_pod(_c("container1"), _c("container2", 50), pod_level={"cpu": 800}),),
        pod_level_resources=True,
        expected={"test-pod": 800},
    ),
    RequestsCase(
        id="TestCalculateRequests/Container:_if_a_container_name_is_specified,_calculate_requests_only_for_that_"
        "container",
        pods=(_requests_pod(_c("container1", 100), _c("container2", 50)),),
        container="container1",
        expected={"test-pod": 100},
    ),
    RequestsCase(
        id="TestCalculateRequests/Container:_if_a_container_name_is_specified,_calculate_requests_only_for_that_"
        "container_and_ignore_pod-level_requests",
        pods=(_requests_pod(_c("container1", 100), _c("container2", 50), pod_level={"cpu": 800}),),
        container="container1",
        pod_level_resources=True,
        expected={"test-pod": 100},
    ),
    RequestsCase(
        id="TestCalculateRequests/pod_with_restartable_init_containers",
        pods=(
            _requests_pod(
                _c("container1", 100),
                _c("init-container1", 20, init=True),
                _c("restartable-container1", 50, restartable_init=True),
            ),
        ),
        expected={"test-pod": 150},
    ),
    # jetscale: pod-level requests that do not cover the resource, and sidecars named directly.
    RequestsCase(
        id="jetscale/pod-level cpu only: memory falls back to the containers' sum",
        pods=(
            Pod(
                name="test-pod",
                pod_requests_milli={"cpu": 800},
                containers=(
                    Container(name="a", requests_milli={"memory": 2_000}),
                    Container(name="b", requests_milli={"memory": 3_000}),
                ),
            ),
        ),
        resource="memory",
        pod_level_resources=True,
        expected={"test-pod": 5_000},
    ),
    RequestsCase(
        id="jetscale/pod-level cpu only and no container asks for memory: missing pod-level request",
        pods=(_requests_pod(_c("container1", 100), pod_level={"cpu": 800}),),
        resource="memory",
        pod_level_resources=True,
        error="missing pod-level request for memory in Pod test-pod",
    ),
    RequestsCase(
        id="jetscale/pod-level requests of an unsupported resource do not count as set",
        pods=(Pod(name="test-pod", pod_requests_milli={"nvidia.com/gpu": 1_000}, containers=(_c("container1", 100),)),),
        pod_level_resources=True,
        expected={"test-pod": 100},
    ),
    RequestsCase(
        id="jetscale/a sidecar can be named as the HPA container",
        pods=(_requests_pod(_c("container1", 100), _c("proxy", 30, restartable_init=True)),),
        container="proxy",
        expected={"test-pod": 30},
    ),
    RequestsCase(
        id="jetscale/a plain init container cannot be named",
        pods=(_requests_pod(_c("container1", 100), _c("setup", 30, init=True)),),
        container="setup",
        error="container setup not found in Pod test-pod",
    ),
]


@pytest.mark.parametrize("case", REQUESTS_CASES, ids=lambda c: c.id)
def test_calculate_requests(case: RequestsCase) -> None:
    got = calculate_requests(case.pods, case.container, case.resource, pod_level_resources=case.pod_level_resources)
    if case.error is not None:
        assert got == CalcError(message=case.error)
    else:
        assert got == case.expected


def test_calculate_pod_requests_from_containers_non_existent_container() -> None:
    """TestCalculatePodRequestsFromContainers_NonExistentContainer"""
    pod = _requests_pod(_c("container1", 100))
    got = calculate_pod_requests_from_containers(pod, "non-existent-container", "cpu")
    assert got == CalcError(message="container non-existent-container not found in Pod test-pod")


# ---------------------------------------------------------------------------------- getPerPodUsage


@pytest.mark.parametrize(
    ("usage", "status_replicas", "expected"),
    [
        pytest.param(20_000, 0, 0, id="TestGetPerPodUsage/zero_replicas_returns_zero"),
        pytest.param(1_000, 3, 334, id="TestGetPerPodUsage/normal_division_with_ceiling"),
        pytest.param(MAX_INT64, 1, MAX_INT64, id="TestGetPerPodUsage/overflow_returns_MaxInt64"),
        pytest.param(MAX_INT64 - 1, 3, MAX_INT64, id="jetscale/float64(MaxInt64-1) == 2^63: saturated to MaxInt64"),
        pytest.param(8_600, 3, 2_867, id="jetscale/8600m over 3 replicas = ceil(2866.67) = 2867m"),
    ],
)
def test_get_per_pod_usage(usage: int, status_replicas: int, expected: int) -> None:
    assert get_per_pod_usage(usage, status_replicas) == expected


# ---------------------------------------------------------------------------------- ready pods, ratios


def test_ready_pod_count_needs_running_and_ready_true() -> None:
    pods = (
        Pod(name="a"),
        Pod(name="b", ready=FALSE),
        Pod(name="c", ready=ConditionStatus.UNKNOWN),
        Pod(name="d", phase=PodPhase.PENDING),
        Pod(name="e", deleting=True),  # getReadyPodsCount does not look at deletion
        Pod(name="f", ready=None),
    )
    assert ready_pod_count(pods) == 2
    assert ready_pod_count(()) == CalcError(message="no pods returned by selector while calculating replica count")


def test_resource_utilization_ratio_truncates_and_skips_pods_without_request() -> None:
    got = resource_utilization_ratio({"a": 333, "b": 334, "stray": 9_999}, {"a": 1_000, "b": 1_000}, 50)
    assert not isinstance(got, CalcError)
    # (333 + 334) * 100 / 2000 = 33.35 -> 33%; 33 / 50 = 0.66; average (333 + 334) / 2 = 333.5 -> 333
    assert (got.utilization, got.usage_ratio, got.raw_average_milli, got.counted) == (33, 0.66, 333, 2)


def test_resource_utilization_ratio_outside_int32_is_an_error() -> None:
    got = resource_utilization_ratio({"a": 10**17}, {"a": 1}, 100)
    assert got == CalcError(message=f"resource utilization {10**19} is outside the int32 range")


def test_resource_utilization_ratio_exact_past_int64() -> None:
    # Totals beyond int64 are exact (upstream's big.Int fallback): 2 x MaxInt64 used of 2 x MaxInt64 requested.
    got = resource_utilization_ratio({"a": MAX_INT64, "b": MAX_INT64}, {"a": MAX_INT64, "b": MAX_INT64}, 100)
    assert not isinstance(got, CalcError)
    assert (got.utilization, got.usage_ratio, got.raw_average_milli) == (100, 1.0, MAX_INT64)


def test_metric_usage_ratio_exact_average_and_truncation() -> None:
    assert metric_usage_ratio({"a": MAX_INT64, "b": MAX_INT64}, MAX_INT64) == (1.0, MAX_INT64)
    assert metric_usage_ratio({"a": -7, "b": 0}, 1) == (-3.0, -3)  # Go truncates toward zero
    with pytest.raises(ValueError, match="'metrics' must hold at least one sample"):
        metric_usage_ratio({}, 1)


# ---------------------------------------------------------------------------------- Go numerics


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [
        pytest.param(1.0, 0.0, math.inf, id="x/0=+Inf"),
        pytest.param(-1.0, 0.0, -math.inf, id="-x/0=-Inf"),
        pytest.param(6.0, 4.0, 1.5, id="6/4=1.5"),
    ],
)
def test_go_float_div(numerator: float, denominator: float, expected: float) -> None:
    assert go_float_div(numerator, denominator) == expected


def test_go_float_div_zero_by_zero_is_nan() -> None:
    assert math.isnan(go_float_div(0.0, 0.0))


def test_go_integer_and_conversion_helpers() -> None:
    assert (go_int_div(-7, 2), go_int_div(7, -2), go_int_div(7, 2)) == (-3, -3, 3)
    assert (go_ceil(math.inf), go_ceil(1.2)) == (math.inf, 2.0)
    assert math.isnan(go_ceil(math.nan))
    assert (to_int32(math.inf), to_int32(-math.inf), to_int32(math.nan), to_int32(4.0)) == (MAX_INT32, MIN_INT32, 0, 4)
    assert (wrap_int64(MAX_INT64 + 1), wrap_int64(-(2**63) - 1), wrap_int64(5)) == (-(2**63), MAX_INT64, 5)
