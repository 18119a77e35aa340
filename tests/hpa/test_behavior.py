"""Normalization tables ported from Kubernetes' ``horizontal_test.go`` (ids are the Go test names and
case names), plus the jetscale-specific edges of the same functions."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from jetscale.hpa.behavior import (
    MESSAGES,
    ConditionType,
    Reason,
    calculate_scale_down_limit_with_behaviors,
    calculate_scale_up_limit,
    calculate_scale_up_limit_with_scaling_rules,
    convert_desired_replicas_with_behavior_rate,
    convert_desired_replicas_with_rules,
    normalize,
    replicas_change_per_period,
    scale_down_window_s,
    stabilize_recommendation,
    stabilize_recommendation_with_behaviors,
    store_scale_event,
    tolerances_for,
)
from jetscale.hpa.types import (
    MAX_INT32,
    Behavior,
    ConditionStatus,
    ControllerConfig,
    CrossVersionObjectReference,
    HPAScalingPolicy,
    HPAScalingRules,
    HPASpec,
    MetricSourceType,
    MetricSpec,
    MetricTarget,
    MetricTargetType,
    PolicyType,
    ScaleEvent,
    SelectPolicy,
    Timestamped,
    Tolerances,
)

NOW = 1_000_000.0
GO_TESTS = ControllerConfig(scale_up_limit_factor=8.0)  # horizontal_test.go's init()


# ------------------------------------------------------------------------------------------- helpers


def generate_scaling_rules(
    pods: int, pods_period: int, percent: int, percent_period: int, window: int
) -> HPAScalingRules:
    """horizontal_test.go's ``generateScalingRules``: Max, the window, and the non-zero policies."""
    policies = []
    if pods:
        policies.append(HPAScalingPolicy(type=PolicyType.PODS, value=pods, period_s=pods_period))
    if percent:
        policies.append(HPAScalingPolicy(type=PolicyType.PERCENT, value=percent, period_s=percent_period))
    return HPAScalingRules(stabilization_window_s=window, select_policy=SelectPolicy.MAX, policies=tuple(policies))


DEFAULT_SCALE_UP = HPAScalingRules(
    stabilization_window_s=0,
    select_policy=SelectPolicy.MAX,
    policies=(
        HPAScalingPolicy(type=PolicyType.PODS, value=4, period_s=15),
        HPAScalingPolicy(type=PolicyType.PERCENT, value=100, period_s=15),
    ),
)
DEFAULT_SCALE_DOWN = HPAScalingRules(
    stabilization_window_s=None,
    select_policy=SelectPolicy.MAX,
    policies=(HPAScalingPolicy(type=PolicyType.PERCENT, value=100, period_s=15),),
)


def events(raw: list[int], period_s: int) -> tuple[ScaleEvent, ...]:
    """``generateEventsUniformDistribution``: events at the centres of equal segments of the period
    (Go truncates the offset to whole seconds)."""
    segment = period_s / len(raw)
    return tuple(
        ScaleEvent(replica_change=change, timestamp_s=NOW - int(period_s - segment * (i + 1) + segment / 2))
        for i, change in enumerate(raw)
    )


def rec(value: int, age_s: float) -> Timestamped:
    return Timestamped(recommendation=value, timestamp_s=NOW - age_s)


# --------------------------------------------------------------------------- TestNormalizeDesiredReplicas


@pytest.mark.parametrize(
    ("history", "prenormalized", "expected", "log_length"),
    [
        pytest.param([], 5, 5, 1, id="empty log"),
        pytest.param([rec(4, 120), rec(5, 60)], 3, 5, 3, id="stabilize"),
        pytest.param([rec(1, 120), rec(2, 60)], 3, 3, 3, id="no stabilize"),
        pytest.param([rec(10, 600), rec(9, 540)], 3, 3, 2, id="no stabilize - old recommendations"),
        pytest.param(
            [rec(10, 600), rec(4, 60), rec(5, 120), rec(9, 540)], 3, 5, 4, id="stabilize - old recommendations"
        ),
    ],
)
def test_TestNormalizeDesiredReplicas(
    history: list[Timestamped], prenormalized: int, expected: int, log_length: int
) -> None:
    result = stabilize_recommendation(history, prenormalized, window_s=300, now_s=NOW)
    assert result.replicas == expected
    assert len(result.recommendations) == log_length
    assert Timestamped(recommendation=prenormalized, timestamp_s=NOW) in result.recommendations
    expected_reason = Reason.READY_FOR_NEW_SCALE if expected == prenormalized else Reason.SCALE_DOWN_STABILIZED
    assert result.reason == expected_reason


