"""KEDA ScaledObject semantics: hand-worked sequences from kedacore/keda (8b4f083c)
``pkg/scaling/executor/scale_scaledobjects.go`` and ``pkg/fallback/fallback.go``."""

from __future__ import annotations

from typing import Any

import pytest

from jetscale.controllers.api import ControllerLoop, Observation, Reason
from jetscale.controllers.keda import (
    Aggregation,
    KEDAPolicy,
    load_scaled_object,
    parse_query,
    parse_scaled_object,
)
from jetscale.errors import ConfigError

METRIC = "jetstream_prefill_backlog_size"


def scaled_object(**spec: Any) -> dict[str, Any]:
    trigger_meta = {
        "serverAddress": "http://prometheus:9090",
        "query": f'sum(max by (pod) ({METRIC}{{namespace="default"}}))',
        "threshold": "4",
        "activationThreshold": "1",
    }
    trigger_meta.update(spec.pop("trigger_meta", {}))
    trigger: dict[str, Any] = {"type": "prometheus", "metadata": trigger_meta}
    if "metricType" in spec:
        trigger["metricType"] = spec.pop("metricType")
    body: dict[str, Any] = {"scaleTargetRef": {"name": "jetstream"}, "triggers": [trigger]}
    body.update(spec)
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "llm"}, "spec": body}


def obs(
    current: int, values: tuple[float, ...] | None, *, ready: int | None = None, failed: bool = False
) -> Observation:
    return Observation(
        current_replicas=current,
        ready_replicas=current if ready is None else ready,
        interval_s=15.0,
        pod_metrics={} if values is None else {METRIC: values},
        metrics_failed=failed,
    )


def run(policy: KEDAPolicy, steps: list[tuple[float, Observation]]) -> list[tuple[int, Reason]]:
    loop = ControllerLoop(policy)
    out = []
    for now_s, observation in steps:
        decision = loop.step(observation, now_s)
        out.append((decision.desired_replicas, decision.reason))
    return out


def test_defaults_follow_keda() -> None:
    spec = parse_scaled_object(scaled_object(), origin="so.yaml")
    assert (spec.polling_interval_s, spec.cooldown_period_s, spec.initial_cooldown_period_s) == (30, 300, 0)
    assert spec.min_replica_count is None and spec.executor_min_replicas == 0
    assert (spec.hpa.min_replicas, spec.hpa.max_replicas) == (1, 100)  # GetHPAMinReplicas, default max
    assert spec.hpa.name == "keda-hpa-llm"
    assert spec.hpa.metrics[0].target.average_value_milli == 4000
    trigger = spec.triggers[0]
    assert (trigger.aggregation, trigger.metric, trigger.activation_threshold) == (Aggregation.SUM, METRIC, 1.0)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f'sum(max by (pod) ({METRIC}{{namespace="x", pod=~"js-.*"}}))', (Aggregation.SUM, METRIC)),
        ("avg(jetstream_slots_used_percentage)", (Aggregation.AVG, "jetstream_slots_used_percentage")),
        ("max(m)", (Aggregation.MAX, "m")),
        ("count(up{job='x'})", (Aggregation.COUNT, "up")),
        ("sum(rate(requests_total[1m]))", None),  # a counter's rate is not a per-pod gauge
        ("sum(a) / sum(b)", None),
        ("m", None),
    ],
    ids=["rendered-by-jetscale", "avg", "max", "count", "rate", "two-metrics", "bare"],
)
def test_parse_query(query: str, expected: tuple[Aggregation, str] | None) -> None:
    assert parse_query(query) == expected


def test_activation_from_zero_waits_for_the_poll_and_is_strict() -> None:
    policy = KEDAPolicy(parse_scaled_object(scaled_object()))
    steps = [
        (0.0, obs(0, (0.5, 0.5))),  # poll: sum 1.0, not > activationThreshold 1: stay at 0
        (15.0, obs(0, (5.0,))),  # active, but no poll until 30 s: the HPA is disabled at 0
        (30.0, obs(0, (5.0,))),  # poll: active at 0 -> max(minReplicaCount, 1) = 1
        (45.0, obs(1, (5.0,))),  # HPA: ceil(5 / 4) = 2 (AverageValue over 1 replica)
        (60.0, obs(2, (10.0, 10.0))),  # HPA: ceil(20 / 4) = 5, within the legacy limit max(4, 2 x 2)
    ]
    assert run(policy, steps) == [
        (0, Reason.IDLE),
        (0, Reason.IDLE),
        (1, Reason.ACTIVATED),
        (2, Reason.HPA),
        (4, Reason.HPA),  # legacy scale-up limit: max(2 x 2, 4) = 4
    ]


def test_activation_to_min_replica_count() -> None:
    policy = KEDAPolicy(parse_scaled_object(scaled_object(minReplicaCount=3, idleReplicaCount=0)))
    assert run(policy, [(0.0, obs(0, (2.0,)))]) == [(3, Reason.ACTIVATED)]


