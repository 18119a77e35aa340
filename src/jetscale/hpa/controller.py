"""One HPA reconcile: the spec, the controller's history and what one sync observes go in; a decision
and the new history come out.

Mirrors ``reconcileAutoscaler`` and ``computeReplicasForMetrics`` of Kubernetes'
``pkg/controller/podautoscaler/horizontal.go`` (newest master):

1. AbleToScale=True/SucceededGetScale; the first reconcile records ``{current, now}`` as a recommendation
   (``recordInitialRecommendation``), so a fresh controller never scales down at once.
2. current 0 (paused unless the HPA itself scaled to zero, HPAScaleToZero), above max, below min: fixed
   answers without metrics.
3. Otherwise every metric proposes a count (``jetscale.hpa.replicas``) and the highest valid proposal wins;
   a broken selector, every metric failing, or a failure while the others want to scale down: no change.
4. Normalization (``jetscale.hpa.behavior``): legacy or ``spec.behavior``.
5. A rescale stores a scale event (behavior only) and sets lastScaleTime.

The scale read and the scale update are the caller's: ``Observation`` is what the GET returned, and a
decision with ``rescale`` is what the caller writes. Conditions keep Kubernetes' order of first insertion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from jetscale.errors import ConfigError
from jetscale.hpa.behavior import ConditionType, normalize, store_scale_event, tolerances_for
from jetscale.hpa.replicas import UNABLE_TO_COMPUTE, replicas_for_metric
from jetscale.hpa.types import (
    Condition,
    ConditionStatus,
    ControllerConfig,
    HPASpec,
    MetricFailure,
    MetricProposal,
    MetricReading,
    MetricSourceType,
    Pod,
    ScaleEvent,
    SelectorStatus,
    Timestamped,
)

__all__ = [
    "ControllerState",
    "Decision",
    "HorizontalController",
    "MetricsOutcome",
    "Observation",
    "combine_proposals",
    "compute_replicas_for_metrics",
    "reconcile",
]

ABOVE_MAX = "Current number of replicas above Spec.MaxReplicas"
BELOW_MIN = "Current number of replicas below Spec.MinReplicas"
ALL_BELOW = "All metrics below target"

_SUCCEEDED_GET_SCALE = Condition(
    type=ConditionType.ABLE_TO_SCALE,
    status=ConditionStatus.TRUE,
    reason="SucceededGetScale",
    message="the HPA controller was able to get the target's current scale",
)
_SCALING_DISABLED = Condition(
    type=ConditionType.SCALING_ACTIVE,
    status=ConditionStatus.FALSE,
    reason="ScalingDisabled",
    message="scaling is disabled since the replica count of the target is zero",
)
_SELECTOR_PROBLEMS = {  # SelectorStatus -> (ScalingActive reason, condition message, error)
    SelectorStatus.EMPTY: ("InvalidSelector", "the HPA target's scale is missing a selector", "selector is required"),
    SelectorStatus.INVALID: (
        "InvalidSelector",
        "couldn't convert selector into a corresponding internal selector object",
        "couldn't convert selector into a corresponding internal selector object",
    ),
    SelectorStatus.AMBIGUOUS: (
        "AmbiguousSelector",
        "pods by the target's selector are controlled by more than one HPA",
        "pods by the target's selector are controlled by more than one HPA",
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What one sync reads from the cluster."""

    spec_replicas: int  # scale.spec.replicas: the current replicas
    status_replicas: int  # scale.status.replicas
    pods: tuple[Pod, ...]
    readings: tuple[MetricReading, ...]  # one per spec.metrics entry, same order
    selector: SelectorStatus = SelectorStatus.OK


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerState:
    """The controller's in-memory history for one HPA, and the status conditions it carries over."""

    recommendations: tuple[Timestamped, ...] | None = None  # None: never reconciled
    scale_up_events: tuple[ScaleEvent, ...] = ()
    scale_down_events: tuple[ScaleEvent, ...] = ()
    conditions: tuple[Condition, ...] = ()
    last_scale_time_s: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The outcome of one reconcile.

    ``reason`` is Kubernetes' rescale reason when ``rescale`` (``"<metric> above target"``, ...); without
    a rescale it names what held the count (a failing ScalingActive reason, a true ScalingLimited
    reason, else the AbleToScale reason). On a metrics error Kubernetes keeps status.desiredReplicas;
    here ``desired_replicas`` is then ``current_replicas``.
    """

    current_replicas: int
    desired_replicas: int
    rescale: bool
    reason: str
    metric_replicas: int | None  # the pre-normalized max over metrics; None when not needed or unusable
    proposals: tuple[MetricProposal | MetricFailure, ...]
    conditions: tuple[Condition, ...]
    error: str | None
    explanation: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsOutcome:
    """``computeReplicasForMetrics``' result: ``replicas`` is -1 when nothing may be done."""

    replicas: int
    metric_name: str
    timestamp_s: float
    condition: Condition  # the ScalingActive condition to set
    error: str | None


