"""The data of the autoscaling/v2 HPA model: the spec, the pods and metrics it observes, its history and
its decisions.

Everything here is a frozen, slotted, keyword-only dataclass or an enum; times are seconds on the caller's
clock (``*_s``), metric values are integer milli-units (``*_milli``) as Kubernetes keeps them.
Field names follow the Kubernetes API in snake_case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "Behavior",
    "Condition",
    "ConditionStatus",
    "Container",
    "ControllerConfig",
    "CrossVersionObjectReference",
    "EventType",
    "ExternalMetric",
    "HPAEvent",
    "HPAScalingPolicy",
    "HPAScalingRules",
    "HPASpec",
    "MetricFailure",
    "MetricProposal",
    "MetricReading",
    "MetricSourceType",
    "MetricSpec",
    "MetricTarget",
    "MetricTargetType",
    "MetricUnavailable",
    "ObjectMetric",
    "Pod",
    "PodMetric",
    "PodMetrics",
    "PodPhase",
    "PolicyType",
    "ScaleEvent",
    "SelectPolicy",
    "SelectorStatus",
    "Timestamped",
    "Tolerances",
]

MAX_INT32 = 2**31 - 1
MIN_INT32 = -(2**31)
MAX_INT64 = 2**63 - 1


class MetricSourceType(StrEnum):
    OBJECT = "Object"
    PODS = "Pods"
    RESOURCE = "Resource"
    CONTAINER_RESOURCE = "ContainerResource"
    EXTERNAL = "External"


class MetricTargetType(StrEnum):
    UTILIZATION = "Utilization"
    VALUE = "Value"
    AVERAGE_VALUE = "AverageValue"


class PolicyType(StrEnum):
    PODS = "Pods"
    PERCENT = "Percent"


class SelectPolicy(StrEnum):
    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class PodPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class SelectorStatus(StrEnum):
    """What ``validateAndParseSelector`` found for ``scale.status.selector``."""

    OK = "Ok"
    EMPTY = "Empty"  # -> ScalingActive=False/InvalidSelector
    INVALID = "Invalid"  # -> ScalingActive=False/InvalidSelector
    AMBIGUOUS = "Ambiguous"  # -> ScalingActive=False/AmbiguousSelector


# ----------------------------------------------------------------------------------------------- spec


@dataclass(frozen=True, slots=True, kw_only=True)
class CrossVersionObjectReference:
    kind: str
    name: str
    api_version: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricTarget:
    """``MetricTarget``: exactly one of the three values is set, matching ``type``."""

    type: MetricTargetType
    value_milli: int | None = None
    average_value_milli: int | None = None
    average_utilization: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricSpec:
    """One entry of ``spec.metrics``.

    ``name`` is the metric name (GKE's ``prometheus.googleapis.com|<name>|gauge`` resolved to ``<name>``)
    or, for Resource and ContainerResource, the resource name (``cpu``, ``memory``).
    ``raw_name`` is the name as written in the manifest.
    """

    type: MetricSourceType
    name: str
    target: MetricTarget
    raw_name: str = ""
    container: str | None = None
    selector: tuple[tuple[str, str], ...] | None = None
    described_object: CrossVersionObjectReference | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HPAScalingPolicy:
    type: PolicyType
    value: int
    period_s: int


@dataclass(frozen=True, slots=True, kw_only=True)
class HPAScalingRules:
    """``HPAScalingRules`` after defaulting.

    ``stabilization_window_s`` is None only for scaleDown when the user left it out: the controller then
    uses its ``--horizontal-pod-autoscaler-downscale-stabilization`` flag (300 s), as Kubernetes does.
    ``tolerance`` None means the controller's tolerance flag (0.1).
    """

    stabilization_window_s: int | None
    select_policy: SelectPolicy
    policies: tuple[HPAScalingPolicy, ...]
    tolerance: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Behavior:
    scale_up: HPAScalingRules
    scale_down: HPAScalingRules


@dataclass(frozen=True, slots=True, kw_only=True)
class HPASpec:
    """A validated ``HorizontalPodAutoscaler`` with the API defaults filled in.

    ``behavior`` is None when the manifest has no ``spec.behavior``: the controller then takes the legacy
    path (scale-up limit max(2 x current, 4), downscale stabilization from its flag).
    """

    name: str
    namespace: str
    scale_target_ref: CrossVersionObjectReference
    min_replicas: int
    max_replicas: int
    metrics: tuple[MetricSpec, ...]
    behavior: Behavior | None = None


# ------------------------------------------------------------------------------------- observations


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    """A container of a pod and its resource requests (milli-units by resource name)."""

    name: str
    requests_milli: Mapping[str, int] = field(default_factory=dict)
    restartable_init: bool = False  # an init container with restartPolicy Always (a sidecar)
    init: bool = False  # a plain init container: its requests never count


@dataclass(frozen=True, slots=True, kw_only=True)
class Pod:
    """What the HPA reads of a pod.

    ``ready`` is the status of the pod's Ready condition, None when the pod has no such condition;
    ``ready_transition_s`` its lastTransitionTime. ``start_time_s`` None means status.startTime unset.
    """

    name: str
    phase: PodPhase = PodPhase.RUNNING
    ready: ConditionStatus | None = ConditionStatus.TRUE
    ready_transition_s: float = 0.0
    start_time_s: float | None = 0.0
    deleting: bool = False
    containers: tuple[Container, ...] = ()
    pod_requests_milli: Mapping[str, int] | None = None  # pod-level resources (PodLevelResources)


@dataclass(frozen=True, slots=True, kw_only=True)
class PodMetric:
    """One pod's sample of a Resource/ContainerResource/Pods metric."""

    value_milli: int
    timestamp_s: float = 0.0
    window_s: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class PodMetrics:
    """Per-pod samples (pod name -> sample) for a Resource, ContainerResource or Pods metric."""

    values: Mapping[str, PodMetric]


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectMetric:
    value_milli: int
    timestamp_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ExternalMetric:
    """Every series matching an External metric's selector."""

    values_milli: tuple[int, ...]
    timestamp_s: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricUnavailable:
    """The metrics API failed for this metric (the message is the client's error)."""

    error: str


MetricReading = PodMetrics | ObjectMetric | ExternalMetric | MetricUnavailable


@dataclass(frozen=True, slots=True, kw_only=True)
class Tolerances:
    """``isWithin(r) := (1 - scale_down) <= r <= (1 + scale_up)``, inclusive on both ends."""

    scale_down: float = 0.1
    scale_up: float = 0.1

    def is_within(self, ratio: float) -> bool:
        return (1.0 - self.scale_down) <= ratio <= (1.0 + self.scale_up)


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerConfig:
    """kube-controller-manager's HPA flags and the feature gates that change the algorithm.

    The gate defaults here are Kubernetes 1.35's and 1.36's (HPAConfigurableTolerance beta and on,
    HPAScaleToZero alpha and off); ``jetscale.hpa.versions.controller_config_for`` gives any supported
    release's (1.37: HPAScaleToZero beta and on, HPAConfigurableTolerance GA).
    """

    tolerance: float = 0.1
    cpu_initialization_period_s: float = 300.0
    initial_readiness_delay_s: float = 30.0
    downscale_stabilization_s: float = 300.0
    sync_period_s: float = 15.0
    scale_up_limit_factor: float = 2.0
    scale_up_limit_minimum: float = 4.0
    configurable_tolerance: bool = True  # HPAConfigurableTolerance: alpha/off 1.33, beta/on 1.35, GA 1.37
    scale_to_zero: bool = False  # HPAScaleToZero: alpha/off 1.16-1.36, beta/on 1.37


# ------------------------------------------------------------------------------------------ results


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricProposal:
    """A metric's replica proposal (the valid branch of ``computeReplicasForMetric``).

    ``usage_milli`` is the value reported in status.currentMetrics (average value, or total for Value
    targets); ``utilization`` the percentage for Utilization targets. ``explanation`` is the arithmetic,
    one human-readable line per step.
    """

    replicas: int
    metric_name: str
    usage_ratio: float
    usage_milli: int | None = None
    utilization: int | None = None
    timestamp_s: float = 0.0
    explanation: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricFailure:
    """A metric that could not be computed: ``reason`` is the condition reason
    (``FailedGetPodsMetric``, ..., ``InvalidMetricSourceType``), ``message`` the error text."""

    reason: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Timestamped:
    """A recommendation (pre-normalized desired replicas) at a time."""

    recommendation: int
    timestamp_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaleEvent:
    """A successful rescale: ``replica_change`` is the absolute change (>= 0)."""

    replica_change: int
    timestamp_s: float
    outdated: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    type: str  # AbleToScale | ScalingActive | ScalingLimited | ScaledToZero
    status: ConditionStatus
    reason: str
    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class HPAEvent:
    """An event the controller records on the HPA object (what ``kubectl describe hpa`` lists)."""

    type: EventType
    reason: str
    message: str