def test_hpa_path_one_to_n() -> None:
    policy = KEDAPolicy(parse_scaled_object(scaled_object(pollingInterval=15)))
    steps = [
        (0.0, obs(4, (5.0, 5.0, 5.0, 5.0))),  # 20 / 4 = 5 replicas wanted, ratio 1.25 > 1.1
        (15.0, obs(5, (4.0, 4.0, 4.0, 4.0, 4.0))),  # 20 / (4 x 5) = 1.0: within tolerance
        (30.0, obs(5, (20.0,) * 5)),  # 100 / 4 = 25, legacy limit max(2 x 5, 4) = 10
    ]
    assert run(policy, steps) == [(5, Reason.HPA), (5, Reason.HPA), (10, Reason.HPA)]


def test_deactivation_after_cooldown() -> None:
    policy = KEDAPolicy(parse_scaled_object(scaled_object(cooldownPeriod=60)))
    steps = [
        (0.0, obs(2, (5.0, 5.0))),  # active: lastActiveTime = 0
        (30.0, obs(3, (0.0,) * 3)),  # inactive, 0 + 60 < 30 false: cooling down; the HPA's 300 s
        (60.0, obs(3, (0.0,) * 3)),  # downscale stabilization holds 3; 0 + 60 < 60 false (strict)
        (90.0, obs(3, (0.0,) * 3)),  # 60 < 90: to minReplicaCount 0
        (120.0, obs(0, (0.0,))),
    ]
    assert run(policy, steps) == [
        (3, Reason.HPA),  # ceil(10 / 4) = 3
        (3, Reason.COOLDOWN),
        (3, Reason.COOLDOWN),
        (0, Reason.DEACTIVATED),
        (0, Reason.IDLE),
    ]


def test_never_active_scales_to_zero_after_initial_cooldown() -> None:
    policy = KEDAPolicy(parse_scaled_object(scaled_object(initialCooldownPeriod=40)))
    steps = [(0.0, obs(1, (0.0,))), (30.0, obs(1, (0.0,))), (60.0, obs(1, (0.0,)))]
    assert [d for d, _ in run(policy, steps)] == [1, 1, 0]  # 0 + 40 < 60 only at the third poll


def test_deactivation_to_idle_replica_count() -> None:
    policy = KEDAPolicy(parse_scaled_object(scaled_object(minReplicaCount=2, idleReplicaCount=0, cooldownPeriod=0)))
    steps = [(0.0, obs(2, (0.0, 0.0))), (30.0, obs(2, (0.0, 0.0)))]
    assert run(policy, steps)[-1] == (0, Reason.DEACTIVATED)


NO_DOWN_STABILIZATION = {
    "horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 0}}}
}


@pytest.mark.parametrize(
    ("behavior", "current", "expected"),
    [
        ("static", 3, 6),
        ("static", 8, 6),
        ("currentReplicas", 8, 8),
        ("currentReplicasIfHigher", 3, 6),
        ("currentReplicasIfHigher", 8, 8),
        ("currentReplicasIfLower", 3, 3),
        ("currentReplicasIfLower", 8, 6),
    ],
)
def test_fallback_behaviors(behavior: str, current: int, expected: int) -> None:
    fallback = {"failureThreshold": 2, "replicas": 6, "behavior": behavior}
    policy = KEDAPolicy(parse_scaled_object(scaled_object(fallback=fallback, advanced=NO_DOWN_STABILIZATION)))
    failing = obs(current, None, failed=True)
    decisions = run(policy, [(0.0, failing), (15.0, failing), (30.0, failing)])
    # failures 1 and 2 are not above failureThreshold 2: the HPA has no metric and keeps the count
    assert decisions[:2] == [(current, Reason.METRICS_UNAVAILABLE)] * 2
    assert decisions[2] == (expected, Reason.FALLBACK)


def test_fallback_resets_on_success() -> None:
    fallback = {"failureThreshold": 1, "replicas": 6}
    policy = KEDAPolicy(parse_scaled_object(scaled_object(fallback=fallback)))
    steps = [
        (0.0, obs(3, None, failed=True)),
        (15.0, obs(3, (4.0, 4.0, 4.0))),  # success resets the count
        (30.0, obs(3, None, failed=True)),  # count 1, not > 1
        (45.0, obs(3, None, failed=True)),  # count 2 > 1: fallback to 6
    ]
    assert [d for d, _ in run(policy, steps)] == [3, 3, 3, 6]


def test_fallback_for_value_metric_divides_by_ready_replicas() -> None:
    fallback = {"failureThreshold": 0, "replicas": 6}
    policy = KEDAPolicy(parse_scaled_object(scaled_object(fallback=fallback, metricType="Value")))
    # threshold 4 x 6 / 3 ready = 8: the HPA's Value rule: ceil(8 / 4 x 3 ready) = 6
    assert run(policy, [(0.0, obs(3, None, failed=True))]) == [(6, Reason.FALLBACK)]
    # no ready replica: KEDA cannot fall back for a Value metric
    policy = KEDAPolicy(parse_scaled_object(scaled_object(fallback=fallback, metricType="Value")))
    assert run(policy, [(0.0, obs(3, None, ready=0, failed=True))]) == [(3, Reason.METRICS_UNAVAILABLE)]


