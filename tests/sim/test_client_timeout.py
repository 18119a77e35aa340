"""``--client-timeout``: a client gives up on a request not finished that long after it arrived, and the
request is cancelled in its engine (backlog at once, slot at the next step). Outcomes worked out by hand
on the toy replica (toysim), conservation as a property, and the flag end to end."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simhelp import FAST_STARTUP, make_hpa, open_traffic, replica
from toysim import PREFILL_S, burst, one_replica, toy

from jetscale.cli import main
from jetscale.errors import ConfigError
from jetscale.load.arrivals import ClosedLoop
from jetscale.load.stats import parse_slos
from jetscale.load.workload import parse_workload
from jetscale.sim.result import OUTCOMES, SimResult
from jetscale.sim.scenario import ClosedTraffic, Scenario
from jetscale.sim.simulator import Simulator, simulate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "hpa"


def _outcomes(result: SimResult) -> list[str]:
    """Each request's outcome, by id."""
    assert result.records is not None
    records = result.records.sorted()
    return [OUTCOMES[code] for code in records.outcome]


def _stages(result: SimResult) -> tuple[int, int, int]:
    by = result.counts.abandoned_by_stage
    return by["backlog"], by["prefill_transfer"], by["decode"]


# --- outcomes by hand -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("requests", "output_tokens", "timeout_s", "done", "stages"),
    [
        # one-token requests end at their prefill's end, 16 ms apart: 0, 1, 2 end by 48 ms; at 50 ms
        # request 3 is being prefilled (48..64 ms) and 4..9 wait in the backlog
        pytest.param(10, 1, 0.050, 3, (6, 1, 0), id="burst-backlog-and-prefill"),
        # shorter than one prefill: the first one is being prefilled, the rest are queued
        pytest.param(5, 1, 0.010, 0, (4, 1, 0), id="shorter-than-a-prefill"),
        # request 0 holds the only slot (39 steps of about 10.3 ms), request 1 is prefilled (16..32 ms) and
        # waits for it: both give up at 100 ms, from the slot and from the generate backlog
        pytest.param(2, 40, 0.100, 0, (0, 1, 1), id="slot-and-generate-backlog"),
        # long enough for everyone: 5 prefills of 16 ms
        pytest.param(5, 1, 0.5, 5, (0, 0, 0), id="longer-than-any-latency"),
    ],
)
def test_a_burst_on_one_replica(
    requests: int, output_tokens: int, timeout_s: float, done: int, stages: tuple[int, int, int]
) -> None:
    result = simulate(one_replica(burst(requests, output_tokens=output_tokens), client_timeout_s=timeout_s))
    c = result.counts
    assert (c.arrived, c.done, c.rejected, c.in_flight) == (requests, done, 0, 0)
    assert c.abandoned == sum(stages) == requests - done
    assert _stages(result) == stages
    outcomes = _outcomes(result)
    assert outcomes[:done] == ["completed"] * done
    expected = [f"abandoned:{s}" for s, n in zip(("backlog", "prefill_transfer", "decode"), stages, strict=True)]
    assert sorted(outcomes[done:]) == sorted(o for o, n in zip(expected, stages, strict=True) for _ in range(n))


def test_the_burst_abandons_in_prefill_order() -> None:
    result = simulate(one_replica(burst(10), client_timeout_s=0.050))
    assert _outcomes(result) == ["completed"] * 3 + ["abandoned:prefill_transfer"] + ["abandoned:backlog"] * 6
    records = result.records
    assert records is not None
    records = records.sorted()
    assert records.end_s[:3] == pytest.approx([PREFILL_S, 2 * PREFILL_S, 3 * PREFILL_S])
    # an abandoned request keeps the replica it left and has no times; it is neither done nor refused
    assert np.all(records.replica == 0) and not records.rejected.any()
    assert np.isnan(records.end_s[3:]).all() and np.isnan(records.first_token_s[3:]).all()


