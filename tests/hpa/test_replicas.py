"""The replica calculator, ported from Kubernetes' tables, plus the controller's entry point.

Source: kubernetes ``pkg/controller/podautoscaler/replica_calculator_test.go`` as of the newest-master
snapshot ``omerap12/kubernetes@a769d5884497dc246960b38f3e5aae2cc30dd062`` (the table-driven refactor:
TestReplicaCalcResourceScale, ...ExternalPerPodMetric, ...PodMetric, ...ObjectMetric, ...ObjectPerPodMetric,
...ExternalMetric, ...ResourceTolerance, ...ResourceMissingMetrics, ...ComputedToleranceAlgImplementation).
Its data is identical to the legacy one-function-per-case file (TestReplicaCalcScaleUp, ...). Facts only:
fixtures and expected values are Kubernetes'; the code is ours. Ids are Go's sub-test names (``_`` for
spaces); ``jetscale/`` cases are our own, with the arithmetic in the id.

The fake clients are rebuilt here: ``Fixture`` is Go's ``calcScenario``. Pods are ``test-pod-<i>`` with two
containers that both request ``requests[i]`` of cpu; ``levels[i][j]`` is container j's usage, and the
resource metrics client sums a pod's containers (skipping a pod whose containers do not all report) or
takes the named one. ``timeNow()`` is ``NOW``, ``time3MinsAgo()`` is ``NOW - 180``; unset start times,
transition times and sample timestamps are Go's zero time (0.0). Test flags: 2 min CPU initialization,
10 s readiness delay, tolerance 0.1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import cast

import pytest

from jetscale.hpa.replicas import (
    CalcError,
    ReplicaCalculation,
    get_external_metric_replicas,
    get_external_per_pod_metric_replicas,
    get_metric_replicas,
    get_object_metric_replicas,
    get_object_per_pod_metric_replicas,
    get_resource_replicas,
    label_selector_string,
    replicas_for_metric,
)
from jetscale.hpa.types import (
    MAX_INT32,
    MAX_INT64,
    ConditionStatus,
    Container,
    ControllerConfig,
    CrossVersionObjectReference,
    ExternalMetric,
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
    Tolerances,
)
from jetscale.units import quantity_to_milli

NOW = 1_000_000.0
HOT = NOW  # timeNow(): still inside the 2-minute CPU initialization period
COOL = NOW - 180  # time3MinsAgo()
CONFIG = ControllerConfig(cpu_initialization_period_s=120.0, initial_readiness_delay_s=10.0)
DEFAULT = Tolerances(scale_down=0.1, scale_up=0.1)
DEPLOYMENT = CrossVersionObjectReference(kind="Deployment", name="some-deployment", api_version="apps/v1")
SELECTOR = (("label", "value"),)
T, F = ConditionStatus.TRUE, ConditionStatus.FALSE
RUN, PEND, FAIL, DONE = PodPhase.RUNNING, PodPhase.PENDING, PodPhase.FAILED, PodPhase.SUCCEEDED


@dataclass(frozen=True, kw_only=True)
class Fixture:
    """Go's ``calcScenario``."""

    current_replicas: int
    requests: tuple[str, ...] = ()
    levels: tuple[tuple[int, ...], ...] = ()
    pod_names: tuple[str, ...] = ()
    container: str = ""
    readiness: tuple[ConditionStatus, ...] = ()
    start: tuple[float, ...] = ()
    phase: tuple[PodPhase, ...] = ()
    deleted: tuple[bool, ...] = ()


def pods_of(f: Fixture) -> tuple[Pod, ...]:
    pods = []
    for i in range(max(f.current_replicas, len(f.phase))):
        requests = {"cpu": quantity_to_milli(f.requests[i])} if i < len(f.requests) else {}
        pods.append(
            Pod(
                name=f"test-pod-{i}",
                phase=f.phase[i] if f.phase else RUN,
                ready=f.readiness[i] if i < len(f.readiness) else T,
                start_time_s=f.start[i] if f.start else 0.0,
                deleting=bool(f.deleted) and f.deleted[i],
                containers=tuple(Container(name=f"container{j}", requests_milli=requests) for j in (1, 2)),
            )
        )
    return tuple(pods)


def resource_metrics_of(f: Fixture) -> PodMetrics:
    values = {}
    for i, levels in enumerate(f.levels):
        name = f.pod_names[i] if i < len(f.pod_names) else f"test-pod-{i}"
        if f.container:
            index = int(f.container.removeprefix("container")) - 1
            if index < len(levels):
                values[name] = PodMetric(value_milli=levels[index])
        elif len(levels) == 2:
            values[name] = PodMetric(value_milli=sum(levels))
    return PodMetrics(values=values)


def levels(*per_pod: int) -> tuple[tuple[int, ...], ...]:
    """``makePodMetricLevels``: both containers of pod i use ``per_pod[i]``."""
    return tuple((v, v) for v in per_pod)


def cpu(n: int, value: str = "1.0") -> tuple[str, ...]:
    return (value,) * n


# ------------------------------------------------------------------------------ GetResourceReplicas


@dataclass(frozen=True, kw_only=True)
class ResourceCase:
    id: str
    fixture: Fixture
    target: int
    replicas: int = 0
    utilization: int = 0
    raw: int = 0
    error: str | None = None
    tolerances: Tolerances = DEFAULT


def _rs(name: str, **kw: object) -> ResourceCase:
    return ResourceCase(id=f"TestReplicaCalcResourceScale/{name.replace(' ', '_')}", **kw)  # type: ignore[arg-type]


