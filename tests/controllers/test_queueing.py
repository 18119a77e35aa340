"""The queueing-model controller: the online fit on a synthetic M/M/1 series and the sizing, worked by hand."""

from __future__ import annotations

import random

import pytest

from jetscale.controllers.api import ControllerLoop, Observation, Reason
from jetscale.controllers.queueing import (
    QueueingPolicy,
    QueueModel,
    RLSFit,
    erlang_c,
    load_queueing,
    parse_queueing,
    predicted_ttft_s,
    size_replicas,
)
from jetscale.errors import ConfigError


def doc(**spec: object) -> dict[str, object]:
    body: dict[str, object] = {"maxReplicas": 20, "slo": {"ttftSeconds": 1.0, "margin": 0.5}}
    body.update(spec)
    return {"apiVersion": "jetscale.dev/v1alpha1", "kind": "QueueingController", "spec": body}


def mm1_series(mu: float, steps: int, noise: float, seed: int) -> list[tuple[float, float]]:
    """(per-replica throughput, mean TTFT) of an M/M/1 replica at loads between 10% and 90%."""
    rng = random.Random(seed)
    series = []
    for i in range(steps):
        x = mu * (0.1 + 0.8 * ((i * 7) % 17) / 16)
        ttft = 1.0 / (mu - x) * (1.0 + rng.uniform(-noise, noise))
        series.append((x, ttft))
    return series


@pytest.mark.parametrize(("noise", "tolerance"), [(0.0, 1e-3), (0.05, 0.05)], ids=["exact", "5%-noise"])
def test_fit_converges_on_mm1_series(noise: float, tolerance: float) -> None:
    mu = 5.0
    policy = QueueingPolicy(parse_queueing(doc(fit={"initialServiceRateRps": 1.0}, queue="split")))
    state = policy.initial_state()
    assert state.fit.service_rate_rps(1.0) == pytest.approx(1.0)  # the prior
    for step, (x, ttft) in enumerate(mm1_series(mu, 60, noise, seed=7)):
        observation = Observation(
            current_replicas=2,
            ready_replicas=2,
            interval_s=10.0,
            completed_requests=round(x * 2 * 10),
            mean_ttft_s=ttft,
        )
        _, state = policy.decide(state, observation, 10.0 * step)
    # completed counts are whole requests: the throughput fed is x rounded to 1/20 rps
    assert state.fit.service_rate_rps(1.0) == pytest.approx(mu, rel=tolerance + 0.02)
    assert state.fit.b == pytest.approx(-1.0, rel=tolerance + 0.05)
    assert state.fit.samples == 60


def test_rls_recovers_a_line_exactly() -> None:
    fit = RLSFit.prior(1.0, 1e6)
    for x in (0.0, 1.0, 2.0, 3.0, 0.5):
        fit = fit.update(x, 4.0 - 1.0 * x, 1.0)
    assert (fit.a, fit.b) == (pytest.approx(4.0, abs=1e-4), pytest.approx(-1.0, abs=1e-4))
    assert fit.service_rate_rps(0.0) == pytest.approx(4.0, abs=1e-3)


def test_steps_without_completions_leave_the_fit_alone() -> None:
    policy = QueueingPolicy(parse_queueing(doc()))
    state = policy.initial_state()
    _, after = policy.decide(state, Observation(current_replicas=1, ready_replicas=1, interval_s=5.0), 5.0)
    assert after.fit == state.fit


def test_erlang_c_known_values() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)  # M/M/2 at rho 0.5
    assert erlang_c(3, 2.0) == pytest.approx(4 / 9)


@pytest.mark.parametrize(
    ("queue", "arrival", "mu", "target", "expected"),
    [
        # split: n >= lambda / (mu - 1/T) = 10 / (5 - 2) = 3.33 -> 4; 3 gives 1 / (5 - 3.33) = 0.6 s > 0.5 s
        (QueueModel.SPLIT, 10.0, 5.0, 0.5, 4),
        # pooled: c = 3: C(3, 2) = 4/9, wait 4/9 / (15 - 10) = 0.089 s + 1/5 = 0.289 s <= 0.5 s
        (QueueModel.POOLED, 10.0, 5.0, 0.5, 3),
        (QueueModel.SPLIT, 0.0, 5.0, 0.5, 0),
        (QueueModel.SPLIT, 1.0, 1.0, 0.5, None),  # 1 / mu = 1 s > 0.5 s: no count is enough
        (QueueModel.SPLIT, 100.0, 5.0, 0.5, None),  # needs 34 > max 20
    ],
)
def test_size_replicas(queue: QueueModel, arrival: float, mu: float, target: float, expected: int | None) -> None:
    assert size_replicas(queue, arrival, mu, target, 20) == expected
    if expected:
        assert predicted_ttft_s(queue, expected, arrival, mu) <= target
        assert predicted_ttft_s(queue, expected - 1, arrival, mu) > target