# ------------------------------------------------------------------- TestNormalizeDesiredReplicasWithBehavior


@pytest.mark.parametrize(
    ("history", "current", "desired", "up_window", "down_window", "expected", "stored"),
    [
        pytest.param([], 100, 5, 0, 0, 5, [5], id="empty recommendations for scaling down"),
        pytest.param([rec(4, 120), rec(5, 60)], 100, 3, 0, 180, 5, [4, 5, 3], id="simple scale down stabilization"),
        pytest.param([rec(4, 120), rec(5, 60)], 1, 7, 300, 0, 4, [4, 5, 7], id="simple scale up stabilization"),
        pytest.param([rec(1, 120), rec(2, 60)], 100, 3, 300, 0, 3, [1, 2, 3], id="no scale down stabilization"),
        pytest.param([rec(4, 120), rec(5, 60)], 1, 3, 0, 300, 3, [4, 5, 3], id="no scale up stabilization"),
        pytest.param(
            [rec(10, 600), rec(9, 540)],
            100,
            3,
            0,
            0,
            3,
            [10, 3],
            id="no scale down stabilization, reuse recommendation element",
        ),
        pytest.param(
            [rec(10, 600), rec(9, 540)],
            1,
            100,
            0,
            0,
            100,
            [10, 100],
            id="no scale up stabilization, reuse recommendation element",
        ),
        pytest.param(
            [rec(10, 600), rec(4, 60), rec(5, 120), rec(9, 540)],
            100,
            3,
            0,
            180,
            5,
            [10, 4, 5, 3],
            id="scale down stabilization, reuse one of obsolete recommendation element",
        ),
        pytest.param(
            [rec(10, 6000), rec(6, 60), rec(5, 120), rec(9, 180)],
            1,
            100,
            300,
            0,
            5,
            [100, 6, 5, 9],
            id="scale up stabilization, reuse one of obsolete recommendation element",
        ),
        pytest.param(
            [rec(2, 6000), rec(3, 180)],
            2,
            1,
            300,
            300,
            2,
            None,
            id="scale up and down stabilization, do not scale up when prenormalized rec goes down",
        ),
        pytest.param(
            [rec(2, 6000), rec(1, 180)],
            2,
            3,
            300,
            300,
            2,
            None,
            id="scale up and down stabilization, do not scale down when prenormalized rec goes up",
        ),
    ],
)
def test_TestNormalizeDesiredReplicasWithBehavior(
    history: list[Timestamped],
    current: int,
    desired: int,
    up_window: int,
    down_window: int,
    expected: int,
    stored: list[int] | None,
) -> None:
    result = stabilize_recommendation_with_behaviors(
        history, current=current, desired=desired, up_window_s=up_window, down_window_s=down_window, now_s=NOW
    )
    assert result.replicas == expected
    if stored is not None:
        assert [r.recommendation for r in result.recommendations] == stored
    assert history == list(history)  # the input is not mutated (tuples in, tuples out)


def test_stabilization_reason_names_the_direction() -> None:
    up = stabilize_recommendation_with_behaviors(
        [rec(4, 120)], current=1, desired=7, up_window_s=300, down_window_s=0, now_s=NOW
    )
    down = stabilize_recommendation_with_behaviors(
        [rec(5, 60)], current=100, desired=3, up_window_s=0, down_window_s=300, now_s=NOW
    )
    assert (up.reason, up.message) == (Reason.SCALE_UP_STABILIZED, MESSAGES[Reason.SCALE_UP_STABILIZED])
    assert (down.reason, down.message) == (Reason.SCALE_DOWN_STABILIZED, MESSAGES[Reason.SCALE_DOWN_STABILIZED])
    assert down.message == (
        "recent recommendations were higher than current one, applying the highest recent recommendation"
    )


# ------------------------------------------------------------------------------------ TestScalingWithRules


@dataclass(frozen=True, slots=True, kw_only=True)
class RulesCase:
    current: int
    desired: int
    min: int
    max: int
    expected: int
    reason: str
    up: HPAScalingRules | None = None
    down: HPAScalingRules | None = None
    up_events: tuple[ScaleEvent, ...] = ()
    down_events: tuple[ScaleEvent, ...] = ()