FAILED_PODS = (T, T, F, F)
SEVEN = (T, T, T, T, T, F, F)
C2_FIVE = ((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250))
RESOURCE_SCALE = [
    _rs(
        "scale up",
        fixture=Fixture(current_replicas=3, requests=cpu(3), levels=levels(300, 500, 700)),
        target=30,
        replicas=5,
        utilization=50,
        raw=2 * 500,
    ),
    _rs(
        "scale up: container metric",
        fixture=Fixture(
            current_replicas=3, container="container2", requests=cpu(3), levels=((1000, 300), (1000, 500), (1000, 700))
        ),
        target=30,
        replicas=5,
        utilization=50,
        raw=500,
    ),
    _rs(
        "scale up: unready pod scales less",
        fixture=Fixture(current_replicas=3, readiness=(F, T, T), requests=cpu(3), levels=levels(300, 500, 700)),
        target=30,
        replicas=4,
        utilization=60,
        raw=2 * 600,
    ),
    _rs(
        "scale up: hot-CPU container scales less",
        fixture=Fixture(
            current_replicas=3,
            start=(HOT, COOL, COOL),
            container="container2",
            requests=cpu(3),
            levels=((0, 300), (0, 500), (0, 700)),
        ),
        target=30,
        replicas=4,
        utilization=60,
        raw=600,
    ),
    _rs(
        "scale up: hot-CPU pod scales less",
        fixture=Fixture(current_replicas=3, start=(HOT, COOL, COOL), requests=cpu(3), levels=levels(300, 500, 700)),
        target=30,
        replicas=4,
        utilization=60,
        raw=2 * 600,
    ),
    _rs(
        "no scale: unready pods ignored",
        fixture=Fixture(current_replicas=3, readiness=(T, F, F), requests=cpu(3), levels=levels(400, 500, 700)),
        target=30,
        replicas=3,
        utilization=40,
        raw=2 * 400,
    ),
    _rs(
        "no scale: hot-CPU pods ignored",
        fixture=Fixture(
            current_replicas=3,
            readiness=(T, F, F),
            start=(COOL, HOT, HOT),
            requests=cpu(3),
            levels=levels(400, 500, 700),
        ),
        target=30,
        replicas=3,
        utilization=40,
        raw=2 * 400,
    ),
    _rs(
        "scale up: failed pods ignored",
        fixture=Fixture(
            current_replicas=2,
            readiness=FAILED_PODS,
            phase=(RUN, RUN, FAIL, FAIL),
            requests=cpu(4),
            levels=levels(500, 700),
        ),
        target=30,
        replicas=4,
        utilization=60,
        raw=2 * 600,
    ),
    _rs(
        "scale up: failed pods ignored with missing container metric",
        fixture=Fixture(
            current_replicas=2,
            readiness=FAILED_PODS,
            phase=(RUN, RUN, FAIL, FAIL),
            container="container2",
            requests=cpu(4),
            levels=((1000, 500), (9000, 700), (1000,), (9000,)),
        ),
        target=30,
        replicas=4,
        utilization=60,
        raw=600,
    ),
    _rs(
        "scale up: container metrics with failed pods ignored",
        fixture=Fixture(
            current_replicas=2,
            readiness=FAILED_PODS,
            phase=(RUN, RUN, FAIL, FAIL),
            container="container2",
            requests=cpu(4),
            levels=((1000, 500), (9000, 700)),
        ),
        target=30,
        replicas=4,
        utilization=60,
        raw=600,
    ),
    _rs(
        "scale up: succeeded pods ignored",
        fixture=Fixture(
            current_replicas=2,
            readiness=FAILED_PODS,
            phase=(RUN, RUN, DONE, DONE),
            requests=cpu(4),
            levels=levels(500, 700),
        ),
        target=30,
        replicas=4,
        utilization=60,
        raw=2 * 600,
    ),
    _rs(
        "scale up: container metric with succeeded pods ignored",
        fixture=Fixture(
            current_replicas=2,
            readiness=FAILED_PODS,
            phase=(RUN, RUN, DONE, DONE),
            container="container2",
            requests=cpu(4),
            levels=((1000, 500), (9000, 700)),
        ),
        target=30,
        replicas=4,
        utilization=60,
        raw=600,
    ),
    _rs(
        "scale up: pods being deleted are ignored",
        fixture=Fixture(
            current_replicas=2,
            readiness=FAILED_PODS,
            phase=(RUN,) * 4,
            deleted=(False, False, True, True),
            requests=cpu(4),
            levels=levels(500, 700),
        ),
        target=30,
        replicas=4,
        utilization=60,
        raw=2 * 600,
    ),
    _rs(
        "scale up: container metrics with pods being deleted ignored",
        fixture=Fixture(
            current_replicas=2,
            readiness=FAILED_PODS,
            phase=(RUN,) * 4,
            deleted=(False, False, True, True),
            container="container1",
            requests=cpu(4),
            levels=levels(500, 700),
        ),
        target=30,
        replicas=4,
        utilization=60,
        raw=600,
    ),
    _rs(
        "scale down",
        fixture=Fixture(current_replicas=5, requests=cpu(5), levels=levels(100, 300, 500, 250, 250)),
        target=50,
        replicas=3,
        utilization=28,
        raw=2 * 280,
    ),
    _rs(
        "scale down: container metric",
        fixture=Fixture(current_replicas=5, container="container2", requests=cpu(5), levels=C2_FIVE),
        target=50,
        replicas=3,
        utilization=28,
        raw=280,
    ),
    _rs(
        "scale down: exclude unready pods",
        fixture=Fixture(
            current_replicas=5, readiness=(T, T, T, F, F), requests=cpu(5), levels=levels(100, 300, 500, 250, 250)
        ),
        target=50,
        replicas=2,
        utilization=30,
        raw=2 * 300,
    ),
    _rs(
        "scale down: container metric excludes unready pods",
        fixture=Fixture(
            current_replicas=5, readiness=(T, T, T, F, F), container="container2", requests=cpu(5), levels=C2_FIVE
        ),
        target=50,
        replicas=2,
        utilization=30,
        raw=300,
    ),
    _rs(
        "scale down: exclude unscheduled pods",
        fixture=Fixture(
            current_replicas=5,
            readiness=(T, F, F, F, F),
            phase=(RUN, PEND, PEND, PEND, PEND),
            requests=cpu(5),
            levels=levels(100),
        ),
        target=50,
        replicas=1,
        utilization=10,
        raw=2 * 100,
    ),
    _rs(
        "scale down: container metric excludes unscheduled pods",
        fixture=Fixture(
            current_replicas=5,
            readiness=(T, F, F, F, F),
            phase=(RUN, PEND, PEND, PEND, PEND),
            container="container2",
            requests=cpu(5),
            levels=C2_FIVE,
        ),
        target=50,
        replicas=1,
        utilization=10,
        raw=100,
    ),
    _rs(
        "scale down: ignore hot-CPU pods",
        fixture=Fixture(
            current_replicas=5,
            start=(COOL, COOL, COOL, HOT, HOT),
            requests=cpu(5),
            levels=levels(100, 300, 500, 250, 250),
        ),
        target=50,
        replicas=2,
        utilization=30,
        raw=2 * 300,
    ),
    _rs(
        "scale down: container metric ignores hot-CPU pods",
        fixture=Fixture(
            current_replicas=5,
            start=(COOL, COOL, COOL, HOT, HOT),
            container="container2",
            requests=cpu(5),
            levels=((1000, 100), (1000, 300), (1000, 500), (1000, 1000), (1000, 1000)),
        ),
        target=50,
        replicas=2,
        utilization=30,
        raw=300,
    ),
    _rs(
        "scale down: failed pods ignored",
        fixture=Fixture(
            current_replicas=5,
            readiness=SEVEN,
            phase=(RUN,) * 5 + (FAIL, FAIL),
            requests=cpu(7),
            levels=levels(100, 300, 500, 250, 250),
        ),
        target=50,
        replicas=3,
        utilization=28,
        raw=2 * 280,
    ),
    _rs(
        "scale down: container metric with failed pods ignored",
        fixture=Fixture(
            current_replicas=5,
            readiness=SEVEN,
            phase=(RUN,) * 5 + (FAIL, FAIL),
            container="container2",
            requests=cpu(7),
            levels=C2_FIVE,
        ),
        target=50,
        replicas=3,
        utilization=28,
        raw=280,
    ),
    _rs(
        "scale down: succeeded pods ignored",
        fixture=Fixture(
            current_replicas=5,
            readiness=SEVEN,
            phase=(RUN,) * 5 + (DONE, DONE),
            requests=cpu(7),
            levels=levels(100, 300, 500, 250, 250),
        ),
        target=50,
        replicas=3,
        utilization=28,
        raw=2 * 280,
    ),
    _rs(
        "scale down: container metric with succeeded pods ignored",
        fixture=Fixture(
            current_replicas=5,
            readiness=SEVEN,
            phase=(RUN,) * 5 + (DONE, DONE),
            container="container2",
            requests=cpu(7),
            levels=C2_FIVE,
        ),
        target=50,
        replicas=3,
        utilization=28,
        raw=280,
    ),
    _rs(
        "scale down: pods being deleted are ignored",
        fixture=Fixture(
            current_replicas=5,
            readiness=SEVEN,
            phase=(RUN,) * 7,
            deleted=(False,) * 5 + (True, True),
            requests=cpu(7),
            levels=levels(100, 300, 500, 250, 250),
        ),
        target=50,
        replicas=3,
        utilization=28,
        raw=2 * 280,
    ),
    _rs(
        "scale down: still-running pods being deleted are ignored",
        fixture=Fixture(
            current_replicas=5,
            readiness=SEVEN,
            phase=(RUN,) * 7,
            deleted=(False,) * 5 + (True, True),
            container="container2",
            requests=cpu(7),
            levels=C2_FIVE,
        ),
        target=50,
        replicas=3,
        utilization=28,
        raw=280,
    ),
]

