"""Invariants of the HPA reconcile, checked with Hypothesis over random specs and random sequences of
syncs: bounds, the tolerance band, scaling policies and the downscale stabilization window.

The simulated fleet is a Pods metric (``load`` per replica, target 1) on ready pods; each decision is
applied before the next sync, as the real controller's scale update would be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from jetscale.hpa.behavior import tolerances_for
from jetscale.hpa.controller import ControllerState, Decision, HorizontalController, Observation, reconcile
from jetscale.hpa.types import (
    Behavior,
    ControllerConfig,
    CrossVersionObjectReference,
    HPAScalingPolicy,
    HPAScalingRules,
    HPASpec,
    MetricSourceType,
    MetricSpec,
    MetricTarget,
    MetricTargetType,
    Pod,
    PodMetric,
    PodMetrics,
    PolicyType,
    ScaleEvent,
    SelectPolicy,
)

T0 = 10_000.0
SETTINGS = settings(max_examples=60, deadline=None)


def pods_metric(name: str, target_milli: int) -> MetricSpec:
    return MetricSpec(
        type=MetricSourceType.PODS,
        name=name,
        target=MetricTarget(type=MetricTargetType.AVERAGE_VALUE, average_value_milli=target_milli),
    )


def make_spec(min_r: int, max_r: int, behavior: Behavior | None, metrics: tuple[MetricSpec, ...]) -> HPASpec:
    return HPASpec(
        name="prop",
        namespace="default",
        scale_target_ref=CrossVersionObjectReference(kind="Deployment", name="server", api_version="apps/v1"),
        min_replicas=min_r,
        max_replicas=max_r,
        metrics=metrics,
        behavior=behavior,
    )


def observe(replicas: int, values_milli: tuple[int, ...], now_s: float) -> Observation:
    """``replicas`` ready pods; metric i reports ``values_milli[i]`` on every pod."""
    names = [f"pod-{i}" for i in range(replicas)]
    pods = tuple(Pod(name=n, start_time_s=now_s - 3600, ready_transition_s=now_s - 3600) for n in names)
    readings = tuple(
        PodMetrics(values={n: PodMetric(value_milli=v, timestamp_s=now_s) for n in names}) for v in values_milli
    )
    return Observation(spec_replicas=replicas, status_replicas=replicas, pods=pods, readings=readings)


# ---------------------------------------------------------------------------------------- strategies

policies = st.lists(
    st.builds(
        HPAScalingPolicy,
        type=st.sampled_from(PolicyType),
        value=st.integers(1, 10) | st.integers(1, 200),
        period_s=st.integers(1, 120),
    ),
    min_size=1,
    max_size=3,
).map(tuple)


def scaling_rules(windows: st.SearchStrategy[int | None]) -> st.SearchStrategy[HPAScalingRules]:
    return st.builds(
        HPAScalingRules,
        stabilization_window_s=windows,
        select_policy=st.sampled_from(SelectPolicy),
        policies=policies,
        tolerance=st.none() | st.sampled_from([0.0, 0.05, 0.2]),
    )


behaviors = st.builds(
    Behavior,
    scale_up=scaling_rules(st.integers(0, 120)),
    scale_down=scaling_rules(st.none() | st.integers(0, 300)),
)
maybe_behavior = st.none() | behaviors
# short windows, so that policies rather than stabilization decide most rescales
brisk_behaviors = st.builds(
    Behavior, scale_up=scaling_rules(st.integers(0, 15)), scale_down=scaling_rules(st.integers(0, 30))
)
configs = st.builds(
    ControllerConfig,
    scale_up_limit_factor=st.sampled_from([2.0, 8.0]),
    downscale_stabilization_s=st.sampled_from([0.0, 60.0, 300.0]),
)


@st.composite
def bounds(draw: st.DrawFn) -> tuple[int, int]:
    min_r = draw(st.integers(1, 6))
    return min_r, draw(st.integers(min_r, 24))


# per-pod load against a target of 1000m: calm, near the target, or a burst
levels = st.integers(0, 800) | st.integers(800, 1200) | st.integers(1200, 8000)
steps = st.lists(st.tuples(st.integers(1, 60), levels), min_size=1, max_size=25)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sync:
    now_s: float
    before: int
    decision: Decision


def simulate(spec: HPASpec, config: ControllerConfig, start: int, load: list[tuple[int, int]]) -> list[Sync]:
    """Drive one controller through the syncs: every ``dt`` seconds each pod reports ``level`` milli."""
    controller = HorizontalController(spec, config)
    replicas, now, out = start, T0, []
    for dt, level in load:
        now += dt
        decision = controller.step(observe(replicas, (level,), now), now)
        out.append(Sync(now_s=now, before=replicas, decision=decision))
        replicas = decision.desired_replicas
    return out


# ------------------------------------------------------------------------------------------ properties


@SETTINGS
@given(
    limits=bounds(),
    current=st.integers(1, 40),
    levels=st.lists(st.integers(0, 20_000), min_size=1, max_size=3),
    behavior=maybe_behavior,
    config=configs,
)
def test_desired_is_within_min_and_max(
    limits: tuple[int, int], current: int, levels: list[int], behavior: Behavior | None, config: ControllerConfig
) -> None:
    """Whatever the current count, one reconcile lands in [min, max]: out-of-range counts are brought
    back without metrics, in-range ones are only moved inside the range."""
    metrics = tuple(pods_metric(f"m{i}", 1000) for i in range(len(levels)))
    spec = make_spec(*limits, behavior, metrics)
    decision, _ = reconcile(spec, ControllerState(), observe(current, tuple(levels), T0), T0, config)
    assert limits[0] <= decision.desired_replicas <= limits[1]
    assert decision.rescale == (decision.desired_replicas != current)


@SETTINGS
@given(
    limits=bounds(),
    data=st.data(),
    n_metrics=st.integers(1, 3),
    behavior=maybe_behavior,
    config=configs,
    syncs=st.lists(st.integers(1, 60), min_size=1, max_size=10),
)
def test_no_change_inside_the_tolerance_band(
    limits: tuple[int, int],
    data: st.DataObject,
    n_metrics: int,
    behavior: Behavior | None,
    config: ControllerConfig,
    syncs: list[int],
) -> None:
    """When every metric's usage ratio is within its tolerance band, nothing moves, sync after sync."""
    current = data.draw(st.integers(*limits), label="current")
    targets = data.draw(st.lists(st.integers(1, 50_000), min_size=n_metrics, max_size=n_metrics), label="targets")
    metrics = tuple(pods_metric(f"m{i}", t) for i, t in enumerate(targets))
    spec = make_spec(*limits, behavior, metrics)
    tolerances = tolerances_for(spec, config)
    controller = HorizontalController(spec, config)
    now = T0
    for dt in syncs:
        now += dt
        values = []
        for target in targets:
            low = math.ceil(target * (1 - tolerances.scale_down))
            high = math.floor(target * (1 + tolerances.scale_up))
            assume(low <= high)
            value = data.draw(st.integers(low, high))
            assume(tolerances.is_within(value / target))
            values.append(value)
        decision = controller.step(observe(current, tuple(values), now), now)
        assert (decision.rescale, decision.desired_replicas) == (False, current)
        assert decision.metric_replicas == current


