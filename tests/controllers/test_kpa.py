"""Knative's KPA: hand-worked sequences from knative/serving (98e5ef90) ``pkg/autoscaler/scaling/autoscaler.go``
and ``pkg/reconciler/autoscaling/kpa/scaler.go``."""

from __future__ import annotations

import pytest

from jetscale.controllers.api import ControllerLoop, Observation, Reason
from jetscale.controllers.kpa import KPAPolicy, KPAState, Sample, load_kpa, parse_kpa, window_average
from jetscale.errors import ConfigError

P = "autoscaling.knative.dev/"


def kpa(text_or_annotations: dict[str, str] | None = None, *, config: str = "") -> KPAPolicy:
    if config:
        lines = "\n".join(f"  {P}{k}: {v!r}" for k, v in (text_or_annotations or {}).items())
        text = f"metadata:\n  name: config-autoscaler\nkind: ConfigMap\ndata:\n{config}\n---\n{lines or '{}'}\n"
        return KPAPolicy(load_kpa(text, origin="svc.yaml"))
    return KPAPolicy(parse_kpa({P + k: v for k, v in (text_or_annotations or {}).items()}, origin="svc.yaml"))


def concurrency(current: int, in_flight: float, *, ready: int | None = None, interval_s: float = 1.0) -> Observation:
    return Observation(
        current_replicas=current,
        ready_replicas=current if ready is None else ready,
        interval_s=interval_s,
        in_flight_requests=in_flight,
    )


def test_targets_resolve_like_resolve_metric_target() -> None:
    assert kpa().spec.target_value == pytest.approx(70.0)  # 100 x 70%
    assert kpa({"metric": "rps"}).spec.target_value == pytest.approx(140.0)  # 200 x 70%
    assert kpa({"target": "10", "target-utilization-percentage": "50"}).spec.target_value == pytest.approx(5.0)
    spec = kpa({"window": "60s"}).spec
    assert (spec.stable_window_s, spec.panic_window_s, spec.panic_threshold) == (60.0, 6.0, 2.0)
    assert kpa({"window": "6s", "panic-window-percentage": "10"}).spec.panic_window_s == 1.0  # 0.6 s -> 1 s
    service = """
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: llm, annotations: {ignored.example.com/x: "1"}}
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/target: "10"
        autoscaling.knative.dev/max-scale: "12"
    spec:
      containerConcurrency: 4
"""
    spec = load_kpa(service, origin="svc.yaml")
    assert spec.target_value == pytest.approx(4 * 0.7)  # min(target 10, containerConcurrency 4) x 70%
    assert spec.max_scale == 12


def test_window_average_is_time_weighted_over_the_covered_part() -> None:
    samples = (Sample(end_s=1, span_s=1, value=10), Sample(end_s=2, span_s=1, value=40))
    assert window_average(samples, 2.0, 60.0) == 25.0  # only 2 s covered: (10 + 40) / 2
    assert window_average(samples, 2.0, 1.0) == 40.0
    assert window_average(samples, 2.0, 1.5) == 30.0  # (0.5 x 10 + 1 x 40) / 1.5
    assert window_average((Sample(end_s=3, span_s=3, value=1 / 3),), 3.0, 3.0) == 0.333333  # 6 digits


def test_enters_panic_never_scales_down_in_it_and_leaves_a_stable_window_later() -> None:
    loop = ControllerLoop(kpa({"target": "10", "target-utilization-percentage": "100", "window": "6s"}))
    current = 1
    got = []
    load = {**{t: 10.0 for t in range(1, 10)}, **{t: 60.0 for t in range(10, 14)}, **{t: 5.0 for t in range(14, 21)}}
    for t in range(1, 21):
        decision = loop.step(concurrency(current, load[t]), float(t))
        got.append((t, decision.desired_replicas, decision.reason))
        current = decision.desired_replicas
    assert got[:9] == [(t, 1, Reason.STABLE) for t in range(1, 10)]
    # t=10: stable (5 x 10 + 60) / 6 = 18.33 -> 2; panic 60 -> 6; 6 / 1 ready >= 200%: panic, max(2, 6) = 6
    assert got[9] == (10, 6, Reason.PANIC)
    # t=11..13: panic 60 / 10 = 6 pods over 6 ready = 100% < 200%: no longer over, but panic lasts
    assert got[10:13] == [(11, 6, Reason.PANIC), (12, 6, Reason.PANIC), (13, 6, Reason.PANIC)]
    # t=14..16: load falls, stable wants 5, 5, 4: never down in panic
    assert got[13:16] == [(14, 6, Reason.PANIC), (15, 6, Reason.PANIC), (16, 6, Reason.PANIC)]
    # t=17: last over the threshold at 10, 10 + 6 < 17: stable again; stable (20 + 5 + 5 + 5 + 60 + 60) / 6
    # ... = 23.33 -> 3, and floor(6 / max-scale-down-rate 2) = 3
    assert got[16] == (17, 3, Reason.STABLE)
    # t=18: stable 14.17 -> 2 (floor(3 / 2) = 1 allows it); t=19: 5 -> 1
    assert got[17:19] == [(18, 2, Reason.STABLE), (19, 1, Reason.STABLE)]


