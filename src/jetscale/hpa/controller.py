"""One HPA reconcile: the spec, the controller's history and what one sync observes go in; a decision
and the new history come out.

Mirrors ``reconcileAutoscaler`` and ``computeReplicasForMetrics`` of Kubernetes'
``pkg/controller/podautoscaler/horizontal.go`` (newest master):

1. AbleToScale=True/SucceededGetScale; the first reconcile records ``{current, now}`` as a recommendation
   (``recordInitialRecommendation``), so a fresh controller never scales down at once.
2. current 0 (paused unless the HPA itself scaled to zero, HPAScaleToZero), above max, below min: fixed
   answers without metrics.
3. Otherwise every metric proposes a count and the highest valid proposal wins (``jetscale.hpa.proposals``);
   a broken selector, every metric failing, or a failure while the others want to scale down: no change.
4. Normalization (``jetscale.hpa.behavior``): legacy or ``spec.behavior``.
5. A rescale stores a scale event (behavior only) and sets lastScaleTime.

The scale read and the scale update are the caller's: ``Observation`` is what the GET returned, and a
decision with ``rescale`` is what the caller writes. Either call may fail, as in Kubernetes:

- a failed GET is an ``Observation`` with ``scale_error``: AbleToScale=False/FailedGetScale, a Warning
  event ``FailedGetScale``, nothing else read or changed (not even the first recommendation);
- a failed UPDATE is the same reconcile again with ``update_error`` (it is pure, so the replay decides
  the same): AbleToScale=False/FailedUpdateScale, a Warning event ``FailedRescale``, no rescale recorded
  (no scale event, no lastScaleTime, ScaledToZero untouched), while the recommendation that
  normalization stored stays. ``HorizontalController.rescale_failed`` does the replay.

Conditions keep Kubernetes' order of first insertion.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from jetscale.errors import ConfigError
from jetscale.hpa.behavior import normalize, store_scale_event
from jetscale.hpa.conditions import ConditionType, find_condition, make_condition, remove_condition, set_condition
from jetscale.hpa.proposals import MetricsOutcome, combine_proposals, compute_replicas_for_metrics
from jetscale.hpa.types import (
    Condition,
    ConditionStatus,
    ControllerConfig,
    EventType,
    HPAEvent,
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Observation:
    """What one sync reads from the cluster."""

    spec_replicas: int  # scale.spec.replicas: the current replicas
    status_replicas: int  # scale.status.replicas
    pods: tuple[Pod, ...]
    readings: tuple[MetricReading, ...]  # one per spec.metrics entry, same order
    selector: SelectorStatus = SelectorStatus.OK
    # The GET of the scale subresource failed with this error: nothing else was read, and the fields
    # above are not used, except spec_replicas, reported as the (unchanged) current and desired count.
    scale_error: str | None = None

    @classmethod
    def scale_unavailable(cls, error: str, *, replicas: int = 0) -> Observation:
        """A sync whose GET of the scale failed with ``error``; ``replicas`` is the last count known."""
        return cls(spec_replicas=replicas, status_replicas=replicas, pods=(), readings=(), scale_error=error)


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
    events: tuple[HPAEvent, ...] = ()  # only the scale subresource's failures (FailedGetScale, FailedRescale)


def _hold_reason(conditions: tuple[Condition, ...]) -> str:
    """Why a reconcile left the count alone, in Kubernetes' words."""
    active = find_condition(conditions, ConditionType.SCALING_ACTIVE)
    if active is not None and active.status == ConditionStatus.FALSE:
        return active.reason
    limited = find_condition(conditions, ConditionType.SCALING_LIMITED)
    if limited is not None and limited.status == ConditionStatus.TRUE:
        return limited.reason
    able = find_condition(conditions, ConditionType.ABLE_TO_SCALE)
    return able.reason if able is not None else ""


def _rescaled_conditions(
    conditions: tuple[Condition, ...], config: ControllerConfig, *, current: int, desired: int, spec: HPASpec
) -> tuple[Condition, ...]:
    """After a successful scale update: AbleToScale=SucceededRescale, and ScaledToZero written on every
    rescale while HPAScaleToZero is on (removed while it is off)."""
    message = f"the HPA controller was able to update the target scale to {desired}"
    conditions = set_condition(
        conditions, make_condition(ConditionType.ABLE_TO_SCALE, True, "SucceededRescale", message)
    )
    if not config.scale_to_zero:
        return remove_condition(conditions, ConditionType.SCALED_TO_ZERO)
    if current > 0 and desired == 0 and spec.min_replicas == 0 and _has_object_or_external(spec):
        zero = make_condition(
            ConditionType.SCALED_TO_ZERO, True, "ScaledToZero", "the HPA controller scaled the workload to zero"
        )
    else:
        zero = make_condition(
            ConditionType.SCALED_TO_ZERO,
            False,
            "NotScaledToZero",
            "the HPA controller did not scale the workload to zero",
        )
    return set_condition(conditions, zero)


def _has_object_or_external(spec: HPASpec) -> bool:
    return any(m.type in (MetricSourceType.OBJECT, MetricSourceType.EXTERNAL) for m in spec.metrics)


def _target(spec: HPASpec) -> str:
    """The scale target as Kubernetes' errors name it: ``<kind>/<namespace>/<name>``."""
    return f"{spec.scale_target_ref.kind}/{spec.namespace}/{spec.scale_target_ref.name}"


