"""Rate limits: how far one sync may move the replica count, and the scale-event history they read.

Mirrors Kubernetes' ``horizontal.go`` (newest master): ``convertDesiredReplicasWithRules`` and
``calculateScaleUpLimit`` (legacy path: clamp into [min, min(max, max(factor x current, minimum))]),
``convertDesiredReplicasWithBehaviorRate`` with ``calculateScaleUpLimitWithScalingRules`` and
``calculateScaleDownLimitWithBehaviors`` (Pods/Percent policies over their periods, a period starting
at ``current - added + deleted``), ``getReplicasChangePerPeriod`` and ``storeScaleEvent``. ``now_s`` and
the events are arguments; time comparisons are strict, as Go's ``Before``/``After``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from jetscale.hpa.conditions import MESSAGES, Reason
from jetscale.hpa.gonum import to_int32
from jetscale.hpa.types import (
    MAX_INT32,
    MIN_INT32,
    Behavior,
    ControllerConfig,
    HPAScalingPolicy,
    HPAScalingRules,
    PolicyType,
    ScaleEvent,
    SelectPolicy,
)

__all__ = [
    "Limit",
    "calculate_scale_down_limit_with_behaviors",
    "calculate_scale_up_limit",
    "calculate_scale_up_limit_with_scaling_rules",
    "convert_desired_replicas_with_behavior_rate",
    "convert_desired_replicas_with_rules",
    "replicas_change_per_period",
    "store_scale_event",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Limit:
    """A replica count after the min/max and rate limits, and the ScalingLimited reason."""

    replicas: int
    reason: Reason
    explanation: str

    @property
    def message(self) -> str:
        return MESSAGES[self.reason]


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