g = generate_scaling_rules
E = events
SCALING_WITH_RULES = {
    "prenormalized desired replicas within range": RulesCase(
        current=5, desired=7, min=3, max=8, expected=7, reason="DesiredWithinRange"
    ),
    "prenormalized desired replicas < minReplicas": RulesCase(
        current=3, desired=1, min=2, max=8, expected=2, reason="TooFewReplicas"
    ),
    "prenormalized desired replicas within range when minReplicas is 0": RulesCase(
        current=1, desired=0, min=0, max=10, expected=0, reason="DesiredWithinRange"
    ),
    "maxReplicas is the limit because maxReplicas < scaleUpLimit": RulesCase(
        current=20, desired=1000, min=1, max=10, expected=10, reason="TooManyReplicas"
    ),
    "desired replica count is more than the maximum replica count": RulesCase(
        current=100, desired=1000, min=100, max=150, expected=150, reason="TooManyReplicas"
    ),
    "scaleUpLimit is the limit because scaleUpLimit < maxReplicas with user policies": RulesCase(
        current=3, desired=1000, min=1, max=2000, expected=4, reason="ScaleUpLimit", up=g(0, 0, 1, 60, 0)
    ),
    "scaleUp with default behavior": RulesCase(
        current=10, desired=50, min=1, max=1000, expected=20, reason="ScaleUpLimit"
    ),
    "scaleUp with pods policy larger than percent policy": RulesCase(
        current=10, desired=500, min=1, max=1000, expected=110, reason="ScaleUpLimit", up=g(100, 60, 100, 60, 0)
    ),
    "scaleUp with percent policy larger than pods policy": RulesCase(
        current=10, desired=500, min=1, max=1000, expected=20, reason="ScaleUpLimit", up=g(2, 60, 100, 60, 0)
    ),
    "scaleUp with spec MaxReplicas limitation with large pod policy": RulesCase(
        current=10, desired=50, min=1, max=1000, expected=50, reason="DesiredWithinRange", up=g(100, 60, 0, 0, 0)
    ),
    "scaleUp with spec MaxReplicas limitation with large percent policy": RulesCase(
        current=10, desired=50, min=1, max=1000, expected=50, reason="DesiredWithinRange", up=g(10000, 60, 0, 0, 0)
    ),
    "scaleUp with pod policy limitation": RulesCase(
        current=10, desired=50, min=1, max=1000, expected=40, reason="ScaleUpLimit", up=g(30, 60, 0, 0, 0)
    ),
    "scaleUp with percent policy limitation": RulesCase(
        current=10, desired=50, min=1, max=1000, expected=30, reason="ScaleUpLimit", up=g(0, 0, 200, 60, 0)
    ),
    "scaleDown with percent policy larger than pod policy": RulesCase(
        current=100, desired=2, min=1, max=1000, expected=80, reason="ScaleDownLimit", down=g(20, 60, 1, 60, 300)
    ),
    "scaleDown with pod policy larger than percent policy": RulesCase(
        current=100, desired=2, min=1, max=1000, expected=98, reason="ScaleDownLimit", down=g(2, 60, 1, 60, 300)
    ),
    "scaleDown with spec MinReplicas limitation with large pod policy": RulesCase(
        current=10, desired=0, min=1, max=1000, expected=1, reason="TooFewReplicas", down=g(100, 60, 0, 0, 300)
    ),
    "scaleDown with spec MinReplicas limitation with large percent policy": RulesCase(
        current=10, desired=2, min=5, max=1000, expected=5, reason="TooFewReplicas", down=g(0, 0, 100, 60, 300)
    ),
    "scaleDown with pod policy limitation": RulesCase(
        current=10, desired=2, min=1, max=1000, expected=5, reason="ScaleDownLimit", down=g(5, 60, 0, 0, 300)
    ),
    "scaleDown with percent policy limitation": RulesCase(
        current=10, desired=5, min=1, max=1000, expected=5, reason="DesiredWithinRange", down=g(0, 0, 50, 60, 300)
    ),
    "scaleUp with spec MaxReplicas limitation with large pod policy and events": RulesCase(
        current=100,
        desired=500,
        min=1,
        max=200,
        expected=200,
        reason="TooManyReplicas",
        up=g(300, 60, 0, 0, 0),
        up_events=E([1, 5, 9], 120),
    ),
    "scaleUp with spec MaxReplicas limitation with large percent policy and events": RulesCase(
        current=100,
        desired=500,
        min=1,
        max=200,
        expected=200,
        reason="TooManyReplicas",
        up=g(0, 0, 10000, 60, 0),
        up_events=E([1, 5, 9], 120),
    ),
    "scaleUp with currentReplicas limitation with rate.PeriodSeconds with a lot of recent scale up events": RulesCase(
        current=100,
        desired=500,
        min=1,
        max=1000,
        expected=100,
        reason="ScaleUpLimit",
        up=g(5, 120, 0, 0, 0),
        up_events=E([1, 5, 9], 120),
    ),
    "scaleUp with pod policy and previous scale up events": RulesCase(
        current=100,
        desired=500,
        min=1,
        max=1000,
        expected=235,
        reason="ScaleUpLimit",
        up=g(150, 120, 0, 0, 0),
        up_events=E([1, 5, 9], 120),
    ),
    "scaleUp with percent policy and previous scale up events": RulesCase(
        current=100,
        desired=500,
        min=1,
        max=1000,
        expected=255,
        reason="ScaleUpLimit",
        up=g(0, 0, 200, 120, 0),
        up_events=E([1, 5, 9], 120),
    ),
    "scaleUp with percent policy and previous scale up and down events": RulesCase(
        current=6,
        desired=24,
        min=1,
        max=1000,
        expected=16,
        reason="ScaleUpLimit",
        up=g(0, 0, 300, 300, 0),
        up_events=E([4], 120),
        down_events=E([2], 120),
    ),
    "scaleDown with default policy and previous events": RulesCase(
        current=10,
        desired=5,
        min=1,
        max=1000,
        expected=5,
        reason="DesiredWithinRange",
        down_events=E([1, 5, 9], 120),
    ),
    "scaleDown with spec MinReplicas=nil limitation with large pod policy and previous events": RulesCase(
        current=100,
        desired=0,
        min=1,
        max=1000,
        expected=1,
        reason="TooFewReplicas",
        down=g(115, 120, 0, 0, 300),
        down_events=E([1, 5, 9], 120),
    ),
    "scaleDown with spec MinReplicas limitation with large pod policy and previous events": RulesCase(
        current=100,
        desired=0,
        min=5,
        max=1000,
        expected=5,
        reason="TooFewReplicas",
        down=g(130, 120, 0, 0, 300),
        down_events=E([1, 5, 9], 120),
    ),
    "scaleDown with spec MinReplicas limitation with large percent policy and previous events": RulesCase(
        current=100,
        desired=2,
        min=5,
        max=1000,
        expected=5,
        reason="TooFewReplicas",
        down=g(0, 0, 100, 120, 300),
        down_events=E([1, 5, 9], 120),
    ),
    "scaleDown with pod policy limitation and previous events": RulesCase(
        current=100,
        desired=2,
        min=1,
        max=1000,
        expected=100,
        reason="ScaleDownLimit",
        down=g(5, 120, 0, 0, 300),
        down_events=E([1, 5, 9], 120),
    ),
    "scaleDown with percent policy limitation and previous events": RulesCase(
        current=100,
        desired=0,
        min=1,
        max=1000,
        expected=56,
        reason="ScaleDownLimit",
        down=g(0, 0, 50, 120, 300),
        down_events=E([2, 4, 6], 120),
    ),
    "scaleDown with percent policy and previous scale up and down events": RulesCase(
        current=10,
        desired=1,
        min=1,
        max=1000,
        expected=6,
        reason="ScaleDownLimit",
        down=g(0, 0, 50, 180, 0),
        up_events=E([2], 120),
        down_events=E([4], 120),
    ),
    "scaleDown with previous events preventing further scale down": RulesCase(
        current=100,
        desired=0,
        min=1,
        max=1000,
        expected=100,
        reason="ScaleDownLimit",
        down=g(0, 0, 10, 120, 300),
        down_events=E([10, 10, 10], 120),
    ),
    "scaleDown with with previous events still allowing more scale down": RulesCase(
        current=10,
        desired=5,
        min=1,
        max=1000,
        expected=5,
        reason="DesiredWithinRange",
        down=g(0, 0, 1000, 120, 300),
        down_events=E([10, 10, 10], 120),
    ),
    "check 'outdated' flag for events for one behavior for up": RulesCase(
        current=100,
        desired=200,
        min=1,
        max=1000,
        expected=200,
        reason="DesiredWithinRange",
        up=g(1000, 60, 0, 0, 0),
        up_events=E([8, 12, 9, 11], 120),
    ),
    "check that events were not marked 'outdated' for two different policies in the behavior for up": RulesCase(
        current=100,
        desired=200,
        min=1,
        max=1000,
        expected=200,
        reason="DesiredWithinRange",
        up=g(1000, 120, 100, 60, 0),
        up_events=E([8, 12, 9, 11], 120),
    ),
    "check that events were marked 'outdated' for two different policies in the behavior for up": RulesCase(
        current=100,
        desired=200,
        min=1,
        max=1000,
        expected=200,
        reason="DesiredWithinRange",
        up=g(1000, 30, 100, 60, 0),
        up_events=E([8, 12, 9, 11], 120),
    ),
    "check 'outdated' flag for events for one behavior for down": RulesCase(
        current=100,
        desired=5,
        min=1,
        max=1000,
        expected=5,
        reason="DesiredWithinRange",
        down=g(1000, 60, 0, 0, 300),
        down_events=E([8, 12, 9, 11], 120),
    ),
    "check that events were not marked 'outdated' for two different policies in the behavior for down": RulesCase(
        current=100,
        desired=5,
        min=1,
        max=1000,
        expected=5,
        reason="DesiredWithinRange",
        down=g(1000, 120, 100, 60, 300),
        down_events=E([8, 12, 9, 11], 120),
    ),
    "check that events were marked 'outdated' for two different policies in the behavior for down": RulesCase(
        current=100,
        desired=5,
        min=1,
        max=1000,
        expected=5,
        reason="DesiredWithinRange",
        down=g(1000, 30, 100, 60, 300),
        down_events=E([8, 12, 9, 11], 120),
    ),
}