def test_fallback_activates_from_zero() -> None:
    fallback = {"failureThreshold": 0, "replicas": 6}
    policy = KEDAPolicy(parse_scaled_object(scaled_object(fallback=fallback)))
    assert run(policy, [(0.0, obs(0, None, failed=True))]) == [(1, Reason.ACTIVATED)]


def test_error_without_fallback_keeps_replicas_through_cooldown() -> None:
    policy = KEDAPolicy(parse_scaled_object(scaled_object(cooldownPeriod=0)))
    steps = [(0.0, obs(2, None, failed=True)), (30.0, obs(2, None, failed=True)), (60.0, obs(2, None, failed=True))]
    assert [d for d, _ in run(policy, steps)] == [2, 2, 2]  # "TriggerError": no deactivation


def test_load_yaml_with_other_documents() -> None:
    text = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: jetstream}
---
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: llm, namespace: serving}
spec:
  scaleTargetRef: {name: jetstream}
  pollingInterval: 10
  minReplicaCount: 1
  maxReplicaCount: 8
  fallback: {failureThreshold: 3, replicas: 4, behavior: currentReplicasIfHigher}
  advanced:
    horizontalPodAutoscalerConfig:
      behavior:
        scaleDown: {stabilizationWindowSeconds: 60}
  triggers:
  - type: prometheus
    metricType: AverageValue
    metadata:
      serverAddress: http://prometheus:9090
      query: sum(jetstream_prefill_backlog_size{namespace="serving"})
      threshold: "2.5"
"""
    spec = load_scaled_object(text, origin="so.yaml")
    assert (spec.namespace, spec.polling_interval_s, spec.hpa.min_replicas, spec.hpa.max_replicas) == (
        "serving",
        10,
        1,
        8,
    )
    assert spec.hpa.behavior is not None and spec.hpa.behavior.scale_down.stabilization_window_s == 60
    assert spec.hpa.metrics[0].target.average_value_milli == 2500
    assert spec.fallback is not None and spec.fallback.replicas == 4


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"pollingIntervall": 10}, "spec.pollingIntervall", "10"),
        ({"pollingInterval": 0}, "spec.pollingInterval", "0"),
        ({"cooldownPeriod": -1}, "spec.cooldownPeriod", "-1"),
        ({"maxReplicaCount": 0}, "spec.maxReplicaCount", "0"),
        ({"minReplicaCount": 5, "maxReplicaCount": 3}, "spec.minReplicaCount", "5"),
        ({"minReplicaCount": 2, "idleReplicaCount": 2}, "spec.idleReplicaCount", "2"),
        (
            {"fallback": {"failureThreshold": 3, "replicas": 2, "behavior": "sometimes"}},
            "spec.fallback.behavior",
            "sometimes",
        ),
        ({"fallback": {"failureThreshold": -1, "replicas": 2}}, "spec.fallback.failureThreshold", "-1"),
        ({"fallback": {"replicas": 2}}, "spec.fallback.failureThreshold", "nothing"),
        ({"trigger_meta": {"threshold": "lots"}}, "spec.triggers[0].metadata.threshold", "lots"),
        ({"trigger_meta": {"activationThreshold": "-2"}}, "spec.triggers[0].metadata.activationThreshold", "-2"),
        ({"trigger_meta": {"query": "sum(rate(x[1m]))"}}, "spec.triggers[0].metadata.query", "rate"),
        ({"trigger_meta": {"qurey": "x"}}, "spec.triggers[0].metadata.qurey", "did you mean 'query'"),
        ({"metricType": "Utilization"}, "spec.triggers[0].metricType", "Utilization"),
        ({"triggers": [{"type": "kafka", "metadata": {}}]}, "spec.triggers[0].type", "kafka"),
        ({"triggers": []}, "spec.triggers", "[]"),
        (
            {
                "advanced": {
                    "horizontalPodAutoscalerConfig": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 99999}}}
                }
            },
            "spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds",
            "99999",
        ),
    ],
)
def test_bad_scaled_object_is_one_line_naming_file_field_value(change: dict[str, Any], field: str, value: str) -> None:
    doc = scaled_object(**change)
    with pytest.raises(ConfigError) as info:
        parse_scaled_object(doc, origin="bad-so.yaml")
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("bad-so.yaml: ")
    assert f"'{field}'" in message
    assert value in message


def test_wrong_api_version_and_no_scaled_object() -> None:
    doc = scaled_object()
    doc["apiVersion"] = "keda.k8s.io/v1alpha1"
    with pytest.raises(
        ConfigError, match=r"so.yaml: 'apiVersion' must be keda.sh/v1alpha1 \(got 'keda.k8s.io/v1alpha1'\)"
    ):
        parse_scaled_object(doc, origin="so.yaml")
    with pytest.raises(ConfigError, match=r"x.yaml: must hold exactly one ScaledObject \(got 0\)"):
        load_scaled_object("kind: Deployment\n", origin="x.yaml")
