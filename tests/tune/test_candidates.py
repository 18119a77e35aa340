"""Candidates as manifests: signals, behaviors, the plain and GKE spellings, and GKE's sample."""

from __future__ import annotations

import pytest

from jetscale.engine.config import ServerKind
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
    signals_for,
)
from jetscale.tune.search import running_grid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("all", tuple(Signal), id="all"),
        pytest.param("kv,waiting", (Signal.WAITING, Signal.KV), id="vllm"),
        pytest.param("hbm,backlog", (Signal.BACKLOG, Signal.HBM), id="any-order"),
        pytest.param(" slots ", (Signal.SLOTS,), id="spaces"),
        pytest.param("slots,slots", (Signal.SLOTS,), id="repeat"),
    ],
)
def test_parse_signals(text: str, expected: tuple[Signal, ...]) -> None:
    assert parse_signals(text) == expected


def test_each_server_kind_gets_the_signals_it_exports() -> None:
    assert signals_for(tuple(Signal), ServerKind.VLLM) == (Signal.WAITING, Signal.RUNNING, Signal.KV)
    assert signals_for(tuple(Signal), ServerKind.JETSTREAM) == (Signal.BACKLOG, Signal.SLOTS, Signal.HBM)
    assert [s.metric for s in signals_for(tuple(Signal), ServerKind.VLLM)] == [
        "vllm:num_requests_waiting", "vllm:num_requests_running", "vllm:kv_cache_usage_perc"
    ]  # fmt: skip
    with pytest.raises(ConfigError, match=r"'--signals' must include one a vllm replica exports: waiting, running"):
        signals_for((Signal.BACKLOG,), ServerKind.VLLM)
    sample = gke_sample(ServerKind.VLLM)
    assert (sample.signal, sample.target_milli, sample.behavior) == (Signal.WAITING, 5000, None)


def test_the_running_grid_stays_below_what_can_scale_up() -> None:
    grid = running_grid(256, 0.1)
    top = grid.values_milli[-1] / 1000
    assert top == 232 and 256 / top > 1.1  # 256 / 1.1 = 232.7: a batch of 256 still reads above 1.1 x target
    assert grid.values_milli[0] >= 1000 and grid.start == len(grid.values_milli) - 1
    assert running_grid(1, 0.1).values_milli == (1000,)


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


def test_a_vllm_replica_tunes_on_vllms_three_signals() -> None:
    from tunehelp import setup

    from jetscale.engine.presets import resolve_preset
    from jetscale.tune.signals import signal_grids

    replica = resolve_preset("vllm-h100/llama3.1-8b")
    grids, warnings = signal_grids(signals_for(tuple(Signal), replica.kind), replica, setup(5.0, duration_s=300.0))
    assert list(grids) == [Signal.WAITING, Signal.RUNNING, Signal.KV] and warnings == []
    assert grids[Signal.RUNNING].values_milli[-1] == 232_000  # 256 seqs / 1.1