@pytest.mark.parametrize("case", SCALING_WITH_RULES.values(), ids=SCALING_WITH_RULES.keys())
def test_TestScalingWithRules(case: RulesCase) -> None:
    # GenerateHPAScale{Up,Down}Rules: the test's rules replace the defaults field by field.
    limit = convert_desired_replicas_with_behavior_rate(
        current=case.current,
        desired=case.desired,
        min_replicas=case.min,
        max_replicas=case.max,
        scale_up=case.up or DEFAULT_SCALE_UP,
        scale_down=case.down or DEFAULT_SCALE_DOWN,
        up_events=case.up_events,
        down_events=case.down_events,
        now_s=NOW,
    )
    assert (limit.replicas, limit.reason) == (case.expected, case.reason)
    assert limit.message == MESSAGES[Reason(case.reason)]


# ------------------------------------------------------------------------------------- TestStoreScaleEvents


def ev(change: int, age_s: float, outdated: bool = False) -> ScaleEvent:
    return ScaleEvent(replica_change=change, timestamp_s=NOW - age_s, outdated=outdated)


STORE_CASES = {
    "empty entries with default behavior": ([], [], None, 0),
    "empty entries with two-policy-behavior": ([], [(5, False)], g(10, 60, 100, 60, 0), 0),
    "one outdated entry to be kept untouched without behavior": ([ev(7, 61)], [(7, False)], None, 0),
    "one outdated entry to be replaced with behavior": ([ev(7, 61)], [(5, False)], g(10, 60, 100, 60, 0), 0),
    "one actual entry to be not touched with behavior": (
        [ev(7, 58)], [(7, False), (5, False)], g(10, 60, 100, 60, 0), 7,
    ),
    "two entries, one of them to be replaced": (
        [ev(7, 61), ev(6, 59)], [(5, False), (6, False)], g(10, 60, 0, 0, 0), 6,
    ),
    "replace one entry, use policies with different periods": (
        [ev(8, 29), ev(6, 59), ev(7, 61), ev(9, 61)],
        [(8, False), (6, False), (7, True), (5, False)],
        g(10, 60, 100, 30, 0),
        14,
    ),
    "two entries, both actual": (
        [ev(7, 58), ev(6, 59)], [(7, False), (6, False), (5, False)], g(10, 120, 100, 30, 0), 13,
    ),
}  # fmt: skip


