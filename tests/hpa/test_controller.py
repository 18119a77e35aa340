"""Reconcile-level cases ported from Kubernetes' ``horizontal_test.go``.

Ids are the Go test names (the pre-refactor names that ``test_refactor_mapping.md`` lists, with the
subtest after a slash where a table has several). The fixture mirrors the Go one: pods ``test-pod-<i>``
with two containers sharing the CPU request, per-container usage ``level/2`` (integer division), metric
samples taken now with a 1-minute window, and the Go tests' controller flags (tolerance 0.1, CPU
initialization 2 min, readiness delay 10 s, legacy scale-up factor 8). The per-metric arithmetic is the
real ``jetscale.hpa.replicas``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import pytest

from jetscale.errors import ConfigError
from jetscale.hpa.behavior import ConditionType
from jetscale.hpa.controller import (
    ControllerState,
    Decision,
    HorizontalController,
    Observation,
    combine_proposals,
    reconcile,
)
from jetscale.hpa.types import (
    Behavior,
    Condition,
    ConditionStatus,
    Container,
    ControllerConfig,
    CrossVersionObjectReference,
    ExternalMetric,
    HPAScalingPolicy,
    HPAScalingRules,
    HPASpec,
    MetricFailure,
    MetricProposal,
    MetricReading,
    MetricSourceType,
    MetricSpec,
    MetricTarget,
    MetricTargetType,
    MetricUnavailable,
    ObjectMetric,
    Pod,
    PodMetric,
    PodMetrics,
    PodPhase,
    PolicyType,
    SelectorStatus,
    SelectPolicy,
    Timestamped,
)

NOW = 1_000_000.0
GO_ZERO_TIME = NOW - 6.3e10  # metav1.Time{}: the year 1
HOT = NOW  # hotCPUCreationTime()
COOL = NOW - 180.0  # coolCPUCreationTime()
CONFIG = ControllerConfig(
    tolerance=0.1,
    cpu_initialization_period_s=120.0,
    initial_readiness_delay_s=10.0,
    downscale_stabilization_s=300.0,
    scale_up_limit_factor=8.0,
)
T, F = ConditionStatus.TRUE, ConditionStatus.FALSE

# ------------------------------------------------------------------------------------------ fixture


def cpu(target: int) -> MetricSpec:
    return MetricSpec(
        type=MetricSourceType.RESOURCE,
        name="cpu",
        target=MetricTarget(type=MetricTargetType.UTILIZATION, average_utilization=target),
    )


def container_cpu(target: int, container: str) -> MetricSpec:
    return MetricSpec(
        type=MetricSourceType.CONTAINER_RESOURCE,
        name="cpu",
        container=container,
        target=MetricTarget(type=MetricTargetType.UTILIZATION, average_utilization=target),
    )


def pods_qps(average_milli: int) -> MetricSpec:
    return MetricSpec(
        type=MetricSourceType.PODS,
        name="qps",
        target=MetricTarget(type=MetricTargetType.AVERAGE_VALUE, average_value_milli=average_milli),
    )


DEPLOYMENT = CrossVersionObjectReference(kind="Deployment", name="some-deployment", api_version="apps/v1")


def object_qps(*, value_milli: int | None = None, average_milli: int | None = None) -> MetricSpec:
    kind = MetricTargetType.VALUE if value_milli is not None else MetricTargetType.AVERAGE_VALUE
    return MetricSpec(
        type=MetricSourceType.OBJECT,
        name="qps",
        described_object=DEPLOYMENT,
        target=MetricTarget(type=kind, value_milli=value_milli, average_value_milli=average_milli),
    )


def external_qps(*, value_milli: int | None = None, average_milli: int | None = None) -> MetricSpec:
    kind = MetricTargetType.VALUE if value_milli is not None else MetricTargetType.AVERAGE_VALUE
    return MetricSpec(
        type=MetricSourceType.EXTERNAL,
        name="qps",
        selector=(),
        target=MetricTarget(type=kind, value_milli=value_milli, average_value_milli=average_milli),
    )


CHEDDAR = MetricSpec(
    type="CheddarCheese",  # type: ignore[arg-type]  # an unknown source type, as the Go test writes it
    name="",
    target=MetricTarget(type=MetricTargetType.VALUE, value_milli=1),
)


def rules(
    window: int | None, policies: tuple[tuple[PolicyType, int, int], ...], select: SelectPolicy = SelectPolicy.MAX
) -> HPAScalingRules:
    return HPAScalingRules(
        stabilization_window_s=window,
        select_policy=select,
        policies=tuple(HPAScalingPolicy(type=t, value=v, period_s=p) for t, v, p in policies),
    )


DEFAULT_UP = rules(0, ((PolicyType.PODS, 4, 15), (PolicyType.PERCENT, 100, 15)))
DEFAULT_DOWN = rules(None, ((PolicyType.PERCENT, 100, 15),))


def samples(values: Iterable[int]) -> PodMetrics:
    """Per-pod samples for test-pod-0, test-pod-1, ..., taken now with a 1-minute window."""
    return PodMetrics(values={f"test-pod-{i}": PodMetric(value_milli=v, timestamp_s=NOW) for i, v in enumerate(values)})


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """horizontal_test.go's ``horizontalScenario`` / ``testCase`` (the fields these ports use)."""

    min: int
    max: int
    spec_replicas: int
    status_replicas: int | None = None  # defaults to spec_replicas
    cpu_target: int = 0
    metrics: tuple[MetricSpec, ...] = ()
    levels: tuple[int, ...] = ()
    requests_milli: tuple[int, ...] | None = None  # reportedCPURequests; None: statusReplicas pods of 1 CPU
    readiness: tuple[ConditionStatus, ...] | None = None
    start_times: tuple[float, ...] | None = None
    phases: tuple[PodPhase, ...] | None = None
    deleting: tuple[bool, ...] | None = None
    behavior: Behavior | None = None
    recommendations: tuple[Timestamped, ...] | None = None  # None: never reconciled (Go's nil)
    conditions: tuple[Condition, ...] = ()
    selector: SelectorStatus = SelectorStatus.OK
    failing: bool = False  # every metrics API answers "something went wrong"
    failing_types: frozenset[str] = frozenset()
    scale_to_zero: bool = False
    configurable_tolerance: bool = True

    def spec(self) -> HPASpec:
        metrics = ((cpu(self.cpu_target),) if self.cpu_target > 0 else ()) + self.metrics
        return HPASpec(
            name="test-hpa",
            namespace="test-namespace",
            scale_target_ref=CrossVersionObjectReference(
                kind="ReplicationController", name="test-rc", api_version="v1"
            ),
            min_replicas=self.min,
            max_replicas=self.max,
            metrics=metrics or (cpu(80),),
            behavior=self.behavior,
        )

    def pods(self) -> tuple[Pod, ...]:
        status = self.spec_replicas if self.status_replicas is None else self.status_replicas
        requests = self.requests_milli if self.requests_milli is not None else (1000,) * status
        out = []
        for i, request in enumerate(requests):
            start = self.start_times[i] if self.start_times is not None else GO_ZERO_TIME
            half = {"cpu": request // 2}
            out.append(
                Pod(
                    name=f"test-pod-{i}",
                    phase=self.phases[i] if self.phases is not None else PodPhase.RUNNING,
                    ready=self.readiness[i] if self.readiness is not None else T,
                    ready_transition_s=start,
                    start_time_s=start,
                    deleting=self.deleting[i] if self.deleting is not None else False,
                    containers=(
                        Container(name="container1", requests_milli=half),
                        Container(name="container2", requests_milli=half),
                    ),
                )
            )
        return tuple(out)

    def reading(self, metric: MetricSpec) -> MetricReading:
        if self.failing or metric.type in self.failing_types:
            return MetricUnavailable(error="something went wrong")
        if metric.type == MetricSourceType.RESOURCE:  # both containers report level/2
            return samples(2 * (v // 2) for v in self.levels)
        if metric.type == MetricSourceType.CONTAINER_RESOURCE:  # the named container's level/2
            return samples(v // 2 for v in self.levels)
        if metric.type == MetricSourceType.PODS:
            return samples(self.levels)
        if metric.type == MetricSourceType.OBJECT:
            return ObjectMetric(value_milli=self.levels[0], timestamp_s=NOW)
        if metric.type == MetricSourceType.EXTERNAL:
            return ExternalMetric(values_milli=self.levels, timestamp_s=NOW)
        return MetricUnavailable(error=f"unknown metric source type {metric.type}")

    def observation(self) -> Observation:
        status = self.spec_replicas if self.status_replicas is None else self.status_replicas
        return Observation(
            spec_replicas=self.spec_replicas,
            status_replicas=status,
            pods=self.pods(),
            readings=tuple(self.reading(m) for m in self.spec().metrics),
            selector=self.selector,
        )

    def config(self) -> ControllerConfig:
        return replace(CONFIG, scale_to_zero=self.scale_to_zero, configurable_tolerance=self.configurable_tolerance)

    def run(self) -> tuple[Decision, ControllerState]:
        state = ControllerState(recommendations=self.recommendations, conditions=self.conditions)
        return reconcile(self.spec(), state, self.observation(), NOW, self.config())


Cond = tuple[str, ConditionStatus, str]
STATUS_OK: tuple[Cond, ...] = (
    ("AbleToScale", T, "SucceededRescale"),
    ("ScalingActive", T, "ValidMetricFound"),
    ("ScalingLimited", F, "DesiredWithinRange"),
)


def status_ok(*overrides: Cond) -> tuple[Cond, ...]:
    """``statusOkWithOverrides``: the ok conditions with some replaced (same type) or appended."""
    out = list(STATUS_OK)
    for override in overrides:
        for i, existing in enumerate(out):
            if existing[0] == override[0]:
                out[i] = override
                break
        else:
            out.append(override)
    return tuple(out)


READY = ("AbleToScale", T, "ReadyForNewScale")
GOT_SCALE = ("AbleToScale", T, "SucceededGetScale")
DISABLED = (GOT_SCALE, ("ScalingActive", F, "ScalingDisabled"))
STZ_TRUE = Condition(type=ConditionType.SCALED_TO_ZERO, status=T, reason="ScaledToZero")


def failed(reason: str) -> tuple[Cond, ...]:
    return (GOT_SCALE, ("ScalingActive", F, reason))


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    scenario: Scenario
    desired: int
    conditions: tuple[Cond, ...] | None = STATUS_OK
    error: bool = False
    utilization: int | None = None  # verifyCPUCurrent: the reported utilization of metric 0
    extra: dict[str, object] = field(default_factory=dict)


def levels(*values: int) -> tuple[int, ...]:
    return values


ONE_CPU_X3 = (1000, 1000, 1000)
ONE_CPU_X5 = (1000,) * 5
UNEVEN = (900, 1000, 1100)
TENTH_X3 = (100, 100, 100)
UP = Scenario(min=2, max=6, spec_replicas=3, cpu_target=30, levels=(300, 500, 700), requests_milli=ONE_CPU_X3)
DOWN = Scenario(
    min=2, max=6, spec_replicas=5, cpu_target=50, levels=(100, 300, 500, 250, 250),
    requests_milli=ONE_CPU_X5, recommendations=(),
)  # fmt: skip
FAILING_UP = Scenario(min=1, max=100, spec_replicas=3, cpu_target=10, levels=(100, 200, 300), requests_milli=TENTH_X3)
OBJ_UP = Scenario(min=2, max=6, spec_replicas=3, metrics=(object_qps(value_milli=15000),), levels=(20000,))
FROM_ZERO = Scenario(
    min=0, max=6, spec_replicas=0, metrics=(object_qps(value_milli=15000),), levels=(20000,), conditions=(STZ_TRUE,)
)
FROM_ZERO_OK = (("ScaledToZero", F, "NotScaledToZero"), *STATUS_OK)
CM_DOWN = Scenario(min=2, max=6, spec_replicas=5, requests_milli=ONE_CPU_X5, recommendations=())
TOLERANCE = Scenario(min=1, max=5, spec_replicas=3, levels=(1010, 1030, 1020), requests_milli=UNEVEN)
REPLICA_LIMITS = Scenario(min=2, max=5, spec_replicas=3, cpu_target=90, requests_milli=UNEVEN, recommendations=())


def with_tolerance(base: HPAScalingRules, tolerance: float) -> HPAScalingRules:
    return replace(base, tolerance=tolerance)


def computed_tolerance_case(offset: float) -> Scenario:
    """TestComputedToleranceAlgImplementation's fixture, derived the way the Go test derives it."""
    start_pods, used = 10, 10 * 150
    requested = 2 * used
    per_pod = requested // start_pods
    target = abs(1 / (float(requested // used) * (1 - CONFIG.tolerance))) + offset
    return Scenario(
        min=0, max=1000, spec_replicas=start_pods, cpu_target=int(target * 100), levels=(used // 10,) * 10,
        requests_milli=tuple(per_pod + d for d in (100, -100, 10, -10, 2, -2, 1, -1, 0, 0)), recommendations=(),
    )  # fmt: skip


def computed_tolerance_expected() -> int:
    target = abs(1 / (2.0 * (1 - CONFIG.tolerance))) + 0.01
    return math.ceil(1500 / (3000 * target) * 10)


CASES: dict[str, Case] = {
    # ---- TestScaleCPU (TestScaleUpCPU / TestScaleDownCPU)
    "TestScaleUp": Case(scenario=UP, desired=5, utilization=50),
    "TestScaleUpUnreadyLessScale": Case(scenario=replace(UP, readiness=(F, T, T)), desired=4, utilization=60),
    "TestScaleUpHotCpuLessScale": Case(scenario=replace(UP, start_times=(HOT, COOL, COOL)), desired=4),
    "TestScaleUpIgnoresFailedPods": Case(
        scenario=replace(
            UP,
            spec_replicas=2,
            levels=(500, 700),
            requests_milli=(1000,) * 4,
            readiness=(T, T, F, F),
            phases=(PodPhase.RUNNING, PodPhase.RUNNING, PodPhase.FAILED, PodPhase.FAILED),
        ),
        desired=4,
    ),
    "TestScaleUpIgnoresDeletionPods": Case(
        scenario=replace(
            UP,
            spec_replicas=2,
            levels=(500, 700),
            requests_milli=(1000,) * 4,
            readiness=(T, T, F, F),
            deleting=(False, False, True, True),
        ),
        desired=4,
    ),
    "TestScaleUpDeployment": Case(scenario=UP, desired=5),
    "TestScaleUpUnreadyNoScale": Case(
        scenario=replace(UP, levels=(400, 500, 700), readiness=(T, F, F)),
        desired=3,
        conditions=status_ok(READY),
        utilization=40,
    ),
    "TestScaleUpHotCpuNoScale": Case(
        scenario=replace(UP, levels=(400, 500, 700), readiness=(T, F, F), start_times=(COOL, HOT, HOT)),
        desired=3,
        conditions=status_ok(READY),
        utilization=40,
    ),
    "TestScaleDown": Case(scenario=DOWN, desired=3, utilization=28),
    "TestScaleDownIncludeUnreadyPods": Case(scenario=replace(DOWN, readiness=(T, T, T, F, F)), desired=2),
    "TestScaleDownIgnoreHotCpuPods": Case(scenario=replace(DOWN, start_times=(COOL,) * 3 + (HOT,) * 2), desired=2),
    "TestScaleDownIgnoresFailedPods": Case(
        scenario=replace(
            DOWN,
            requests_milli=(1000,) * 7,
            readiness=(T,) * 5 + (F, F),
            phases=(PodPhase.RUNNING,) * 5 + (PodPhase.FAILED,) * 2,
        ),
        desired=3,
    ),
    "TestScaleDownIgnoresDeletionPods": Case(
        scenario=replace(
            DOWN, requests_milli=(1000,) * 7, readiness=(T,) * 5 + (F, F), deleting=(False,) * 5 + (True,) * 2
        ),
        desired=3,
    ),
    # ---- TestScaleContainerResource
    "TestScaleUpContainer": Case(
        scenario=replace(UP, cpu_target=0, metrics=(container_cpu(30, "container1"),)), desired=5
    ),
    "TestScaleDownContainerResource": Case(
        scenario=replace(DOWN, cpu_target=0, metrics=(container_cpu(50, "container2"),)), desired=3
    ),
    # ---- TestScaleUpCM, TestScaleUpCMObject
    "TestScaleUpCM": Case(
        scenario=replace(UP, cpu_target=0, metrics=(pods_qps(15000),), levels=(20000, 10000, 30000)), desired=4
    ),
    "TestScaleUpCMUnreadyAndHotCpuNoLessScale/unready and hot cpu pods do not reduce scale": Case(
        scenario=replace(
            UP,
            cpu_target=0,
            metrics=(pods_qps(15000),),
            levels=(50000, 10000, 30000),
            readiness=(T, T, F),
            start_times=(COOL, COOL, HOT),
        ),
        desired=6,
    ),
    "TestScaleUpCMUnreadyAndHotCpuNoLessScale/scale to max with scaling limited condition": Case(
        scenario=replace(
            UP,
            cpu_target=0,
            metrics=(pods_qps(15000),),
            levels=(50000, 15000, 30000),
            readiness=(F, T, F),
            start_times=(HOT, COOL, HOT),
        ),
        desired=6,
        conditions=status_ok(("ScalingLimited", T, "TooManyReplicas")),
    ),
    "TestScaleUpCMExternal": Case(
        scenario=Scenario(min=2, max=6, spec_replicas=3, metrics=(external_qps(value_milli=6666),), levels=(8600,)),
        desired=4,
    ),
    "TestScaleUpPerPodCMExternal": Case(
        scenario=Scenario(min=2, max=6, spec_replicas=3, metrics=(external_qps(average_milli=2222),), levels=(8600,)),
        desired=4,
    ),
    "TestScaleUpCMObject": Case(scenario=OBJ_UP, desired=4),
    "TestScaleUpFromZeroCMObject/feature gate enabled": Case(
        scenario=replace(FROM_ZERO, scale_to_zero=True), desired=2, conditions=FROM_ZERO_OK
    ),
    "TestScaleUpFromZeroCMObject/feature gate disabled": Case(scenario=FROM_ZERO, desired=0, conditions=DISABLED),
    "TestScaleUpFromZeroIgnoresToleranceCMObject/feature gate enabled": Case(
        scenario=replace(FROM_ZERO, metrics=(object_qps(value_milli=1000),), levels=(1000,), scale_to_zero=True),
        desired=1,
        conditions=FROM_ZERO_OK,
    ),
    "TestScaleUpFromZeroIgnoresToleranceCMObject/feature gate disabled": Case(
        scenario=replace(FROM_ZERO, metrics=(object_qps(value_milli=1000),), levels=(1000,)),
        desired=0,
        conditions=DISABLED,
    ),
    "TestScaleUpPerPodCMObject": Case(
        scenario=replace(OBJ_UP, metrics=(object_qps(average_milli=10000),), levels=(40000,)), desired=4
    ),
    # ---- TestScaleWithOneInvalidMetric
    "TestScaleUpOneMetricInvalid": Case(
        scenario=replace(UP, metrics=(CHEDDAR,), levels=(300, 400, 500)), desired=4, error=True, utilization=40
    ),
    "TestScaleUpFromZeroOneMetricInvalid/HPAScaleToZero=true": Case(
        scenario=Scenario(
            min=0,
            max=6,
            spec_replicas=0,
            cpu_target=30,
            metrics=(CHEDDAR,),
            levels=(300, 400, 500),
            requests_milli=ONE_CPU_X3,
            recommendations=(),
            scale_to_zero=True,
        ),
        desired=0,
        conditions=DISABLED,
    ),
    "TestScaleUpFromZeroOneMetricInvalid/HPAScaleToZero=false": Case(
        scenario=Scenario(
            min=0,
            max=6,
            spec_replicas=0,
            cpu_target=30,
            metrics=(CHEDDAR,),
            levels=(300, 400, 500),
            requests_milli=ONE_CPU_X3,
            recommendations=(),
        ),
        desired=0,
        conditions=DISABLED,
    ),
    "TestScaleDownStabilizeInitialSize": Case(
        scenario=replace(DOWN, recommendations=None),
        desired=5,
        utilization=28,
        conditions=(("AbleToScale", T, "ScaleDownStabilized"), *STATUS_OK[1:]),
    ),
    # ---- TestScaleDownCM
    "TestScaleDownCM": Case(scenario=replace(CM_DOWN, metrics=(pods_qps(20000),), levels=(12000,) * 5), desired=3),
    "TestScaleDownCMObject": Case(
        scenario=replace(CM_DOWN, metrics=(object_qps(value_milli=20000),), levels=(12000,)), desired=3
    ),
    "TestScaleDownToZeroCMObject/feature gate enabled": Case(
        scenario=replace(CM_DOWN, min=0, metrics=(object_qps(value_milli=20000),), levels=(0,), scale_to_zero=True),
        desired=0,
        conditions=status_ok(("ScaledToZero", T, "ScaledToZero")),
    ),
    "TestScaleDownToZeroCMObject/feature gate disabled": Case(
        scenario=replace(CM_DOWN, min=0, metrics=(object_qps(value_milli=20000),), levels=(0,)), desired=0
    ),
    "TestScaleDownPerPodCMObject": Case(
        scenario=replace(CM_DOWN, metrics=(object_qps(average_milli=20000),), levels=(60000,)), desired=3
    ),
    "TestScaleDownCMExternal": Case(
        scenario=replace(CM_DOWN, requests_milli=None, metrics=(external_qps(value_milli=14400),), levels=(8600,)),
        desired=3,
    ),
    "TestScaleDownToZeroCMExternal/feature gate enabled": Case(
        scenario=replace(
            CM_DOWN,
            min=0,
            requests_milli=None,
            metrics=(external_qps(value_milli=14400),),
            levels=(0,),
            scale_to_zero=True,
        ),
        desired=0,
        conditions=status_ok(("ScaledToZero", T, "ScaledToZero")),
    ),
    "TestScaleDownToZeroCMExternal/feature gate disabled": Case(
        scenario=replace(CM_DOWN, min=0, requests_milli=None, metrics=(external_qps(value_milli=14400),), levels=(0,)),
        desired=0,
    ),
    "TestScaleDownPerPodCMExternal": Case(
        scenario=replace(CM_DOWN, requests_milli=None, metrics=(external_qps(average_milli=3000),), levels=(8600,)),
        desired=3,
    ),
    # ---- TestScaleToZeroBehavior
    "TestScaleUpFromZeroWithoutCondition/HPAScaleToZero=true": Case(
        scenario=replace(FROM_ZERO, conditions=(), scale_to_zero=True), desired=0, conditions=DISABLED
    ),
    "TestScaleUpFromZeroWithoutCondition/HPAScaleToZero=false": Case(
        scenario=replace(FROM_ZERO, conditions=()), desired=0, conditions=DISABLED
    ),
    "TestScaleUpFromZeroWhenMinReplicasIncreased/HPAScaleToZero=true": Case(
        scenario=replace(
            FROM_ZERO, min=2, metrics=(object_qps(value_milli=15000),), levels=(10000,), scale_to_zero=True
        ),
        desired=2,
        conditions=(FROM_ZERO_OK[0], *status_ok(("ScalingLimited", T, "TooFewReplicas"))),
    ),
    "TestScaleUpFromZeroWhenMinReplicasIncreased/HPAScaleToZero=false": Case(
        scenario=replace(FROM_ZERO, min=2, metrics=(object_qps(value_milli=15000),), levels=(10000,)),
        desired=0,
        conditions=DISABLED,
    ),
    "TestScaledToZeroConditionHandledOnNormalRescale/HPAScaleToZero=true": Case(
        scenario=replace(UP, min=1, conditions=(STZ_TRUE,), scale_to_zero=True), desired=5, conditions=FROM_ZERO_OK
    ),
    "TestScaledToZeroConditionHandledOnNormalRescale/HPAScaleToZero=false": Case(
        scenario=replace(UP, min=1, conditions=(STZ_TRUE,)), desired=5
    ),
    "TestManualScaleToZeroDisablesHPA/HPAScaleToZero=true": Case(
        scenario=Scenario(min=1, max=6, spec_replicas=0, cpu_target=50, requests_milli=(), scale_to_zero=True),
        desired=0,
        conditions=DISABLED,
    ),
    "TestManualScaleToZeroDisablesHPA/HPAScaleToZero=false": Case(
        scenario=Scenario(min=1, max=6, spec_replicas=0, cpu_target=50, requests_milli=()),
        desired=0,
        conditions=DISABLED,
    ),
    # ---- TestTolerance, TestConfigurableTolerance
    "TestTolerance": Case(scenario=replace(TOLERANCE, cpu_target=100), desired=3, conditions=status_ok(READY)),
    "TestToleranceCM": Case(
        scenario=replace(TOLERANCE, metrics=(pods_qps(20000),), levels=(20000, 20001, 21000)),
        desired=3,
        conditions=status_ok(READY),
    ),
    "TestToleranceCMObject": Case(
        scenario=replace(TOLERANCE, metrics=(object_qps(value_milli=20000),), levels=(20050,)),
        desired=3,
        conditions=status_ok(READY),
    ),
    "TestToleranceCMExternal": Case(
        scenario=Scenario(min=2, max=6, spec_replicas=4, metrics=(external_qps(value_milli=8666),), levels=(8600,)),
        desired=4,
        conditions=status_ok(READY),
    ),
    "TestTolerancePerPodCMObject": Case(
        scenario=Scenario(min=2, max=6, spec_replicas=4, metrics=(object_qps(average_milli=2200),), levels=(8600,)),
        desired=4,
        conditions=status_ok(READY),
    ),
    "TestTolerancePerPodCMExternal": Case(
        scenario=Scenario(min=2, max=6, spec_replicas=4, metrics=(external_qps(average_milli=2200),), levels=(8600,)),
        desired=4,
        conditions=status_ok(READY),
    ),
    "TestConfigurableTolerance/Scaling up because of a 1% configurable tolerance": Case(
        scenario=replace(
            TOLERANCE,
            cpu_target=100,
            behavior=Behavior(scale_up=with_tolerance(DEFAULT_UP, 0.01), scale_down=DEFAULT_DOWN),
        ),
        desired=4,
    ),
    "TestConfigurableTolerance/No scale-down because of a 90% configurable tolerance": Case(
        scenario=replace(
            TOLERANCE,
            cpu_target=100,
            levels=(300, 300, 300),
            requests_milli=ONE_CPU_X3,
            behavior=Behavior(scale_up=DEFAULT_UP, scale_down=with_tolerance(DEFAULT_DOWN, 0.9)),
        ),
        desired=3,
        conditions=status_ok(READY),
    ),
    "TestConfigurableTolerance/No scaling because of the large default tolerance": Case(
        scenario=replace(TOLERANCE, cpu_target=100), desired=3, conditions=status_ok(READY)
    ),
    "TestConfigurableTolerance/No scaling because the configurable tolerance is ignored as the feature gate is disabled": Case(  # noqa: E501
        scenario=replace(
            TOLERANCE,
            cpu_target=100,
            configurable_tolerance=False,
            behavior=Behavior(scale_up=with_tolerance(DEFAULT_UP, 0.01), scale_down=DEFAULT_DOWN),
        ),
        desired=3,
        conditions=status_ok(READY),
    ),
    # ---- TestReplicaLimits
    "TestMinReplicas": Case(
        scenario=replace(REPLICA_LIMITS, levels=(10, 95, 10)),
        desired=2,
        conditions=status_ok(("ScalingLimited", T, "TooFewReplicas")),
    ),
    "TestZeroMinReplicasDesiredZero": Case(scenario=replace(REPLICA_LIMITS, min=0, levels=(0, 0, 0)), desired=0),
    "TestMinReplicasDesiredZero": Case(
        scenario=replace(REPLICA_LIMITS, levels=(0, 0, 0)),
        desired=2,
        conditions=status_ok(("ScalingLimited", T, "TooFewReplicas")),
    ),
    "TestZeroReplicas": Case(
        scenario=Scenario(min=3, max=5, spec_replicas=0, cpu_target=90, requests_milli=()),
        desired=0,
        conditions=DISABLED,
    ),
    "TestTooFewReplicas": Case(
        scenario=Scenario(min=3, max=5, spec_replicas=2, cpu_target=90, requests_milli=()),
        desired=3,
        conditions=(("AbleToScale", T, "SucceededRescale"),),
    ),
    "TestTooManyReplicas": Case(
        scenario=Scenario(min=3, max=5, spec_replicas=10, cpu_target=90, requests_milli=()),
        desired=5,
        conditions=(("AbleToScale", T, "SucceededRescale"),),
    ),
    "TestMaxReplicas": Case(
        scenario=replace(REPLICA_LIMITS, levels=(8000, 9500, 1000), recommendations=None),
        desired=5,
        conditions=status_ok(("ScalingLimited", T, "TooManyReplicas")),
    ),
    "TestScaleUpRCImmediately": Case(
        scenario=Scenario(min=2, max=6, spec_replicas=1, levels=(0, 0, 0, 0), requests_milli=(1000,) * 4),
        desired=2,
        conditions=(("AbleToScale", T, "SucceededRescale"),),
    ),
    "TestScaleDownRCImmediately": Case(
        scenario=Scenario(
            min=2, max=5, spec_replicas=6, cpu_target=50, levels=(8000, 9500, 1000), requests_milli=UNEVEN
        ),
        desired=5,
        conditions=(("AbleToScale", T, "SucceededRescale"),),
    ),
    # ---- TestMetricsEdgeCases, TestCPUScalingEdgeCases
    "TestSuperfluousMetrics": Case(
        scenario=Scenario(
            min=2,
            max=6,
            spec_replicas=4,
            cpu_target=100,
            levels=(4000, 9500, 3000, 7000, 3200, 2000),
            requests_milli=(1000,) * 4,
        ),
        desired=6,
        conditions=status_ok(("ScalingLimited", T, "TooManyReplicas")),
    ),
    "TestMissingMetrics": Case(
        scenario=Scenario(
            min=2,
            max=6,
            spec_replicas=4,
            cpu_target=100,
            levels=(400, 95),
            requests_milli=(1000,) * 4,
            recommendations=(),
        ),
        desired=3,
    ),
    "TestEmptyMetrics": Case(
        scenario=Scenario(min=2, max=6, spec_replicas=4, cpu_target=100, levels=(), requests_milli=(1000,) * 4),
        desired=4,
        conditions=failed("FailedGetResourceMetric"),
        error=True,
    ),
    "TestEmptyCPURequest": Case(
        scenario=Scenario(min=1, max=5, spec_replicas=1, cpu_target=100, levels=(200,), requests_milli=()),
        desired=1,
        conditions=failed("FailedGetResourceMetric"),
        error=True,
    ),
    "TestMissingReports": Case(
        scenario=Scenario(
            min=1, max=5, spec_replicas=4, cpu_target=50, levels=(200,), requests_milli=(200,), recommendations=()
        ),
        desired=2,
    ),
    "TestMoreReplicasThanSpecNoScale": Case(
        scenario=Scenario(
            min=1,
            max=8,
            spec_replicas=4,
            status_replicas=5,
            cpu_target=50,
            levels=(500,) * 5,
            requests_milli=ONE_CPU_X5,
        ),
        desired=4,
        conditions=status_ok(READY),
    ),
    "TestEventCreated": Case(
        scenario=Scenario(min=1, max=5, spec_replicas=1, cpu_target=50, levels=(200,), requests_milli=(200,)),
        desired=2,
        extra={"reason": "cpu resource utilization (percentage of request) above target"},
    ),
    "TestEventNotCreated": Case(
        scenario=Scenario(min=1, max=5, spec_replicas=2, cpu_target=50, levels=(200, 200), requests_milli=(400, 400)),
        desired=2,
        conditions=status_ok(READY),
    ),
    # ---- TestUpscaleCap
    "TestUpscaleCapGreaterThanMaxReplicas/capped by scale up rules": Case(
        scenario=Scenario(
            min=1,
            max=100,
            spec_replicas=3,
            cpu_target=10,
            levels=(100, 200, 300),
            requests_milli=TENTH_X3,
            behavior=Behavior(scale_up=rules(0, ((PolicyType.PERCENT, 700, 60),)), scale_down=DEFAULT_DOWN),
        ),
        desired=24,
        conditions=status_ok(("ScalingLimited", T, "ScaleUpLimit")),
    ),
    "TestUpscaleCapGreaterThanMaxReplicas/capped by max replicas when scale up limit exceeds max": Case(
        scenario=Scenario(
            min=1,
            max=20,
            spec_replicas=3,
            cpu_target=10,
            levels=(100, 200, 300),
            requests_milli=TENTH_X3,
            behavior=Behavior(scale_up=rules(0, ((PolicyType.PERCENT, 700, 60),)), scale_down=DEFAULT_DOWN),
        ),
        desired=20,
        conditions=status_ok(("ScalingLimited", T, "TooManyReplicas")),
    ),
    # ---- TestConditionSelectorValidation
    "TestConditionInvalidSelectorMissing": Case(
        scenario=replace(FAILING_UP, selector=SelectorStatus.EMPTY),
        desired=3,
        conditions=failed("InvalidSelector"),
        error=True,
    ),
    "TestConditionInvalidSelectorUnparsable": Case(
        scenario=replace(FAILING_UP, selector=SelectorStatus.INVALID),
        desired=3,
        conditions=failed("InvalidSelector"),
        error=True,
    ),
    "TestConditionNoAmbiguousSelectorWhenNoSelectorOverlapBetweenHPAs": Case(scenario=UP, desired=5),
    "TestConditionAmbiguousSelectorWhenFullSelectorOverlapBetweenHPAs": Case(
        scenario=replace(UP, selector=SelectorStatus.AMBIGUOUS),
        desired=3,
        conditions=failed("AmbiguousSelector"),
        error=True,
    ),
    # ---- TestConditionFailedGetMetrics, TestInvalidMetricSourceType
    "TestConditionFailedGetMetrics/FailedGetResourceMetric": Case(
        scenario=replace(FAILING_UP, failing=True), desired=3, conditions=failed("FailedGetResourceMetric"), error=True
    ),
    "TestConditionFailedGetMetrics/FailedGetPodsMetric": Case(
        scenario=replace(FAILING_UP, cpu_target=0, metrics=(pods_qps(15000),), failing=True),
        desired=3,
        conditions=failed("FailedGetPodsMetric"),
        error=True,
    ),
    "TestConditionFailedGetMetrics/FailedGetObjectMetric": Case(
        scenario=replace(FAILING_UP, cpu_target=0, metrics=(object_qps(value_milli=15000),), failing=True),
        desired=3,
        conditions=failed("FailedGetObjectMetric"),
        error=True,
    ),
    "TestConditionFailedGetMetrics/FailedGetExternalMetric": Case(
        scenario=replace(FAILING_UP, cpu_target=0, metrics=(external_qps(value_milli=300),), failing=True),
        desired=3,
        conditions=failed("FailedGetExternalMetric"),
        error=True,
    ),
    "TestConditionInvalidSourceType": Case(
        scenario=Scenario(min=2, max=6, spec_replicas=3, metrics=(CHEDDAR,), levels=(20000,)),
        desired=3,
        conditions=failed("InvalidMetricSourceType"),
        error=True,
    ),
    "TestNoScaleDownOneMetricInvalid": Case(
        scenario=replace(DOWN, metrics=(CHEDDAR,)),
        desired=5,
        conditions=failed("InvalidMetricSourceType"),
        error=True,
    ),
    # ---- TestScaleTimingBehavior
    "TestNoBackoffUpscaleCM": Case(
        scenario=Scenario(
            min=1,
            max=5,
            spec_replicas=3,
            metrics=(pods_qps(15000),),
            levels=(20000, 10000, 30000),
            requests_milli=ONE_CPU_X3,
        ),
        desired=4,
    ),
    "TestNoBackoffUpscaleCMNoBackoffCpu": Case(
        scenario=Scenario(
            min=1,
            max=5,
            spec_replicas=3,
            cpu_target=10,
            metrics=(pods_qps(15000),),
            levels=(20000, 10000, 30000),
            requests_milli=ONE_CPU_X3,
        ),
        desired=5,
        conditions=status_ok(("ScalingLimited", T, "TooManyReplicas")),
    ),
    "TestStabilizeDownscale": Case(
        scenario=Scenario(
            min=1,
            max=5,
            spec_replicas=4,
            cpu_target=100,
            levels=(50, 50, 50),
            requests_milli=TENTH_X3,
            recommendations=(
                Timestamped(recommendation=10, timestamp_s=NOW - 600),
                Timestamped(recommendation=4, timestamp_s=NOW - 60),
            ),
        ),
        desired=4,
        conditions=(("AbleToScale", T, "ScaleDownStabilized"), *STATUS_OK[1:]),
    ),
    # ---- TestOneMetricEmptyExternalError
    "TestScaleUpOneMetricEmpty": Case(
        scenario=replace(
            UP,
            metrics=(external_qps(value_milli=100),),
            levels=(300, 400, 500),
            failing_types=frozenset({MetricSourceType.EXTERNAL}),
        ),
        desired=4,
        error=True,
        utilization=40,
    ),
    "TestNoScaleDownOneMetricEmpty": Case(
        scenario=replace(
            DOWN, metrics=(external_qps(value_milli=1000),), failing_types=frozenset({MetricSourceType.EXTERNAL})
        ),
        desired=5,
        conditions=failed("FailedGetExternalMetric"),
        error=True,
    ),
    # ---- TestComputedToleranceAlgImplementation
    "TestComputedToleranceAlgImplementation/breach tolerance": Case(
        scenario=computed_tolerance_case(0.01), desired=computed_tolerance_expected()
    ),
    "TestComputedToleranceAlgImplementation/within tolerance": Case(
        scenario=computed_tolerance_case(0.004), desired=10, conditions=status_ok(READY)
    ),
}


def as_tuples(conditions: tuple[Condition, ...]) -> tuple[Cond, ...]:
    """The Go tests compare conditions with message and lastTransitionTime cleared."""
    return tuple((str(c.type), c.status, str(c.reason)) for c in conditions)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_reconcile(case: Case) -> None:
    decision, state = case.scenario.run()
    spec_replicas = case.scenario.spec_replicas
    assert decision.desired_replicas == case.desired
    assert decision.rescale == (case.desired != spec_replicas)  # "the scale should only be updated if ..."
    if case.conditions is not None:
        assert as_tuples(decision.conditions) == case.conditions
    assert (decision.error is not None) == case.error
    assert state.conditions == decision.conditions
    assert state.last_scale_time_s == (NOW if decision.rescale else None)
    if case.utilization is not None:
        first = decision.proposals[0]
        assert isinstance(first, MetricProposal)
        assert first.utilization == case.utilization
    if "reason" in case.extra:
        assert decision.reason == case.extra["reason"]
    assert decision.explanation  # the arithmetic is always told


def test_TestComputedToleranceAlgImplementation_expected_is_a_scale_down() -> None:
    assert computed_tolerance_expected() < 10  # the Go test's derivation: a minimal scale-down, 10 -> 9


def test_TestAvoidUnnecessaryUpdates() -> None:
    """The status the controller would write equals the one it read (messages included), so Kubernetes
    skips the update. The HPA's target is 80% (the Go fixture leaves the v1 field blank)."""
    scenario = Scenario(
        min=2, max=6, spec_replicas=2, cpu_target=80, levels=(400, 500, 700), requests_milli=ONE_CPU_X3,
        start_times=(COOL, HOT, HOT), recommendations=(),
    )  # fmt: skip
    before = (
        Condition(
            type="AbleToScale", status=T, reason="ReadyForNewScale", message="recommended size matches current size"
        ),
        Condition(
            type="ScalingActive", status=T, reason="ValidMetricFound",
            message="the HPA was able to successfully calculate a replica count from cpu resource utilization "
            "(percentage of request)",
        ),
        Condition(
            type="ScalingLimited", status=T, reason="TooFewReplicas",
            message="the desired replica count is less than the minimum replica count",
        ),
    )  # fmt: skip
    decision, state = reconcile(
        scenario.spec(), ControllerState(recommendations=(), conditions=before), scenario.observation(), NOW, CONFIG
    )
    assert (decision.desired_replicas, decision.rescale) == (2, False)
    assert decision.conditions == before
    assert decision.reason == "TooFewReplicas"
    assert state.last_scale_time_s is None


def test_TestReconciliationsTotalCountMultipleReconciliations() -> None:
    scenario = replace(TOLERANCE, cpu_target=100)
    controller = HorizontalController(scenario.spec(), CONFIG)
    for i in range(3):
        decision = controller.step(scenario.observation(), NOW + 15 * i)
        assert (decision.desired_replicas, decision.rescale) == (3, False)
        assert as_tuples(decision.conditions) == status_ok(READY)
    assert [r.recommendation for r in controller.state.recommendations or ()] == [3, 3, 3, 3]


# ---------------------------------------------------------------------------------- combine_proposals


def proposal(replicas: int, name: str) -> MetricProposal:
    return MetricProposal(replicas=replicas, metric_name=name, usage_ratio=1.0)


def failure(reason: str) -> MetricFailure:
    return MetricFailure(reason=reason, message=f"{reason} happened")


@pytest.mark.parametrize(
    ("results", "spec_replicas", "replicas", "name", "active_reason", "error"),
    [
        pytest.param([proposal(3, "a"), proposal(7, "b"), proposal(5, "c")], 4, 7, "b", "ValidMetricFound", None,
                     id="the highest proposal wins"),
        pytest.param([proposal(0, "a"), proposal(0, "b")], 1, 0, "b", "ValidMetricFound", None,
                     id="a zero is replaced by the next proposal, as in Go"),
        pytest.param([failure("FailedGetPodsMetric"), failure("FailedGetExternalMetric")], 4, -1, "",
                     "FailedGetPodsMetric", "invalid metrics (2 invalid out of 2), first error is: "
                     "FailedGetPodsMetric happened", id="all failed: the first failure names the condition"),
        pytest.param([proposal(6, "a"), failure("FailedGetObjectMetric")], 4, 6, "a", "ValidMetricFound",
                     "invalid metrics (1 invalid out of 2), first error is: FailedGetObjectMetric happened",
                     id="one failed, the rest scale up: act, and report the error"),
        pytest.param([proposal(4, "a"), failure("FailedGetObjectMetric")], 4, 4, "a", "ValidMetricFound",
                     "invalid metrics (1 invalid out of 2), first error is: FailedGetObjectMetric happened",
                     id="one failed, the rest stay: act"),
        pytest.param([failure("InvalidMetricSourceType"), proposal(2, "a")], 4, -1, "", "InvalidMetricSourceType",
                     "invalid metrics (1 invalid out of 2), first error is: InvalidMetricSourceType happened",
                     id="one failed, the rest scale down: no change"),
    ],
)  # fmt: skip
def test_combine_proposals(
    results: list[MetricProposal | MetricFailure], spec_replicas: int, replicas: int, name: str,
    active_reason: str, error: str | None,
) -> None:  # fmt: skip
    outcome = combine_proposals(results, spec_replicas)
    assert (outcome.replicas, outcome.metric_name, outcome.condition.reason, outcome.error) == (
        replicas, name, active_reason, error,
    )  # fmt: skip
    assert outcome.condition.status == (T if replicas >= 0 else F)
    if replicas < 0:
        assert outcome.condition.message == f"the HPA was unable to compute the replica count: {active_reason} happened"


# ------------------------------------------------------------------------------- history across syncs


def test_readings_must_match_the_metrics() -> None:
    with pytest.raises(ConfigError, match=r"'observation\.readings' must have one reading per spec\.metrics entry"):
        reconcile(UP.spec(), ControllerState(), replace(UP.observation(), readings=()), NOW, CONFIG)


def test_first_reconcile_never_scales_down_then_the_window_passes() -> None:
    """recordInitialRecommendation: the current count is a recommendation, so a fresh controller waits
    the downscale window (legacy path) before going down."""
    scenario = replace(DOWN, recommendations=None)
    controller = HorizontalController(scenario.spec(), CONFIG)
    held = controller.step(scenario.observation(), NOW)
    still = controller.step(scenario.observation(), NOW + 300)  # the initial 5 is exactly 300 s old: kept
    moved = controller.step(scenario.observation(), NOW + 300.5)
    assert (held.desired_replicas, held.reason) == (5, "ScaleDownStabilized")
    assert still.desired_replicas == 5
    assert (moved.desired_replicas, moved.rescale, moved.reason) == (3, True, "All metrics below target")
    assert controller.state.last_scale_time_s == NOW + 300.5


def test_behavior_stores_scale_events_and_legacy_does_not() -> None:
    behavior = Behavior(scale_up=rules(0, ((PolicyType.PODS, 1, 60),)), scale_down=DEFAULT_DOWN)
    with_behavior = replace(UP, behavior=behavior)
    decision, state = with_behavior.run()
    assert (decision.desired_replicas, decision.reason) == (
        4,
        "cpu resource utilization (percentage of request) above target",
    )
    assert [(e.replica_change, e.timestamp_s) for e in state.scale_up_events] == [(1, NOW)]
    assert state.scale_down_events == ()
    # the next sync, 30 s later with the same load: the 60 s period already holds one added pod
    again, _ = reconcile(
        with_behavior.spec(), state, replace(with_behavior.observation(), spec_replicas=4), NOW + 30, CONFIG
    )
    assert (again.desired_replicas, again.rescale) == (4, False)
    assert as_tuples(again.conditions)[-1] == ("ScalingLimited", T, "ScaleUpLimit")
    _, legacy_state = UP.run()
    assert legacy_state.scale_up_events == ()


def test_update_spec_keeps_the_history() -> None:
    controller = HorizontalController(DOWN.spec(), CONFIG)
    controller.step(DOWN.observation(), NOW)
    history = controller.state.recommendations
    controller.update_spec(replace(DOWN.spec(), max_replicas=7))
    assert controller.spec.max_replicas == 7
    assert controller.state.recommendations == history
    assert controller.config is CONFIG


def test_decision_reason_names_what_held_the_count() -> None:
    stabilized, _ = replace(DOWN, recommendations=None).run()
    disabled, _ = CASES["TestZeroReplicas"].scenario.run()
    failing, _ = CASES["TestEmptyMetrics"].scenario.run()
    assert (stabilized.reason, disabled.reason, failing.reason) == (
        "ScaleDownStabilized", "ScalingDisabled", "FailedGetResourceMetric",
    )  # fmt: skip
    assert failing.metric_replicas is None and stabilized.metric_replicas == 3


def test_pods_metric_rescale_reason() -> None:
    decision, _ = CASES["TestScaleUpCM"].scenario.run()
    assert decision.reason == "pods metric qps above target"
    assert decision.metric_replicas == 4