def test_a_request_that_ends_at_its_deadline_has_finished() -> None:
    baseline = simulate(one_replica(burst(4)))
    assert baseline.records is not None
    third_end = float(baseline.records.sorted().end_s[2])  # arrived at 0: its latency is its end
    result = simulate(one_replica(burst(4), client_timeout_s=third_end))
    assert _outcomes(result) == ["completed"] * 3 + ["abandoned:prefill_transfer"]


def test_requests_given_up_in_the_backlog_cost_the_chips_nothing() -> None:
    """A burst of 9 and one more request at 100 ms. Without a timeout the last waits for the whole burst
    (prefills end at 16, 32, ..., 144 ms) and ends at 160 ms. With 50 ms, requests 4..8 leave the backlog
    at 50 ms and the prefill of request 3 (48..64 ms, which the chips finish) is the last of the burst:
    the late request is prefilled as it arrives and ends at 116 ms."""
    traffic = burst(10)
    late = replace(traffic, trace=replace(traffic.trace, times_s=np.asarray([0.0] * 9 + [0.1])))
    without = simulate(one_replica(late))
    with_timeout = simulate(one_replica(late, client_timeout_s=0.050))
    assert without.records is not None and with_timeout.records is not None
    assert without.records.sorted().end_s[9] == pytest.approx(10 * PREFILL_S)
    assert with_timeout.records.sorted().end_s[9] == pytest.approx(0.1 + PREFILL_S)
    assert _outcomes(with_timeout) == (
        ["completed"] * 3 + ["abandoned:prefill_transfer"] + ["abandoned:backlog"] * 5 + ["completed"]
    )


def test_abandoned_requests_fail_the_slo() -> None:
    result = simulate(one_replica(burst(10), client_timeout_s=0.050, slos=parse_slos("e2e_p50=1s")))
    slo = result.slos[0]
    # 3 answered within 48 ms, 7 never: the median is an abandoned request, counted as infinitely slow
    assert slo.observed_s == math.inf and not slo.met
    assert slo.share_within == pytest.approx(3 / 10)
    assert result.attainment == pytest.approx(3 / 10)  # the share served


def test_a_closed_loop_user_sends_again_when_it_gives_up() -> None:
    """One user, no think time, requests that need 0.4 s on a replica of one slot, a timeout of 1/8 s:
    every request gives up in its slot and the user sends the next at once; 8 in one second."""
    traffic = ClosedTraffic(
        loop=ClosedLoop(users=1, think_time_s=0.0), workload=parse_workload("fixed:input=16,output=40")
    )
    result = simulate(one_replica(traffic, client_timeout_s=0.125))
    c = result.counts
    assert (c.arrived, c.done, c.abandoned, c.in_flight) == (8, 0, 8, 0)
    assert _stages(result) == (0, 0, 8)