def test_fresh_decider_with_several_ready_pods_starts_in_panic() -> None:
    loop = ControllerLoop(kpa({"target": "10", "target-utilization-percentage": "100", "window": "6s"}))
    decisions = [loop.step(concurrency(5, 0.0), float(t)) for t in range(1, 9)]
    assert [d.reason for d in decisions[:7]] == [Reason.PANIC] * 7  # panicTime = 1, left once 1 + 6 < t
    assert [d.desired_replicas for d in decisions[:7]] == [5] * 7  # maxPanicPods = 5 ready
    assert (decisions[7].desired_replicas, decisions[7].reason) == (2, Reason.RATE_LIMITED)  # t=8: floor(5 / 2)


def stable_state() -> KPAState:
    return KPAState(started=True, active_since_s=0.0)


def test_scale_down_rate_limit() -> None:
    policy = kpa({"target": "10", "target-utilization-percentage": "100"})
    decision, _ = policy.decide(stable_state(), concurrency(8, 0.0), 100.0)
    assert (decision.desired_replicas, decision.reason) == (4, Reason.RATE_LIMITED)  # floor(8 / 2)
    policy = kpa({"target": "10", "target-utilization-percentage": "100"}, config="  max-scale-down-rate: '4'")
    decision, _ = policy.decide(stable_state(), concurrency(8, 0.0), 100.0)
    assert decision.desired_replicas == 2  # floor(8 / 4)


def test_scale_up_rate_limit_rounds_up() -> None:
    # autoscaler.go's comment: MSUR=1.1, OCC=3, TV=1 over 2 ready pods: ceil(1.1 x 2) = 3, not 2
    annotations = {"target": "1", "target-utilization-percentage": "100", "panic-threshold-percentage": "1000"}
    policy = kpa(annotations, config="  max-scale-up-rate: '1.1'")
    decision, _ = policy.decide(stable_state(), concurrency(2, 3.0), 100.0)
    assert (decision.desired_replicas, decision.reason) == (3, Reason.STABLE)
    decision, _ = policy.decide(stable_state(), concurrency(2, 7.0), 100.0)  # 7 pods wanted, ceil(2.2) = 3
    assert (decision.desired_replicas, decision.reason) == (3, Reason.RATE_LIMITED)


def test_scale_to_zero_after_stable_window_and_grace() -> None:
    loop = ControllerLoop(kpa({"target": "10"}))  # stable window 60 s, grace 30 s
    current, got = 1, {}
    for t in range(0, 101, 2):
        decision = loop.step(concurrency(current, 0.0, interval_s=2.0), float(t))
        got[t] = (decision.desired_replicas, decision.reason)
        current = decision.desired_replicas
    assert got[0] == (1, Reason.SCALE_TO_ZERO_GRACE)  # active for 0 s < 60 s: at most 1
    assert got[58] == (1, Reason.SCALE_TO_ZERO_GRACE)
    assert got[60] == (1, Reason.SCALE_TO_ZERO_GRACE)  # active 60 s: marked inactive, count left alone
    assert got[88] == (1, Reason.SCALE_TO_ZERO_GRACE)  # inactive 28 s < 30 s
    assert got[90] == (0, Reason.SCALED_TO_ZERO)
    assert got[92] == (0, Reason.IDLE)


def test_scale_to_zero_waits_for_pod_retention() -> None:
    loop = ControllerLoop(kpa({"target": "10", "scale-to-zero-pod-retention-period": "45s"}))
    current, zero_at = 1, None
    for t in range(0, 200, 5):
        decision = loop.step(concurrency(current, 0.0, interval_s=5.0), float(t))
        if decision.desired_replicas == 0 and zero_at is None:
            zero_at = t
        current = decision.desired_replicas
    assert zero_at == 105  # inactive at 60, then max(30 s grace, 45 s retention)


def test_scale_to_zero_disabled_keeps_one() -> None:
    loop = ControllerLoop(kpa({"target": "10"}, config="  enable-scale-to-zero: 'false'"))
    decisions = [loop.step(concurrency(1, 0.0, interval_s=10.0), float(t)) for t in range(0, 300, 10)]
    assert {d.desired_replicas for d in decisions} == {1}


def test_from_zero_requests_waiting_at_the_activator_scale_up() -> None:
    loop = ControllerLoop(kpa({"target": "10", "target-utilization-percentage": "100"}))
    assert loop.step(concurrency(0, 0.0), 0.0).desired_replicas == 0
    # both windows cover the 2 s seen: (0 + 35) / 2 = 17.5 -> 2 pods; ready counts as 1: 2 / 1 >= 200%
    decision = loop.step(concurrency(0, 35.0), 1.0)
    assert (decision.desired_replicas, decision.reason) == (2, Reason.PANIC)


