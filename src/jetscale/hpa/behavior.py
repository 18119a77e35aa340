"""HPA normalization: the step that turns the metric-based ("pre-normalized") replica count into the
count the controller writes, and the per-HPA tolerances.

Mirrors ``normalizeDesiredReplicas``, ``normalizeDesiredReplicasWithBehaviors`` and
``tolerancesForHpa`` of Kubernetes' ``pkg/controller/podautoscaler/horizontal.go`` (newest master):

- legacy path (``spec.behavior`` unset): downscale stabilization from the controller flag, then
  ``convertDesiredReplicasWithRules`` (min/max and the cap max(factor x current, minimum));
- behavior path: two-sided stabilization, then ``convertDesiredReplicasWithBehaviorRate`` (Pods/Percent
  policies over their periods).

The two halves live apart along that seam: ``jetscale.hpa.stabilization`` (the recommendation history)
and ``jetscale.hpa.ratelimits`` (the policies and the scale-event history); the condition types and
reasons are in ``jetscale.hpa.conditions``. Every name they define is re-exported here, as this module
was their one home before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jetscale.hpa.conditions import MESSAGES, ConditionType, Reason
from jetscale.hpa.ratelimits import (
    Limit,
    calculate_scale_down_limit_with_behaviors,
    calculate_scale_up_limit,
    calculate_scale_up_limit_with_scaling_rules,
    convert_desired_replicas_with_behavior_rate,
    convert_desired_replicas_with_rules,
    replicas_change_per_period,
    store_scale_event,
)
from jetscale.hpa.stabilization import (
    Stabilization,
    scale_down_window_s,
    stabilize_recommendation,
    stabilize_recommendation_with_behaviors,
)
from jetscale.hpa.types import (
    Behavior,
    Condition,
    ConditionStatus,
    ControllerConfig,
    HPASpec,
    ScaleEvent,
    Timestamped,
    Tolerances,
)

__all__ = [
    "MESSAGES",
    "ConditionType",
    "Limit",
    "Normalization",
    "Reason",
    "Stabilization",
    "calculate_scale_down_limit_with_behaviors",
    "calculate_scale_up_limit",
    "calculate_scale_up_limit_with_scaling_rules",
    "convert_desired_replicas_with_behavior_rate",
    "convert_desired_replicas_with_rules",
    "normalize",
    "replicas_change_per_period",
    "scale_down_window_s",
    "stabilize_recommendation",
    "stabilize_recommendation_with_behaviors",
    "store_scale_event",
    "tolerances_for",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Normalization:
    """The result of ``normalizeDesiredReplicas[WithBehaviors]``: the count to write, the two
    conditions it sets and the new recommendation history."""

    replicas: int
    stabilized: int
    able_to_scale: Condition
    scaling_limited: Condition
    recommendations: tuple[Timestamped, ...]
    explanation: tuple[str, ...]


def normalize(
    recommendations: Sequence[Timestamped],
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    *,
    behavior: Behavior | None,
    current: int,
    prenormalized: int,
    min_replicas: int,
    max_replicas: int,
    config: ControllerConfig,
    now_s: float,
) -> Normalization:
    """``normalizeDesiredReplicas`` when ``behavior`` is None (downscale stabilization, then the
    rules), else ``normalizeDesiredReplicasWithBehaviors`` (two-sided stabilization, then the policy
    rate limits). AbleToScale carries the stabilization reason; ScalingLimited is True when a limit
    changed the stabilized count."""
    if behavior is None:
        stab = stabilize_recommendation(
            recommendations, prenormalized, window_s=config.downscale_stabilization_s, now_s=now_s
        )
        limit = convert_desired_replicas_with_rules(current, stab.replicas, min_replicas, max_replicas, config)
    else:
        stab = stabilize_recommendation_with_behaviors(
            recommendations,
            current=current,
            desired=prenormalized,
            up_window_s=float(behavior.scale_up.stabilization_window_s or 0),
            down_window_s=scale_down_window_s(behavior.scale_down, config),
            now_s=now_s,
        )
        limit = convert_desired_replicas_with_behavior_rate(
            current=current,
            desired=stab.replicas,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            scale_up=behavior.scale_up,
            scale_down=behavior.scale_down,
            up_events=up_events,
            down_events=down_events,
            now_s=now_s,
        )
    limited = ConditionStatus.FALSE if limit.replicas == stab.replicas else ConditionStatus.TRUE
    return Normalization(
        replicas=limit.replicas,
        stabilized=stab.replicas,
        able_to_scale=Condition(
            type=ConditionType.ABLE_TO_SCALE, status=ConditionStatus.TRUE, reason=stab.reason, message=stab.message
        ),
        scaling_limited=Condition(
            type=ConditionType.SCALING_LIMITED, status=limited, reason=limit.reason, message=limit.message
        ),
        recommendations=stab.recommendations,
        explanation=(stab.explanation, limit.explanation),
    )


def tolerances_for(spec: HPASpec, config: ControllerConfig) -> Tolerances:
    """``tolerancesForHpa``: the controller's tolerance both ways, overridden per direction by
    ``behavior.scale{Up,Down}.tolerance`` when HPAConfigurableTolerance is on."""
    both = Tolerances(scale_down=config.tolerance, scale_up=config.tolerance)
    behavior = spec.behavior
    if behavior is None or not config.configurable_tolerance:
        return both
    return Tolerances(
        scale_down=both.scale_down if behavior.scale_down.tolerance is None else behavior.scale_down.tolerance,
        scale_up=both.scale_up if behavior.scale_up.tolerance is None else behavior.scale_up.tolerance,
    )