# --- the flag off, or never reached -------------------------------------------------------------------------
def _scaling(**fields: object) -> Scenario:
    base = Scenario(
        replica=replica(decode_slots=8),
        traffic=open_traffic(6.0, 600.0, shape="step:at=120s,base=0.3", workload="fixed:input=100,output=200"),
        duration_s=600.0,
        hpa=make_hpa(max_replicas=6, down_window_s=60),
        startup=FAST_STARTUP,
        slos=parse_slos("ttft_p95=2s,e2e_p99=30s"),
        records=True,
        seed=3,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


CLOSED = ClosedTraffic(
    loop=ClosedLoop(users=12, think_time_s=1.0), workload=parse_workload("fixed:input=100,output=200")
)


def _same(a: SimResult, b: SimResult) -> None:
    """Bit-identical runs (``repr`` compares floats exactly, and NaN as NaN)."""
    assert a.counts == b.counts
    for name in ("ttft", "e2e", "tpot", "slos", "minutes", "syncs", "replicas", "metrics"):
        assert repr(getattr(a, name)) == repr(getattr(b, name)), name
    assert repr(a.timeline.samples) == repr(b.timeline.samples)
    assert repr(a.timeline.events) == repr(b.timeline.events)
    assert a.records is not None and b.records is not None
    ra, rb = a.records.sorted(), b.records.sorted()
    for name in ("request_id", "replica", "arrival_s", "first_token_s", "end_s", "rejected", "outcome"):
        assert np.array_equal(getattr(ra, name), getattr(rb, name), equal_nan=name.endswith("_s")), name


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="round-robin"),
        pytest.param({"router": "least-outstanding"}, id="least-outstanding"),
        pytest.param({"traffic": CLOSED}, id="closed-loop"),
    ],
)
def test_a_timeout_longer_than_any_latency_changes_nothing(fields: dict[str, object]) -> None:
    """100 s: every request's deadline within the run is taken (and finds it finished), none is reached."""
    without = simulate(_scaling(**fields))
    records = without.records
    assert records is not None and without.counts.done > 1000 and without.counts.in_flight == 0
    assert float(np.max(records.end_s - records.arrival_s)) < 100.0
    with_timeout = simulate(_scaling(**fields, client_timeout_s=100.0))
    assert with_timeout.counts.abandoned == 0
    _same(without, with_timeout)


def test_lazy_and_eager_engine_events_agree_with_abandonment() -> None:
    """Deadlines are merged with the events so that no engine runs past one before it is taken: the lazy
    simulator (engines advanced at scrapes) and the eager one (every engine event) give the same run."""
    scenario = _scaling(client_timeout_s=8.0, traffic=open_traffic(9.0, 600.0, shape="step:at=120s,base=0.3",
                                                                   workload="fixed:input=100,output=200"))  # fmt: skip
    lazy = Simulator(scenario).run()
    eager = Simulator(scenario, eager_engine_events=True).run()
    assert lazy.counts.abandoned > 0 and lazy.counts.done > 0
    _same(lazy, eager)


@pytest.mark.parametrize("timeout", [0.0, -1.0, math.inf, math.nan, True])
def test_a_bad_timeout_is_refused(timeout: float) -> None:
    with pytest.raises(ConfigError, match=r"'client_timeout_s' must be a number of seconds > 0"):
        one_replica(burst(1), client_timeout_s=timeout)


# --- conservation ---------------------------------------------------------------------------------------
@given(
    rate=st.floats(0.5, 30.0),
    duration=st.floats(20.0, 150.0),
    slots=st.integers(1, 16),
    backlog=st.integers(1, 40),
    timeout=st.floats(0.05, 60.0),
    max_wait=st.one_of(st.none(), st.floats(0.05, 30.0)),
    with_hpa=st.booleans(),
    router=st.sampled_from(["round-robin", "least-outstanding"]),
    drain=st.sampled_from([0.0, 5.0, 3600.0]),
    seed=st.integers(0, 1000),
)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_requests_are_conserved_with_abandonment(
    rate: float, duration: float, slots: int, backlog: int, timeout: float, max_wait: float | None, with_hpa: bool,
    router: str, drain: float, seed: int,
) -> None:  # fmt: skip
    traffic = open_traffic(rate, duration, workload="uniform:input=4..300,output=1..200", seed=seed)
    planned = sum(len(c.times_s) for c in traffic.chunks(duration))
    scenario = Scenario(
        replica=replica(decode_slots=slots, prefill_backlog_limit=backlog, max_queue_wait_s=max_wait),
        traffic=traffic,
        duration_s=duration,
        hpa=make_hpa(max_replicas=4, down_window_s=30) if with_hpa else None,
        initial_replicas=1,
        startup=FAST_STARTUP,
        router=router,
        drain_after_s=drain,
        records=True,
        client_timeout_s=timeout,
        seed=seed,
    )
    result = simulate(scenario)
    c = result.counts
    assert c.arrived == planned == c.done + c.rejected + c.abandoned + c.in_flight
    assert c.in_flight >= 0
    assert sum(c.abandoned_by_stage.values()) == c.abandoned
    assert sum(c.rejected_by_reason.values()) == c.rejected
    if max_wait is None:
        assert c.rejected_by_reason["queue_wait"] == 0
    records = result.records
    assert records is not None
    assert len(np.unique(records.request_id)) == len(records) == c.done + c.rejected + c.abandoned
    outcomes = [OUTCOMES[code] for code in records.outcome]
    assert outcomes.count("completed") == c.done
    assert sum(o.startswith("abandoned:") for o in outcomes) == c.abandoned
    assert int(np.count_nonzero(records.rejected)) == c.rejected
    # a request that completed did so within its client's patience
    done = records.completed
    assert np.all(records.end_s[done] - records.arrival_s[done] <= timeout + 1e-9)