@pytest.mark.parametrize("direction", ["up", "down"])
@pytest.mark.parametrize(
    ("previous", "expected", "rules", "change_in_60s"), STORE_CASES.values(), ids=STORE_CASES.keys()
)
def test_TestStoreScaleEvents(
    previous: list[ScaleEvent],
    expected: list[tuple[int, bool]],
    rules: HPAScalingRules | None,
    change_in_60s: int,
    direction: str,
) -> None:
    assert replicas_change_per_period(60, previous, now_s=NOW) == change_in_60s
    behavior = None if rules is None else Behavior(scale_up=rules, scale_down=rules)
    new = 15 if direction == "up" else 5
    if direction == "up":
        stored, untouched = store_scale_event(behavior, previous, (), prev_replicas=10, new_replicas=new, now_s=NOW)
    else:
        untouched, stored = store_scale_event(behavior, (), previous, prev_replicas=10, new_replicas=new, now_s=NOW)
    assert untouched == ()
    assert [(e.replica_change, e.outdated) for e in stored] == expected


# ----------------------------------------------------------------------- limits with Min select policy


MIN_POLICIES = HPAScalingRules(
    stabilization_window_s=300,
    select_policy=SelectPolicy.MIN,
    policies=(
        HPAScalingPolicy(type=PolicyType.PODS, value=2, period_s=60),
        HPAScalingPolicy(type=PolicyType.PERCENT, value=50, period_s=60),
    ),
)