def combine_proposals(results: Sequence[MetricProposal | MetricFailure], spec_replicas: int) -> MetricsOutcome:
    """The highest valid proposal; -1 if every metric failed, or if one failed and the valid ones
    would scale below ``spec_replicas`` (never scale down on partial information)."""
    replicas, name, timestamp = 0, "", 0.0
    failures = [r for r in results if isinstance(r, MetricFailure)]
    for result in results:
        if isinstance(result, MetricProposal) and (replicas == 0 or result.replicas > replicas):
            replicas, name, timestamp = result.replicas, result.metric_name, result.timestamp_s
    error = None
    if failures:
        error = (
            f"invalid metrics ({len(failures)} invalid out of {len(results)}), first error is: {failures[0].message}"
        )
    if failures and (len(failures) >= len(results) or replicas < spec_replicas):
        first = failures[0]
        condition = _condition(
            ConditionType.SCALING_ACTIVE, False, first.reason, f"{UNABLE_TO_COMPUTE}: {first.message}"
        )
        return MetricsOutcome(replicas=-1, metric_name="", timestamp_s=0.0, condition=condition, error=error)
    message = f"the HPA was able to successfully calculate a replica count from {name}"
    condition = _condition(ConditionType.SCALING_ACTIVE, True, "ValidMetricFound", message)
    return MetricsOutcome(replicas=replicas, metric_name=name, timestamp_s=timestamp, condition=condition, error=error)


def _condition(kind: ConditionType, true: bool, reason: str, message: str) -> Condition:
    status = ConditionStatus.TRUE if true else ConditionStatus.FALSE
    return Condition(type=kind, status=status, reason=reason, message=message)


def _set(conditions: tuple[Condition, ...], condition: Condition) -> tuple[Condition, ...]:
    """``setCondition``: replace the condition of the same type in place, or append it."""
    for i, existing in enumerate(conditions):
        if existing.type == condition.type:
            return (*conditions[:i], condition, *conditions[i + 1 :])
    return (*conditions, condition)


def _remove(conditions: tuple[Condition, ...], kind: ConditionType) -> tuple[Condition, ...]:
    return tuple(c for c in conditions if c.type != kind)


def _find(conditions: tuple[Condition, ...], kind: ConditionType) -> Condition | None:
    return next((c for c in conditions if c.type == kind), None)


def _hold_reason(conditions: tuple[Condition, ...]) -> str:
    """Why a reconcile left the count alone, in Kubernetes' words."""
    active = _find(conditions, ConditionType.SCALING_ACTIVE)
    if active is not None and active.status == ConditionStatus.FALSE:
        return active.reason
    limited = _find(conditions, ConditionType.SCALING_LIMITED)
    if limited is not None and limited.status == ConditionStatus.TRUE:
        return limited.reason
    able = _find(conditions, ConditionType.ABLE_TO_SCALE)
    return able.reason if able is not None else ""


def _describe(index: int, result: MetricProposal | MetricFailure) -> list[str]:
    if isinstance(result, MetricFailure):
        return [f"metric {index}: failed [{result.reason}]: {result.message}"]
    return [f"metric {index} ({result.metric_name}) proposes {result.replicas}"] + [
        f"  {line}" for line in result.explanation
    ]