def window_change(log: list[tuple[float, int]], now_s: float, period_s: int) -> int:
    """Net replicas added (minus removed) by the rescales of the last ``period_s`` seconds."""
    return sum(change for t, change in log if t > now_s - period_s)


def permits(policy: HPAScalingPolicy, up: bool, new: int, net_in_window: int) -> bool:
    """The user-facing promise of one policy: replicas at the start of its period, ``new - net``, may
    grow by ``value`` pods / percent (rounded up), or shrink by ``value`` pods / percent (truncated)."""
    start = new - net_in_window
    if up:
        if policy.type is PolicyType.PODS:
            return new <= start + policy.value
        return new <= math.ceil(start * (1 + policy.value / 100))
    if policy.type is PolicyType.PODS:
        return new >= start - policy.value
    return new >= int(start * (1 - policy.value / 100))


@SETTINGS
@given(limits=bounds(), behavior=brisk_behaviors, load=steps, data=st.data())
def test_no_policy_is_exceeded_within_its_period(
    limits: tuple[int, int], behavior: Behavior, load: list[tuple[int, int]], data: st.DataObject
) -> None:
    """Every rescale is allowed by the direction's policies: by one of them under Max, by all under
    Min, by none under Disabled (no rescale at all in that direction)."""
    spec = make_spec(*limits, behavior, (pods_metric("load", 1000),))
    start = data.draw(st.integers(*limits), label="start")
    log: list[tuple[float, int]] = []
    for sync in simulate(spec, ControllerConfig(), start, load):
        new, before = sync.decision.desired_replicas, sync.before
        if new != before:
            up = new > before
            rules = behavior.scale_up if up else behavior.scale_down
            log.append((sync.now_s, new - before))
            verdicts = [permits(p, up, new, window_change(log, sync.now_s, p.period_s)) for p in rules.policies]
            if rules.select_policy is SelectPolicy.DISABLED:
                raise AssertionError(f"rescale {before} -> {new} in a Disabled direction")
            assert any(verdicts) if rules.select_policy is SelectPolicy.MAX else all(verdicts), (before, new, log)