MIXED = ("0.9", "1.0", "1.1")


def _rt(name: str, **kw: object) -> ResourceCase:
    return ResourceCase(id=f"TestReplicaCalcResourceTolerance/{name.replace(' ', '_')}", **kw)  # type: ignore[arg-type]


RESOURCE_TOLERANCE = [
    _rt(
        "within default tolerance",
        fixture=Fixture(current_replicas=3, requests=MIXED, levels=levels(1010, 1030, 1020)),
        target=100,
        replicas=3,
        utilization=102,
        raw=2 * 1020,
    ),
    _rt(
        "outside 0% tolerance",
        tolerances=Tolerances(scale_down=0.0, scale_up=0.0),
        fixture=Fixture(current_replicas=3, requests=MIXED, levels=levels(909, 1010, 1111)),
        target=100,
        replicas=4,
        utilization=101,
        raw=2 * 1010,
    ),
    _rt(
        "within 200% scale-up tolerance",
        tolerances=Tolerances(scale_down=0.1, scale_up=2.0),
        fixture=Fixture(current_replicas=3, requests=MIXED, levels=levels(1890, 1910, 1900)),
        target=100,
        replicas=3,
        utilization=190,
        raw=2 * 1900,
    ),
    _rt(
        "outside 8% scale-up tolerance (superfluous scale-down tolerance)",
        tolerances=Tolerances(scale_down=2.0, scale_up=0.08),
        fixture=Fixture(current_replicas=3, requests=MIXED, levels=levels(1100, 1080, 1090)),
        target=100,
        replicas=4,
        utilization=109,
        raw=2 * 1090,
    ),
    _rt(
        "within 36% scale-down tolerance",
        tolerances=Tolerances(scale_down=0.36, scale_up=0.1),
        fixture=Fixture(current_replicas=3, requests=MIXED, levels=levels(660, 640, 650)),
        target=100,
        replicas=3,
        utilization=65,
        raw=2 * 650,
    ),
    _rt(
        "outside 34% scale-down tolerance",
        tolerances=Tolerances(scale_down=0.34, scale_up=0.1),
        fixture=Fixture(current_replicas=3, requests=MIXED, levels=levels(660, 640, 650)),
        target=100,
        replicas=2,
        utilization=65,
        raw=2 * 650,
    ),
]


def _rm(name: str, **kw: object) -> ResourceCase:
    return ResourceCase(id=f"TestReplicaCalcResourceMissingMetrics/{name.replace(' ', '_')}", **kw)  # type: ignore[arg-type]


RESOURCE_MISSING = [
    _rm(
        "superfluous metrics counted",
        fixture=Fixture(current_replicas=4, requests=cpu(4), levels=levels(4000, 9500, 3000, 7000, 3200, 2000)),
        target=100,
        replicas=24,
        utilization=587,
        raw=2 * 5875,
    ),
    _rm(
        "some pods missing metrics scales down",
        fixture=Fixture(current_replicas=4, requests=cpu(4), levels=levels(400, 95)),
        target=100,
        replicas=3,
        utilization=24,
        raw=495,
    ),
    _rm(
        "no change: metric equal to target",
        fixture=Fixture(current_replicas=2, requests=cpu(2), levels=levels(1000)),
        target=100,
        replicas=2,
        utilization=100,
        raw=2 * 1000,
    ),
    _rm(
        "no change: metric above target",
        fixture=Fixture(current_replicas=2, requests=cpu(2), levels=levels(1900)),
        target=100,
        replicas=2,
        utilization=190,
        raw=2 * 1900,
    ),
    _rm(
        "no change: metric below target",
        fixture=Fixture(current_replicas=2, requests=cpu(2), levels=levels(600)),
        target=100,
        replicas=2,
        utilization=60,
        raw=2 * 600,
    ),
    _rm(
        "no change: unready pod metric missing",
        fixture=Fixture(current_replicas=3, readiness=(F, T, T), requests=cpu(3), levels=levels(100, 450)),
        target=50,
        replicas=3,
        utilization=45,
        raw=2 * 450,
    ),
    _rm(
        "no change: hot-CPU pod metric missing",
        fixture=Fixture(current_replicas=3, start=(HOT, COOL, COOL), requests=cpu(3), levels=levels(100, 450)),
        target=50,
        replicas=3,
        utilization=45,
        raw=2 * 450,
    ),
    _rm(
        "scale up: unready pod metric missing",
        fixture=Fixture(current_replicas=3, readiness=(F, T, T), requests=cpu(3), levels=levels(100, 2000)),
        target=50,
        replicas=4,
        utilization=200,
        raw=2 * 2000,
    ),
    _rm(
        "scale up: hot-CPU pod metric missing",
        fixture=Fixture(
            current_replicas=3, readiness=(F, T, T), start=(HOT, COOL, COOL), requests=cpu(3), levels=levels(100, 2000)
        ),
        target=50,
        replicas=4,
        utilization=200,
        raw=2 * 2000,
    ),
    _rm(
        "scale down: unready pod metric missing",
        fixture=Fixture(current_replicas=4, readiness=(F, T, T, T), requests=cpu(4), levels=levels(100, 100, 100)),
        target=50,
        replicas=3,
        utilization=10,
        raw=2 * 100,
    ),
    _rm(
        "scale down: target over 100",
        fixture=Fixture(
            current_replicas=4,
            readiness=(F, T, T, T),
            requests=("1.0", "1.0", "2.0", "2.0"),
            levels=levels(200, 100, 100),
        ),
        target=300,
        replicas=2,
        utilization=6,
        raw=2 * 100,
    ),
    _rm(
        "rolling update with maxSurge: extra pod missing metric",
        fixture=Fixture(current_replicas=2, phase=(RUN, RUN, RUN), requests=cpu(3), levels=levels(100, 100)),
        target=50,
        replicas=2,
        utilization=10,
        raw=2 * 100,
    ),
    _rm(
        "disjoint pod and metric names",
        fixture=Fixture(current_replicas=1, requests=cpu(1), levels=levels(100), pod_names=("an-older-pod-name",)),
        target=100,
        error="no metrics returned matched known pods",
    ),
    _rm(
        "no metrics returned from metrics API",
        fixture=Fixture(current_replicas=4, requests=cpu(3), levels=()),
        target=100,
        error="unable to get metrics for resource cpu: no metrics returned from resource metrics API",
    ),
    _rm(
        "missing CPU request on container",
        fixture=Fixture(current_replicas=1, levels=levels(200)),
        target=100,
        error="missing request for",
    ),
]


