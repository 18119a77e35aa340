"""Cancellation in the engine: an abandoned request leaves its backlog at once, or its slot at the next step,
and hands out nothing more; the other requests run as if it had never held what it gave back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_replica import config, step_s

from jetscale.engine.api import Completion, EngineRequest, Stage
from jetscale.engine.presets import resolve_preset
from jetscale.engine.replica import ReplicaEngine


def req(rid: int, at: float, n_in: int = 10, n_out: int = 5) -> EngineRequest:
    return EngineRequest(request_id=rid, input_tokens=n_in, output_tokens=n_out, arrival_s=at)


def run_out(engine: ReplicaEngine, now: float = 0.0) -> tuple[list[int], dict[int, Completion]]:
    firsts: list[int] = []
    done: dict[int, Completion] = {}
    while (t := engine.next_event_time()) is not None:
        now = max(now, t)
        f, c = engine.advance(now)
        firsts += [e.request_id for e in f]
        done.update((e.request_id, e) for e in c)
    return firsts, done


def test_unknown_or_finished_requests_are_not_cancelled() -> None:
    engine = ReplicaEngine(config())
    assert engine.cancel(7, 0.0) is None
    engine.submit(req(0, 0.0, n_out=1), 0.0)
    run_out(engine)
    assert engine.cancel(0, 1.0) is None


def test_cancel_from_the_prefill_backlog_leaves_at_once() -> None:
    engine = ReplicaEngine(config(decode_slots=1))
    for rid in range(4):
        assert engine.submit(req(rid, 0.0), 0.0)
    assert engine.snapshot(0.0).prefill_backlog == 3  # 0 is prefilling
    assert engine.cancel(2, 0.001) is Stage.PREFILL_BACKLOG
    assert engine.snapshot(0.001).prefill_backlog == 2
    firsts, done = run_out(engine, 0.001)
    assert sorted(done) == [0, 1, 3] and 2 not in firsts


def test_cancel_during_its_prefill_gives_no_token_and_takes_no_slot() -> None:
    engine = ReplicaEngine(config(decode_slots=1))
    engine.submit(req(0, 0.0), 0.0)
    engine.submit(req(1, 0.0), 0.0)
    assert engine.cancel(0, 0.005) is Stage.PREFILL  # prefill of a 10-token prompt: 16 ms (bucket 16)
    firsts, done = run_out(engine, 0.005)
    assert 0 not in firsts and sorted(done) == [1]
    # the chips finish the abandoned prefill, then prefill request 1 and give it the free slot
    assert done[1].prefill_start_s == pytest.approx(0.016)
    assert done[1].insert_s == pytest.approx(0.032)


def test_cancel_in_a_slot_frees_it_at_the_end_of_the_running_step() -> None:
    engine = ReplicaEngine(config(decode_slots=1))
    engine.submit(req(0, 0.0, n_out=40), 0.0)  # prefill 16 ms, then in the slot from 16 ms
    engine.submit(req(1, 0.0, n_out=3), 0.0)  # prefilled 16..32 ms, then waits for the slot
    t0 = 0.032
    # request 0 holds the slot: step k (k = 0, 1, ...) from t0 reads a context of 10 + 1 + k tokens
    boundaries = [t0]
    for k in range(5):
        boundaries.append(boundaries[-1] + step_s(11 + k))
    cancel_at = (boundaries[2] + boundaries[3]) / 2
    assert engine.cancel(0, cancel_at) is Stage.DECODE
    _, done = run_out(engine, cancel_at)
    assert sorted(done) == [1]
    assert done[1].insert_s == pytest.approx(boundaries[3])
    assert engine.snapshot(done[1].end_s).slots_used == 0


def test_cancel_in_a_slot_while_a_prefill_runs_frees_it_now() -> None:
    engine = ReplicaEngine(config(decode_slots=1))
    engine.submit(req(0, 0.0, n_out=40), 0.0)
    engine.submit(req(1, 0.0, n_out=3), 0.0)  # its prefill runs 16..32 ms, request 0 in the slot
    assert engine.cancel(0, 0.020) is Stage.DECODE
    assert engine.snapshot(0.020).slots_used == 0
    _, done = run_out(engine, 0.020)
    assert sorted(done) == [1] and done[1].insert_s == pytest.approx(0.032)


def test_cancel_while_waiting_for_a_slot() -> None:
    engine = ReplicaEngine(config(decode_slots=1))
    for rid in range(3):
        engine.submit(req(rid, 0.0, n_out=30), 0.0)
    snap = engine.snapshot(0.050)  # 0 in the slot, 1 and 2 prefilled and waiting
    assert (snap.slots_used, snap.generate_backlog, snap.transfer_backlog) == (1, 1, 1)
    assert engine.cancel(2, 0.050) is Stage.TRANSFER_BACKLOG
    assert engine.cancel(1, 0.050) is Stage.GENERATE_BACKLOG
    _, done = run_out(engine, 0.050)
    assert sorted(done) == [0]


ACTIONS = st.lists(
    st.tuples(
        st.floats(0.0, 0.3),  # when
        st.booleans(),  # True: submit a new request, False: cancel one submitted earlier
        st.integers(1, 40),  # input tokens
        st.integers(1, 30),  # output tokens
        st.integers(0, 10_000),  # which one to cancel
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(actions=ACTIONS, slots=st.integers(1, 4))
def test_every_request_completes_once_or_is_cancelled_and_the_engine_ends_idle(
    actions: list[tuple[float, bool, int, int, int]], slots: int
) -> None:
    engine = ReplicaEngine(config(decode_slots=slots, prefill_backlog_limit=1000))
    submitted: list[int] = []
    cancelled: set[int] = set()
    done: dict[int, Completion] = {}
    for now, is_submit, n_in, n_out, pick in sorted(actions, key=lambda a: a[0]):
        if is_submit or not submitted:
            rid = len(submitted)
            assert engine.submit(req(rid, now, n_in, n_out), now)
            submitted.append(rid)
        else:
            rid = submitted[pick % len(submitted)]
            stage = engine.cancel(rid, now)
            if stage is not None:
                assert rid not in cancelled
                cancelled.add(rid)
        for c in engine.advance(now)[1]:
            assert c.request_id not in done
            done[c.request_id] = c
    _, rest = run_out(engine, 0.3)
    assert not set(rest) & set(done)
    done.update(rest)
    assert set(done) | cancelled == set(submitted)
    assert not set(done) & cancelled
    snap = engine.snapshot(1e6)
    assert snap.slots_used == snap.prefill_backlog == snap.generate_backlog == snap.transfer_backlog == 0
    assert engine.next_event_time() is None


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.tuples(st.integers(1, 40), st.integers(1, 30)), min_size=2, max_size=12),
       victim=st.integers(1, 11))  # fmt: skip
def test_cancelling_from_the_backlog_at_arrival_is_as_if_it_never_came(
    sizes: list[tuple[int, int]], victim: int
) -> None:
    victim = 1 + victim % (len(sizes) - 1)  # not 0, which is prefilling at once
    with_cancel = ReplicaEngine(config(decode_slots=2))
    without = ReplicaEngine(config(decode_slots=2))
    for rid, (n_in, n_out) in enumerate(sizes):
        with_cancel.submit(req(rid, 0.0, n_in, n_out), 0.0)
        if rid != victim:
            without.submit(req(rid, 0.0, n_in, n_out), 0.0)
    assert with_cancel.cancel(victim, 0.0) is Stage.PREFILL_BACKLOG
    assert run_out(with_cancel)[1] == run_out(without)[1]


def test_two_hundred_abandoned_requests_do_not_delay_a_probe() -> None:
    """The issue's denial of service, on the engine: 200 long requests whose clients left after 0.3 s."""
    cfg = resolve_preset("v5e-8/llama2-7b", decode_slots=24)

    def probe_latency(abandoned: int) -> float:
        engine = ReplicaEngine(cfg)
        for rid in range(abandoned):
            assert engine.submit(req(rid, 0.0, n_in=256, n_out=1024), 0.0)
        stages = [engine.cancel(rid, 0.3) for rid in range(abandoned)]
        assert None not in stages and len(stages) == abandoned
        engine.submit(req(10_000, 1.0, n_in=16, n_out=4), 1.0)
        _, done = run_out(engine, 1.0)
        assert list(done) == [10_000]
        return done[10_000].latency_s

    assert probe_latency(200) <= probe_latency(0) + 2.0
