"""The tuner's traffic: seeds, compression for the coarse pass, and a recorded load run read back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jetscale.errors import ConfigError
from jetscale.load.arrivals import parse_shape
from jetscale.load.records import Records
from jetscale.load.report import write_requests_csv
from jetscale.load.trace import Trace
from jetscale.load.workload import parse_workload
from jetscale.sim.scenario import OpenTraffic, TraceTraffic
from jetscale.tune.traffic import compress_shape, expected_requests, mean_sizes, read_load_run, variant

WORKLOAD = parse_workload("fixed:input=100,output=50")


@pytest.mark.parametrize(
    "spec", ["diurnal:base=0.2", "step:at=600s,base=0.25", "ramp:base=0.1,end=900s", "spike:at=300s,width=60s"]
)
def test_compression_keeps_the_rate_at_matching_times(spec: str) -> None:
    shape = parse_shape(spec, rate_rps=10.0, duration_s=1200.0)
    fast = compress_shape(shape, 4)
    t = np.linspace(0, 1199, 97)
    assert np.allclose(fast.rate_at(t / 4), shape.rate_at(t))
    assert fast.expected_count(0, 300) == pytest.approx(shape.expected_count(0, 1200) / 4)


def test_open_loop_variants_draw_other_seeds_and_fewer_requests() -> None:
    traffic = OpenTraffic(shape=parse_shape("constant", rate_rps=5.0, duration_s=600), workload=WORKLOAD, seed=7)
    one = variant(traffic, seed_index=1, compression=1)
    assert isinstance(one, OpenTraffic) and one.seed == 8
    coarse = variant(traffic, seed_index=0, compression=3)
    assert expected_requests(coarse, 200.0) == pytest.approx(expected_requests(traffic, 600.0) / 3)


def test_a_compressed_trace_keeps_one_request_in_k_k_times_faster() -> None:
    times = np.arange(12, dtype=float) * 10.0
    trace = Trace(times_s=times, input_tokens=np.arange(1, 13), output_tokens=np.full(12, 5))
    traffic = TraceTraffic(trace=trace, name="t")
    coarse = variant(traffic, seed_index=1, compression=3)
    assert isinstance(coarse, TraceTraffic)
    assert coarse.trace.times_s.tolist() == [10 / 3, 40 / 3, 70 / 3, 100 / 3]
    assert coarse.trace.input_tokens.tolist() == [2, 5, 8, 11]
    assert variant(traffic, seed_index=2, compression=1) is traffic  # a trace's requests do not change with seeds
    assert mean_sizes(traffic) == (6.5, 5.0)


def test_a_load_run_replays_at_its_schedule(tmp_path: Path) -> None:
    nan = np.nan
    records = Records.from_columns(
        {
            "scheduled_s": np.array([10.0, 10.5, 12.0]),
            "sent_s": np.array([10.01, 10.52, 12.0]),
            "first_token_s": np.array([10.1, nan, 12.2]),
            "done_s": np.array([11.0, nan, 13.0]),
            "input_tokens": np.array([30, 40, 50]),
            "max_tokens": np.array([64, 64, 64]),
            "output_tokens": np.array([20, 0, 64]),
            "outcome": np.array([0, 2, 0]),
            "code": np.array([0, 0, 0]),
        }
    )
    path = tmp_path / "requests.csv"
    write_requests_csv(records, path)
    trace = read_load_run(path.read_text().splitlines(), source=str(path))
    assert trace.times_s.tolist() == pytest.approx([0.0, 0.5, 2.0])
    assert trace.input_tokens.tolist() == [30, 40, 50]
    assert trace.output_tokens.tolist() == [20, 64, 64]  # a request that produced nothing replays its max_tokens


def test_a_closed_loop_run_replays_at_send_times() -> None:
    lines = ["scheduled_s,sent_s,input_tokens,max_tokens,output_tokens", ",3.0,10,8,8", ",1.0,12,8,8"]
    trace = read_load_run(lines, source="closed.csv")
    assert trace.times_s.tolist() == [0.0, 2.0] and trace.input_tokens.tolist() == [12, 10]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param(["t,input_tokens,output_tokens", "0,1,1"], "missing columns", id="a-trace-not-a-load-run"),
        pytest.param(["scheduled_s,sent_s,input_tokens,max_tokens,output_tokens"], "no requests", id="empty"),
        pytest.param(
            ["scheduled_s,sent_s,input_tokens,max_tokens,output_tokens", "x,1,1,1,1"], "must be a number", id="bad"
        ),
    ],
)
def test_bad_load_runs_name_the_file(lines: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        read_load_run(lines, source="run.csv")
