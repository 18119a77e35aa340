"""ReplicaEngine against a step-by-step reference of the same model, on random open-loop traffic.

The engine never loops over steps: it sums each decode stretch in closed form, cuts a stretch at the
first step boundary after an arrival, and builds its events without their constructors. The reference
below does everything the slow, obvious way (one prefill or one generate step at a time, contexts
summed per step, events built by keyword), so any shortcut that changes a schedule shows up as a
different time, and one that changes only rounding stays within 1e-12.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections import deque

import pytest
from test_replica import config
from toy_replica import CHIP

from jetscale.engine import records, replica
from jetscale.engine.api import Completion, EngineRequest, FirstToken
from jetscale.engine.presets import ReplicaConfig, resolve_preset
from jetscale.engine.replica import PREFILLED_CAPACITY, ReplicaEngine

Arrival = tuple[float, int, int]  # (time, input tokens, output tokens); the request id is the index


@dataclasses.dataclass
class _Ref:
    n_in: int
    n_out: int
    arrival_s: float
    prefill_start_s: float = math.nan
    first_token_s: float = math.nan
    insert_s: float = math.nan
    end_s: float = math.nan
    generated: int = 0
    slot: int = -1


def reference(cfg: ReplicaConfig, arrivals: list[Arrival], load_s: float | None = None) -> dict[int, _Ref]:
    """Every request's stage times, one prefill or generate step at a time (no backlog bound)."""
    timing = cfg.roofline()
    refs = {}
    for rid, (t, n_in, n_out) in enumerate(arrivals):
        cut_in = min(n_in, cfg.max_prefill_length)
        refs[rid] = _Ref(n_in=cut_in, n_out=min(n_out, cfg.max_target_length - cut_in), arrival_s=t)
    pending = deque(sorted(range(len(arrivals)), key=lambda rid: (arrivals[rid][0], rid)))
    backlog: deque[int] = deque()
    prefilled: deque[int] = deque()
    free = deque(range(cfg.decode_slots))
    active: list[int] = []  # in submission order, as the engine breaks ties
    t = load_s if load_s is not None else arrivals[pending[0]][0]
    while pending or backlog or prefilled or active:
        while pending and arrivals[pending[0]][0] <= t:
            backlog.append(pending.popleft())
        while prefilled and free:
            rid = prefilled.popleft()
            refs[rid].insert_s, refs[rid].slot = t, free.popleft()
            active.append(rid)
            active.sort()
        if backlog and len(prefilled) < PREFILLED_CAPACITY:
            rid = backlog.popleft()
            ref = refs[rid]
            ref.prefill_start_s = t
            t += timing.prefill_s(ref.n_in)
            ref.first_token_s, ref.generated = t, 1
            if ref.n_out == 1:
                ref.insert_s = ref.end_s = t
            else:
                prefilled.append(rid)
        elif active:
            t += timing.decode_step_s(sum(refs[rid].n_in + refs[rid].generated for rid in active))
            for rid in list(active):
                ref = refs[rid]
                ref.generated += 1
                if ref.generated == ref.n_out:
                    ref.end_s = t
                    free.append(ref.slot)
                    active.remove(rid)
        else:
            t = max(t, arrivals[pending[0]][0])
    return refs


def event_driven(
    cfg: ReplicaConfig, arrivals: list[Arrival], load_s: float | None = None
) -> tuple[list[FirstToken], list[Completion]]:
    """The simulator's way: submit at each arrival, advance to each next event in between."""
    engine = ReplicaEngine(dataclasses.replace(cfg, model_load_s=load_s or 0.0))
    if load_s is not None:
        engine.start(0.0)
    order = sorted(range(len(arrivals)), key=lambda rid: (arrivals[rid][0], rid))
    firsts: list[FirstToken] = []
    done: list[Completion] = []
    i = 0
    while True:
        arrival = arrivals[order[i]][0] if i < len(order) else math.inf
        event = engine.next_event_time()
        if event is not None and event <= arrival:
            f, c = engine.advance(event)
            firsts += f
            done += c
        elif i < len(order):
            t, n_in, n_out = arrivals[order[i]]
            assert engine.submit(
                EngineRequest(request_id=order[i], input_tokens=n_in, output_tokens=n_out, arrival_s=t), t
            )
            i += 1
        else:
            return firsts, done