def _computed_tolerance_cases() -> list[ResourceCase]:
    """TestReplicaCalcComputedToleranceAlgImplementation, with the Go test's own arithmetic: 10 pods using
    150m each of a 300m request, a target just past (then just inside) the 10% tolerance."""
    start_pods, used = 10, 10 * 150
    requested = 2 * used
    requested_to_used = float(requested // used)
    per_pod = requested // start_pods
    offsets = (100, -100, 10, -10, 2, -2, 1, -1, 0, 0)
    fixture = Fixture(
        current_replicas=start_pods,
        levels=levels(*(used // 10,) * 10),
        requests=tuple(f"{per_pod + o}m" for o in offsets),
    )
    target = abs(1 / (requested_to_used * (1 - 0.1))) + 0.01
    final_pods = math.ceil(used / (requested * target) * start_pods)
    near = abs(1 / (requested_to_used * (1 - 0.1))) + 0.004
    name = "TestReplicaCalcComputedToleranceAlgImplementation"

    def case(run: str, percent: int, replicas: int) -> ResourceCase:
        return ResourceCase(
            id=f"{name} ({run})",
            fixture=fixture,
            target=percent,
            replicas=replicas,
            utilization=used * 100 // requested,
            raw=2 * used // 10,
        )

    return [
        case("1 of 2: target just past the tolerance scales down", int(target * 100), final_pods),
        case("2 of 2: target just inside the tolerance keeps 10", int(near * 100), start_pods),
    ]


RESOURCE_OWN = [
    ResourceCase(
        id="jetscale/utilization truncates: 5996m of 6000m = 99.93% -> 99%, ratio 0.99 within 10% -> keep 3",
        fixture=Fixture(current_replicas=3, requests=cpu(3), levels=levels(1000, 999, 999)),
        target=100,
        replicas=3,
        utilization=99,
        raw=5996 // 3,
    ),
    ResourceCase(
        id="jetscale/90% scale-down tolerance: 20% / 100% = 0.2 >= 1-0.9 -> keep 3",
        tolerances=Tolerances(scale_down=0.9, scale_up=0.1),
        fixture=Fixture(current_replicas=3, requests=cpu(3), levels=levels(200, 200, 200)),
        target=100,
        replicas=3,
        utilization=20,
        raw=400,
    ),
    ResourceCase(
        id="jetscale/90% scale-down tolerance: 5% / 100% = 0.05 < 0.1 -> ceil(0.05 x 3) = 1",
        tolerances=Tolerances(scale_down=0.9, scale_up=0.1),
        fixture=Fixture(current_replicas=3, requests=cpu(3), levels=levels(50, 50, 50)),
        target=100,
        replicas=1,
        utilization=5,
        raw=100,
    ),
    ResourceCase(
        id="jetscale/utilization past int32: 1e17m used of a 2m request = 5e18% is an error",
        fixture=Fixture(current_replicas=1, requests=("1m",), levels=levels(5 * 10**16)),
        target=100,
        error="resource utilization 5000000000000000000 is outside the int32 range",
    ),
    ResourceCase(
        id="jetscale/every pod unready: did not receive metrics",
        fixture=Fixture(current_replicas=2, readiness=(F, F), requests=cpu(2), levels=levels(500, 500)),
        target=50,
        error="did not receive metrics for targeted pods (pods might be unready)",
    ),
    ResourceCase(
        id="jetscale/no pods listed",
        fixture=Fixture(current_replicas=0, levels=levels(500)),
        target=50,
        error="no pods returned by selector while calculating replica count",
    ),
]

RESOURCE_CASES = RESOURCE_SCALE + RESOURCE_TOLERANCE + RESOURCE_MISSING + _computed_tolerance_cases() + RESOURCE_OWN


@pytest.mark.parametrize("case", RESOURCE_CASES, ids=lambda c: c.id)
def test_get_resource_replicas(case: ResourceCase) -> None:
    f = case.fixture
    got = get_resource_replicas(
        current_replicas=f.current_replicas,
        target_utilization=case.target,
        resource="cpu",
        tolerances=case.tolerances,
        pods=pods_of(f),
        metrics=resource_metrics_of(f),
        config=CONFIG,
        now_s=NOW,
        container=f.container,
    )
    if case.error is not None:
        assert isinstance(got, CalcError)
        assert case.error in got.message
        return
    assert isinstance(got, ReplicaCalculation)
    assert (got.replicas, got.utilization, got.usage_milli, got.timestamp_s) == (
        case.replicas,
        case.utilization,
        case.raw,
        0.0,
    )


# ------------------------------------------------------------------------ Pods, Object, External


@dataclass(frozen=True, kw_only=True)
class MetricCase:
    """Go's ``metricCase`` / ``perPodMetricCase``: ``levels`` are the client's values (one per pod for a
    Pods metric, one for an Object metric, one per series for an External metric)."""

    id: str
    fixture: Fixture
    levels: tuple[int, ...]
    target: int
    replicas: int = 0
    usage: int = 0
    error: str | None = None
    tolerances: Tolerances = DEFAULT


def _cases(test: str, *rows: tuple[str, dict[str, object]]) -> list[MetricCase]:
    go = test != "jetscale"  # Go writes a sub-test's spaces as "_"
    return [
        MetricCase(id=f"{test}/{name.replace(' ', '_') if go else name}", **kw)  # type: ignore[arg-type]
        for name, kw in rows
    ]


UP_1PCT = Tolerances(scale_down=0.1, scale_up=0.01)

POD_METRIC = _cases(
    "TestReplicaCalcPodMetric",
    (
        "scale up",
        dict(fixture=Fixture(current_replicas=3), levels=(20000, 10000, 30000), target=15000, replicas=4, usage=20000),
    ),
    (
        "scale up: unready hot-CPU pod scales less",
        dict(
            fixture=Fixture(current_replicas=3, readiness=(T, T, F), start=(COOL, COOL, HOT)),
            levels=(50000, 10000, 30000),
            target=15000,
            replicas=6,
            usage=30000,
        ),
    ),
    (
        "scale up: unready hot-CPU pods avoid scale-down",
        dict(
            fixture=Fixture(current_replicas=3, readiness=(F, T, F), start=(HOT, COOL, HOT)),
            levels=(50000, 15000, 30000),
            target=15000,
            replicas=7,
            usage=31666,
        ),
    ),
    (
        "scale down",
        dict(fixture=Fixture(current_replicas=5), levels=(12000,) * 5, target=20000, replicas=3, usage=12000),
    ),
    (
        "within default tolerance",
        dict(fixture=Fixture(current_replicas=3), levels=(20000, 21000, 21000), target=20000, replicas=3, usage=20666),
    ),
    (
        "outside configurable 1% tolerance",
        dict(
            tolerances=UP_1PCT,
            fixture=Fixture(current_replicas=3),
            levels=(20000, 21000, 21000),
            target=20000,
            replicas=4,
            usage=20666,
        ),
    ),
    (
        "no change: missing metrics",
        dict(fixture=Fixture(current_replicas=5), levels=(20000, 19000, 21000), target=20000, replicas=5, usage=20000),
    ),
    (
        "rolling update with maxSurge: extra pod missing metric",
        dict(
            fixture=Fixture(current_replicas=2, phase=(RUN, RUN, RUN)),
            levels=(10000, 10000),
            target=17000,
            replicas=2,
            usage=10000,
        ),
    ),
)

# jetscale: JetStream's per-replica gauges as Pods metrics (AverageValue), worked by hand.
JETSTREAM = _cases(
    "jetscale",
    (
        "jetstream_prefill_backlog_size 10,4,6: avg 20000m/3 = 6666m / target 5 = 1.333 -> ceil(1.333 x 3) = 4",
        dict(fixture=Fixture(current_replicas=3), levels=(10000, 4000, 6000), target=5000, replicas=4, usage=6666),
    ),
    (
        "jetstream_prefill_backlog_size 0,0,0,1: avg 250m / target 5 = 0.05 -> ceil(0.05 x 4) = 1",
        dict(fixture=Fixture(current_replicas=4), levels=(0, 0, 0, 1000), target=5000, replicas=1, usage=250),
    ),
    (
        "jetstream_prefill_backlog_size 5,5,6: avg 5333m / target 5 = 1.067 within 10% -> keep 3",
        dict(fixture=Fixture(current_replicas=3), levels=(5000, 5000, 6000), target=5000, replicas=3, usage=5333),
    ),
    (
        "jetstream_prefill_backlog_size 12,8 + a new pod without a sample: 10/5 = 2 up; "
        "(12+8+0)/3 = 6666m / 5 = 1.333 -> ceil(1.333 x 3) = 4",
        dict(fixture=Fixture(current_replicas=3), levels=(12000, 8000), target=5000, replicas=4, usage=10000),
    ),
    (
        "jetstream_prefill_backlog_size 1,1 + a pod without a sample: 1/5 = 0.2 down; "
        "(1+1+5)/3 = 2333m / 5 = 0.467 -> ceil(0.467 x 3) = 2",
        dict(fixture=Fixture(current_replicas=3), levels=(1000, 1000), target=5000, replicas=2, usage=1000),
    ),
    (
        "jetstream_prefill_backlog_size 9 (terminating),3,3: (3+3)/2 = 3 / 5 = 0.6 -> ceil(0.6 x 2) = 2",
        dict(
            fixture=Fixture(current_replicas=3, deleted=(True, False, False)),
            levels=(9000, 3000, 3000),
            target=5000,
            replicas=2,
            usage=3000,
        ),
    ),
    (
        "jetstream_slots_used_percentage 0.9,0.8,1.0: avg 900m / target 600m = 1.5 -> ceil(1.5 x 3) = 5",
        dict(fixture=Fixture(current_replicas=3), levels=(900, 800, 1000), target=600, replicas=5, usage=900),
    ),
    (
        "90% scale-down tolerance: backlog 1,1,1,1 avg 1 / 5 = 0.2 >= 1-0.9 -> keep 4",
        dict(
            tolerances=Tolerances(scale_down=0.9, scale_up=0.1),
            fixture=Fixture(current_replicas=4),
            levels=(1000,) * 4,
            target=5000,
            replicas=4,
            usage=1000,
        ),
    ),
    (
        "sums past int64 stay exact: avg of 2 x MaxInt64 = MaxInt64 / MaxInt64 = 1 -> keep 2",
        dict(
            fixture=Fixture(current_replicas=2),
            levels=(MAX_INT64, MAX_INT64),
            target=MAX_INT64,
            replicas=2,
            usage=MAX_INT64,
        ),
    ),
)


@pytest.mark.parametrize("case", POD_METRIC + JETSTREAM, ids=lambda c: c.id)
def test_get_metric_replicas(case: MetricCase) -> None:
    f = case.fixture
    pods = pods_of(f)
    samples = PodMetrics(values={f"test-pod-{i}": PodMetric(value_milli=v) for i, v in enumerate(case.levels)})
    got = get_metric_replicas(
        current_replicas=f.current_replicas,
        target_usage_milli=case.target,
        metric_name="qps",
        tolerances=case.tolerances,
        pods=pods,
        metrics=samples,
        config=CONFIG,
        now_s=NOW,
    )
    assert isinstance(got, ReplicaCalculation)
    assert (got.replicas, got.usage_milli, got.timestamp_s) == (case.replicas, case.usage, 0.0)


OBJECT_METRIC = _cases(
    "TestReplicaCalcObjectMetric",
    ("scale up", dict(fixture=Fixture(current_replicas=3), levels=(20000,), target=15000, replicas=4, usage=20000)),
    (
        "scale up: very large metric saturates replicas to MaxInt32",
        dict(fixture=Fixture(current_replicas=3), levels=(MAX_INT64,), target=1, replicas=MAX_INT32, usage=MAX_INT64),
    ),
    (
        "scale up: ignores unready pods",
        dict(
            fixture=Fixture(current_replicas=3, readiness=(F, T, F)),
            levels=(50000,),
            target=10000,
            replicas=5,
            usage=50000,
        ),
    ),
    ("scale down", dict(fixture=Fixture(current_replicas=5), levels=(12000,), target=20000, replicas=3, usage=12000)),
    (
        "within default tolerance",
        dict(fixture=Fixture(current_replicas=3), levels=(20666,), target=20000, replicas=3, usage=20666),
    ),
    (
        "outside configurable 1% tolerance",
        dict(
            tolerances=UP_1PCT,
            fixture=Fixture(current_replicas=3),
            levels=(20666,),
            target=20000,
            replicas=4,
            usage=20666,
        ),
    ),
) + _cases(
    "jetscale",
    (
        "object from zero replicas: ceil(8600/4400 = 1.955) = 2, no pods needed",
        dict(fixture=Fixture(current_replicas=0), levels=(8600,), target=4400, replicas=2, usage=8600),
    ),
    (
        "object from zero replicas, metric 0: ceil(0) = 0",
        dict(fixture=Fixture(current_replicas=0), levels=(0,), target=4400, replicas=0, usage=0),
    ),
    (
        "object outside tolerance with no pods listed: unable to calculate ready pods",
        dict(
            fixture=Fixture(current_replicas=0),
            levels=(50000,),
            target=10000,
            error="unable to calculate ready pods: no pods returned by selector while calculating replica count",
        ),
    ),
)


@pytest.mark.parametrize("case", OBJECT_METRIC, ids=lambda c: c.id)
def test_get_object_metric_replicas(case: MetricCase) -> None:
    f = case.fixture
    # The last jetscale case lists no pods but calls with 3 replicas, so the ready count is needed.
    current = 3 if case.error else f.current_replicas
    got = get_object_metric_replicas(
        current_replicas=current,
        target_usage_milli=case.target,
        metric_name="qps",
        object_ref=DEPLOYMENT,
        tolerances=case.tolerances,
        pods=pods_of(f),
        metric=ObjectMetric(value_milli=case.levels[0], timestamp_s=42.0),
    )
    if case.error is not None:
        assert got == CalcError(message=case.error)
        return
    assert isinstance(got, ReplicaCalculation)
    # GetObjectMetricReplicas drops the object's timestamp and returns the zero time.
    assert (got.replicas, got.usage_milli, got.timestamp_s) == (case.replicas, case.usage, 0.0)


OBJECT_PER_POD = _cases(
    "TestReplicaCalcObjectPerPodMetric",
    (
        "usage overflow with huge target leaves replicas unchanged",
        dict(fixture=Fixture(current_replicas=1), levels=(MAX_INT64,), target=MAX_INT64, replicas=1, usage=MAX_INT64),
    ),
    ("scale up", dict(fixture=Fixture(current_replicas=3), levels=(20000,), target=5000, replicas=4, usage=6667)),
    ("scale down", dict(fixture=Fixture(current_replicas=5), levels=(6000,), target=2000, replicas=3, usage=1200)),
    (
        "within default tolerance",
        dict(fixture=Fixture(current_replicas=4), levels=(20166,), target=5000, replicas=4, usage=5042),
    ),
    (
        "outside configurable 1% tolerance",
        dict(
            tolerances=UP_1PCT,
            fixture=Fixture(current_replicas=4),
            levels=(20208,),
            target=5000,
            replicas=5,
            usage=5052,
        ),
    ),
    (
        "statusReplicas zero does not overflow usage",
        dict(fixture=Fixture(current_replicas=0), levels=(20000,), target=5000, replicas=4, usage=0),
    ),
    (
        "statusReplicas zero and metric zero does not underflow",
        dict(fixture=Fixture(current_replicas=0), levels=(0,), target=5000, replicas=0, usage=0),
    ),
) + _cases(
    "jetscale",
    (
        "object per pod past int32: ceil(MaxInt64 / 1) saturates to MaxInt32",
        dict(fixture=Fixture(current_replicas=1), levels=(MAX_INT64,), target=1, replicas=MAX_INT32, usage=MAX_INT64),
    ),
)


@pytest.mark.parametrize("case", OBJECT_PER_POD, ids=lambda c: c.id)
def test_get_object_per_pod_metric_replicas(case: MetricCase) -> None:
    got = get_object_per_pod_metric_replicas(
        status_replicas=case.fixture.current_replicas,
        target_average_usage_milli=case.target,
        metric_name="qps",
        object_ref=DEPLOYMENT,
        tolerances=case.tolerances,
        metric=ObjectMetric(value_milli=case.levels[0], timestamp_s=42.0),
    )
    assert isinstance(got, ReplicaCalculation)
    assert (got.replicas, got.usage_milli, got.timestamp_s) == (case.replicas, case.usage, 42.0)


EXTERNAL_METRIC = _cases(
    "TestReplicaCalcExternalMetric",
    (
        "scale down: ignores unready pods (would otherwise scale up)",
        dict(
            fixture=Fixture(current_replicas=3, readiness=(F, T, F)),
            levels=(8600,),
            target=4400,
            replicas=2,
            usage=8600,
        ),
    ),
    ("scale down", dict(fixture=Fixture(current_replicas=5), levels=(8600,), target=14334, replicas=3, usage=8600)),
    (
        "within default tolerance",
        dict(fixture=Fixture(current_replicas=3), levels=(8600,), target=8888, replicas=3, usage=8600),
    ),
    (
        "outside configurable 1% tolerance",
        dict(
            tolerances=UP_1PCT, fixture=Fixture(current_replicas=3), levels=(8900,), target=8800, replicas=4, usage=8900
        ),
    ),
    (
        "usage overflow caps at MaxInt64",
        dict(
            fixture=Fixture(current_replicas=3),
            levels=(MAX_INT64 // 2 + 1, MAX_INT64 // 2 + 1),
            target=MAX_INT64,
            replicas=3,
            usage=MAX_INT64,
        ),
    ),
) + _cases(
    "jetscale",
    (
        "external sum of 3 series 1000+2000+3000 = 6000m / target 2000m = 3 -> ceil(3 x 3 ready) = 9",
        dict(fixture=Fixture(current_replicas=3), levels=(1000, 2000, 3000), target=2000, replicas=9, usage=6000),
    ),
    (
        "external from zero replicas: ceil(8600/4400) = 2",
        dict(fixture=Fixture(current_replicas=0), levels=(8600,), target=4400, replicas=2, usage=8600),
    ),
    (
        "external negative sums wrap like int64: MinInt64 + -1 = MaxInt64 -> saturated replicas",
        dict(
            fixture=Fixture(current_replicas=3), levels=(-(2**63), -1), target=1000, replicas=MAX_INT32, usage=MAX_INT64
        ),
    ),
    (
        "external with no series: no metrics returned",
        dict(
            fixture=Fixture(current_replicas=3),
            levels=(),
            target=1000,
            error="unable to get external metric qps/&LabelSelector{MatchLabels:map[string]string{label: value,},"
            "MatchExpressions:[]LabelSelectorRequirement{},}: no metrics returned from external metrics API",
        ),
    ),
)


@pytest.mark.parametrize("case", EXTERNAL_METRIC, ids=lambda c: c.id)
def test_get_external_metric_replicas(case: MetricCase) -> None:
    f = case.fixture
    got = get_external_metric_replicas(
        current_replicas=f.current_replicas,
        target_usage_milli=case.target,
        metric_name="qps",
        selector=SELECTOR,
        tolerances=case.tolerances,
        pods=pods_of(f),
        metric=ExternalMetric(values_milli=case.levels, timestamp_s=42.0),
    )
    if case.error is not None:
        assert got == CalcError(message=case.error)
        return
    assert isinstance(got, ReplicaCalculation)
    assert (got.replicas, got.usage_milli, got.timestamp_s) == (case.replicas, case.usage, 0.0)


EXTERNAL_PER_POD = _cases(
    "TestReplicaCalcExternalPerPodMetric",
    (
        "replica count overflow saturates to MaxInt32",
        dict(fixture=Fixture(current_replicas=1), levels=(MAX_INT64,), target=1, replicas=MAX_INT32, usage=MAX_INT64),
    ),
    (
        "usage overflow with huge target leaves replicas unchanged",
        dict(fixture=Fixture(current_replicas=1), levels=(MAX_INT64,), target=MAX_INT64, replicas=1, usage=MAX_INT64),
    ),
    (
        "statusReplicas zero does not overflow usage",
        dict(fixture=Fixture(current_replicas=0), levels=(20000,), target=5000, replicas=4, usage=0),
    ),
    (
        "statusReplicas zero and metric zero does not underflow",
        dict(fixture=Fixture(current_replicas=0), levels=(0,), target=5000, replicas=0, usage=0),
    ),
    ("scale up", dict(fixture=Fixture(current_replicas=3), levels=(8600,), target=2150, replicas=4, usage=2867)),
    ("scale down", dict(fixture=Fixture(current_replicas=5), levels=(8600,), target=2867, replicas=3, usage=1720)),
    (
        "within default tolerance",
        dict(fixture=Fixture(current_replicas=3), levels=(8600,), target=2900, replicas=3, usage=2867),
    ),
    (
        "outside configurable 1% tolerance",
        dict(
            tolerances=UP_1PCT, fixture=Fixture(current_replicas=3), levels=(8600,), target=2800, replicas=4, usage=2867
        ),
    ),
) + _cases(
    "jetscale",
    (
        "external per pod, MaxInt64 + 1 wraps negative -> MaxInt64; /(MaxInt64 x 2) = 0.5 -> ceil(1) = 1",
        dict(fixture=Fixture(current_replicas=2), levels=(MAX_INT64, 1), target=MAX_INT64, replicas=1, usage=MAX_INT64),
    ),
    (
        "external per pod, a negative sum reads as overflow -> MaxInt64; /(MaxInt64 x 2) = 0.5 -> ceil(1) = 1",
        dict(fixture=Fixture(current_replicas=2), levels=(-5,), target=MAX_INT64, replicas=1, usage=MAX_INT64),
    ),
    (
        "GKE memory_used 3 series x 6Gi / target 8Gi per pod: 18Gi/(8Gi x 3) = 0.75 -> ceil(18Gi/8Gi = 2.25) = 3",
        dict(
            fixture=Fixture(current_replicas=3),
            levels=(6 * 2**30 * 1000,) * 3,
            target=8 * 2**30 * 1000,
            replicas=3,
            usage=18 * 2**30 * 1000 // 3,
        ),
    ),
)


@pytest.mark.parametrize("case", EXTERNAL_PER_POD, ids=lambda c: c.id)
def test_get_external_per_pod_metric_replicas(case: MetricCase) -> None:
    got = get_external_per_pod_metric_replicas(
        status_replicas=case.fixture.current_replicas,
        target_usage_per_pod_milli=case.target,
        metric_name="qps",
        selector=SELECTOR,
        tolerances=case.tolerances,
        metric=ExternalMetric(values_milli=case.levels, timestamp_s=42.0),
    )
    assert isinstance(got, ReplicaCalculation)
    assert (got.replicas, got.usage_milli, got.timestamp_s) == (case.replicas, case.usage, 42.0)


# ------------------------------------------------------------------ replicas_for_metric (horizontal.go)

BACKLOG = "jetstream_prefill_backlog_size"
EXTERNAL_NAME = (
    "external metric qps(&LabelSelector{MatchLabels:map[string]string{label: value,},"
    "MatchExpressions:[]LabelSelectorRequirement{},})"
)
SCALE_UP = Fixture(current_replicas=3, requests=cpu(3), levels=levels(300, 500, 700))
SCALE_UP_C2 = Fixture(
    current_replicas=3, container="container2", requests=cpu(3), levels=((1000, 300), (1000, 500), (1000, 700))
)
THREE = pods_of(Fixture(current_replicas=3))


def _spec(kind: MetricSourceType, target: MetricTarget, name: str = "qps", **kw: object) -> MetricSpec:
    return MetricSpec(type=kind, name=name, target=target, **kw)  # type: ignore[arg-type]


UTIL_30 = MetricTarget(type=MetricTargetType.UTILIZATION, average_utilization=30)
VALUE = MetricTarget(type=MetricTargetType.VALUE, value_milli=15000)
AVERAGE = MetricTarget(type=MetricTargetType.AVERAGE_VALUE, average_value_milli=5000)


@dataclass(frozen=True, kw_only=True)
class EntryCase:
    id: str
    metric: MetricSpec
    reading: MetricReading
    pods: tuple[Pod, ...] = THREE
    spec_replicas: int = 3
    status_replicas: int = 3
    expected: MetricProposal | MetricFailure


def _proposal(
    replicas: int, name: str, ratio: float, usage: int, utilization: int | None = None, timestamp: float = 0.0
) -> MetricProposal:
    """The expected proposal; its explanation is checked apart."""
    return MetricProposal(
        replicas=replicas,
        metric_name=name,
        usage_ratio=ratio,
        usage_milli=usage,
        utilization=utilization,
        timestamp_s=timestamp,
    )


PROPOSALS = [
    EntryCase(
        id="Resource Utilization: 50% / 30% = 1.667 -> 5, named as the rescale reason does",
        metric=_spec(MetricSourceType.RESOURCE, UTIL_30, name="cpu"),
        reading=resource_metrics_of(SCALE_UP),
        pods=pods_of(SCALE_UP),
        expected=_proposal(5, "cpu resource utilization (percentage of request)", 50 / 30, 1000, 50),
    ),
    EntryCase(
        id="ContainerResource Utilization of container2: 50% / 30% -> 5",
        metric=_spec(MetricSourceType.CONTAINER_RESOURCE, UTIL_30, name="cpu", container="container2"),
        reading=resource_metrics_of(SCALE_UP_C2),
        pods=pods_of(SCALE_UP_C2),
        expected=_proposal(5, "cpu container resource utilization (percentage of request)", 50 / 30, 500, 50),
    ),
    EntryCase(
        id="Resource AverageValue: avg 1000m / 400m = 2.5 -> ceil(7.5) = 8",
        metric=_spec(
            MetricSourceType.RESOURCE,
            MetricTarget(type=MetricTargetType.AVERAGE_VALUE, average_value_milli=400),
            name="cpu",
        ),
        reading=resource_metrics_of(SCALE_UP),
        pods=pods_of(SCALE_UP),
        expected=_proposal(8, "cpu resource", 2.5, 1000),
    ),
    EntryCase(
        id="Pods AverageValue: backlog avg 6666m / 5 -> 4; timestamp of the first sample",
        metric=_spec(MetricSourceType.PODS, AVERAGE, name=BACKLOG),
        reading=PodMetrics(
            values={
                "test-pod-0": PodMetric(value_milli=10000, timestamp_s=7.0),
                "test-pod-1": PodMetric(value_milli=4000, timestamp_s=8.0),
                "test-pod-2": PodMetric(value_milli=6000, timestamp_s=9.0),
            }
        ),
        expected=_proposal(4, f"pods metric {BACKLOG}", 6666 / 5000, 6666, timestamp=7.0),
    ),
    EntryCase(
        id="Object Value: 20000m / 15000m = 1.333 -> ceil(1.333 x 3) = 4; zero timestamp as in Go",
        metric=_spec(MetricSourceType.OBJECT, VALUE, described_object=DEPLOYMENT),
        reading=ObjectMetric(value_milli=20000, timestamp_s=5.0),
        expected=_proposal(4, "Deployment metric qps", 20000 / 15000, 20000),
    ),
    EntryCase(
        id="Object AverageValue reads status replicas: 4100m/(2000m x 2) = 1.025 within -> keep status 2",
        metric=_spec(
            MetricSourceType.OBJECT,
            MetricTarget(type=MetricTargetType.AVERAGE_VALUE, average_value_milli=2000),
            described_object=DEPLOYMENT,
        ),
        reading=ObjectMetric(value_milli=4100, timestamp_s=5.0),
        spec_replicas=7,
        status_replicas=2,
        expected=_proposal(2, "external metric qps(nil)", 4100 / 4000, 2050, timestamp=5.0),
    ),
    EntryCase(
        id="External Value: 8600m / 4400m = 1.955 -> ceil(1.955 x 3) = 6",
        metric=_spec(
            MetricSourceType.EXTERNAL, MetricTarget(type=MetricTargetType.VALUE, value_milli=4400), selector=SELECTOR
        ),
        reading=ExternalMetric(values_milli=(8600,), timestamp_s=5.0),
        expected=_proposal(6, EXTERNAL_NAME, 8600 / 4400, 8600),
    ),
    EntryCase(
        id="External AverageValue reads status replicas: 8600m/(2150m x 3) = 1.333 -> ceil(4) = 4",
        metric=_spec(
            MetricSourceType.EXTERNAL,
            MetricTarget(type=MetricTargetType.AVERAGE_VALUE, average_value_milli=2150),
            selector=SELECTOR,
        ),
        reading=ExternalMetric(values_milli=(8600,), timestamp_s=5.0),
        spec_replicas=9,
        expected=_proposal(4, EXTERNAL_NAME, 8600 / 6450, 2867, timestamp=5.0),
    ),
]

BOOM = MetricUnavailable(error="metrics API down")
SEL = EXTERNAL_NAME.removeprefix("external metric qps(").removesuffix(")")
FAILURES = [
    EntryCase(
        id="Resource metrics unavailable -> FailedGetResourceMetric",
        metric=_spec(MetricSourceType.RESOURCE, UTIL_30, name="cpu"),
        reading=BOOM,
        expected=MetricFailure(
            reason="FailedGetResourceMetric",
            message="failed to get cpu utilization: unable to get metrics for resource cpu: metrics API down",
        ),
    ),
    EntryCase(
        id="ContainerResource metrics unavailable -> FailedGetContainerResourceMetric",
        metric=_spec(MetricSourceType.CONTAINER_RESOURCE, UTIL_30, name="cpu", container="c"),
        reading=BOOM,
        expected=MetricFailure(
            reason="FailedGetContainerResourceMetric",
            message="failed to get cpu utilization: unable to get metrics for resource cpu: metrics API down",
        ),
    ),
    EntryCase(
        id="Resource AverageValue, empty PodMetrics -> no metrics returned from resource metrics API",
        metric=_spec(MetricSourceType.RESOURCE, AVERAGE, name="memory"),
        reading=PodMetrics(values={}),
        expected=MetricFailure(
            reason="FailedGetResourceMetric",
            message="failed to get memory usage: unable to get "
            "metrics for resource memory: no metrics returned from resource metrics API",
        ),
    ),
    EntryCase(
        id="Resource without a utilization or average value -> invalid resource metric source",
        metric=_spec(MetricSourceType.RESOURCE, VALUE, name="cpu"),
        reading=resource_metrics_of(SCALE_UP),
        expected=MetricFailure(
            reason="FailedGetResourceMetric",
            message="invalid resource metric source: neither an "
            "average utilization target nor an average value (usage) target was set",
        ),
    ),
    EntryCase(
        id="Pods metric unavailable -> FailedGetPodsMetric",
        metric=_spec(MetricSourceType.PODS, AVERAGE),
        reading=BOOM,
        expected=MetricFailure(reason="FailedGetPodsMetric", message="unable to get metric qps: metrics API down"),
    ),
    EntryCase(
        id="Pods metric, empty samples -> no metrics returned from custom metrics API",
        metric=_spec(MetricSourceType.PODS, AVERAGE),
        reading=PodMetrics(values={}),
        expected=MetricFailure(
            reason="FailedGetPodsMetric",
            message="unable to get metric qps: no metrics returned from custom metrics API",
        ),
    ),
    EntryCase(
        id="Pods metric, no pods listed -> no pods returned by selector",
        metric=_spec(MetricSourceType.PODS, AVERAGE),
        pods=(),
        reading=PodMetrics(values={"test-pod-0": PodMetric(value_milli=1)}),
        expected=MetricFailure(
            reason="FailedGetPodsMetric", message="no pods returned by selector while calculating replica count"
        ),
    ),
    EntryCase(
        id="Pods metric with a Value target -> invalid pods metric source",
        metric=_spec(MetricSourceType.PODS, VALUE),
        reading=PodMetrics(values={"test-pod-0": PodMetric(value_milli=1)}),
        expected=MetricFailure(
            reason="FailedGetPodsMetric", message="invalid pods metric source: an average value target must be set"
        ),
    ),
    EntryCase(
        id="Pods metric given an object reading -> FailedGetPodsMetric",
        metric=_spec(MetricSourceType.PODS, AVERAGE),
        reading=ObjectMetric(value_milli=1),
        expected=MetricFailure(
            reason="FailedGetPodsMetric",
            message="unable to get metric qps: Pods metrics read per-pod samples, got ObjectMetric",
        ),
    ),
    EntryCase(
        id="Object metric unavailable -> FailedGetObjectMetric",
        metric=_spec(MetricSourceType.OBJECT, VALUE, described_object=DEPLOYMENT),
        reading=BOOM,
        expected=MetricFailure(
            reason="FailedGetObjectMetric",
            message="unable to get metric qps on Deployment some-deployment: metrics API down",
        ),
    ),
    EntryCase(
        id="Object metric with a Utilization target -> invalid object metric source",
        metric=_spec(MetricSourceType.OBJECT, UTIL_30, described_object=DEPLOYMENT),
        reading=ObjectMetric(value_milli=1),
        expected=MetricFailure(
            reason="FailedGetObjectMetric",
            message="invalid object metric source: neither a value target nor an average value target was set",
        ),
    ),
    EntryCase(
        id="Object metric given per-pod samples -> FailedGetObjectMetric",
        metric=_spec(MetricSourceType.OBJECT, VALUE, described_object=DEPLOYMENT),
        reading=PodMetrics(values={}),
        expected=MetricFailure(
            reason="FailedGetObjectMetric",
            message="unable to get metric qps: Object metrics read one object's value, got PodMetrics",
        ),
    ),
    EntryCase(
        id="External metric unavailable -> FailedGetExternalMetric",
        metric=_spec(MetricSourceType.EXTERNAL, VALUE, selector=SELECTOR),
        reading=BOOM,
        expected=MetricFailure(
            reason="FailedGetExternalMetric", message=f"unable to get external metric qps/{SEL}: metrics API down"
        ),
    ),
    EntryCase(
        id="External metric with a Utilization target -> invalid external metric source",
        metric=_spec(MetricSourceType.EXTERNAL, UTIL_30),
        reading=ExternalMetric(values_milli=(1,)),
        expected=MetricFailure(
            reason="FailedGetExternalMetric",
            message="invalid external metric source: neither a value target nor an average value target was set",
        ),
    ),
    EntryCase(
        id="External metric given an object reading -> FailedGetExternalMetric",
        metric=_spec(MetricSourceType.EXTERNAL, VALUE),
        reading=ObjectMetric(value_milli=1),
        expected=MetricFailure(
            reason="FailedGetExternalMetric",
            message="unable to get metric qps: External metrics read the values of matching series, got ObjectMetric",
        ),
    ),
    EntryCase(
        id="unknown metric source type -> InvalidMetricSourceType",
        metric=_spec(cast(MetricSourceType, "Bogus"), VALUE),
        reading=ObjectMetric(value_milli=1),
        expected=MetricFailure(reason="InvalidMetricSourceType", message='unknown metric source type "Bogus"'),
    ),
]


@pytest.mark.parametrize("case", PROPOSALS + FAILURES, ids=lambda c: c.id)
def test_replicas_for_metric(case: EntryCase) -> None:
    got = replicas_for_metric(
        case.metric,
        case.reading,
        spec_replicas=case.spec_replicas,
        status_replicas=case.status_replicas,
        pods=case.pods,
        tolerances=DEFAULT,
        config=CONFIG,
        now_s=NOW,
    )
    if isinstance(got, MetricProposal):
        assert got.explanation  # every proposal shows its arithmetic
        got = replace(got, explanation=())
    assert got == case.expected


def _explain(metric: MetricSpec, reading: MetricReading, pods: tuple[Pod, ...] = THREE) -> tuple[str, ...]:
    got = replicas_for_metric(
        metric, reading, spec_replicas=3, status_replicas=3, pods=pods, tolerances=DEFAULT, config=CONFIG, now_s=NOW
    )
    assert isinstance(got, MetricProposal)
    return got.explanation


def _backlog(*values: int) -> PodMetrics:
    return PodMetrics(values={f"test-pod-{i}": PodMetric(value_milli=v) for i, v in enumerate(values)})


def test_explanation_first_pass_jetstream_backlog() -> None:
    assert _explain(_spec(MetricSourceType.PODS, AVERAGE, name=BACKLOG), _backlog(10000, 4000, 6000)) == (
        "3 pods listed: 3 ready, 0 unready or pending, 0 without a metric, 0 deleted or terminal (ignored)",
        "average 6666m over 3 pods / target 5 = ratio 1.333",
        "ceil(1.333 x 3 ready pods) = 4",
    )


def test_explanation_second_pass_counts_a_new_pod_at_zero() -> None:
    assert _explain(_spec(MetricSourceType.PODS, AVERAGE, name=BACKLOG), _backlog(12000, 8000)) == (
        "3 pods listed: 2 ready, 0 unready or pending, 1 without a metric, 0 deleted or terminal (ignored)",
        "average 10 over 2 pods / target 5 = ratio 2.000",
        "1 pods without a metric counted at 0 (scale-up)",
        "recomputed over 3 samples: average 6666m / target 5 = ratio 1.333",
        "ceil(1.333 x 3 samples) = 4",
    )


def test_explanation_resource_scale_down_guard() -> None:
    # TestReplicaCalcResourceMissingMetrics/no_change:_unready_pod_metric_missing: 45% / 50% = 0.9 down, then
    # the missing pod at 100% of its request lifts the ratio above 1: direction reversed, keep 3.
    f = Fixture(current_replicas=3, readiness=(F, T, T), requests=cpu(3), levels=levels(100, 450))
    lines = _explain(
        _spec(
            MetricSourceType.RESOURCE,
            MetricTarget(type=MetricTargetType.UTILIZATION, average_utilization=50),
            name="cpu",
        ),
        resource_metrics_of(f),
        pods_of(f),
    )
    assert lines[1:] == (
        "cpu usage 900m / request 2 over 1 pods = 45% (average 900m)",
        "45% / target 50% = ratio 0.900",
        "1 pods without a metric counted at 100% of request (scale-down)",
        "recomputed over 2 samples: 72% / target 50% = ratio 1.440",
        "ratio 1.440 within tolerance [0.900, 1.100] or direction reversed -> keep 3 replicas",
    )


def test_explanation_within_tolerance_and_from_zero() -> None:
    within = _explain(
        _spec(MetricSourceType.OBJECT, VALUE, described_object=DEPLOYMENT), ObjectMetric(value_milli=15500)
    )
    assert within[-1] == "ratio 1.033 within tolerance [0.900, 1.100] -> keep 3 replicas"
    zero = replicas_for_metric(
        _spec(MetricSourceType.EXTERNAL, VALUE),
        ExternalMetric(values_milli=(31000,)),
        spec_replicas=0,
        status_replicas=0,
        pods=(),
        tolerances=DEFAULT,
        config=CONFIG,
        now_s=NOW,
    )
    assert isinstance(zero, MetricProposal)
    assert (zero.replicas, zero.explanation[-1]) == (3, "from zero replicas: ceil(2.067) = 3")


def test_label_selector_string_matches_go() -> None:
    assert label_selector_string(None) == "nil"
    assert label_selector_string((("b", "2"), ("a", "1"))) == (
        "&LabelSelector{MatchLabels:map[string]string{a: 1,b: 2,},MatchExpressions:[]LabelSelectorRequirement{},}"
    )
