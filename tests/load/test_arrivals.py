"""Arrival times: Poisson counts against the integral of each shape, shapes, determinism, closed loop, traces."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jetscale.errors import ConfigError
from jetscale.load.arrivals import (
    ClosedLoop,
    RateShape,
    ShapeKind,
    ThinkKind,
    parse_shape,
    poisson_arrivals,
)
from jetscale.load.trace import parse_trace

DURATION = 600.0
RATE = 400.0  # 400 rps x 600 s: the counts below are large enough for a 2% band to be ~10 sigma wide

SHAPES = {
    "constant": "constant",
    "step": "step:at=200s,base=0.25",
    "ramp": "ramp",
    "spike": "spike:at=300s,width=60s,base=0.1",
    "diurnal": "diurnal:period=300s,base=0.2",
}


def _csv_lines(_: str) -> list[str]:
    return ["t,rps", "0,100", "100,300", "300,300", "300,50", "600,200"]


def _shape(spec: str) -> RateShape:
    rate = None if spec.startswith("csv:") else RATE  # the CSV's own rates, unscaled
    return parse_shape(spec, rate_rps=rate, duration_s=DURATION, read_lines=_csv_lines)


def _numeric_integral(shape: RateShape, t0: float, t1: float) -> float:
    t = np.linspace(t0, t1, 200_001)
    r = shape.rate_at(t)
    return float(np.sum((r[1:] + r[:-1]) / 2 * np.diff(t)))


@pytest.mark.parametrize("spec", [*SHAPES.values(), "csv:rates.csv"], ids=[*SHAPES, "csv"])
def test_poisson_count_is_within_two_percent_of_the_schedules_integral(spec: str) -> None:
    shape = _shape(spec)
    times = poisson_arrivals(shape, np.random.default_rng(11), duration_s=DURATION)
    expected = shape.expected_count(0, DURATION)
    assert abs(len(times) / expected - 1) < 0.02
    # and window by window (60 s windows, each with thousands of arrivals): within 6 standard deviations
    for start in range(0, int(DURATION), 60):
        window = shape.expected_count(start, start + 60)
        got = np.count_nonzero((times >= start) & (times < start + 60))
        assert abs(got - window) < 6 * math.sqrt(window) + 1


@pytest.mark.parametrize("spec", [*SHAPES.values(), "csv:rates.csv"], ids=[*SHAPES, "csv"])
def test_expected_count_is_the_integral_of_the_rate(spec: str) -> None:
    shape = _shape(spec)
    for t0, t1 in ((0, DURATION), (37.5, 312.25), (299.0, 301.0), (500, 700)):
        assert shape.expected_count(t0, t1) == pytest.approx(_numeric_integral(shape, t0, t1), rel=1e-4, abs=1e-3)


@pytest.mark.parametrize(
    ("spec", "t", "rate"),
    [
        pytest.param("step:at=200s,base=0.25", 199.9, 100.0, id="step-before"),
        pytest.param("step:at=200s,base=0.25", 200.0, 400.0, id="step-at"),
        pytest.param("ramp", 0.0, 0.0, id="ramp-start"),
        pytest.param("ramp", 300.0, 200.0, id="ramp-middle"),
        pytest.param("ramp", 900.0, 400.0, id="ramp-holds-after-end"),
        pytest.param("spike:at=300s,width=60s,base=0.1", 330.0, 400.0, id="spike-inside"),
        pytest.param("spike:at=300s,width=60s,base=0.1", 360.0, 40.0, id="spike-after"),
        pytest.param("diurnal:period=300s,base=0.2", 0.0, 80.0, id="diurnal-trough"),
        pytest.param("diurnal:period=300s,base=0.2", 150.0, 400.0, id="diurnal-peak"),
        pytest.param("csv:rates.csv", 50.0, 200.0, id="csv-interpolates"),
        pytest.param("csv:rates.csv", 300.0, 50.0, id="csv-jump"),
    ],
)
def test_rate_at_known_points(spec: str, t: float, rate: float) -> None:
    assert float(_shape(spec).rate_at(t)) == pytest.approx(rate)


def test_defaults_come_from_the_duration() -> None:
    step = parse_shape("step", rate_rps=10, duration_s=100)
    assert step.knots == ((0.0, 2.5), (50.0, 2.5), (50.0, 10.0))
    diurnal = parse_shape("diurnal", rate_rps=10, duration_s=100)
    assert (diurnal.period_s, diurnal.base_rps, diurnal.max_rps) == (100, 2.0, 10)


def test_csv_rates_scale_to_the_given_peak() -> None:
    shape = parse_shape("rates.csv", rate_rps=30.0, duration_s=None, read_lines=_csv_lines)
    assert shape.kind is ShapeKind.CSV and shape.max_rps == pytest.approx(30.0)
    assert float(shape.rate_at(0)) == pytest.approx(10.0)


@pytest.mark.parametrize(
    ("spec", "rate", "duration", "message"),
    [
        pytest.param("sine", 1.0, 10.0, "'--shape' must be one of", id="unknown"),
        pytest.param("constant", None, 10.0, "'--rate' must be > 0", id="no-rate"),
        pytest.param("constant", -2.0, 10.0, "'--rate' must be > 0", id="negative-rate"),
        pytest.param("step", 1.0, None, "step needs at=DURATION or a '--duration'", id="step-needs-time"),
        pytest.param("step:base=2", 1.0, 10.0, "base must be a fraction of the peak rate in 0..1", id="base-over-1"),
        pytest.param("diurnal:period=soon", 1.0, 10.0, "must be a duration", id="bad-duration"),
        pytest.param("ramp:slope=3", 1.0, 10.0, "unknown parameter(s) slope", id="unknown-param"),
    ],
)
def test_bad_shapes_name_the_flag(spec: str, rate: float | None, duration: float | None, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_shape(spec, rate_rps=rate, duration_s=duration)
    assert message in str(info.value)


def test_bad_csv_rows_name_the_line() -> None:
    with pytest.raises(ConfigError, match=r"r.csv:3: must be 't,rps' numbers"):
        parse_shape("r.csv", rate_rps=None, duration_s=None, read_lines=lambda _: ["t,rps", "0,1", "x,y"])


@given(seed=st.integers(0, 2**32 - 1), rate=st.floats(0.5, 2000), duration=st.floats(0.5, 30))
@settings(max_examples=40, deadline=None)
def test_arrivals_are_seeded_sorted_and_inside_the_run(seed: int, rate: float, duration: float) -> None:
    shape = parse_shape("diurnal", rate_rps=rate, duration_s=duration)
    a = poisson_arrivals(shape, np.random.default_rng(seed), duration_s=duration)
    b = poisson_arrivals(shape, np.random.default_rng(seed), duration_s=duration)
    assert np.array_equal(a, b)
    assert np.all(np.diff(a) >= 0)
    assert len(a) == 0 or (a[0] >= 0 and a[-1] < duration)


def test_max_count_caps_a_run_with_or_without_a_duration() -> None:
    shape = parse_shape("constant", rate_rps=50, duration_s=None)
    capped = poisson_arrivals(shape, np.random.default_rng(1), duration_s=None, max_count=1234)
    assert len(capped) == 1234
    assert capped[-1] == pytest.approx(1234 / 50, rel=0.1)
    short = poisson_arrivals(shape, np.random.default_rng(1), duration_s=1.0, max_count=10_000)
    assert len(short) < 100


def test_an_open_loop_needs_a_bound_and_a_sane_size() -> None:
    shape = parse_shape("constant", rate_rps=1e6, duration_s=None)
    with pytest.raises(ConfigError, match="needs '--duration' or '--max-requests'"):
        poisson_arrivals(shape, np.random.default_rng(0), duration_s=None)
    with pytest.raises(ConfigError, match="keep it under"):
        poisson_arrivals(shape, np.random.default_rng(0), duration_s=3600)


@pytest.mark.parametrize(
    ("loop", "mean"),
    [
        pytest.param(ClosedLoop(users=3, think_time_s=2.0), 2.0, id="fixed"),
        pytest.param(ClosedLoop(users=3, think_time_s=2.0, think=ThinkKind.EXPONENTIAL), 2.0, id="exponential"),
        pytest.param(ClosedLoop(users=3), 0.0, id="none"),
    ],
)
def test_think_times(loop: ClosedLoop, mean: float) -> None:
    rng = np.random.default_rng(5)
    draws = np.array([loop.think_time(rng) for _ in range(20_000)])
    assert draws.mean() == pytest.approx(mean, abs=0.05)
    assert (draws.std() > 1.5) == (loop.think is ThinkKind.EXPONENTIAL)


def test_users_ramp_up_evenly() -> None:
    assert ClosedLoop(users=4, ramp_up_s=2.0).start_offsets_s().tolist() == [0.0, 0.5, 1.0, 1.5]
    with pytest.raises(ConfigError, match="'--users' must be >= 1"):
        ClosedLoop(users=0)


def test_trace_from_jsonl_is_sorted_shifted_and_sped_up() -> None:
    lines = [
        '{"t": 12.0, "input_tokens": 5, "output_tokens": 6}',
        '{"t": 10.0, "input_tokens": 7, "output_tokens": 8, "prompt": "hi"}',
        '{"t": 11.0, "input_tokens": 9, "output_tokens": 10}',
    ]
    trace = parse_trace(lines, source="t.jsonl", speed=2.0)
    assert trace.times_s.tolist() == [0.0, 0.5, 1.0]
    assert trace.input_tokens.tolist() == [7, 9, 5]
    assert trace.output_tokens.tolist() == [8, 10, 6]
    assert trace.prompts == ("hi", None, None)


def test_trace_from_an_azure_style_csv() -> None:
    lines = [
        "TIMESTAMP,ContextTokens,GeneratedTokens",
        "2023-11-16 18:15:46.6805900,374,44",
        "2023-11-16 18:15:50.9951690,396,109",
    ]
    trace = parse_trace(lines, source="azure.csv")
    assert trace.times_s.tolist() == pytest.approx([0.0, 4.314579])
    assert trace.input_tokens.tolist() == [374, 396]
    assert trace.duration_s == pytest.approx(4.314579)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param([], "the trace has no rows", id="empty"),
        pytest.param(['{"input_tokens": 1, "output_tokens": 2}'], "needs a time column", id="no-time"),
        pytest.param(['{"t": 1, "output_tokens": 2}'], "needs input tokens", id="no-input"),
        pytest.param(['{"t": 1, "input_tokens": 2}'], "needs output tokens", id="no-output"),
        pytest.param(
            ['{"t": "noon", "input_tokens": 1, "output_tokens": 2}'], "seconds or an ISO timestamp", id="bad-time"
        ),
        pytest.param(
            ["t,input_tokens,output_tokens", "1,0,3"], "'input_tokens' must be a whole number >= 1", id="zero"
        ),
    ],
)
def test_bad_traces_name_the_row(lines: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_trace(lines, source="trace")
    assert message in str(info.value)


def test_trace_file_via_csv_reader(tmp_path: Path) -> None:
    path = tmp_path / "trace.csv"
    path.write_text("t,input_tokens,output_tokens\n0,1,2\n0.5,3,4\n")
    trace = parse_trace(path.read_text().splitlines(), source=str(path))
    assert trace.times_s.tolist() == [0.0, 0.5]