def test_policy_sizes_on_the_windowed_rate_and_stabilizes_down() -> None:
    spec = parse_queueing(
        doc(fit={"initialServiceRateRps": 5.0}, rateWindowSeconds=10, scaleDownStabilizationSeconds=60)
    )
    loop = ControllerLoop(QueueingPolicy(spec))
    # 100 arrivals in 10 s = 10 rps at mu 5 (the prior), T = 1 s x (1 - 0.5): 4 replicas (as above)
    first = loop.step(Observation(current_replicas=1, ready_replicas=1, interval_s=10.0, arrived_requests=100), 10.0)
    assert (first.desired_replicas, first.reason) == (4, Reason.SLO_SIZED)
    quiet = Observation(current_replicas=4, ready_replicas=4, interval_s=10.0, arrived_requests=10)  # 1 rps -> 1
    held = loop.step(quiet, 20.0)
    assert (held.desired_replicas, held.reason) == (4, Reason.STABILIZED)
    later = [loop.step(quiet, 20.0 + 10 * k) for k in range(1, 6)]
    assert later[-2].desired_replicas == 4  # t=60: the 4 of t=10 is in the window (0, 60]
    assert (later[-1].desired_replicas, later[-1].reason) == (1, Reason.SLO_SIZED)  # t=70: window (10, 70]


def test_infeasible_slo_goes_to_max_and_min_bounds() -> None:
    spec = parse_queueing(doc(fit={"initialServiceRateRps": 1.0}, minReplicas=2, maxReplicas=6))
    policy = QueueingPolicy(spec)
    busy = Observation(current_replicas=2, ready_replicas=2, interval_s=1.0, arrived_requests=3)
    decision, _ = policy.decide(policy.initial_state(), busy, 1.0)
    assert (decision.desired_replicas, decision.reason) == (6, Reason.SLO_INFEASIBLE)
    idle = Observation(current_replicas=2, ready_replicas=2, interval_s=1.0)
    decision, _ = policy.decide(policy.initial_state(), idle, 1.0)
    assert (decision.desired_replicas, decision.reason) == (2, Reason.BOUNDED)


def test_load_yaml() -> None:
    text = """
apiVersion: jetscale.dev/v1alpha1
kind: QueueingController
metadata: {name: llama}
spec:
  minReplicas: 1
  maxReplicas: 12
  slo: {ttftSeconds: 2.0, margin: 0.25}
  queue: pooled
  fit: {initialServiceRateRps: 3, forgetting: 0.95}
"""
    spec = load_queueing(text, origin="q.yaml")
    assert (spec.name, spec.max_replicas, spec.queue, spec.target_ttft_s) == ("llama", 12, QueueModel.POOLED, 1.5)
    assert (spec.initial_service_rate_rps, spec.forgetting) == (3.0, 0.95)


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"maxReplicas": 0}, "spec.maxReplicas", "0"),
        ({"minReplicas": 5, "maxReplicas": 3}, "spec.maxReplicas", "3"),
        ({"slo": {"ttftSeconds": 0}}, "spec.slo.ttftSeconds", "0"),
        ({"slo": {"ttftSeconds": 1, "margin": 1.5}}, "spec.slo.margin", "1.5"),
        ({"slo": {"ttft": 1}}, "spec.slo.ttft", "ttftSeconds"),
        ({"queue": "mmc"}, "spec.queue", "mmc"),
        ({"fit": {"forgetting": 1.2}}, "spec.fit.forgetting", "1.2"),
        ({"fit": {"initialServiceRateRps": "fast"}}, "spec.fit.initialServiceRateRps", "fast"),
        ({"windowSeconds": 3}, "spec.windowSeconds", "3"),
    ],
)
def test_bad_config_is_one_line_naming_file_field_value(change: dict[str, object], field: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_queueing(doc(**change), origin="q.yaml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("q.yaml: ") and f"'{field}'" in message and value in message
