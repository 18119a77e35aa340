"""ReplicaEngine against hand-computed timelines on a toy chip where the arithmetic is easy.

Toy roofline (efficiencies 1, no overheads): weights 1e7 B at 1e9 B/s = 10 ms per step, KV 20,000 B
per token = 0.02 ms per context token per step; prefill = max(1 ms x padded tokens, 10 ms), buckets
16 and 32. So a prompt of <= 16 tokens prefills in 16 ms, and a step over contexts totalling C tokens
takes 10 + 0.02 C ms (the compute floor, 1 ms x slots, stays below it unless a test says otherwise).
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from toy_replica import CHIP, EXACT, KV_PER_TOKEN, MODEL, WEIGHTS

from jetscale.engine.accelerator import Efficiency
from jetscale.engine.api import Completion, Engine, EngineRequest, FirstToken
from jetscale.engine.presets import HbmMode, ReplicaConfig
from jetscale.engine.replica import PREFILLED_CAPACITY, ReplicaEngine


def config(**overrides: object) -> ReplicaConfig:
    fields: dict[str, object] = {
        "accelerator": CHIP,
        "model": MODEL,
        "decode_slots": 4,
        "max_prefill_length": 32,
        "max_target_length": 64,
        "efficiency": EXACT,
        "model_load_s": 5.0,
        "kv_read": "active",  # the hand arithmetic below reads the active tokens (a paged cache)
    }
    fields.update(overrides)
    return ReplicaConfig(**fields)  # type: ignore[arg-type]


def step_s(context_tokens: int) -> float:
    return 0.010 + 0.00002 * context_tokens


def req(rid: int, n_in: int = 16, n_out: int = 4, arrival: float = 0.0) -> EngineRequest:
    return EngineRequest(request_id=rid, input_tokens=n_in, output_tokens=n_out, arrival_s=arrival)


def run_to_end(engine: ReplicaEngine) -> tuple[list[FirstToken], list[Completion]]:
    firsts: list[FirstToken] = []
    done: list[Completion] = []
    while (t := engine.next_event_time()) is not None:
        f, c = engine.advance(t)
        assert f or c, f"next_event_time() said {t} but nothing happened then"
        firsts += f
        done += c
    return firsts, done


def by_id(completions: list[Completion]) -> dict[int, Completion]:
    return {c.request_id: c for c in completions}


def test_is_an_engine() -> None:
    engine: Engine = ReplicaEngine(config())
    assert engine.next_event_time() is None


def test_one_request_timeline() -> None:
    engine = ReplicaEngine(config())
    assert engine.submit(req(0, n_in=16, n_out=4), 0.0)
    # prefill 16 ms -> first token; then 3 steps over contexts 17, 18, 19
    end = 0.016 + step_s(17) + step_s(18) + step_s(19)
    assert engine.next_event_time() == pytest.approx(0.016)
    assert engine.tokens_generated(0, 0.01) == 0
    firsts, done = engine.advance(0.016)
    assert firsts == [FirstToken(request_id=0, time_s=pytest.approx(0.016))]  # type: ignore[arg-type]
    assert done == []
    assert engine.next_event_time() == pytest.approx(end)
    assert engine.tokens_generated(0, 0.016 + step_s(17) + 0.001) == 2
    firsts, done = engine.advance(1.0)
    assert firsts == []
    (c,) = done
    assert (c.prefill_start_s, c.first_token_s, c.insert_s) == (0.0, pytest.approx(0.016), pytest.approx(0.016))
    assert c.end_s == pytest.approx(end, rel=1e-12)
    assert c.ttft_s == pytest.approx(0.016)
    assert c.tpot_s == pytest.approx((end - 0.016) / 3)
    assert engine.next_event_time() is None


def test_events_equal_keyword_built_ones() -> None:
    """The engine builds its events by setting slots directly; they must be the ordinary objects."""
    engine = ReplicaEngine(config())
    engine.submit(req(0, n_out=3), 0.0)
    (first,), (c,) = run_to_end(engine)
    fields = {f.name: getattr(c, f.name) for f in dataclasses.fields(Completion)}
    assert c == Completion(**fields) and hash(c) == hash(Completion(**fields))
    assert first == FirstToken(request_id=0, time_s=first.time_s)
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.end_s = 0.0  # type: ignore[misc]


def test_ttft_counts_from_arrival_and_prompt_is_padded_to_its_bucket() -> None:
    engine = ReplicaEngine(config())
    engine.submit(req(0, n_in=17, n_out=2, arrival=-0.5), 0.0)  # 17 tokens -> bucket 32 -> 32 ms
    (c,) = run_to_end(engine)[1]
    assert c.first_token_s == pytest.approx(0.032)
    assert c.ttft_s == pytest.approx(0.532)
    assert c.end_s == pytest.approx(0.032 + step_s(18))


def test_one_token_request_ends_at_its_prefill_without_a_slot() -> None:
    engine = ReplicaEngine(config())
    engine.submit(req(0, n_out=1), 0.0)
    firsts, (c,) = run_to_end(engine)
    assert firsts[0].time_s == c.end_s == c.insert_s == pytest.approx(0.016)
    assert engine.snapshot(1.0).slots_used == 0


def test_long_requests_are_cut_to_the_cache() -> None:
    """Prompts keep their last max_prefill_length tokens; output stops when the slot's cache is full."""
    engine = ReplicaEngine(config())
    engine.submit(req(0, n_in=100, n_out=1000), 0.0)
    (c,) = run_to_end(engine)[1]
    assert (c.input_tokens, c.output_tokens) == (32, 64 - 32)