def compute_replicas_for_metrics(
    spec: HPASpec, observation: Observation, config: ControllerConfig, now_s: float
) -> tuple[MetricsOutcome, tuple[MetricProposal | MetricFailure, ...], list[str]]:
    """``computeReplicasForMetrics``: validate the selector, ask every metric, combine the proposals.
    Returns the outcome, each metric's result and the explanation lines."""
    problem = _SELECTOR_PROBLEMS.get(observation.selector)
    if problem is not None:
        reason, message, error = problem
        condition = _condition(ConditionType.SCALING_ACTIVE, False, reason, message)
        outcome = MetricsOutcome(replicas=-1, metric_name="", timestamp_s=0.0, condition=condition, error=error)
        return outcome, (), [f"selector {observation.selector}: {error}"]
    tolerances = tolerances_for(spec, config)
    results = tuple(
        replicas_for_metric(
            metric,
            reading,
            spec_replicas=observation.spec_replicas,
            status_replicas=observation.status_replicas,
            pods=observation.pods,
            tolerances=tolerances,
            config=config,
            now_s=now_s,
        )
        for metric, reading in zip(spec.metrics, observation.readings, strict=True)
    )
    lines = [line for i, result in enumerate(results) for line in _describe(i, result)]
    return combine_proposals(results, observation.spec_replicas), results, lines


def _rescaled_conditions(
    conditions: tuple[Condition, ...], config: ControllerConfig, *, current: int, desired: int, spec: HPASpec
) -> tuple[Condition, ...]:
    """After a successful scale update: AbleToScale=SucceededRescale, and ScaledToZero written on every
    rescale while HPAScaleToZero is on (removed while it is off)."""
    message = f"the HPA controller was able to update the target scale to {desired}"
    conditions = _set(conditions, _condition(ConditionType.ABLE_TO_SCALE, True, "SucceededRescale", message))
    if not config.scale_to_zero:
        return _remove(conditions, ConditionType.SCALED_TO_ZERO)
    if current > 0 and desired == 0 and spec.min_replicas == 0 and _has_object_or_external(spec):
        zero = _condition(
            ConditionType.SCALED_TO_ZERO, True, "ScaledToZero", "the HPA controller scaled the workload to zero"
        )
    else:
        zero = _condition(
            ConditionType.SCALED_TO_ZERO,
            False,
            "NotScaledToZero",
            "the HPA controller did not scale the workload to zero",
        )
    return _set(conditions, zero)


def _has_object_or_external(spec: HPASpec) -> bool:
    return any(m.type in (MetricSourceType.OBJECT, MetricSourceType.EXTERNAL) for m in spec.metrics)


