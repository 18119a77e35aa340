"""Statistics of a run, worked out by hand on small record sets; conservation and SLO parsing."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jetscale.errors import ConfigError
from jetscale.load.records import Outcome, RecordBuffer, Records
from jetscale.load.stats import Metric, Slo, dist, parse_slos, summarize

NAN = math.nan


def _records(rows: list[tuple[float, float, float, float, int, int, Outcome, int]]) -> Records:
    """Rows of (scheduled, sent, first token, done, input, output, outcome, code); max_tokens = output."""
    buf = RecordBuffer()
    for sched, sent, first, done, n_in, n_out, outcome, code in rows:
        i = buf.begin(scheduled_s=sched, sent_s=sent, input_tokens=n_in, max_tokens=n_out)
        if outcome is not Outcome.UNFINISHED:
            buf.finish(i, first_token_s=first, done_s=done, output_tokens=n_out, outcome=outcome, code=code)
    return buf.snapshot()


OK = Outcome.OK
# Four requests sent on time (open loop), one late by 50 ms, one 503, one cut off at the end.
ROWS = [
    (0.0, 0.001, 0.101, 0.501, 10, 5, OK, 0),  # ttft 0.1, e2e 0.5, tpot 0.1
    (0.5, 0.500, 0.700, 1.300, 20, 3, OK, 0),  # ttft 0.2, e2e 0.8, tpot 0.3
    (1.0, 1.050, 1.350, 1.850, 30, 2, OK, 0),  # ttft 0.3, e2e 0.8, tpot 0.5; 50 ms late
    (1.5, 1.500, 1.900, 2.500, 40, 1, OK, 0),  # ttft 0.4, e2e 1.0, no tpot (1 token)
    (2.0, 2.000, NAN, 2.100, 50, 0, Outcome.HTTP, 503),
    (2.5, 2.500, NAN, NAN, 60, 0, Outcome.UNFINISHED, 0),
]


def test_counts_throughput_and_latencies_by_hand() -> None:
    s = summarize(_records(ROWS), elapsed_s=3.0, interval_s=1.0, mode="open", planned_s=np.arange(6) * 0.5)
    assert (s.sent, s.ok, s.failed, s.unfinished) == (6, 4, 1, 1)
    assert s.request_rps == pytest.approx(4 / 3)
    assert s.input_tps == pytest.approx(100 / 3)
    assert s.output_tps == pytest.approx(11 / 3)
    assert s.ttft.count == 4 and s.ttft.mean_s == pytest.approx(0.25) and s.ttft.max_s == pytest.approx(0.4)
    assert s.ttft.p50_s == pytest.approx(0.25)  # linear interpolation between 0.2 and 0.3
    assert s.e2e.p50_s == pytest.approx(0.8)
    assert s.tpot.count == 3 and s.tpot.mean_s == pytest.approx(0.3)
    assert s.errors == {"http 503": 1, "unfinished": 1}


def test_intervals_group_latency_by_end_time_and_sends_by_send_time() -> None:
    s = summarize(_records(ROWS), elapsed_s=3.0, interval_s=1.0, mode="open", planned_s=np.arange(6) * 0.5)
    assert [iv.start_s for iv in s.intervals] == [0.0, 1.0, 2.0]
    assert [iv.sent_rps for iv in s.intervals] == [2.0, 2.0, 2.0]
    assert [iv.scheduled_rps for iv in s.intervals] == [2.0, 2.0, 2.0]
    assert [iv.completed_rps for iv in s.intervals] == [1.0, 2.0, 2.0]  # ends: 0.501 | 1.3, 1.85 | 2.5, 2.1
    assert [iv.ok_rps for iv in s.intervals] == [1.0, 2.0, 1.0]
    assert [iv.errors for iv in s.intervals] == [{}, {}, {"http 503": 1}]
    assert [iv.ttft.count for iv in s.intervals] == [1, 2, 1]
    assert s.intervals[1].e2e.mean_s == pytest.approx(0.8)
    # in flight at each interval's end: sent so far minus finished so far
    assert [iv.in_flight for iv in s.intervals] == [1, 2, 1]


def test_a_last_sliver_joins_the_interval_before_it() -> None:
    s = summarize(_records(ROWS), elapsed_s=3.1, interval_s=1.0, mode="open", planned_s=np.arange(6) * 0.5)
    assert [(iv.start_s, iv.width_s) for iv in s.intervals] == [(0.0, 1.0), (1.0, 1.0), (2.0, pytest.approx(1.1))]


@pytest.mark.parametrize(
    ("spec", "met", "share_within", "intervals"),
    [
        pytest.param("ttft_p50=0.35s", True, 3 / 5, (2, 3), id="ttft-median-met"),
        pytest.param("ttft_p99=350ms", False, 3 / 5, (2, 3), id="ttft-tail-missed"),
        pytest.param("e2e_p90=1s", True, 4 / 5, (3, 3), id="e2e-met-errors-still-count-as-misses"),
        pytest.param("tpot_p50=0.2s", False, 1 / 5, (1, 2), id="tpot-missed"),
    ],
)
def test_slo_results(spec: str, met: bool, share_within: float, intervals: tuple[int, int]) -> None:
    s = summarize(_records(ROWS), elapsed_s=3.0, interval_s=1.0, mode="open", slos=parse_slos(spec))
    (r,) = s.slos
    assert r.met is met
    assert r.share_within == pytest.approx(share_within)  # over the 5 finished requests
    assert (r.intervals_met, r.intervals_total) == intervals
    assert s.slos_met is met


def test_generator_that_kept_up() -> None:
    rows = [(t, t + 0.001, t + 0.01, t + 0.02, 1, 1, OK, 0) for t in np.arange(200) * 0.01]
    s = summarize(_records(rows), elapsed_s=2.1, interval_s=1.0, mode="open", planned_s=np.arange(200) * 0.01)
    g = s.generator
    assert g.kept_up and g.not_sent == 0 and g.late_share == 0.0
    assert g.lateness.p99_s == pytest.approx(0.001)
    assert g.verdict.startswith("kept up")


@pytest.mark.parametrize(
    ("late", "planned", "why"),
    [
        pytest.param(5, 200, "5 of 200 late", id="late"),
        pytest.param(0, 230, "30 never sent", id="not-sent"),
    ],
)
def test_generator_that_fell_behind_says_so(late: int, planned: int, why: str) -> None:
    rows = [
        (t, t + (0.5 if i < late else 0.0), t + 0.6, t + 0.7, 1, 1, OK, 0) for i, t in enumerate(np.arange(200) * 0.01)
    ]
    s = summarize(_records(rows), elapsed_s=3.0, interval_s=1.0, mode="open", planned_s=np.arange(planned) * 0.01)
    g = s.generator
    assert not g.kept_up, why
    assert g.verdict.startswith("FELL BEHIND")
    assert g.not_sent == planned - 200
    assert g.late_share == pytest.approx(late / 200)


def test_one_straggler_in_a_short_run_is_not_falling_behind() -> None:
    rows = [(t, t + (0.05 if t == 0 else 0.0), t + 0.1, t + 0.2, 1, 1, OK, 0) for t in np.arange(30) * 0.1]
    s = summarize(_records(rows), elapsed_s=3.5, interval_s=1.0, mode="open", planned_s=np.arange(30) * 0.1)
    assert s.generator.kept_up


def test_closed_loop_has_no_schedule() -> None:
    rows = [(NAN, 0.1 * i, 0.1 * i + 0.05, 0.1 * i + 0.09, 1, 2, OK, 0) for i in range(10)]
    s = summarize(_records(rows), elapsed_s=1.0, interval_s=0.5, mode="closed")
    assert s.generator.mode == "closed" and s.generator.kept_up
    assert s.generator.lateness.count == 0
    assert all(math.isnan(iv.scheduled_rps) for iv in s.intervals)
    slow = summarize(_records(rows), elapsed_s=1.0, interval_s=0.5, mode="closed", cpu_saturated=True)
    assert not slow.generator.kept_up and "CPU was saturated" in slow.generator.verdict


OUTCOMES = st.sampled_from(list(Outcome))


@given(
    rows=st.lists(
        st.tuples(st.floats(0, 50), st.floats(0, 5), st.floats(0, 5), st.integers(1, 99), st.integers(0, 99), OUTCOMES),
        max_size=60,
    ),
    interval=st.floats(0.3, 20),
)
@settings(max_examples=80, deadline=None)
def test_requests_are_conserved(rows: list[tuple[float, float, float, int, int, Outcome]], interval: float) -> None:
    built = [
        (sent, sent, sent + ttft, sent + ttft + rest, n_in, n_out, outcome, 500 if outcome is Outcome.HTTP else 0)
        for sent, ttft, rest, n_in, n_out, outcome in rows
    ]
    s = summarize(
        _records(built), elapsed_s=60.0, interval_s=interval, mode="open", planned_s=np.array([r[0] for r in rows])
    )
    assert s.sent == s.ok + s.failed + s.unfinished == len(rows)
    completed = sum(round(iv.completed_rps * iv.width_s) for iv in s.intervals)
    assert completed == s.ok + s.failed  # every finished request lands in exactly one interval
    assert sum(round(iv.sent_rps * iv.width_s) for iv in s.intervals) == len(rows)
    assert sum(s.errors.values()) == s.failed + s.unfinished
    assert s.intervals[-1].in_flight == s.unfinished


def test_dist_of_nothing_is_nan_not_an_error() -> None:
    d = dist(np.array([NAN, NAN]))
    assert d.count == 0 and math.isnan(d.p99_s)


@pytest.mark.parametrize(
    ("spec", "slos"),
    [
        pytest.param("", (), id="empty"),
        pytest.param("ttft_p95=2s", (Slo(metric=Metric.TTFT, percentile=95, target_s=2.0),), id="one"),
        pytest.param(
            "e2e_p99=30s, tpot_p50=80ms",
            (
                Slo(metric=Metric.E2E, percentile=99, target_s=30.0),
                Slo(metric=Metric.TPOT, percentile=50, target_s=0.08),
            ),
            id="two",
        ),
        pytest.param("ttft_p99.9=1.5", (Slo(metric=Metric.TTFT, percentile=99.9, target_s=1.5),), id="fractional"),
    ],
)
def test_parse_slos(spec: str, slos: tuple[Slo, ...]) -> None:
    assert parse_slos(spec) == slos


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("latency_p95=2s", "'--slo' must be like", id="unknown-metric"),
        pytest.param("ttft=2s", "'--slo' must be like", id="no-percentile"),
        pytest.param("ttft_p0=2s", "percentile must be in (0, 100]", id="p0"),
        pytest.param("ttft_p95=fast", "must be a duration", id="bad-target"),
        pytest.param("ttft_p95=0s", "target must be > 0", id="zero"),
    ],
)
def test_bad_slos_name_the_flag(spec: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_slos(spec)
    assert message in str(info.value)