# --- the flag end to end ----------------------------------------------------------------------------------
# requests of 0.2 to 2 s on one replica: a timeout of 1 s abandons about half of them, in their slots
SHORT = ["--rate", "4", "--shape", "step:at=60s,base=0.3", "--duration", "120", "--seed", "1", "--quiet",
         "--workload", "uniform:input=50..200,output=20..200", "--no-oracle",
         "--hpa", str(EXAMPLES / "backlog.yaml")]  # fmt: skip


def _run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def test_the_flag_is_in_the_json_and_the_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = _run(["simulate", *SHORT, "--client-timeout", "1s", "--records", "--json", "--out", str(out)])
    assert code == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["client_timeout_s"] == 1.0
    counts = run["counts"]
    assert counts["abandoned"] > 0
    assert set(counts["abandoned_by_stage"]) == {"backlog", "prefill_transfer", "decode"}
    assert sum(counts["abandoned_by_stage"].values()) == counts["abandoned"]
    assert counts["arrived"] == counts["done"] + counts["rejected"] + counts["abandoned"] + counts["in_flight"]
    with (out / "requests.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == counts["arrived"] - counts["in_flight"]
    outcomes = [row["outcome"] for row in rows]
    assert outcomes.count("completed") == counts["done"]
    assert sum(o.startswith("abandoned:") for o in outcomes) == counts["abandoned"]
    with (out / "latency_per_minute.csv").open() as f:
        assert sum(int(row["abandoned"]) for row in csv.DictReader(f)) <= counts["abandoned"]
    assert "abandoned by stage" in (out / "report.html").read_text(encoding="utf-8")


def test_without_the_flag_the_json_says_none(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert _run(["simulate", *SHORT, "--json", "--out", str(tmp_path)]) == 0
    run = json.loads(capsys.readouterr().out)["runs"][0]
    assert run["client_timeout_s"] is None and run["counts"]["abandoned"] == 0


def test_the_console_summary_counts_abandoned(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert _run(["simulate", *SHORT, "--client-timeout", "1s", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "abandoned by stage" in printed and " abandoned, " in printed and "client timeout 1s" in printed


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("0", "'--client-timeout' must be > 0 (got '0')", id="zero"),
        pytest.param("-1s", "'--client-timeout': must be a duration", id="negative"),
        pytest.param("soon", "'--client-timeout': must be a duration", id="not-a-duration"),
    ],
)
def test_a_bad_client_timeout_is_one_line_and_exit_2(
    value: str, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert _run(["simulate", *SHORT, "--client-timeout", value, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


def test_the_toy_replica_is_what_the_tests_say() -> None:
    """The arithmetic the tables above rely on: 16 ms per short prompt, one-token requests in sequence."""
    result = simulate(one_replica(burst(3)))
    assert result.records is not None
    assert result.records.sorted().end_s == pytest.approx([PREFILL_S, 2 * PREFILL_S, 3 * PREFILL_S])
    assert toy().decode_slots == 1