def test_TestCalculateScaleUpLimitWithScalingRules() -> None:
    assert calculate_scale_up_limit_with_scaling_rules(1, (), (), MIN_POLICIES, now_s=NOW) == 2


def test_TestCalculateScaleDownLimitWithBehaviors() -> None:
    assert calculate_scale_down_limit_with_behaviors(5, (), (), MIN_POLICIES, now_s=NOW) == 3


@pytest.mark.parametrize("direction", ["up", "down"])
def test_disabled_select_policy_blocks_its_direction(direction: str) -> None:
    disabled = HPAScalingRules(
        stabilization_window_s=0, select_policy=SelectPolicy.DISABLED, policies=DEFAULT_SCALE_UP.policies
    )
    if direction == "up":
        assert calculate_scale_up_limit_with_scaling_rules(7, (), (), disabled, now_s=NOW) == 7
        up, down, desired = disabled, DEFAULT_SCALE_DOWN, 20
    else:
        assert calculate_scale_down_limit_with_behaviors(7, (), (), disabled, now_s=NOW) == 7
        up, down, desired = DEFAULT_SCALE_UP, disabled, 1
    limit = convert_desired_replicas_with_behavior_rate(
        current=7, desired=desired, min_replicas=1, max_replicas=100,
        scale_up=up, scale_down=down, up_events=(), down_events=(), now_s=NOW,
    )  # fmt: skip
    assert limit.replicas == 7
    assert limit.reason == (Reason.SCALE_UP_LIMIT if direction == "up" else Reason.SCALE_DOWN_LIMIT)


def test_percent_scale_up_saturates_at_int32() -> None:
    huge = g(0, 0, 1_000_000, 60, 0)
    assert calculate_scale_up_limit_with_scaling_rules(MAX_INT32 // 2, (), (), huge, now_s=NOW) == MAX_INT32


def test_percent_scale_down_truncates_and_may_go_negative() -> None:
    # int32(7 x (1 - 0.5)) = int32(3.5) = 3, and int32(7 x (1 - 2)) = -7: truncation toward zero.
    assert calculate_scale_down_limit_with_behaviors(7, (), (), g(0, 0, 50, 60, 0), now_s=NOW) == 3
    assert calculate_scale_down_limit_with_behaviors(7, (), (), g(0, 0, 200, 60, 0), now_s=NOW) == -7


@pytest.mark.parametrize(
    ("age_s", "counted"),
    [pytest.param(59.5, True, id="inside"), pytest.param(60.0, False, id="exactly one period old (strict >)")],
)
def test_replicas_change_per_period_is_strict(age_s: float, counted: bool) -> None:
    assert replicas_change_per_period(60, [ev(3, age_s)], now_s=NOW) == (3 if counted else 0)


# ------------------------------------------------------------------------ TestConvertDesiredReplicasWithRules


@pytest.mark.parametrize(
    ("current", "desired", "min_r", "max_r", "expected", "reason"),
    [
        pytest.param(5, 7, 3, 8, 7, "DesiredWithinRange", id="prenormalized desired replicas within range"),
        pytest.param(3, 1, 2, 8, 2, "TooFewReplicas", id="prenormalized desired replicas < minReplicas"),
        pytest.param(1, 0, 0, 10, 0, "DesiredWithinRange", id="prenormalized desired zeroed replicas within range"),
        pytest.param(
            20, 1000, 1, 10, 10, "TooManyReplicas", id="maxReplicas is the limit because maxReplicas < scaleUpLimit"
        ),
        pytest.param(
            3, 1000, 1, 2000, 24, "ScaleUpLimit", id="scaleUpLimit is the limit because scaleUpLimit < maxReplicas"
        ),
    ],
)
def test_TestConvertDesiredReplicasWithRules(
    current: int, desired: int, min_r: int, max_r: int, expected: int, reason: str
) -> None:
    limit = convert_desired_replicas_with_rules(current, desired, min_r, max_r, GO_TESTS)
    assert (limit.replicas, limit.reason) == (expected, reason)


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        pytest.param(0, 4, id="zero current: the minimum"),
        pytest.param(1, 4, id="2x1 < 4"),
        pytest.param(3, 6, id="2x3"),
    ],
)
def test_production_scale_up_limit_is_twice_current_at_least_four(current: int, expected: int) -> None:
    assert calculate_scale_up_limit(current, ControllerConfig()) == expected


