"""Scenario inputs: the same requests as ``jetscale load`` for the same seed, traces cut at the end,
and the checks a scenario makes of its own fields."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from simhelp import replica

from jetscale.errors import ConfigError
from jetscale.load.arrivals import parse_shape
from jetscale.load.config import build_plan, parse_options
from jetscale.load.trace import Trace
from jetscale.load.workload import parse_workload
from jetscale.sim.options import build_traffic
from jetscale.sim.scenario import OpenTraffic, Scenario, TraceTraffic


@pytest.mark.parametrize(
    ("shape", "seed"),
    [("constant", 0), ("diurnal", 7), ("spike:at=30s,width=10s", 3)],
    ids=["constant", "diurnal", "spike"],
)
def test_open_loop_sends_what_jetscale_load_sends_for_the_same_seed(shape: str, seed: int) -> None:
    config = parse_options(
        target="http://127.0.0.1:9000", rate="25", shape=shape, duration="90s", workload="sharegpt-like", seed=str(seed)
    )
    plan = build_plan(config, read_lines=lambda path: [])
    traffic = OpenTraffic(
        shape=parse_shape(shape, rate_rps=25.0, duration_s=90.0), workload=parse_workload("sharegpt-like"), seed=seed
    )
    (chunk,) = traffic.chunks(90.0)
    assert plan.sizes is not None and len(chunk.times_s) > 500
    assert np.array_equal(chunk.times_s, plan.times_s)
    assert np.array_equal(chunk.input_tokens, plan.sizes.input_tokens)
    assert np.array_equal(chunk.output_tokens, plan.sizes.output_tokens)


def test_trace_replay_stops_at_the_end_and_at_max_requests() -> None:
    trace = Trace(
        times_s=np.array([0.0, 1.0, 2.0, 3.0, 4.0]),
        input_tokens=np.array([10, 11, 12, 13, 14]),
        output_tokens=np.array([5, 6, 7, 8, 9]),
    )
    (chunk,) = TraceTraffic(trace=trace).chunks(3.0)
    got = (chunk.times_s.tolist(), chunk.input_tokens.tolist(), chunk.output_tokens.tolist())
    assert got == ([0.0, 1.0, 2.0], [10, 11, 12], [5, 6, 7])
    (chunk,) = TraceTraffic(trace=trace, max_requests=2).chunks(10.0)
    assert chunk.times_s.tolist() == [0.0, 1.0]


def test_a_trace_file_runs_to_its_last_request_without_a_duration(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "trace.csv"
    path.write_text("t,input_tokens,output_tokens\n0,10,5\n2.5,20,6\n7,30,7\n", encoding="utf-8")
    kwargs = dict(rate=None, shape=None, users=None, think_time=None, think="fixed", ramp_up=None,
                  trace_speed=None, workload="sharegpt-like", duration=None, max_requests=None, seed=0)  # fmt: skip
    traffic, duration = build_traffic(trace=str(path), **kwargs)  # type: ignore[arg-type]
    assert isinstance(traffic, TraceTraffic) and duration == 8.0
    assert sum(len(c.times_s) for c in traffic.chunks(duration)) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"duration_s": 0.0}, "'duration_s' must be > 0"),
        ({"scrape_interval_s": 0.0}, "'scrape_interval_s' must be > 0"),
        ({"metrics_lag_s": -1.0}, "'metrics_lag_s' must be >= 0"),
        ({"drain_after_s": -1.0}, "'drain_after_s' must be >= 0"),
        ({"initial_replicas": -1}, "'initial_replicas' must be an integer >= 0"),
    ],
    ids=["duration", "scrape", "lag", "drain", "initial"],
)
def test_scenario_fields_are_checked(change: dict[str, object], message: str) -> None:
    base = Scenario(
        replica=replica(),
        traffic=OpenTraffic(
            shape=parse_shape("constant", rate_rps=1.0, duration_s=10.0), workload=parse_workload("sharegpt-like")
        ),
        duration_s=10.0,
    )
    assert base.start_replicas == 1
    with pytest.raises(ConfigError, match=message):
        replace(base, **change)  # type: ignore[arg-type]
