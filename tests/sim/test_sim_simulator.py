"""The simulator's invariants: requests conserved, the same engine and the same HPA as when driven by
hand, scaling that follows the load and the behavior rules, replicas that start and drain as pods do."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simhelp import FAST_STARTUP, make_hpa, open_traffic, replica

from jetscale.engine.api import Completion, EngineRequest
from jetscale.engine.replica import ReplicaEngine
from jetscale.hpa.controller import Decision, HorizontalController, Observation
from jetscale.hpa.types import PodMetrics
from jetscale.load.arrivals import ClosedLoop
from jetscale.load.stats import parse_slos
from jetscale.load.trace import Trace
from jetscale.load.workload import parse_workload
from jetscale.sim.result import SimResult
from jetscale.sim.scenario import ClosedTraffic, Scenario, TraceTraffic
from jetscale.sim.simulator import Simulator, simulate

SMALL = replica(decode_slots=8)  # about 4 requests/s of 100 in, 200 out per replica
WORKLOAD = "fixed:input=100,output=200"


def _trace(n: int, rate: float, seed: int, *, max_out: int = 300) -> Trace:
    rng = np.random.default_rng(seed)
    return Trace(
        times_s=np.cumsum(rng.exponential(1 / rate, size=n)),
        input_tokens=rng.integers(8, 600, size=n),
        output_tokens=rng.integers(1, max_out, size=n),
    )


# --- conservation ---------------------------------------------------------------------------------------
@given(
    rate=st.floats(0.5, 40.0),
    duration=st.floats(20.0, 200.0),
    slots=st.integers(1, 16),
    backlog=st.integers(1, 40),
    with_hpa=st.booleans(),
    router=st.sampled_from(["round-robin", "least-outstanding"]),
    initial=st.integers(0, 3),
    drain=st.sampled_from([0.0, 5.0, 3600.0]),
    seed=st.integers(0, 1000),
)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_requests_are_conserved(
    rate: float, duration: float, slots: int, backlog: int, with_hpa: bool, router: str, initial: int, drain: float,
    seed: int,
) -> None:  # fmt: skip
    traffic = open_traffic(rate, duration, workload="uniform:input=4..300,output=1..200", seed=seed)
    planned = sum(len(c.times_s) for c in traffic.chunks(duration))
    scenario = Scenario(
        replica=replica(decode_slots=slots, prefill_backlog_limit=backlog),
        traffic=traffic,
        duration_s=duration,
        hpa=make_hpa(max_replicas=4, down_window_s=30) if with_hpa else None,
        initial_replicas=initial if not with_hpa else max(initial, 1),
        startup=FAST_STARTUP,
        router=router,
        drain_after_s=drain,
        records=True,
        seed=seed,
    )
    result = simulate(scenario)
    c = result.counts
    assert c.arrived == planned
    assert c.arrived == c.done + c.in_flight + c.rejected
    assert c.in_flight >= 0
    records = result.records
    assert records is not None
    assert len(np.unique(records.request_id)) == len(records) == c.done + c.rejected
    assert np.all((records.request_id >= 0) & (records.request_id < c.arrived))
    assert int(np.count_nonzero(records.rejected)) == c.rejected
    if drain == 3600.0:
        assert c.in_flight == 0


def test_conservation_holds_with_refusals_and_requests_left_running() -> None:
    scenario = Scenario(
        replica=replica(decode_slots=1, prefill_backlog_limit=2),
        traffic=open_traffic(20.0, 30.0, workload=WORKLOAD),
        duration_s=30.0,
        initial_replicas=2,
        drain_after_s=1.0,
    )
    c = simulate(scenario).counts
    assert c.rejected > 0 and c.in_flight > 0 and c.done > 0
    assert c.arrived == c.done + c.in_flight + c.rejected


# --- the engine is the engine ------------------------------------------------------------------------------
def _drive_by_hand(trace: Trace, replicas: int, end_s: float) -> dict[int, tuple[float, float] | None]:
    """Round-robin over ``replicas`` directly driven engines: request id -> (first token, end), None if refused."""
    engines = [ReplicaEngine(SMALL) for _ in range(replicas)]
    out: dict[int, tuple[float, float] | None] = {}
    done: list[Completion] = []
    for rid, (t, n_in, n_out) in enumerate(
        zip(trace.times_s.tolist(), trace.input_tokens.tolist(), trace.output_tokens.tolist(), strict=True)
    ):
        request = EngineRequest(request_id=rid, input_tokens=n_in, output_tokens=n_out, arrival_s=t)
        if not engines[rid % replicas].submit(request, t):
            out[rid] = None
    for engine in engines:
        done += engine.advance(end_s)[1]
    out.update({c.request_id: (c.first_token_s, c.end_s) for c in done})
    return out


def _by_id(result: SimResult) -> dict[int, tuple[float, float] | None]:
    r = result.records
    assert r is not None
    return {
        int(i): None if bad else (float(f), float(e))
        for i, bad, f, e in zip(r.request_id, r.rejected, r.first_token_s, r.end_s, strict=True)
    }


@pytest.mark.parametrize("replicas", [1, 3])
def test_simulated_fleet_matches_directly_driven_engines(replicas: int) -> None:
    trace = _trace(400, rate=6.0 * replicas, seed=replicas)
    scenario = Scenario(
        replica=SMALL,
        traffic=TraceTraffic(trace=trace),
        duration_s=float(trace.times_s[-1]) + 1.0,
        initial_replicas=replicas,
        drain_after_s=3600.0,
        records=True,
    )
    expected = _drive_by_hand(trace, replicas, scenario.duration_s + 3600.0)
    assert _by_id(simulate(scenario)) == expected
    assert sum(v is None for v in expected.values()) == 0  # every request served: the comparison is not vacuous


def _scaling_scenario(**changes: object) -> Scenario:
    base = Scenario(
        replica=SMALL,
        traffic=open_traffic(12.0, 900.0, shape="spike:at=120s,width=300s,base=0.15", workload=WORKLOAD, seed=3),
        duration_s=900.0,
        hpa=make_hpa(max_replicas=6, down_window_s=120),
        startup=FAST_STARTUP,
        slos=parse_slos("ttft_p95=2s"),
        records=True,
        seed=3,
    )
    return replace(base, **changes)


def test_lazy_and_eager_engine_events_give_the_same_run() -> None:
    lazy = Simulator(_scaling_scenario()).run()
    eager = Simulator(_scaling_scenario(), eager_engine_events=True).run()
    assert _by_id(lazy) == _by_id(eager)
    assert lazy.syncs == eager.syncs
    assert lazy.timeline.events == eager.timeline.events
    assert lazy.replicas == eager.replicas
    assert len(lazy.timeline.events) >= 2  # it did scale up and down
    assert eager.events_processed > lazy.events_processed


def test_same_seed_same_run_other_seed_other_run() -> None:
    a, b = simulate(_scaling_scenario()), simulate(_scaling_scenario())
    assert _by_id(a) == _by_id(b) and a.syncs == b.syncs
    c = simulate(_scaling_scenario(traffic=open_traffic(12.0, 900.0, shape="spike:at=120s,width=300s,base=0.15",
                                                        workload=WORKLOAD, seed=4)))  # fmt: skip
    assert _by_id(a) != _by_id(c)


# --- the HPA is the HPA --------------------------------------------------------------------------------------
def test_hpa_decisions_equal_a_controller_called_by_hand() -> None:
    seen: list[tuple[float, Observation, Decision]] = []
    scenario = _scaling_scenario(metrics_lag_s=7.0)
    Simulator(scenario, on_sync=lambda t, o, d: seen.append((t, o, d))).run()
    assert scenario.hpa is not None
    by_hand = HorizontalController(scenario.hpa, scenario.controller)
    assert [by_hand.step(o, t) for t, o, _ in seen] == [d for _, _, d in seen]
    assert any(d.rescale for _, _, d in seen)
    assert [t for t, _, _ in seen] == [15.0 * k for k in range(len(seen))]


def test_the_hpa_sees_a_scrape_only_after_the_metrics_lag() -> None:
    seen: list[tuple[float, Observation]] = []
    scenario = _scaling_scenario(metrics_lag_s=20.0)
    Simulator(scenario, on_sync=lambda t, o, d: seen.append((t, o))).run()
    stamps = []
    for t, observation in seen:
        reading = observation.readings[0]
        assert isinstance(reading, PodMetrics)
        for sample in reading.values.values():
            assert t - 20.0 - 15.0 < sample.timestamp_s <= t - 20.0
            stamps.append(sample.timestamp_s)
        assert set(reading.values) <= {p.name for p in observation.pods}
    assert stamps


def test_a_metric_no_replica_exports_fails_and_nothing_scales() -> None:
    result = simulate(_scaling_scenario(hpa=make_hpa(metric="no_such_metric")))
    assert {s.reason for s in result.syncs} == {"FailedGetPodsMetric"}
    assert result.timeline.events == []


def test_an_external_metric_of_the_replicas_series_drives_scaling() -> None:
    external = simulate(_scaling_scenario(hpa=make_hpa(metric_type="External", max_replicas=6, down_window_s=120)))
    assert any(e.to_replicas > e.from_replicas for e in external.timeline.events)


# --- scaling follows the load and the behavior ------------------------------------------------------------
def test_scale_up_under_a_load_step() -> None:
    step_s = 120.0
    result = simulate(
        _scaling_scenario(
            traffic=open_traffic(12.0, 600.0, shape=f"step:at={step_s:g}s,base=0.15", workload=WORKLOAD, seed=5),
            duration_s=600.0,
        )
    )
    ups = [e for e in result.timeline.events if e.to_replicas > e.from_replicas]
    assert ups and step_s <= ups[0].t_s <= step_s + 60.0
    assert all(e.to_replicas - e.from_replicas <= 4 for e in ups)  # the Pods policy: +4 per 15 s
    assert max(s.replicas_ready for s in result.timeline.samples) >= 3  # 12 rps needs 3 replicas of about 4 rps
    before = [s.replicas_desired for s in result.timeline.samples if s.t_s < step_s]
    assert set(before) == {1}  # 1.8 rps before the step: one replica is enough


@pytest.mark.parametrize("window_s", [60, 240])
def test_scale_down_waits_for_the_stabilization_window(window_s: int) -> None:
    result = simulate(_scaling_scenario(hpa=make_hpa(max_replicas=6, down_window_s=window_s)))
    downs = [e for e in result.timeline.events if e.to_replicas < e.from_replicas]
    assert downs
    for event in downs:
        recent = [
            s.metric_replicas
            for s in result.syncs
            if event.t_s - window_s < s.t_s <= event.t_s and s.metric_replicas is not None
        ]
        assert max(max(recent), 1) <= event.to_replicas  # no recommendation in the window was higher
    last_up = max(e.t_s for e in result.timeline.events if e.to_replicas > e.from_replicas and e.t_s < downs[0].t_s)
    assert downs[0].t_s - last_up >= window_s  # the scale-up's own recommendation must leave the window first


# --- replicas live as pods do --------------------------------------------------------------------------------
def test_new_replicas_are_ready_after_their_startup_delays() -> None:
    result = simulate(_scaling_scenario())
    created = [r for r in result.replicas if r.created_s > 0 and not math.isnan(r.ready_s)]
    assert created
    startup = 5.0 + 10.0 + 20.0 + 5.0  # FAST_STARTUP
    assert all(r.ready_s == pytest.approx(r.created_s + startup) for r in created)


def test_deleted_replicas_finish_their_requests_and_get_no_new_ones() -> None:
    result = simulate(_scaling_scenario())
    records = result.records
    assert records is not None
    index = {span.name: i for i, span in enumerate(result.replicas)}
    drained = [s for s in result.replicas if not math.isnan(s.deleted_s) and not math.isnan(s.ready_s)]
    assert drained
    for span in drained:
        mine = records.replica == index[span.name]
        assert not np.any(records.arrival_s[mine] > span.deleted_s)
        last_end = float(records.end_s[mine].max()) if np.any(mine) else span.deleted_s
        assert span.gone_s == max(last_end, span.deleted_s)


def test_without_a_ready_replica_every_request_is_refused() -> None:
    result = simulate(replace(_scaling_scenario(hpa=None, initial_replicas=0), duration_s=60.0))
    assert result.counts.arrived > 0 and result.counts.rejected == result.counts.arrived
    assert result.slos[0].share_within == 0.0 and not result.slos[0].met
    assert result.attainment == 0.0  # every minute without a finished request, but nothing served


def test_round_robin_spreads_requests_evenly_and_costs_replica_time() -> None:
    trace = _trace(301, rate=10.0, seed=9)
    result = simulate(
        Scenario(replica=SMALL, traffic=TraceTraffic(trace=trace), duration_s=40.0, initial_replicas=3, records=True)
    )
    assert result.records is not None
    counts = np.bincount(result.records.replica[~result.records.rejected], minlength=3)
    assert counts.max() - counts.min() <= 1
    assert result.replica_hours == pytest.approx(3 * 40.0 / 3600)
    assert result.chip_hours == pytest.approx(result.replica_hours * 8)


def test_closed_loop_users_never_have_more_requests_in_flight_than_users() -> None:
    users = 5
    scenario = Scenario(
        replica=SMALL,
        traffic=ClosedTraffic(
            loop=ClosedLoop(users=users, think_time_s=0.5), workload=parse_workload(WORKLOAD), seed=2
        ),
        duration_s=120.0,
        initial_replicas=1,
        records=True,
    )
    result = simulate(scenario)
    r = result.records
    assert r is not None and result.counts.arrived > 3 * users
    starts = np.sort(r.arrival_s)
    ends = np.sort(r.end_s[~r.rejected])
    in_flight = np.searchsorted(starts, starts, side="right") - np.searchsorted(ends, starts, side="right")
    assert in_flight.max() <= users


def test_timeline_has_one_sample_per_scrape_and_follows_the_hpa() -> None:
    result = simulate(_scaling_scenario())
    samples = result.timeline.samples
    assert [s.t_s for s in samples] == [15.0 * k for k in range(61)]
    decided = {s.t_s: s.desired_replicas for s in result.syncs}
    assert all(s.replicas_desired == decided[s.t_s] for s in samples if s.t_s in decided)
    assert len(result.minutes) == 15
    assert sum(m.finished for m in result.minutes) <= result.counts.done