def _failed_get_scale(
    spec: HPASpec, state: ControllerState, error: str, current: int
) -> tuple[Decision, ControllerState]:
    """The GET of the scale failed: only AbleToScale changes, and a Warning event is recorded."""
    message = f"the HPA controller was unable to get the target's current scale: {error}"
    conditions = set_condition(
        state.conditions, make_condition(ConditionType.ABLE_TO_SCALE, False, "FailedGetScale", message)
    )
    decision = Decision(
        current_replicas=current,
        desired_replicas=current,
        rescale=False,
        reason="FailedGetScale",
        metric_replicas=None,
        proposals=(),
        conditions=conditions,
        error=f"failed to query scale subresource for {_target(spec)}: {error}",
        explanation=(f"the GET of the scale subresource failed ({error}): nothing read, nothing written",),
        events=(HPAEvent(type=EventType.WARNING, reason="FailedGetScale", message=error),),
    )
    return decision, replace(state, conditions=conditions)


def reconcile(
    spec: HPASpec,
    state: ControllerState,
    observation: Observation,
    now_s: float,
    config: ControllerConfig = ControllerConfig(),  # noqa: B008 - frozen, so a shared default is safe
    *,
    update_error: str | None = None,
) -> tuple[Decision, ControllerState]:
    """One pass of ``reconcileAutoscaler`` at ``now_s``: returns the decision and the new state.

    ``update_error`` says that writing this reconcile's rescale failed (call again with the arguments
    of the first call); it changes nothing when the reconcile does not rescale, as no write was made.
    """
    if observation.scale_error is not None:
        return _failed_get_scale(spec, state, observation.scale_error, observation.spec_replicas)
    if len(observation.readings) != len(spec.metrics):
        raise ConfigError(
            f"'observation.readings' must have one reading per spec.metrics entry ({len(spec.metrics)}) "
            f"(got {len(observation.readings)})"
        )
    current, min_r, max_r = observation.spec_replicas, spec.min_replicas, spec.max_replicas
    conditions = set_condition(state.conditions, _SUCCEEDED_GET_SCALE)
    recs = state.recommendations
    if recs is None:
        recs = (Timestamped(recommendation=current, timestamp_s=now_s),)
    lines = [f"current {current} replicas (scale.spec; status {observation.status_replicas}), min {min_r}, max {max_r}"]

    stz_gate = config.scale_to_zero
    has_obj_ext = _has_object_or_external(spec)
    zero_condition = find_condition(conditions, ConditionType.SCALED_TO_ZERO)
    scaled_to_zero = stz_gate and zero_condition is not None and zero_condition.status == ConditionStatus.TRUE
    desired, rescale, reason, need_metrics = 0, True, "", True
    if current == 0:
        if not ((min_r != 0 and scaled_to_zero) or (scaled_to_zero and has_obj_ext)):
            desired, rescale, need_metrics = 0, False, False
            conditions = set_condition(conditions, _SCALING_DISABLED)
            if not stz_gate:
                conditions = remove_condition(conditions, ConditionType.SCALED_TO_ZERO)
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
        conditions = set_condition(conditions, outcome.condition)
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
        conditions = set_condition(set_condition(conditions, normalized.able_to_scale), normalized.scaling_limited)
        lines.extend(normalized.explanation)
        if current == 0 and min_r != 0 and scaled_to_zero and desired < min_r:
            desired, reason = min_r, reason or BELOW_MIN
            lines.append(f"scaling up from zero to at least min {min_r}")
        rescale = desired != current

    last_scale = state.last_scale_time_s
    events: tuple[HPAEvent, ...] = ()
    if rescale and update_error is not None:
        message = f"the HPA controller was unable to update the target scale: {update_error}"
        conditions = set_condition(
            conditions, make_condition(ConditionType.ABLE_TO_SCALE, False, "FailedUpdateScale", message)
        )
        failed = f"New size: {desired}; reason: {reason}; error: {update_error}"
        events = (HPAEvent(type=EventType.WARNING, reason="FailedRescale", message=failed),)
        error = f"failed to rescale {_target(spec)}: {update_error}"
        lines.append(f"the UPDATE of the scale subresource to {desired} failed ({update_error}): stay at {current}")
        rescale, desired, reason = False, current, "FailedUpdateScale"
    elif rescale:
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
        events=events,
    )
    return decision, new_state


class HorizontalController:
    """Keeps one HPA's ``ControllerState`` between reconciles, as Kubernetes keeps it per HPA key.

    The constructor only stores its arguments; ``step`` is one sync at the caller's ``now_s``, and
    ``rescale_failed`` tells it that writing that step's rescale failed.
    """

    def __init__(self, spec: HPASpec, config: ControllerConfig = ControllerConfig()) -> None:  # noqa: B008
        self._spec = spec
        self._config = config
        self._state = ControllerState()
        self._replay: tuple[HPASpec, ControllerState, Observation, float] | None = None  # the last step, if it rescaled

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
        before = self._state
        decision, self._state = reconcile(self._spec, before, observation, now_s, self._config)
        self._replay = (self._spec, before, observation, now_s) if decision.rescale else None
        return decision

    def rescale_failed(self, error: str) -> Decision:
        """The UPDATE of the scale that the last ``step`` decided failed with ``error``: that step is
        replayed with ``update_error``, its state replaces the one the step kept, and the new decision
        (no rescale, AbleToScale=False/FailedUpdateScale) is returned."""
        if self._replay is None:
            raise ConfigError("'rescale_failed' must follow a step that decided to rescale (the last one did not)")
        spec, before, observation, now_s = self._replay
        self._replay = None
        decision, self._state = reconcile(spec, before, observation, now_s, self._config, update_error=error)
        return decision