def test_prefill_delays_the_running_decodes() -> None:
    """A request arriving mid-step is prefilled when the step ends; the next step waits for it."""
    engine = ReplicaEngine(config(decode_slots=1))
    engine.submit(req(0, n_out=4), 0.0)
    engine.advance(0.020)  # r0 is in its first step, 0.016 .. 0.016 + step(17)
    engine.submit(req(1, n_out=2, arrival=0.020), 0.020)
    step1_end = 0.016 + step_s(17)
    assert engine.next_event_time() == pytest.approx(step1_end + 0.016)  # r1's first token
    firsts, done = run_to_end(engine)
    r0, r1 = by_id(done)[0], by_id(done)[1]
    assert firsts[0] == FirstToken(request_id=1, time_s=pytest.approx(step1_end + 0.016))  # type: ignore[arg-type]
    assert r0.end_s == pytest.approx(step1_end + 0.016 + step_s(18) + step_s(19))
    # one slot: r1 takes it when r0 leaves, then makes its second token in one step
    assert r1.insert_s == r0.end_s
    assert r1.end_s == pytest.approx(r0.end_s + step_s(17))


def test_a_request_at_a_step_boundary_is_prefilled_there() -> None:
    engine = ReplicaEngine(config(decode_slots=1))
    engine.submit(req(0, n_out=3), 0.0)
    engine.submit(req(1, n_out=2), 0.016)  # exactly when r0's prefill ends
    firsts, done = run_to_end(engine)
    assert [f.time_s for f in firsts] == [pytest.approx(0.016), pytest.approx(0.032)]
    assert by_id(done)[0].end_s == pytest.approx(0.032 + step_s(17) + step_s(18))


def test_free_slots_are_reused_first_in_first_out() -> None:
    engine = ReplicaEngine(config(decode_slots=3))
    for rid, n_out in enumerate((2, 4, 6)):
        engine.submit(req(rid, n_out=n_out), 0.0)
    engine.advance(0.048)  # three prefills back to back, each inserted as it ends
    assert [engine.slot_of(r) for r in range(3)] == [0, 1, 2]
    engine.submit(req(3, n_out=9), 0.048)
    engine.submit(req(4, n_out=9), 0.048)
    ends = by_id(run_to_end(engine)[1])
    # slot 0 frees first (r0 ends), then slot 1 (r1); the waiting requests take them in that order
    assert ends[3].insert_s == pytest.approx(ends[0].end_s)
    assert ends[4].insert_s == pytest.approx(ends[1].end_s)


