"""HPA normalization: stabilization windows, scaling policies and the scale-event history.

This is the normalization half of Kubernetes' ``pkg/controller/podautoscaler/horizontal.go`` (newest
master), the step that turns the metric-based ("pre-normalized") replica count into the count the
controller writes:

- legacy path (``spec.behavior`` unset): ``stabilizeRecommendation`` (downscale window from the
  controller flag) then ``convertDesiredReplicasWithRules`` (min/max and the cap max(factor x current,
  minimum));
- behavior path: ``stabilizeRecommendationWithBehaviors`` (``current`` clamped into [lowest
  recommendation in the up window, highest in the down window]) then
  ``convertDesiredReplicasWithBehaviorRate`` (Pods/Percent policies over their periods, where a period
  starts at ``current - added + deleted``);
- ``storeScaleEvent`` after a rescale, and ``tolerancesForHpa``.

Kubernetes reads ``time.Now()`` and mutates maps; here every function takes ``now_s`` and the history
explicitly and returns new tuples. Time comparisons are strict, as Go's ``Before``/``After``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from jetscale.hpa.gonum import to_int32
from jetscale.hpa.types import (
    MAX_INT32,
    MIN_INT32,
    Behavior,
    Condition,
    ConditionStatus,
    ControllerConfig,
    HPAScalingPolicy,
    HPAScalingRules,
    HPASpec,
    PolicyType,
    ScaleEvent,
    SelectPolicy,
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


class ConditionType(StrEnum):
    ABLE_TO_SCALE = "AbleToScale"
    SCALING_ACTIVE = "ScalingActive"
    SCALING_LIMITED = "ScalingLimited"
    SCALED_TO_ZERO = "ScaledToZero"


class Reason(StrEnum):
    """The reasons normalization writes on AbleToScale and ScalingLimited."""

    READY_FOR_NEW_SCALE = "ReadyForNewScale"
    SCALE_UP_STABILIZED = "ScaleUpStabilized"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    DESIRED_WITHIN_RANGE = "DesiredWithinRange"
    TOO_MANY_REPLICAS = "TooManyReplicas"
    TOO_FEW_REPLICAS = "TooFewReplicas"
    SCALE_UP_LIMIT = "ScaleUpLimit"
    SCALE_DOWN_LIMIT = "ScaleDownLimit"


# The condition messages, word for word as horizontal.go writes them.
MESSAGES: dict[Reason, str] = {
    Reason.READY_FOR_NEW_SCALE: "recommended size matches current size",
    Reason.SCALE_UP_STABILIZED: (
        "recent recommendations were lower than current one, applying the lowest recent recommendation"
    ),
    Reason.SCALE_DOWN_STABILIZED: (
        "recent recommendations were higher than current one, applying the highest recent recommendation"
    ),
    Reason.DESIRED_WITHIN_RANGE: "the desired count is within the acceptable range",
    Reason.TOO_MANY_REPLICAS: "the desired replica count is more than the maximum replica count",
    Reason.TOO_FEW_REPLICAS: "the desired replica count is less than the minimum replica count",
    Reason.SCALE_UP_LIMIT: "the desired replica count is increasing faster than the maximum scale rate",
    Reason.SCALE_DOWN_LIMIT: "the desired replica count is decreasing faster than the maximum scale rate",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Stabilization:
    """A stabilized recommendation and the recommendation history with the new entry stored.

    ``reason`` is what AbleToScale gets: ``ReadyForNewScale`` when stabilization changed nothing.
    """

    replicas: int
    reason: Reason
    recommendations: tuple[Timestamped, ...]
    explanation: str

    @property
    def message(self) -> str:
        return MESSAGES[self.reason]


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit:
    """A replica count after the min/max and rate limits, and the ScalingLimited reason."""

    replicas: int
    reason: Reason
    explanation: str

    @property
    def message(self) -> str:
        return MESSAGES[self.reason]


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


def _store(history: tuple[Timestamped, ...], index: int | None, entry: Timestamped) -> tuple[Timestamped, ...]:
    if index is None:
        return (*history, entry)
    return (*history[:index], entry, *history[index + 1 :])


# --------------------------------------------------------------------------------------- legacy path


def stabilize_recommendation(
    recommendations: Sequence[Timestamped], prenormalized: int, *, window_s: float, now_s: float
) -> Stabilization:
    """``stabilizeRecommendation``: the highest recommendation not older than the downscale window
    (the new one included); the new one replaces the last expired entry, or is appended."""
    history = tuple(recommendations)
    cutoff = now_s - window_s
    highest = prenormalized
    old_index: int | None = None
    for i, rec in enumerate(history):
        if rec.timestamp_s < cutoff:
            old_index = i
        elif rec.recommendation > highest:
            highest = rec.recommendation
    stored = _store(history, old_index, Timestamped(recommendation=prenormalized, timestamp_s=now_s))
    reason = Reason.SCALE_DOWN_STABILIZED if highest != prenormalized else Reason.READY_FOR_NEW_SCALE
    return Stabilization(
        replicas=highest,
        reason=reason,
        recommendations=stored,
        explanation=(
            f"stabilization: highest recommendation of the last {window_s:g}s is {highest}"
            f" (metrics ask {prenormalized}) -> {highest} [{reason}]"
        ),
    )


def calculate_scale_up_limit(current: int, config: ControllerConfig) -> int:
    """``calculateScaleUpLimit``: max(factor x current, minimum) (production: 2 and 4)."""
    return to_int32(max(config.scale_up_limit_factor * current, config.scale_up_limit_minimum))


def convert_desired_replicas_with_rules(
    current: int, desired: int, min_replicas: int, max_replicas: int, config: ControllerConfig
) -> Limit:
    """``convertDesiredReplicasWithRules``: clamp into [min, min(max, scale-up limit)]."""
    limit = calculate_scale_up_limit(current, config)
    if max_replicas > limit:
        max_allowed, why = limit, Reason.SCALE_UP_LIMIT
    else:
        max_allowed, why = max_replicas, Reason.TOO_MANY_REPLICAS
    bounds = (
        f"limits: min {min_replicas}, max {max_replicas}, scale-up limit max("
        f"{config.scale_up_limit_factor:g} x {current}, {config.scale_up_limit_minimum:g}) = {limit}"
    )
    if desired < min_replicas:
        result, reason = min_replicas, Reason.TOO_FEW_REPLICAS
    elif desired > max_allowed:
        result, reason = max_allowed, why
    else:
        result, reason = desired, Reason.DESIRED_WITHIN_RANGE
    return Limit(replicas=result, reason=reason, explanation=f"{bounds}: {desired} -> {result} [{reason}]")


# ------------------------------------------------------------------------------------- behavior path


def scale_down_window_s(rules: HPAScalingRules, config: ControllerConfig) -> float:
    """``maybeInitScaleDownStabilizationWindow``: an unset scaleDown window means the controller flag."""
    if rules.stabilization_window_s is None:
        return config.downscale_stabilization_s
    return float(rules.stabilization_window_s)


def stabilize_recommendation_with_behaviors(
    recommendations: Sequence[Timestamped],
    *,
    current: int,
    desired: int,
    up_window_s: float,
    down_window_s: float,
    now_s: float,
) -> Stabilization:
    """``stabilizeRecommendationWithBehaviors``: ``current`` clamped into [lowest recommendation
    within the up window, highest within the down window], both bounds including ``desired``.

    The unstabilized ``desired`` is stored, replacing the last entry expired for both windows.
    """
    history = tuple(recommendations)
    up_cutoff = now_s - up_window_s
    down_cutoff = now_s - down_window_s
    lowest = desired
    highest = desired
    old_index: int | None = None
    for i, rec in enumerate(history):
        if rec.timestamp_s > up_cutoff:
            lowest = min(lowest, rec.recommendation)
        if rec.timestamp_s > down_cutoff:
            highest = max(highest, rec.recommendation)
        if rec.timestamp_s < up_cutoff and rec.timestamp_s < down_cutoff:
            old_index = i
    result = current
    if result < lowest:
        result = lowest
    if result > highest:
        result = highest
    stored = _store(history, old_index, Timestamped(recommendation=desired, timestamp_s=now_s))
    if result == desired:
        reason = Reason.READY_FOR_NEW_SCALE
    elif desired >= current:
        reason = Reason.SCALE_UP_STABILIZED
    else:
        reason = Reason.SCALE_DOWN_STABILIZED
    return Stabilization(
        replicas=result,
        reason=reason,
        recommendations=stored,
        explanation=(
            f"stabilization: current {current} clamped into [lowest of the last {up_window_s:g}s = {lowest},"
            f" highest of the last {down_window_s:g}s = {highest}] (metrics ask {desired}) -> {result} [{reason}]"
        ),
    )


def replicas_change_per_period(period_s: float, events: Sequence[ScaleEvent], *, now_s: float) -> int:
    """``getReplicasChangePerPeriod``: the replicas changed by events strictly newer than now - period."""
    cutoff = now_s - period_s
    return sum(e.replica_change for e in events if e.timestamp_s > cutoff)


def _propose_up(period_start: int, policy: HPAScalingPolicy) -> int:
    if policy.type is PolicyType.PODS:
        return period_start + policy.value
    # Rounded up, or a small Percent would never add a replica.
    return to_int32(math.ceil(period_start * (1 + policy.value / 100)))


def _propose_down(period_start: int, policy: HPAScalingPolicy) -> int:
    if policy.type is PolicyType.PODS:
        return period_start - policy.value
    return to_int32(period_start * (1 - policy.value / 100))  # truncated, may go negative


def _policy_limit(
    up: bool,
    current: int,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: HPAScalingRules,
    now_s: float,
) -> tuple[int, str]:
    """The limit the policies of one direction allow, and how it was reached.

    Each policy's period starts at ``current - added + deleted`` (events within that period). Max
    selects the policy allowing the biggest change, Min the smallest, Disabled allows none.
    """
    if rules.select_policy is SelectPolicy.DISABLED:
        return current, "Disabled"
    propose = _propose_up if up else _propose_down
    highest_wins = up == (rules.select_policy is SelectPolicy.MAX)
    result = MIN_INT32 if highest_wins else MAX_INT32
    parts = []
    for policy in rules.policies:
        added = replicas_change_per_period(policy.period_s, up_events, now_s=now_s)
        deleted = replicas_change_per_period(policy.period_s, down_events, now_s=now_s)
        start = current - added + deleted
        proposed = propose(start, policy)
        result = max(result, proposed) if highest_wins else min(result, proposed)
        parts.append(f"{policy.type} {policy.value}/{policy.period_s}s from {start} -> {proposed}")
    return result, f"{rules.select_policy} of [{'; '.join(parts)}]"


def calculate_scale_up_limit_with_scaling_rules(
    current: int,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: HPAScalingRules,
    *,
    now_s: float,
) -> int:
    """``calculateScaleUpLimitWithScalingRules``: the highest count the scaleUp policies allow."""
    return _policy_limit(True, current, up_events, down_events, rules, now_s)[0]


def calculate_scale_down_limit_with_behaviors(
    current: int,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    rules: HPAScalingRules,
    *,
    now_s: float,
) -> int:
    """``calculateScaleDownLimitWithBehaviors``: the lowest count the scaleDown policies allow."""
    return _policy_limit(False, current, up_events, down_events, rules, now_s)[0]


def convert_desired_replicas_with_behavior_rate(
    *,
    current: int,
    desired: int,
    min_replicas: int,
    max_replicas: int,
    scale_up: HPAScalingRules,
    scale_down: HPAScalingRules,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    now_s: float,
) -> Limit:
    """``convertDesiredReplicasWithBehaviorRate``: apply the policy limit of the direction of change,
    never past ``current``; ``max`` binds only when scaling up and ``min`` only when scaling down."""
    if desired > current:
        limit, how = _policy_limit(True, current, up_events, down_events, scale_up, now_s)
        limit = max(limit, current)
        bound, why = (
            (limit, Reason.SCALE_UP_LIMIT) if max_replicas > limit else (max_replicas, Reason.TOO_MANY_REPLICAS)
        )
        result = min(desired, bound)
        text = f"scale-up limit {limit} ({how}), max {max_replicas}"
    elif desired < current:
        limit, how = _policy_limit(False, current, up_events, down_events, scale_down, now_s)
        limit = min(limit, current)
        bound, why = (
            (limit, Reason.SCALE_DOWN_LIMIT) if min_replicas < limit else (min_replicas, Reason.TOO_FEW_REPLICAS)
        )
        result = max(desired, bound)
        text = f"scale-down limit {limit} ({how}), min {min_replicas}"
    else:
        result, text, why = desired, "no change, no rate limit", Reason.DESIRED_WITHIN_RANGE
    reason = why if result != desired else Reason.DESIRED_WITHIN_RANGE
    return Limit(replicas=result, reason=reason, explanation=f"{text}: {desired} -> {result} [{reason}]")


def store_scale_event(
    behavior: Behavior | None,
    up_events: Sequence[ScaleEvent],
    down_events: Sequence[ScaleEvent],
    *,
    prev_replicas: int,
    new_replicas: int,
    now_s: float,
) -> tuple[tuple[ScaleEvent, ...], tuple[ScaleEvent, ...]]:
    """``storeScaleEvent``: record a rescale in the history of its direction (only with a behavior).

    Events older than the direction's longest policy period are marked outdated; the new event takes
    the last outdated slot, or is appended. Returns (up events, down events).
    """
    ups, downs = tuple(up_events), tuple(down_events)
    if behavior is None:
        return ups, downs
    going_up = new_replicas > prev_replicas
    rules = behavior.scale_up if going_up else behavior.scale_down
    events = ups if going_up else downs
    longest = max((p.period_s for p in rules.policies), default=0)
    cutoff = now_s - longest
    marked = tuple(replace(e, outdated=True) if e.timestamp_s < cutoff else e for e in events)
    slot: int | None = None
    for i, event in enumerate(marked):
        if event.outdated:
            slot = i
    new_event = ScaleEvent(replica_change=abs(new_replicas - prev_replicas), timestamp_s=now_s)
    stored = (*marked, new_event) if slot is None else (*marked[:slot], new_event, *marked[slot + 1 :])
    return (stored, downs) if going_up else (ups, stored)


# ------------------------------------------------------------------------------------- normalization


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