def traffic(seed: int, n: int, mean_gap_s: float, max_in: int, max_out: int) -> list[Arrival]:
    rng = random.Random(seed)
    t = 0.0
    out = []
    for _ in range(n):
        t += rng.expovariate(1.0 / mean_gap_s)
        out.append((t, rng.randint(1, max_in), rng.randint(1, max_out)))
    return out


BIG_CHIP = dataclasses.replace(CHIP, hbm_bytes_per_chip=40_000_000)
CASES = [
    # toy chip (see test_replica): 16-token prompts prefill in 16 ms, steps take 10 ms + 0.02 ms per token
    pytest.param(config(decode_slots=1), 40, 0.02, 32, 30, id="one-slot-queueing"),
    pytest.param(config(decode_slots=4), 60, 0.01, 40, 40, id="four-slots-busy"),
    pytest.param(config(decode_slots=4), 40, 0.2, 40, 40, id="four-slots-mostly-idle"),
    # 12 slots: a 12 ms compute floor that short contexts sit under and long ones cross
    pytest.param(config(accelerator=BIG_CHIP, decode_slots=12), 60, 0.01, 8, 60, id="under-and-over-the-floor"),
    pytest.param(config(accelerator=BIG_CHIP, decode_slots=12), 40, 0.004, 2, 4, id="compute-bound"),
    pytest.param(resolve_preset("v5e-8/llama2-7b"), 40, 0.05, 300, 200, id="v5e-8-llama2-7b"),
    pytest.param(resolve_preset("h100/llama3-8b"), 40, 0.05, 300, 200, id="h100-llama3-8b"),
]


@pytest.mark.parametrize(("cfg", "n", "mean_gap_s", "max_in", "max_out"), CASES)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stage_times_match_the_step_by_step_reference(
    cfg: ReplicaConfig, n: int, mean_gap_s: float, max_in: int, max_out: int, seed: int
) -> None:
    arrivals = traffic(seed, n, mean_gap_s, max_in, max_out)
    refs = reference(cfg, arrivals)
    firsts, done = event_driven(cfg, arrivals)
    assert len(done) == n
    for c in done:
        ref = refs[c.request_id]
        assert (c.input_tokens, c.output_tokens, c.arrival_s) == (ref.n_in, ref.n_out, ref.arrival_s)
        got = (c.prefill_start_s, c.first_token_s, c.insert_s, c.end_s)
        want = (ref.prefill_start_s, ref.first_token_s, ref.insert_s, ref.end_s)
        assert got == pytest.approx(want, rel=1e-12), c.request_id
    # requests that end at the same step leave (and free their slots) in submission order
    assert [c.request_id for c in done] == sorted(refs, key=lambda rid: (refs[rid].end_s, rid))
    assert {f.request_id: f.time_s for f in firsts} == pytest.approx(
        {rid: ref.first_token_s for rid, ref in refs.items()}, rel=1e-12
    )


def test_requests_that_wait_for_the_model_to_load() -> None:
    arrivals = traffic(7, 30, 0.01, 32, 20)  # about 0.3 s of traffic, all before the model is loaded
    refs = reference(config(decode_slots=2), arrivals, load_s=0.5)
    _, done = event_driven(config(decode_slots=2), arrivals, load_s=0.5)
    assert min(c.prefill_start_s for c in done) == 0.5
    for c in done:
        ref = refs[c.request_id]
        assert (c.prefill_start_s, c.end_s) == pytest.approx((ref.prefill_start_s, ref.end_s), rel=1e-12)


def test_events_built_by_their_constructors_are_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """The keyword-constructor path (taken if api.py changes the events' shape) gives equal events."""
    arrivals = [*traffic(4, 40, 0.01, 32, 30), (1.0, 5, 1)]  # and a one-token request
    assert records.DRAFTS
    fast = event_driven(config(), arrivals)
    monkeypatch.setattr(replica, "DRAFTS", False)
    monkeypatch.setattr(records, "DRAFTS", False)
    slow = event_driven(config(), arrivals)
    assert slow == fast
    assert [type(e) for e in (*fast[0], *fast[1])] == [type(e) for e in (*slow[0], *slow[1])]
    assert {type(e) for e in fast[1]} == {Completion} and {type(e) for e in fast[0]} == {FirstToken}