def test_a_freed_slot_goes_to_the_back_of_the_free_queue() -> None:
    engine = ReplicaEngine(config(decode_slots=4))
    engine.submit(req(0, n_out=2), 0.0)
    engine.submit(req(1, n_out=30), 0.0)
    engine.advance(0.1)  # r0 ended: free slots are now 2, 3, 0 (a stack would hand out 0 again)
    engine.submit(req(2, n_out=30), 0.1)
    engine.submit(req(3, n_out=30), 0.1)
    engine.submit(req(4, n_out=30), 0.1)
    engine.advance(0.2)
    assert [engine.slot_of(r) for r in range(5)] == [None, 1, 2, 3, 0]


def test_backlog_grows_once_slots_and_the_prefilled_pipeline_are_full() -> None:
    engine = ReplicaEngine(config(decode_slots=1))
    for rid in range(7):
        engine.submit(req(rid, n_out=40), 0.0)
    # r0 gets the slot; r1..r4 are prefilled (16 ms each) and wait; r5, r6 stay in the prefill backlog
    snap = engine.snapshot(0.1)
    assert PREFILLED_CAPACITY == 4
    assert (snap.prefill_backlog, snap.transfer_backlog, snap.generate_backlog) == (2, 3, 1)
    assert (snap.slots_used, snap.decode_slots, snap.slots_used_fraction) == (1, 1, 1.0)
    assert engine.tokens_generated(4, 0.1) == 1
    assert engine.tokens_generated(5, 0.1) == 0


def test_backlog_bound_refuses_and_changes_nothing() -> None:
    engine = ReplicaEngine(config(decode_slots=1, prefill_backlog_limit=2))
    accepted = [engine.submit(req(rid), 0.0) for rid in range(4)]
    # r0 leaves the backlog at once (prefilling), r1 and r2 fill it, r3 is refused
    assert accepted == [True, True, True, False]
    assert engine.snapshot(0.0).prefill_backlog == 2
    assert sorted(c.request_id for c in run_to_end(engine)[1]) == [0, 1, 2]


def test_startup_delays_work_until_the_model_is_loaded() -> None:
    engine = ReplicaEngine(config(model_load_s=5.0))
    assert engine.ready_at_s is None and engine.is_ready(0.0)
    assert engine.start(10.0) == 15.0
    assert not engine.is_ready(14.9) and engine.is_ready(15.0)
    engine.submit(req(0, n_out=2, arrival=11.0), 11.0)
    assert engine.next_event_time() == pytest.approx(15.016)
    (c,) = run_to_end(engine)[1]
    assert c.prefill_start_s == 15.0
    with pytest.raises(RuntimeError, match="once"):
        engine.start(20.0)


@pytest.mark.parametrize(
    ("mode", "before", "after"),
    [
        # paged: weights + KV of live tokens; r0 is 16 prompt tokens after its prefill, 16 + 2 after 2 steps
        pytest.param(HbmMode.PAGED, WEIGHTS + 16 * KV_PER_TOKEN, WEIGHTS + 18 * KV_PER_TOKEN, id="paged-grows"),
        # preallocated: every slot's full cache, 4 x 64 tokens, whatever the load
        pytest.param(
            HbmMode.PREALLOCATED, WEIGHTS + 4 * 64 * KV_PER_TOKEN, WEIGHTS + 4 * 64 * KV_PER_TOKEN, id="prealloc-flat"
        ),
    ],
)
def test_hbm_gauge(mode: HbmMode, before: int, after: int) -> None:
    engine = ReplicaEngine(config(hbm_mode=mode, runtime_reserve_bytes=0))
    assert engine.snapshot(0.0).hbm_used_bytes == (WEIGHTS if mode is HbmMode.PAGED else before)
    engine.submit(req(0, n_out=10), 0.0)
    assert engine.snapshot(0.016).hbm_used_bytes == before
    assert engine.snapshot(0.016 + step_s(17) + step_s(18) + 1e-6).hbm_used_bytes == after
    assert engine.snapshot(0.0).hbm_total_bytes == 20_000_000


def test_hbm_reserve_is_counted() -> None:
    engine = ReplicaEngine(config(runtime_reserve_bytes=1234, hbm_mode=HbmMode.PAGED))
    assert engine.snapshot(0.0).hbm_used_bytes == WEIGHTS + 1234