def test_bounds_activation_scale_and_initial_scale() -> None:
    policy = kpa({"target": "10", "target-utilization-percentage": "100", "max-scale": "5"})
    decision, _ = policy.decide(stable_state(), concurrency(3, 500.0), 100.0)
    assert (decision.desired_replicas, decision.reason) == (5, Reason.BOUNDED)
    policy = kpa({"target": "10", "target-utilization-percentage": "100", "activation-scale": "3"})
    decision, _ = policy.decide(stable_state(), concurrency(1, 5.0), 100.0)
    assert decision.desired_replicas == 3  # ceil(5 / 10) = 1, raised to activation-scale
    policy = kpa({"target": "10", "initial-scale": "4"})
    decision, state = policy.decide(KPAState(), concurrency(1, 0.0), 0.0)
    assert (decision.desired_replicas, decision.reason) == (4, Reason.BOUNDED)
    _, state = policy.decide(state, concurrency(4, 0.0), 1.0)
    assert state.initialized  # reached: initial-scale no longer a floor


def test_scale_down_delay_holds_the_window_maximum() -> None:
    policy = kpa({"target": "10", "target-utilization-percentage": "100", "scale-down-delay": "30s"})
    state = stable_state()
    decision, state = policy.decide(state, concurrency(4, 40.0, interval_s=60.0), 100.0)
    assert decision.desired_replicas == 4
    decision, state = policy.decide(state, concurrency(4, 0.0, interval_s=60.0), 120.0)
    assert (decision.desired_replicas, decision.reason) == (4, Reason.STABILIZED)
    decision, state = policy.decide(state, concurrency(4, 0.0, interval_s=60.0), 131.0)
    assert decision.desired_replicas == 2  # the 4 at 100 s left the 30 s window: floor(4 / 2)


def test_metrics_failure_holds() -> None:
    policy = kpa({"target": "10"})
    observation = Observation(current_replicas=3, ready_replicas=3, interval_s=2.0, metrics_failed=True)
    decision, _ = policy.decide(stable_state(), observation, 10.0)
    assert (decision.desired_replicas, decision.reason) == (3, Reason.METRICS_UNAVAILABLE)


@pytest.mark.parametrize(
    ("annotations", "field", "value"),
    [
        ({"windoww": "60s"}, f"annotations.{P}windoww", "did you mean"),
        ({"window": "5s"}, f"annotations.{P}window", "'5s'"),
        ({"window": "2h"}, f"annotations.{P}window", "'2h'"),
        ({"window": "sixty"}, f"annotations.{P}window", "'sixty'"),
        ({"panic-threshold-percentage": "100"}, f"annotations.{P}panic-threshold-percentage", "'100'"),
        ({"panic-window-percentage": "0.5"}, f"annotations.{P}panic-window-percentage", "'0.5'"),
        ({"target": "0"}, f"annotations.{P}target", "'0'"),
        ({"target-utilization-percentage": "120"}, f"annotations.{P}target-utilization-percentage", "'120'"),
        ({"metric": "cpu"}, f"annotations.{P}metric", "'cpu'"),
        ({"class": "hpa.autoscaling.knative.dev"}, f"annotations.{P}class", "hpa.autoscaling"),
        ({"min-scale": "-1"}, f"annotations.{P}min-scale", "-1"),
        ({"min-scale": "5", "max-scale": "3"}, f"annotations.{P}max-scale", "'3'"),
        ({"activation-scale": "1"}, f"annotations.{P}activation-scale", "'1'"),
        ({"initial-scale": "0"}, f"annotations.{P}initial-scale", "'0'"),
        ({"max-scale-up-rate": "10"}, f"annotations.{P}max-scale-up-rate", "config-autoscaler"),
        (
            {"metric-aggregation-algorithm": "weighted-exponential"},
            f"annotations.{P}metric-aggregation-algorithm",
            "weighted",
        ),
    ],
)
def test_bad_annotation_is_one_line_naming_file_field_value(
    annotations: dict[str, str], field: str, value: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_kpa({P + k: v for k, v in annotations.items()}, origin="svc.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("svc.yaml: ")
    assert f"'{field}'" in message
    assert value in message


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("  max-scale-up-rate: '1'", "data.max-scale-up-rate"),
        ("  stable-window: '1s'", "data.stable-window"),
        ("  stable-windoww: '60s'", "data.stable-windoww"),
        ("  enable-scale-to-zero: 'maybe'", "data.enable-scale-to-zero"),
    ],
)
def test_bad_configmap_is_one_line(data: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        kpa({"target": "10"}, config=data)
    assert "\n" not in str(info.value) and f"'{field}'" in str(info.value) and "svc.yaml" in str(info.value)
