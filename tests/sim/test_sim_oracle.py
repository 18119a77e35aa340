"""The oracle: the fewest replicas per window that meet the SLOs, and what that schedule costs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from simhelp import open_traffic, replica

from jetscale.errors import ConfigError
from jetscale.load.arrivals import ClosedLoop
from jetscale.load.stats import parse_slos
from jetscale.load.trace import Trace
from jetscale.load.workload import parse_workload
from jetscale.sim.oracle import OracleSchedule, OracleWindow, _fewest, oracle_schedule, window_meets
from jetscale.sim.result import OUTCOMES, RequestRecords
from jetscale.sim.scenario import ClosedTraffic, Delay, Scenario, Startup, TraceTraffic
from jetscale.sim.simulator import simulate

SMALL = replica(decode_slots=8)


@given(need=st.integers(1, 60), guess=st.integers(1, 50), cap=st.integers(1, 50))
def test_fewest_finds_the_smallest_count_that_meets(need: int, guess: int, cap: int) -> None:
    calls: list[int] = []

    def meets(n: int) -> bool:
        calls.append(n)
        return n >= need

    n, feasible = _fewest(meets, min(guess, cap), cap)
    assert (n, feasible) == ((need, True) if need <= cap else (cap, False))
    assert all(1 <= c <= cap for c in calls)
    assert len(calls) <= 4 * max(1, cap).bit_length() + 2


def _records(ttft: list[float], rejected: list[bool]) -> RequestRecords:
    n = len(ttft)
    arrival = np.arange(n, dtype=float)
    return RequestRecords(
        request_id=np.arange(n),
        replica=np.zeros(n, dtype=np.int64),
        arrival_s=arrival,
        first_token_s=arrival + np.asarray(ttft),
        end_s=arrival + np.asarray(ttft) + 1.0,
        input_tokens=np.full(n, 10),
        output_tokens=np.full(n, 2),
        rejected=np.asarray(rejected),
        outcome=np.where(rejected, OUTCOMES.index("shed:backlog_full"), 0).astype(np.int8),
    )


@pytest.mark.parametrize(
    ("slo", "rejected_last", "window", "meets"),
    [
        ("ttft_p90=1.125s", False, (0, 10), True),  # nearest rank 9 of 1/8 .. 10/8 s is 9/8
        ("ttft_p90=1.1s", False, (0, 10), False),
        ("ttft_p100=1.125s", False, (0, 9), True),  # the slowest request arrived outside the window
        ("ttft_p90=1.125s", True, (0, 10), True),  # a refusal counts as the slowest
        ("ttft_p95=5s", True, (0, 10), False),  # ... and the 95th percentile is then a refusal
        ("e2e_p50=1.625s", False, (0, 10), True),
    ],
)
def test_window_meets(slo: str, rejected_last: bool, window: tuple[float, float], meets: bool) -> None:
    records = _records([k / 8 for k in range(1, 11)], [False] * 9 + [rejected_last])
    assert window_meets(records, parse_slos(slo), *window) is meets


def test_schedule_cost_counts_windows_and_a_startup_per_added_replica() -> None:
    windows = tuple(
        OracleWindow(start_s=100.0 * i, end_s=100.0 * (i + 1), arrivals=1, replicas=n, feasible=True)
        for i, n in enumerate([2, 2, 4, 3])
    )
    schedule = OracleSchedule(windows=windows, startup_s=50.0, chips_per_replica=8, simulations=0)
    assert schedule.replica_seconds == (2 + 2 + 4 + 3) * 100.0 + 50.0 * 2
    assert schedule.chip_hours == pytest.approx(schedule.replica_hours * 8)
    assert schedule.replicas_at(250.0) == 4


def test_oracle_picks_the_fewest_replicas_that_meet_the_slo_in_each_window() -> None:
    scenario = Scenario(
        replica=SMALL,
        traffic=open_traffic(10.0, 300.0, shape="ramp:base=0.2", workload="fixed:input=100,output=200", seed=1),
        duration_s=300.0,
        slos=parse_slos("ttft_p95=1s"),
        startup=Startup(provision=Delay(), pull=Delay(low_s=10.0), load=Delay(low_s=30.0), ready=Delay(low_s=5.0)),
    )
    schedule = oracle_schedule(scenario, window_s=100.0, warmup_s=30.0, max_replicas=10)
    assert schedule.feasible and schedule.startup_s == 45.0
    counts = [w.replicas for w in schedule.windows]
    assert counts == sorted(counts) and counts[-1] > counts[0]  # the ramp needs more replicas as it climbs
    chunks = list(scenario.traffic.chunks(300.0))  # type: ignore[union-attr]
    times = np.asarray(chunks[0].times_s)
    inputs, outputs = np.asarray(chunks[0].input_tokens), np.asarray(chunks[0].output_tokens)
    for w in schedule.windows:
        lo = max(0.0, w.start_s - 30.0)
        keep = (times >= lo) & (times < w.end_s)
        trace = Trace(times_s=times[keep] - lo, input_tokens=inputs[keep], output_tokens=outputs[keep])

        def meets(n: int, trace: Trace = trace, lo: float = lo, w: OracleWindow = w) -> bool:
            fleet = Scenario(
                replica=SMALL, traffic=TraceTraffic(trace=trace), duration_s=w.end_s - lo, initial_replicas=n,
                drain_after_s=3600.0, records=True,
            )  # fmt: skip
            records = simulate(fleet).records
            assert records is not None
            return window_meets(records, scenario.slos, w.start_s - lo, w.end_s - lo)

        assert meets(w.replicas)
        assert w.replicas == 1 or not meets(w.replicas - 1)


def test_oracle_needs_an_slo_and_known_arrivals() -> None:
    base = Scenario(replica=SMALL, traffic=open_traffic(1.0, 60.0), duration_s=60.0)
    with pytest.raises(ConfigError, match="'slos' must name at least one SLO"):
        oracle_schedule(base)
    closed = Scenario(
        replica=SMALL,
        traffic=ClosedTraffic(loop=ClosedLoop(users=2), workload=parse_workload("fixed:input=10,output=10")),
        duration_s=60.0,
        slos=parse_slos("ttft_p95=1s"),
    )
    with pytest.raises(ConfigError, match="open loop or a trace"):
        oracle_schedule(closed)