def test_legacy_cap_worked_example() -> None:
    # hpa-algorithm.md §10: current 3, metrics ask 60, max 100 -> max(6, 4) = 6 (the Go tests would give 24).
    assert convert_desired_replicas_with_rules(3, 60, 1, 100, ControllerConfig()).replicas == 6
    assert convert_desired_replicas_with_rules(3, 60, 1, 100, GO_TESTS).replicas == 24


# -------------------------------------------------------------- defaults (GenerateHPAScale{Up,Down}Rules)


def test_default_scale_down_window_is_the_controller_flag() -> None:
    assert scale_down_window_s(DEFAULT_SCALE_DOWN, ControllerConfig()) == 300.0
    assert scale_down_window_s(DEFAULT_SCALE_DOWN, ControllerConfig(downscale_stabilization_s=60)) == 60.0
    assert scale_down_window_s(g(0, 0, 100, 15, 0), ControllerConfig()) == 0.0


@pytest.mark.parametrize(
    ("current", "desired", "expected", "reason"),
    [
        pytest.param(10, 50, 20, "ScaleUpLimit", id="default scale-up doubles: max(10+4, 2x10)"),
        pytest.param(2, 50, 6, "ScaleUpLimit", id="default scale-up adds 4 pods at small counts"),
        pytest.param(10, 1, 1, "DesiredWithinRange", id="default scale-down 100% allows any decrease"),
    ],
)
def test_default_rules_effects(current: int, desired: int, expected: int, reason: str) -> None:
    limit = convert_desired_replicas_with_behavior_rate(
        current=current, desired=desired, min_replicas=1, max_replicas=1000,
        scale_up=DEFAULT_SCALE_UP, scale_down=DEFAULT_SCALE_DOWN, up_events=(), down_events=(), now_s=NOW,
    )  # fmt: skip
    assert (limit.replicas, limit.reason) == (expected, reason)


def test_default_behavior_delays_scale_down_by_the_flag_window() -> None:
    behavior = Behavior(scale_up=DEFAULT_SCALE_UP, scale_down=DEFAULT_SCALE_DOWN)
    history = [rec(10, 299)]

    def run(config: ControllerConfig) -> int:
        result = normalize(
            history, (), (), behavior=behavior, current=10, prenormalized=2, min_replicas=1, max_replicas=20,
            config=config, now_s=NOW,
        )  # fmt: skip
        assert result.able_to_scale.reason == (
            Reason.SCALE_DOWN_STABILIZED if result.replicas != 2 else Reason.READY_FOR_NEW_SCALE
        )
        return result.replicas

    assert run(ControllerConfig()) == 10
    assert run(ControllerConfig(downscale_stabilization_s=120)) == 2


# ---------------------------------------------------------------------------------------- normalize()


def test_legacy_normalize_sets_both_conditions() -> None:
    result = normalize(
        [rec(6, 60)], (), (), behavior=None, current=5, prenormalized=3, min_replicas=4, max_replicas=10,
        config=GO_TESTS, now_s=NOW,
    )  # fmt: skip
    assert (result.stabilized, result.replicas) == (6, 6)
    assert result.able_to_scale.type == ConditionType.ABLE_TO_SCALE
    assert (result.able_to_scale.status, result.able_to_scale.reason) == (ConditionStatus.TRUE, "ScaleDownStabilized")
    assert (result.scaling_limited.status, result.scaling_limited.reason) == (
        ConditionStatus.FALSE,
        "DesiredWithinRange",
    )
    assert result.scaling_limited.message == "the desired count is within the acceptable range"
    assert [r.recommendation for r in result.recommendations] == [6, 3]
    assert len(result.explanation) == 2


