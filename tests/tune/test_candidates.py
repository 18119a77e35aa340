"""Candidates as manifests: signals, behaviors, the plain and GKE spellings, and GKE's sample."""

from __future__ import annotations

import pytest

from jetscale.errors import ConfigError, ManifestError
from jetscale.hpa.spec import parse_hpa
from jetscale.hpa.types import MetricSourceType, PolicyType
from jetscale.tune.candidates import (
    SCALE_DOWN,
    SCALE_UP,
    BehaviorChoice,
    Candidate,
    ManifestNames,
    Signal,
    gke_sample,
    hpa_for,
    manifest_yaml,
    parse_signals,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("all", (Signal.BACKLOG, Signal.SLOTS, Signal.HBM), id="all"),
        pytest.param("hbm,backlog", (Signal.BACKLOG, Signal.HBM), id="any-order"),
        pytest.param(" slots ", (Signal.SLOTS,), id="spaces"),
        pytest.param("slots,slots", (Signal.SLOTS,), id="repeat"),
    ],
)
def test_parse_signals(text: str, expected: tuple[Signal, ...]) -> None:
    assert parse_signals(text) == expected


@pytest.mark.parametrize("text", ["", "cpu", "backlog,all", ","])
def test_parse_signals_refuses(text: str) -> None:
    with pytest.raises(ConfigError, match="'--signals'"):
        parse_signals(text)


@pytest.mark.parametrize("signal", list(Signal), ids=str)
@pytest.mark.parametrize("gke", [False, True], ids=["plain", "gke"])
def test_manifest_round_trips_through_parse_hpa(signal: Signal, gke: bool) -> None:
    candidate = Candidate(signal=signal, target_milli=750, behavior=BehaviorChoice(up="burst", down="gradual"))
    spec = hpa_for(candidate, min_replicas=2, max_replicas=9, names=ManifestNames(name="x", deployment="srv"), gke=gke)
    again = parse_hpa(manifest_yaml(spec, comments=("a comment", "")))
    (metric,) = again.metrics
    assert metric.type is MetricSourceType.PODS
    assert metric.name == signal.metric  # GKE's prometheus.googleapis.com|<name>|gauge resolves to <name>
    assert metric.raw_name == (f"prometheus.googleapis.com|{signal.metric}|gauge" if gke else signal.metric)
    assert metric.target.average_value_milli == 750
    assert (again.min_replicas, again.max_replicas, again.name, again.scale_target_ref.name) == (2, 9, "x", "srv")
    assert again.behavior is not None
    assert again.behavior.scale_up == SCALE_UP["burst"]
    assert again.behavior.scale_down == SCALE_DOWN["gradual"]


def test_gradual_scale_down_removes_one_pod_a_minute() -> None:
    (policy,) = SCALE_DOWN["gradual"].policies
    assert (policy.type, policy.value, policy.period_s) == (PolicyType.PODS, 1, 60)


def test_gke_sample_is_backlog_ten_without_behavior() -> None:
    spec = hpa_for(gke_sample(), min_replicas=1, max_replicas=5)
    assert spec.metrics[0].name == "jetstream_prefill_backlog_size"
    assert spec.metrics[0].target.average_value_milli == 10_000
    assert spec.behavior is None
    assert "behavior" not in manifest_yaml(spec)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(lambda: BehaviorChoice(up="fast"), "'up'", id="unknown-scale-up"),
        pytest.param(lambda: BehaviorChoice(down="never"), "'down'", id="unknown-scale-down"),
        pytest.param(lambda: Candidate(signal=Signal.SLOTS, target_milli=0), "'target_milli'", id="zero-target"),
    ],
)
def test_bad_candidates_are_refused(make: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()  # type: ignore[operator]


def test_bad_names_fail_as_a_manifest() -> None:
    candidate = Candidate(signal=Signal.BACKLOG, target_milli=4000)
    with pytest.raises(ManifestError):
        hpa_for(candidate, min_replicas=1, max_replicas=2, names=ManifestNames(name="Not_A_Name"))