@SETTINGS
@given(limits=bounds(), behavior=maybe_behavior, load=steps, config=configs, data=st.data())
def test_no_scale_down_below_a_recommendation_inside_the_down_window(
    limits: tuple[int, int],
    behavior: Behavior | None,
    load: list[tuple[int, int]],
    config: ControllerConfig,
    data: st.DataObject,
) -> None:
    """A scale-down never goes below a recommendation made within the downscale window: with a higher
    recommendation less than a window ago, the count holds until that window has passed."""
    spec = make_spec(*limits, behavior, (pods_metric("load", 1000),))
    window = config.downscale_stabilization_s
    if behavior is not None and behavior.scale_down.stabilization_window_s is not None:
        window = behavior.scale_down.stabilization_window_s
    start = data.draw(st.integers(*limits), label="start")
    syncs = simulate(spec, config, start, load)
    recommendations = [(syncs[0].now_s, start)]  # recordInitialRecommendation
    for sync in syncs:
        assert sync.decision.metric_replicas is not None
        recommendations.append((sync.now_s, sync.decision.metric_replicas))
        if sync.decision.desired_replicas < sync.before:
            recent = [r for t, r in recommendations if t > sync.now_s - window]
            assert sync.decision.desired_replicas >= max(recent, default=0), (sync, recent)


@SETTINGS
@given(limits=bounds(), behavior=brisk_behaviors, load=steps, data=st.data())
def test_scale_events_history_keeps_every_event_inside_the_longest_period(
    limits: tuple[int, int], behavior: Behavior, load: list[tuple[int, int]], data: st.DataObject
) -> None:
    """storeScaleEvent only reuses slots older than the longest period: the recent history is whole."""
    spec = make_spec(*limits, behavior, (pods_metric("load", 1000),))
    controller = HorizontalController(spec, ControllerConfig())
    replicas, now = data.draw(st.integers(*limits), label="start"), T0
    applied: list[tuple[float, int]] = []
    for dt, level in load:
        now += dt
        decision = controller.step(observe(replicas, (level,), now), now)
        if decision.rescale:
            applied.append((now, decision.desired_replicas - replicas))
        replicas = decision.desired_replicas
    for events, rules, sign in (
        (controller.state.scale_up_events, behavior.scale_up, 1),
        (controller.state.scale_down_events, behavior.scale_down, -1),
    ):
        longest = max(p.period_s for p in rules.policies)
        expected = sorted(sign * c for t, c in applied if sign * c > 0 and t >= now - longest)
        kept = sorted(e.replica_change for e in _recent(events, now, longest))
        assert kept == expected


def _recent(events: tuple[ScaleEvent, ...], now_s: float, period_s: int) -> list[ScaleEvent]:
    return [e for e in events if e.timestamp_s >= now_s - period_s]