def test_legacy_normalize_clamps_to_min_with_scaling_limited_true() -> None:
    result = normalize(
        [], (), (), behavior=None, current=5, prenormalized=1, min_replicas=2, max_replicas=10,
        config=GO_TESTS, now_s=NOW,
    )  # fmt: skip
    assert result.replicas == 2
    assert (result.able_to_scale.reason, result.scaling_limited.status) == ("ReadyForNewScale", ConditionStatus.TRUE)
    assert result.scaling_limited.reason == "TooFewReplicas"
    assert result.scaling_limited.message == "the desired replica count is less than the minimum replica count"


def test_behavior_normalize_applies_up_window_then_rate() -> None:
    behavior = Behavior(scale_up=g(1, 60, 0, 0, 120), scale_down=DEFAULT_SCALE_DOWN)
    result = normalize(
        [rec(8, 60)], (), (), behavior=behavior, current=3, prenormalized=9, min_replicas=1, max_replicas=10,
        config=GO_TESTS, now_s=NOW,
    )  # fmt: skip
    assert result.stabilized == 8  # lowest of the last 120 s
    assert result.replicas == 4  # 1 pod per 60 s
    assert (result.able_to_scale.reason, result.scaling_limited.reason) == ("ScaleUpStabilized", "ScaleUpLimit")
    assert result.scaling_limited.status == ConditionStatus.TRUE


# ---------------------------------------------------------------------------------------- tolerances


def spec_with(behavior: Behavior | None) -> HPASpec:
    cpu = MetricSpec(
        type=MetricSourceType.RESOURCE,
        name="cpu",
        target=MetricTarget(type=MetricTargetType.UTILIZATION, average_utilization=100),
    )
    return HPASpec(
        name="test-hpa",
        namespace="test-namespace",
        scale_target_ref=CrossVersionObjectReference(kind="ReplicationController", name="test-rc"),
        min_replicas=1,
        max_replicas=5,
        metrics=(cpu,),
        behavior=behavior,
    )


def with_tolerance(rules: HPAScalingRules, tolerance: float) -> HPAScalingRules:
    return HPAScalingRules(
        stabilization_window_s=rules.stabilization_window_s,
        select_policy=rules.select_policy,
        policies=rules.policies,
        tolerance=tolerance,
    )


@pytest.mark.parametrize(
    ("behavior", "gate", "expected"),
    [
        pytest.param(None, True, Tolerances(scale_down=0.1, scale_up=0.1), id="no behavior: the flag both ways"),
        pytest.param(
            Behavior(scale_up=with_tolerance(DEFAULT_SCALE_UP, 0.01), scale_down=DEFAULT_SCALE_DOWN),
            True,
            Tolerances(scale_down=0.1, scale_up=0.01),
            id="Scaling up because of a 1% configurable tolerance",
        ),
        pytest.param(
            Behavior(scale_up=DEFAULT_SCALE_UP, scale_down=with_tolerance(DEFAULT_SCALE_DOWN, 0.9)),
            True,
            Tolerances(scale_down=0.9, scale_up=0.1),
            id="No scale-down because of a 90% configurable tolerance",
        ),
        pytest.param(
            Behavior(scale_up=DEFAULT_SCALE_UP, scale_down=DEFAULT_SCALE_DOWN),
            True,
            Tolerances(scale_down=0.1, scale_up=0.1),
            id="No scaling because of the large default tolerance",
        ),
        pytest.param(
            Behavior(scale_up=with_tolerance(DEFAULT_SCALE_UP, 0.01), scale_down=DEFAULT_SCALE_DOWN),
            False,
            Tolerances(scale_down=0.1, scale_up=0.1),
            id="No scaling because the configurable tolerance is ignored as the feature gate is disabled",
        ),
        pytest.param(
            Behavior(scale_up=with_tolerance(DEFAULT_SCALE_UP, 0.0), scale_down=DEFAULT_SCALE_DOWN),
            True,
            Tolerances(scale_down=0.1, scale_up=0.0),
            id="zero tolerance is a value, not unset",
        ),
    ],
)
def test_TestConfigurableTolerance_tolerances_for(behavior: Behavior | None, gate: bool, expected: Tolerances) -> None:
    assert tolerances_for(spec_with(behavior), ControllerConfig(configurable_tolerance=gate)) == expected