def test_duty_cycle_is_the_busy_share_since_the_previous_snapshot() -> None:
    engine = ReplicaEngine(config())
    engine.snapshot(0.0)
    engine.submit(req(0, n_out=2), 0.0)  # busy 0 .. 0.016 + step(17)
    busy = 0.016 + step_s(17)
    assert engine.snapshot(0.1).duty_cycle == pytest.approx(busy / 0.1)
    assert engine.snapshot(0.2).duty_cycle == 0.0


def test_tokens_generated_unknown_id() -> None:
    engine = ReplicaEngine(config())
    engine.submit(req(0, n_out=2), 0.0)
    assert engine.tokens_generated(0, 1.0) == 2  # done, completion not yet returned
    engine.advance(1.0)
    with pytest.raises(KeyError):
        engine.tokens_generated(0, 1.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [("input_tokens", 0), ("output_tokens", 0)],
)
def test_submit_rejects_empty_requests(field: str, value: int) -> None:
    engine = ReplicaEngine(config())
    with pytest.raises(ValueError, match=field):
        engine.submit(dataclasses.replace(req(0), **{field: value}), 0.0)


def test_submit_rejects_a_duplicate_id_in_flight() -> None:
    engine = ReplicaEngine(config())
    engine.submit(req(7), 0.0)
    with pytest.raises(ValueError, match="unique"):
        engine.submit(req(7), 0.0)


def reference_end_times(cfg: ReplicaConfig, sizes: list[tuple[int, int]]) -> list[float]:
    """Per-step reference for requests all sent at t=0 into enough slots: prefills back to back, then
    one step at a time over the contexts (no arithmetic series)."""
    timing = cfg.roofline()
    t = sum(timing.prefill_s(n_in) for n_in, _ in sizes)
    generated = [1] * len(sizes)
    ends = [math.nan] * len(sizes)
    while any(math.isnan(e) for e in ends):
        live = [i for i, e in enumerate(ends) if math.isnan(e)]
        t += timing.decode_step_s(sum(sizes[i][0] + generated[i] for i in live))
        for i in live:
            generated[i] += 1
            if generated[i] == sizes[i][1]:
                ends[i] = t
    return ends


@pytest.mark.parametrize(
    ("slots", "hbm_bytes", "sizes"),
    [
        pytest.param(4, 20_000_000, [(16, 30), (16, 20), (32, 12)], id="memory-bound"),
        # 12 slots: compute floor 12 ms; contexts start at 99 tokens (11.98 ms) and cross it
        pytest.param(12, 40_000_000, [(32, 30), (32, 20), (32, 25)], id="crosses-compute-floor"),
        pytest.param(12, 40_000_000, [(2, 3), (2, 3)], id="compute-bound"),
    ],
)
def test_stretches_sum_step_times_exactly(slots: int, hbm_bytes: int, sizes: list[tuple[int, int]]) -> None:
    chip = dataclasses.replace(CHIP, hbm_bytes_per_chip=hbm_bytes)
    cfg = config(accelerator=chip, decode_slots=slots)
    engine = ReplicaEngine(cfg)
    for rid, (n_in, n_out) in enumerate(sizes):
        engine.submit(req(rid, n_in=n_in, n_out=n_out), 0.0)
    ends = by_id(run_to_end(engine)[1])
    for rid, expected in enumerate(reference_end_times(cfg, sizes)):
        assert ends[rid].end_s == pytest.approx(expected, rel=1e-12)


def test_overheads_and_efficiency_scale_the_step() -> None:
    slow = Efficiency(decode=0.5, prefill=0.25, decode_overhead_s=0.001, prefill_overhead_s=0.002, source="test")
    engine = ReplicaEngine(config(efficiency=slow))
    engine.submit(req(0, n_out=2), 0.0)
    (c,) = run_to_end(engine)[1]
    prefill = 0.016 / 0.25 + 0.002
    assert c.first_token_s == pytest.approx(prefill)
    assert c.end_s == pytest.approx(prefill + step_s(17) / 0.5 + 0.001)