def reconcile(
    spec: HPASpec,
    state: ControllerState,
    observation: Observation,
    now_s: float,
    config: ControllerConfig = ControllerConfig(),  # noqa: B008 - frozen, so a shared default is safe
) -> tuple[Decision, ControllerState]:
    """One pass of ``reconcileAutoscaler`` at ``now_s``: returns the decision and the new state."""
    if len(observation.readings) != len(spec.metrics):
        raise ConfigError(
            f"'observation.readings' must have one reading per spec.metrics entry ({len(spec.metrics)}) "
            f"(got {len(observation.readings)})"
        )
    current, min_r, max_r = observation.spec_replicas, spec.min_replicas, spec.max_replicas
    conditions = _set(state.conditions, _SUCCEEDED_GET_SCALE)
    recs = state.recommendations
    if recs is None:
        recs = (Timestamped(recommendation=current, timestamp_s=now_s),)
    lines = [f"current {current} replicas (scale.spec; status {observation.status_replicas}), min {min_r}, max {max_r}"]

    stz_gate = config.scale_to_zero
    has_obj_ext = _has_object_or_external(spec)
    zero_condition = _find(conditions, ConditionType.SCALED_TO_ZERO)
    scaled_to_zero = stz_gate and zero_condition is not None and zero_condition.status == ConditionStatus.TRUE
    desired, rescale, reason, need_metrics = 0, True, "", True
    if current == 0:
        if not ((min_r != 0 and scaled_to_zero) or (scaled_to_zero and has_obj_ext)):
            desired, rescale, need_metrics = 0, False, False
            conditions = _set(conditions, _SCALING_DISABLED)
            if not stz_gate:
                conditions = _remove(conditions, ConditionType.SCALED_TO_ZERO)
            lines.append("current is 0 and the HPA did not scale it to zero: scaling is disabled")
    elif current > max_r:
        reason, desired, need_metrics = ABOVE_MAX, max_r, False
        lines.append(f"current {current} > max {max_r}: desired {max_r}, metrics not read")
    elif current < min_r:
        reason, desired, need_metrics = BELOW_MIN, min_r, False
        lines.append(f"current {current} < min {min_r}: desired {min_r}, metrics not read")

    results: tuple[MetricProposal | MetricFailure, ...] = ()
    metric_replicas: int | None = None
    error: str | None = None
    up_events, down_events = state.scale_up_events, state.scale_down_events
    if need_metrics:
        outcome, results, told = compute_replicas_for_metrics(spec, observation, config, now_s)
        lines.extend(told)
        conditions = _set(conditions, outcome.condition)
        error = outcome.error
        if outcome.replicas == -1:
            lines.append(f"no usable metrics [{outcome.condition.reason}]: keep {current}")
            new_state = replace(state, recommendations=recs, conditions=conditions)
            decision = Decision(
                current_replicas=current,
                desired_replicas=current,
                rescale=False,
                reason=outcome.condition.reason,
                metric_replicas=None,
                proposals=results,
                conditions=conditions,
                error=error,
                explanation=tuple(lines),
            )
            return decision, new_state
        metric_replicas = outcome.replicas
        lines.append(f"highest valid proposal: {metric_replicas} ({outcome.metric_name})")
        desired = max(desired, metric_replicas)
        if desired > current:
            reason = f"{outcome.metric_name} above target"
        elif desired < current:
            reason = ALL_BELOW
        normalized = normalize(
            recs,
            up_events,
            down_events,
            behavior=spec.behavior,
            current=current,
            prenormalized=desired,
            min_replicas=min_r,
            max_replicas=max_r,
            config=config,
            now_s=now_s,
        )
        recs, desired = normalized.recommendations, normalized.replicas
        conditions = _set(_set(conditions, normalized.able_to_scale), normalized.scaling_limited)
        lines.extend(normalized.explanation)
        if current == 0 and min_r != 0 and scaled_to_zero and desired < min_r:
            desired, reason = min_r, reason or BELOW_MIN
            lines.append(f"scaling up from zero to at least min {min_r}")
        rescale = desired != current

    last_scale = state.last_scale_time_s
    if rescale:
        conditions = _rescaled_conditions(conditions, config, current=current, desired=desired, spec=spec)
        up_events, down_events = store_scale_event(
            spec.behavior, up_events, down_events, prev_replicas=current, new_replicas=desired, now_s=now_s
        )
        last_scale = now_s
        lines.append(f"rescale {current} -> {desired}: {reason}")
    else:
        desired = current
        reason = _hold_reason(conditions)
        lines.append(f"no change: stay at {current} [{reason}]")

    new_state = ControllerState(
        recommendations=recs,
        scale_up_events=up_events,
        scale_down_events=down_events,
        conditions=conditions,
        last_scale_time_s=last_scale,
    )
    decision = Decision(
        current_replicas=current,
        desired_replicas=desired,
        rescale=rescale,
        reason=reason,
        metric_replicas=metric_replicas,
        proposals=results,
        conditions=conditions,
        error=error,
        explanation=tuple(lines),
    )
    return decision, new_state


class HorizontalController:
    """Keeps one HPA's ``ControllerState`` between reconciles, as Kubernetes keeps it per HPA key.

    The constructor only stores its arguments; ``step`` is one sync at the caller's ``now_s``.
    """

    def __init__(self, spec: HPASpec, config: ControllerConfig = ControllerConfig()) -> None:  # noqa: B008
        self._spec = spec
        self._config = config
        self._state = ControllerState()

    @property
    def spec(self) -> HPASpec:
        return self._spec

    @property
    def config(self) -> ControllerConfig:
        return self._config

    @property
    def state(self) -> ControllerState:
        return self._state

    def update_spec(self, spec: HPASpec) -> None:
        """A new spec for the same HPA: the history is kept, as Kubernetes keeps it across edits."""
        self._spec = spec

    def step(self, observation: Observation, now_s: float) -> Decision:
        decision, self._state = reconcile(self._spec, self._state, observation, now_s, self._config)
        return decision
