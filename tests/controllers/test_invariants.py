"""Invariants over random observation sequences: every controller's desired count stays within its
[min, max] whenever the current count is, and a policy is a pure function of its arguments."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jetscale.controllers.api import Decision, Observation, Policy
from jetscale.controllers.keda import KEDAPolicy, parse_scaled_object
from jetscale.controllers.kpa import KPAPolicy, parse_kpa
from jetscale.controllers.queueing import QueueingPolicy, parse_queueing
from jetscale.errors import ConfigError

METRIC = "backlog"


def keda() -> KEDAPolicy:
    doc = {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": "llm"},
        "spec": {
            "scaleTargetRef": {"name": "jetstream"},
            "minReplicaCount": 0,
            "maxReplicaCount": 9,
            "cooldownPeriod": 20,
            "fallback": {"failureThreshold": 1, "replicas": 5, "behavior": "currentReplicasIfHigher"},
            "triggers": [
                {
                    "type": "prometheus",
                    "metadata": {
                        "serverAddress": "http://p",
                        "query": f"sum({METRIC})",
                        "threshold": "3",
                        "activationThreshold": "1",
                    },
                }
            ],
        },
    }
    return KEDAPolicy(parse_scaled_object(doc))


def kpa() -> KPAPolicy:
    prefix = "autoscaling.knative.dev/"
    annotations = {"target": "4", "window": "10s", "min-scale": "0", "max-scale": "9"}
    return KPAPolicy(parse_kpa({prefix + k: v for k, v in annotations.items()}))


def queueing() -> QueueingPolicy:
    doc = {
        "apiVersion": "jetscale.dev/v1alpha1",
        "kind": "QueueingController",
        "spec": {"minReplicas": 1, "maxReplicas": 9, "slo": {"ttftSeconds": 1.0}, "queue": "pooled"},
    }
    return QueueingPolicy(parse_queueing(doc))


POLICIES = {"keda": keda, "kpa": kpa, "queueing": queueing}

observations = st.lists(
    st.tuples(
        st.integers(0, 12),  # current offset, mapped into [min, max]
        st.lists(st.floats(0, 50), max_size=6),  # per-pod values
        st.booleans(),  # metrics failed
        st.integers(0, 400),  # arrivals
        st.floats(0, 100),  # in flight
        st.one_of(st.none(), st.floats(0.01, 10)),  # mean TTFT
        st.floats(1, 30),  # interval
    ),
    min_size=1,
    max_size=25,
)


def _run(policy: Policy[Any], steps: list[Any]) -> list[tuple[Decision, Observation]]:
    state = policy.initial_state()
    now, out = 0.0, []
    for offset, values, failed, arrived, in_flight, ttft, interval in steps:
        now += interval
        current = policy.min_replicas + offset % (min(policy.max_replicas, 20) - policy.min_replicas + 1)
        observation = Observation(
            current_replicas=current,
            ready_replicas=current,
            interval_s=interval,
            pod_metrics={METRIC: tuple(values)},
            metrics_failed=failed,
            arrived_requests=arrived,
            completed_requests=arrived,
            in_flight_requests=in_flight,
            mean_ttft_s=ttft,
        )
        decision, state = policy.decide(state, observation, now)
        out.append((decision, observation))
    return out


@pytest.mark.parametrize("name", sorted(POLICIES))
@settings(max_examples=60, deadline=None)
@given(steps=observations)
def test_desired_within_min_and_max(name: str, steps: list[Any]) -> None:
    policy = POLICIES[name]()
    for decision, observation in _run(policy, steps):
        assert policy.min_replicas <= decision.desired_replicas <= policy.max_replicas, decision
        assert decision.current_replicas == observation.current_replicas


@pytest.mark.parametrize("name", sorted(POLICIES))
@settings(max_examples=20, deadline=None)
@given(steps=observations)
def test_same_inputs_same_decisions(name: str, steps: list[Any]) -> None:
    first = [d for d, _ in _run(POLICIES[name](), steps)]
    second = [d for d, _ in _run(POLICIES[name](), steps)]
    assert first == second


@pytest.mark.parametrize(
    "kwargs",
    [
        {"current_replicas": -1, "ready_replicas": 0, "interval_s": 1.0},
        {"current_replicas": 1, "ready_replicas": 1, "interval_s": 0.0},
        {"current_replicas": 1, "ready_replicas": 1, "interval_s": 1.0, "arrived_requests": -3},
    ],
)
def test_observation_rejects_impossible_values(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        Observation(**kwargs)


def test_observation_rates() -> None:
    observation = Observation(
        current_replicas=1, ready_replicas=1, interval_s=4.0, arrived_requests=10, completed_requests=6
    )
    assert (observation.arrival_rate_rps, observation.throughput_rps) == (2.5, 1.5)