# --- invariants over random workloads ------------------------------------------------------------------
requests_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=0.5, allow_nan=False),
        st.integers(min_value=1, max_value=40),
        st.integers(min_value=1, max_value=40),
    ),
    min_size=1,
    max_size=25,
)


def drive(
    cfg: ReplicaConfig, workload: list[tuple[float, int, int]], ticks: list[float]
) -> tuple[list[FirstToken], list[Completion], int]:
    """Submit at the arrival times and advance at every tick in between; return events and refusals."""
    engine = ReplicaEngine(cfg)
    if cfg.model_load_s:
        engine.start(0.0)
    arrivals = sorted((t, i, n_in, n_out) for i, (t, n_in, n_out) in enumerate(workload))
    firsts: list[FirstToken] = []
    done: list[Completion] = []
    refused = 0
    clock = sorted({*ticks, *(a[0] for a in arrivals)})
    pending = list(arrivals)
    for now in clock:
        f, c = engine.advance(now)
        firsts += f
        done += c
        while pending and pending[0][0] <= now:
            t, rid, n_in, n_out = pending.pop(0)
            refused += not engine.submit(req(rid, n_in=n_in, n_out=n_out, arrival=t), t)
    f, c = run_to_end(engine)
    return firsts + f, done + c, refused


@settings(max_examples=60, deadline=None)
@given(
    workload=requests_strategy,
    slots=st.integers(min_value=1, max_value=4),
    limit=st.integers(1, 30),
    load_s=st.sampled_from([0.0, 0.1]),
)
def test_conservation_order_and_chunking(
    workload: list[tuple[float, int, int]], slots: int, limit: int, load_s: float
) -> None:
    cfg = config(decode_slots=slots, prefill_backlog_limit=limit, model_load_s=load_s)
    coarse = drive(cfg, workload, [])
    fine = drive(cfg, workload, [i * 0.0037 for i in range(400)])
    firsts, done, refused = coarse
    # conservation: every accepted request completes once, after its first token
    assert len(done) + refused == len(workload)
    assert len({c.request_id for c in done}) == len(done)
    assert {f.request_id for f in firsts} == {c.request_id for c in done}
    # events come in time order, and each request's stages are ordered
    assert [f.time_s for f in firsts] == sorted(f.time_s for f in firsts)
    assert [c.end_s for c in done] == sorted(c.end_s for c in done)
    for c in done:
        assert max(c.arrival_s, load_s) <= c.prefill_start_s < c.first_token_s <= c.insert_s <= c.end_s
    # many small advances give exactly what one advance per event gives
    assert fine == coarse


def test_deterministic() -> None:
    workload = [(0.001 * i, 1 + (7 * i) % 32, 1 + (11 * i) % 40) for i in range(60)]
    assert drive(config(model_load_s=0.0), workload, []) == drive(config(model_load_s=0.0), workload, [])


@pytest.mark.parametrize(
    ("n_in", "prefill_s"),
    [
        pytest.param(1, 0.016, id="shortest-pads-to-16"),
        pytest.param(16, 0.016, id="fills-bucket-16"),
        pytest.param(17, 0.032, id="one-over-pads-to-32"),
        pytest.param(32, 0.032, id="fills-the-last-bucket"),
        pytest.param(500, 0.032, id="cut-to-max-prefill-length"),
    ],
)
def test_prefill_time_at_the_bucket_edges(n_in: int, prefill_s: float) -> None:
    engine = ReplicaEngine(config())
    engine.submit(req(0, n_in=n_in, n_out=1), 0.0)
    assert engine.next_event_time() == pytest.approx(prefill_s)


def test_tokens_generated_while_compute_bound() -> None:
    """12 slots: every step takes the 12 ms compute floor while one short request decodes."""
    chip = dataclasses.replace(CHIP, hbm_bytes_per_chip=40_000_000)
    engine = ReplicaEngine(config(accelerator=chip, decode_slots=12))
    engine.submit(req(0, n_in=2, n_out=10), 0.0)
    for k in range(9):
        assert engine.tokens_generated(0, 0.016 + 0.012 * k + 0.001) == 1 + k
    (c,) = run_to_end(engine)[1]
    assert c.end_s == pytest.approx(0.016 + 0.012 * 9, rel=1e-12)
