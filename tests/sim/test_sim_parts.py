"""The simulator's parts, one by one: signals, router, pods, scale-down order, delays, histograms, prices."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jetscale.engine.api import EngineRequest, EngineSnapshot
from jetscale.engine.presets import resolve_preset
from jetscale.errors import ConfigError
from jetscale.hpa.types import ConditionStatus, PodPhase
from jetscale.sim.cost import DEFAULT_PRICES, PriceTable, cost_of, parse_prices
from jetscale.sim.fleet import Replica, ReplicaState, Router, RouterPolicy, make_request, parse_router, scale_down_order
from jetscale.sim.latency import LogHistogram, window_percentiles
from jetscale.sim.options import DEFAULT_PRICES_FILE
from jetscale.sim.scenario import Delay, DelayKind, Startup, parse_delay, parse_startup
from jetscale.sim.signals import SIGNALS, signal_value

SNAPSHOT = EngineSnapshot(
    prefill_backlog=7,
    transfer_backlog=1,
    generate_backlog=2,
    slots_used=11,
    decode_slots=44,
    hbm_used_bytes=30,
    hbm_total_bytes=120,
    duty_cycle=0.5,
)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("jetstream_prefill_backlog_size", 7.0),
        ("jetstream_transfer_backlog_size", 1.0),
        ("jetstream_generate_backlog_size", 2.0),
        ("num_requests_waiting", 10.0),
        ("jetstream_slots_used_percentage", 0.25),
        ("kv_cache_utilization_perc", 25.0),
        ("memory_used_percentage", 0.25),
        ("accelerator_memory_used_ratio", 0.25),
        ("memory_used", 30.0),
        ("memory_total", 120.0),
        ("duty_cycle", 50.0),
        ("no_such_metric", None),
    ],
)
def test_signal_value_maps_snapshot_gauges_to_metric_names(name: str, value: float | None) -> None:
    assert signal_value(name, SNAPSHOT) == value


def test_every_signal_reads_an_empty_replica_without_error() -> None:
    idle = EngineSnapshot(
        prefill_backlog=0, transfer_backlog=0, generate_backlog=0, slots_used=0, decode_slots=0,
        hbm_used_bytes=0, hbm_total_bytes=0, duty_cycle=0.0,
    )  # fmt: skip
    assert all(math.isfinite(read(idle)) for read in SIGNALS.values())


# --- router ---------------------------------------------------------------------------------------------
def test_round_robin_cycles_over_ready_backends_in_order() -> None:
    router: Router[str] = Router(RouterPolicy.ROUND_ROBIN)
    for name in "abc":
        router.add(name)
    assert [router.pick() for _ in range(7)] == list("abcabca")
    router.remove("b")
    assert [router.pick() for _ in range(2)] == ["c", "a"]  # the 8th and 9th requests: 7 % 2, 8 % 2


def test_least_outstanding_picks_the_fewest_in_flight_earliest_first() -> None:
    router: Router[str] = Router(RouterPolicy.LEAST_OUTSTANDING)
    for name in "abc":
        router.add(name)
    router.started("a", 2)
    router.started("b", 1)
    assert router.pick() == "c"
    router.started("c", 3)
    assert router.pick() == "b"
    router.finished("a", 2)
    assert router.pick() == "a"
    with pytest.raises(ValueError, match="'finished' must not exceed"):
        router.finished("a", 1)


def test_an_empty_router_picks_nobody_and_a_bad_policy_is_named() -> None:
    assert Router[str]().pick() is None
    with pytest.raises(ConfigError, match="'--router' must be one of round-robin, least-outstanding"):
        parse_router("random")


# --- pods and scale-down ----------------------------------------------------------------------------------
def _replica(index: int, state: ReplicaState, *, created: float = 0.0, ready: float = math.nan) -> Replica:
    r = Replica(index=index, name=f"r-{index}", created_s=created)
    r.state = state
    r.scheduled_s = created + 1.0
    r.ready_s = ready
    return r


@pytest.mark.parametrize(
    ("state", "phase", "ready", "deleting", "start_time"),
    [
        (ReplicaState.PENDING, PodPhase.PENDING, None, False, None),
        (ReplicaState.PULLING, PodPhase.PENDING, ConditionStatus.FALSE, False, 11.0),
        (ReplicaState.STARTING, PodPhase.RUNNING, ConditionStatus.FALSE, False, 11.0),
        (ReplicaState.READY, PodPhase.RUNNING, ConditionStatus.TRUE, False, 11.0),
        (ReplicaState.DRAINING, PodPhase.RUNNING, ConditionStatus.TRUE, True, 11.0),
    ],
    ids=lambda v: v.name.lower() if isinstance(v, ReplicaState) else None,
)
def test_pod_view_of_each_state(
    state: ReplicaState, phase: PodPhase, ready: ConditionStatus | None, deleting: bool, start_time: float | None
) -> None:
    pod = _replica(3, state, created=10.0, ready=50.0).pod()
    assert (pod.name, pod.phase, pod.ready, pod.deleting, pod.start_time_s) == (
        "r-3",
        phase,
        ready,
        deleting,
        start_time,
    )
    if state is ReplicaState.READY:
        assert pod.ready_transition_s == 50.0


def test_scale_down_removes_unscheduled_then_pending_then_unready_then_newest_ready() -> None:
    replicas = [
        _replica(0, ReplicaState.READY, created=0, ready=10),
        _replica(1, ReplicaState.READY, created=5, ready=40),
        _replica(2, ReplicaState.STARTING, created=20),
        _replica(3, ReplicaState.PULLING, created=30),
        _replica(4, ReplicaState.PENDING, created=35),
        _replica(5, ReplicaState.DRAINING, created=1, ready=2),
    ]
    assert [r.index for r in scale_down_order(replicas)] == [4, 3, 2, 1, 0]


def test_make_request_equals_the_keyword_constructor() -> None:
    fast = make_request(9, 100, 20, 1.5)
    assert fast == EngineRequest(request_id=9, input_tokens=100, output_tokens=20, arrival_s=1.5)
    assert hash(fast) == hash(EngineRequest(request_id=9, input_tokens=100, output_tokens=20, arrival_s=1.5))


# --- delays ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "kind", "mean"),
    [
        ("30s", DelayKind.FIXED, 30.0),
        ("2m", DelayKind.FIXED, 120.0),
        ("20s..40s", DelayKind.UNIFORM, 30.0),
        ("lognormal:60s:0.3", DelayKind.LOGNORMAL, 60.0),
    ],
)
def test_parse_delay(text: str, kind: DelayKind, mean: float) -> None:
    delay = parse_delay(text, "x")
    assert (delay.kind, delay.mean_s) == (kind, mean)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("soon", "must be a duration"),
        ("40s..20s", "'high_s' must be >= low_s"),
        ("lognormal:60s", "lognormal:MEAN:CV"),
        ("lognormal:60s:x", "cv must be a number"),
    ],
)
def test_parse_delay_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_delay(text, "x")


@given(st.integers(0, 2**32 - 1))
@settings(max_examples=30)
def test_drawn_delays_stay_in_their_range(seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert 20.0 <= parse_delay("20s..40s", "x").sample(rng) <= 40.0
    assert parse_delay("lognormal:60s:0.3", "x").sample(rng) > 0


def test_parse_startup_keeps_defaults_and_reads_preset_load() -> None:
    startup = parse_startup("provision=1m,load=90s")
    assert startup.provision == Delay(low_s=60.0)
    assert startup.pull == Startup().pull
    assert startup.load == Delay(low_s=90.0)
    assert parse_startup("load=preset").load is None
    config = resolve_preset("v5e-8/llama2-7b")
    assert Startup().mean_s(config) == 0.0 + 30.0 + config.model_load_s + 10.0
    with pytest.raises(ConfigError, match="'--startup' must be key=DELAY"):
        parse_startup("boot=5s")


# --- latency statistics ---------------------------------------------------------------------------------
@given(st.integers(0, 2**32 - 1), st.sampled_from([0.5, 0.9, 0.95, 0.99]))
@settings(max_examples=25)
def test_histogram_quantile_is_within_one_percent_of_nearest_rank(seed: int, q: float) -> None:
    values = np.random.default_rng(seed).lognormal(0.0, 1.5, size=2000)
    hist = LogHistogram()
    hist.add(values[:1000])
    hist.add(values[1000:])
    exact = float(np.sort(values)[math.ceil(q * len(values)) - 1])
    assert hist.quantile(q) == pytest.approx(exact, rel=0.01)
    assert hist.count == 2000
    assert hist.stats().mean_s == pytest.approx(float(values.mean()))


def test_histogram_counts_refusals_as_infinitely_slow() -> None:
    hist = LogHistogram()
    hist.add(np.array([1.0, 2.0, 3.0, 4.0, np.nan]))
    assert hist.count == 4
    assert hist.quantile(0.5, infinite=4) == pytest.approx(4.0, rel=0.01)
    assert hist.quantile(0.9, infinite=4) == math.inf
    assert math.isnan(LogHistogram().quantile(0.5))


def test_window_percentiles_are_numpys_and_nan_when_empty() -> None:
    values = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    assert window_percentiles(values, [50, 100]) == [2.5, 4.0]
    assert all(math.isnan(v) for v in window_percentiles(np.empty(0), [50, 99]))


# --- prices ------------------------------------------------------------------------------------------------
def test_example_price_file_matches_the_built_in_table() -> None:
    table = parse_prices(DEFAULT_PRICES_FILE.read_text(encoding="utf-8"), source="examples/prices.yaml")
    assert dict(table.chip_hour) == DEFAULT_PRICES
    assert table.currency == "USD"


def test_cost_prefers_the_accelerator_name_over_its_family() -> None:
    config = resolve_preset("v5e-8/llama2-7b")  # 8 chips
    table = PriceTable(chip_hour={"tpu-v5e": 1.0, "tpu-v5e-8": 2.0})
    cost = cost_of(1.5, config.accelerator, table)
    assert (cost.chip_hours, cost.money) == (12.0, 24.0)
    assert cost_of(1.0, config.accelerator, PriceTable(chip_hour={})).money is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("chip_hour: 3", "'chip_hour' must be a mapping"),
        ("chip_hour: {tpu-v5e: -1}", r"'chip_hour.tpu-v5e' must be a price >= 0"),
        ("chip_hour: {tpu-v5e: 1}\ncurrency: ''", "'currency' must be a non-empty string"),
        ("chip_hour: [", "invalid YAML"),
    ],
)
def test_bad_price_tables_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_prices(text)
