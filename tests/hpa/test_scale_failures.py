"""The scale subresource's failures as inputs to the reconcile: a failed GET (``Observation.scale_error``)
and a failed UPDATE (``reconcile(..., update_error=...)``, ``HorizontalController.rescale_failed``).

The first two tests are ported from Kubernetes' ``horizontal_test.go`` (``TestConditionFailedGetScale``,
``TestConditionFailedUpdateScale``: the fake scale client answers "something went wrong"); the rest pin
what ``reconcileAutoscaler`` does around them (horizontal.go, newest master): a failed GET changes only
AbleToScale, and a failed UPDATE records no rescale but keeps the recommendation normalization stored.
The fixture is test_controller.py's.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from test_controller import (
    CASES,
    CM_DOWN,
    CONFIG,
    FAILING_UP,
    NOW,
    STATUS_OK,
    TENTH_X3,
    UP,
    F,
    Scenario,
    T,
    as_tuples,
    object_qps,
    rules,
    status_ok,
)

from jetscale.errors import ConfigError
from jetscale.hpa.controller import ControllerState, HorizontalController, Observation, reconcile
from jetscale.hpa.types import (
    Behavior,
    EventType,
    HPAEvent,
    PolicyType,
    ScaleEvent,
    Timestamped,
)

WRONG = "something went wrong"
TARGET = "ReplicationController/test-namespace/test-rc"
# TestConditionFailedUpdateScale's fixture: 150% of a 100% target on 3 pods asks for 5 (= max).
UPDATE_FIXTURE = Scenario(
    min=1, max=5, spec_replicas=3, cpu_target=100, levels=(150, 150, 150), requests_milli=TENTH_X3
)
CPU_ABOVE = "cpu resource utilization (percentage of request) above target"


def test_TestConditionFailedGetScale() -> None:
    spec = FAILING_UP.spec()
    decision, state = reconcile(spec, ControllerState(), Observation.scale_unavailable(WRONG, replicas=3), NOW, CONFIG)
    assert (decision.desired_replicas, decision.rescale, decision.reason) == (3, False, "FailedGetScale")
    assert as_tuples(decision.conditions) == (("AbleToScale", F, "FailedGetScale"),)
    assert decision.conditions[0].message == f"the HPA controller was unable to get the target's current scale: {WRONG}"
    assert decision.events == (HPAEvent(type=EventType.WARNING, reason="FailedGetScale", message=WRONG),)
    assert decision.error == f"failed to query scale subresource for {TARGET}: {WRONG}"
    assert (decision.metric_replicas, decision.proposals) == (None, ())
    # nothing was read, so not even the first recommendation is recorded
    assert state == ControllerState(conditions=decision.conditions)


def test_TestConditionFailedUpdateScale() -> None:
    written, _ = UPDATE_FIXTURE.run()
    assert (written.desired_replicas, written.rescale) == (5, True)  # what the failed write tried
    state = ControllerState(recommendations=UPDATE_FIXTURE.recommendations)
    decision, after = reconcile(
        UPDATE_FIXTURE.spec(), state, UPDATE_FIXTURE.observation(), NOW, CONFIG, update_error=WRONG
    )
    assert (decision.desired_replicas, decision.rescale, decision.reason) == (3, False, "FailedUpdateScale")
    assert as_tuples(decision.conditions) == status_ok(("AbleToScale", F, "FailedUpdateScale"))
    assert decision.conditions[0].message == f"the HPA controller was unable to update the target scale: {WRONG}"
    assert decision.events == (
        HPAEvent(
            type=EventType.WARNING, reason="FailedRescale", message=f"New size: 5; reason: {CPU_ABOVE}; error: {WRONG}"
        ),
    )
    assert decision.error == f"failed to rescale {TARGET}: {WRONG}"
    assert decision.metric_replicas == 5
    assert after.last_scale_time_s is None
    assert after.conditions == decision.conditions


def test_a_failed_get_changes_only_able_to_scale() -> None:
    before = ControllerState(
        recommendations=(Timestamped(recommendation=4, timestamp_s=NOW - 30),),
        scale_up_events=(ScaleEvent(replica_change=1, timestamp_s=NOW - 30),),
        conditions=UP.run()[0].conditions,
        last_scale_time_s=NOW - 30,
    )
    decision, after = reconcile(UP.spec(), before, Observation.scale_unavailable(WRONG, replicas=4), NOW, CONFIG)
    assert as_tuples(after.conditions) == status_ok(("AbleToScale", F, "FailedGetScale"))
    assert after == replace(before, conditions=after.conditions)
    assert (decision.current_replicas, decision.desired_replicas) == (4, 4)


def test_a_failed_update_keeps_the_recommendation_but_records_no_scale_event() -> None:
    behavior = Behavior(
        scale_up=rules(0, ((PolicyType.PODS, 4, 15),)), scale_down=rules(300, ((PolicyType.PERCENT, 100, 15),))
    )
    scenario = replace(UP, behavior=behavior)
    state = ControllerState(recommendations=scenario.recommendations)
    ok, ok_state = reconcile(scenario.spec(), state, scenario.observation(), NOW, CONFIG)
    failed, failed_state = reconcile(scenario.spec(), state, scenario.observation(), NOW, CONFIG, update_error=WRONG)
    assert ok.rescale and ok_state.scale_up_events == (
        ScaleEvent(replica_change=ok.desired_replicas - 3, timestamp_s=NOW),
    )
    assert (failed.rescale, failed_state.scale_up_events, failed_state.scale_down_events) == (False, (), ())
    assert failed_state.recommendations == ok_state.recommendations  # stabilization stored the proposal
    assert failed_state.last_scale_time_s is None


def test_a_failed_update_to_zero_leaves_scaled_to_zero_unwritten() -> None:
    to_zero = replace(CM_DOWN, min=0, metrics=(object_qps(value_milli=20000),), levels=(0,), scale_to_zero=True)
    ok, _ = to_zero.run()
    assert as_tuples(ok.conditions)[-1] == ("ScaledToZero", T, "ScaledToZero")
    state = ControllerState(recommendations=to_zero.recommendations)
    failed, after = reconcile(to_zero.spec(), state, to_zero.observation(), NOW, to_zero.config(), update_error=WRONG)
    assert as_tuples(failed.conditions) == status_ok(("AbleToScale", F, "FailedUpdateScale"))
    assert "ScaledToZero" not in [c.type for c in after.conditions]
    assert failed.desired_replicas == 5


@pytest.mark.parametrize("name", ["TestTolerance", "TestZeroReplicas", "TestEmptyMetrics"])
def test_an_update_error_without_a_rescale_changes_nothing(name: str) -> None:
    scenario = CASES[name].scenario
    state = ControllerState(recommendations=scenario.recommendations, conditions=scenario.conditions)
    plain = reconcile(scenario.spec(), state, scenario.observation(), NOW, scenario.config())
    told = reconcile(scenario.spec(), state, scenario.observation(), NOW, scenario.config(), update_error=WRONG)
    assert not plain[0].rescale
    assert told == plain


@pytest.mark.parametrize("name", list(CASES), ids=list(CASES))
def test_the_default_path_records_no_events(name: str) -> None:
    decision, _ = CASES[name].scenario.run()
    assert decision.events == ()
    assert not any(c.reason in ("FailedGetScale", "FailedUpdateScale") for c in decision.conditions)


def test_the_controller_replays_a_failed_rescale_and_retries_next_sync() -> None:
    controller = HorizontalController(UPDATE_FIXTURE.spec(), CONFIG)
    observation = UPDATE_FIXTURE.observation()
    first = controller.step(observation, NOW)
    assert (first.desired_replicas, first.rescale) == (5, True)
    failed = controller.rescale_failed(WRONG)
    expected, expected_state = reconcile(
        UPDATE_FIXTURE.spec(), ControllerState(), observation, NOW, CONFIG, update_error=WRONG
    )
    assert failed == expected and controller.state == expected_state
    with pytest.raises(ConfigError, match="'rescale_failed' must follow a step that decided to rescale"):
        controller.rescale_failed(WRONG)
    retry = controller.step(observation, NOW + 15)  # the next sync writes again, and this time it works
    assert (retry.desired_replicas, retry.rescale) == (5, True)
    assert as_tuples(retry.conditions) == STATUS_OK
    assert controller.state.last_scale_time_s == NOW + 15


def test_the_controller_refuses_a_failed_rescale_after_a_hold() -> None:
    controller = HorizontalController(CASES["TestTolerance"].scenario.spec(), CONFIG)
    held = controller.step(CASES["TestTolerance"].scenario.observation(), NOW)
    assert not held.rescale
    with pytest.raises(ConfigError, match="rescale_failed"):
        controller.rescale_failed(WRONG)


def test_the_controller_steps_through_a_failed_get() -> None:
    controller = HorizontalController(UP.spec(), CONFIG)
    failed = controller.step(Observation.scale_unavailable(WRONG, replicas=3), NOW)
    assert (failed.reason, controller.state.recommendations) == ("FailedGetScale", None)
    recovered = controller.step(UP.observation(), NOW + 15)
    assert as_tuples(recovered.conditions) == STATUS_OK  # AbleToScale back to True, in place
    assert (recovered.desired_replicas, recovered.events) == (5, ())
