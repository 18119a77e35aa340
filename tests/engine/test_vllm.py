"""vLLM's scheduler (``VllmEngine``): worked by hand on the toy chip, then checked against itself.

Toy (tests/toy_replica.py) with the whole HBM to vLLM and no reserve: the pool is 2e7 - 1e7 B of weights
= 1e7 B = 500 tokens of 20,000 B = 31 blocks of 16. A step reads 10 ms of weights plus 0.02 ms per token
of context and computes 1 ms per scheduled token (2 x 5e6 FLOP / 1e10 FLOP/s); it takes the larger.
"""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from toy_replica import CHIP, EXACT, MODEL

from jetscale.engine.api import Completion, EngineRequest, Shed, Stage
from jetscale.engine.config import ReplicaConfig, ServerKind, VllmSettings
from jetscale.engine.factory import make_engine
from jetscale.engine.presets import modeled_peak, replica_config_from_mapping, resolve_preset
from jetscale.engine.replica import ReplicaEngine
from jetscale.engine.vllm import VllmEngine
from jetscale.errors import ConfigError


def toy(budget: int = 16, seqs: int = 4, utilization: float = 1.0, **overrides: object) -> ReplicaConfig:
    fields: dict[str, object] = {
        "accelerator": CHIP,
        "model": MODEL,
        "decode_slots": seqs,
        "max_prefill_length": 63,
        "max_target_length": 64,
        "efficiency": EXACT,
        "stack": "vllm",
        "runtime_reserve_bytes": 0,
        "vllm": VllmSettings(max_num_batched_tokens=budget, gpu_memory_utilization=utilization),
    }
    fields.update(overrides)
    return ReplicaConfig(**fields)  # type: ignore[arg-type]


def req(rid: int, n_in: int, n_out: int, at: float = 0.0) -> EngineRequest:
    return EngineRequest(request_id=rid, input_tokens=n_in, output_tokens=n_out, arrival_s=at)


def drain(engine: VllmEngine) -> list[Completion]:
    done: list[Completion] = []
    while (t := engine.next_event_time()) is not None:
        done += engine.advance(t)[1]
    return done


def test_a_long_prompt_is_prefilled_in_chunks_of_the_budget_then_decodes() -> None:
    config = toy()
    assert (config.kind, config.kv_blocks) == (ServerKind.VLLM, 31)
    engine = VllmEngine(config)
    assert engine.submit(req(1, 40, 3), 0.0)
    # chunks 16, 16, 8: compute 16 ms, 16 ms, then the read (10 ms + 40 x 0.02 ms) 10.8 ms: first token
    first = 0.016 + 0.016 + 0.0108
    assert engine.advance(first - 1e-9) == ([], [])
    firsts, _ = engine.advance(first)
    assert [f.time_s for f in firsts] == [pytest.approx(first)]
    # two decode steps read 41 and 42 tokens of context
    (done,) = drain(engine)
    assert done.end_s == pytest.approx(first + 0.01082 + 0.01084)
    assert (done.prefill_start_s, done.output_tokens, done.input_tokens) == (0.0, 3, 40)


def test_decodes_go_first_and_a_new_prompt_takes_the_rest_of_the_budget() -> None:
    engine = VllmEngine(toy())
    engine.submit(req(1, 10, 50), 0.0)
    engine.advance(0.0101)  # 10 tokens: the read, 10 ms + 0.2 ms: first token at 10.2 ms
    engine.submit(req(2, 30, 2), 0.0101)
    # next step (from 20.4 ms... the step in flight ends first): request 1 decodes 1 token, request 2 gets 15
    snapshot = engine.snapshot(0.0101)
    assert (snapshot.slots_used, snapshot.prefill_backlog) == (1, 1)
    done = {c.request_id: c for c in drain(engine)}
    # request 2's prompt of 30 takes two steps shared with request 1's decodes (15 + 15)
    assert done[2].first_token_s > done[2].prefill_start_s
    assert done[1].end_s > done[2].end_s


def test_when_blocks_run_out_the_last_admitted_is_preempted_and_recomputed() -> None:
    # 8 requests are admitted with 2 blocks each (20 prompt tokens) and grow to 4 (64 tokens): 32 > 31 blocks
    engine = VllmEngine(toy(budget=256, seqs=8))
    for rid in range(8):
        engine.submit(req(rid, 20, 44), 0.0)
    done = drain(engine)
    assert sorted(c.request_id for c in done) == list(range(8))
    assert engine.preemptions >= 1
    assert all(c.output_tokens == 44 for c in done)
    # the last admitted was the one preempted: it finishes last, recomputed
    assert max(done, key=lambda c: c.end_s).request_id == 7
    assert engine.snapshot(done[-1].end_s).kv_cache_usage == 0.0


def test_max_num_seqs_bounds_the_running_requests() -> None:
    engine = VllmEngine(toy(budget=64, seqs=2))
    for rid in range(5):
        engine.submit(req(rid, 4, 20), 0.0)
    engine.advance(0.05)
    snapshot = engine.snapshot(0.05)
    assert (snapshot.slots_used, snapshot.prefill_backlog, snapshot.decode_slots) == (2, 3, 2)
    assert 0.0 < snapshot.kv_cache_usage <= 1.0
    assert len(drain(engine)) == 5


def test_cancel_from_the_queue_and_from_a_running_step() -> None:
    engine = VllmEngine(toy(budget=64, seqs=1))
    engine.submit(req(1, 8, 30), 0.0)
    engine.submit(req(2, 8, 30), 0.0)
    assert engine.cancel(2, 0.001) is Stage.PREFILL_BACKLOG
    engine.advance(0.05)
    assert engine.cancel(1, 0.05) is Stage.DECODE
    assert engine.cancel(1, 0.05) is None
    assert drain(engine) == []
    assert engine.snapshot(1.0).kv_cache_usage == 0.0


def test_prefix_caching_skips_the_cached_blocks_of_a_prompt() -> None:
    cached = VllmEngine(toy(vllm=VllmSettings(max_num_batched_tokens=16, gpu_memory_utilization=1.0,
                                              enable_prefix_caching=True, prefix_hit_rate=0.5)))  # fmt: skip
    plain = VllmEngine(toy())
    for engine in (cached, plain):
        engine.submit(req(1, 48, 2), 0.0)
    (hit,), (miss,) = drain(cached), drain(plain)
    assert hit.ttft_s < miss.ttft_s
    snapshot = cached.snapshot(hit.end_s)
    assert (snapshot.prefix_cache_queries, snapshot.prefix_cache_hits) == (48, 16)  # half of 48, whole blocks


def test_the_queue_bound_refuses_with_a_reason() -> None:
    engine = VllmEngine(toy(prefill_backlog_limit=2, seqs=1))
    results = [engine.submit(req(rid, 8, 100), 0.0) for rid in range(4)]
    assert results == [True, True, True, False]
    assert engine.last_refusal is not None and engine.last_refusal.reason is Shed.BACKLOG_FULL
    bounded = VllmEngine(toy(max_queue_wait_s=0.5, seqs=1))
    assert bounded.submit(req(1, 8, 500 // 10), 0.0)
    assert not bounded.submit(req(2, 8, 50), 0.0) or bounded.expected_wait_s(0.0) <= 0.5


def test_requests_wait_for_the_model_to_load() -> None:
    engine = VllmEngine(toy(model_load_s=5.0))
    assert engine.start(0.0) == 5.0
    engine.submit(req(1, 8, 2), 1.0)
    (done,) = drain(engine)
    assert done.prefill_start_s == 5.0 and done.end_s > 5.0


def test_the_factory_picks_the_scheduler_by_stack() -> None:
    assert isinstance(make_engine(toy()), VllmEngine)
    assert isinstance(make_engine(resolve_preset("v5e-8/llama2-7b")), ReplicaEngine)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kv_read": "cache"}, r"'kv_read' must be active with stack vllm"),
        ({"max_target_length": 600, "max_prefill_length": 599}, r"'max_target_length' \(vLLM's max_model_len\)"),
    ],
    ids=["kv-read", "pool-too-small"],
)
def test_bad_vllm_configs_name_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        toy(**change)
    with pytest.raises(ConfigError, match=r"'vllm.block_size' must be an integer >= 1 \(got 0\)"):
        VllmSettings(block_size=0)


def test_vllm_settings_need_the_vllm_stack_and_read_from_yaml() -> None:
    with pytest.raises(ConfigError, match=r"'vllm' settings need stack vllm \(got stack jetstream-maxtext\)"):
        replica_config_from_mapping({"preset": "h100/llama3-8b", "vllm": {"block_size": 32}})
    with pytest.raises(
        ConfigError, match=r"'vllm.blok_size' must be one of the vLLM fields .*did you mean 'block_size'"
    ):
        replica_config_from_mapping({"preset": "h100/llama3-8b", "stack": "vllm", "vllm": {"blok_size": 32}})
    config = replica_config_from_mapping({"preset": "h100/llama3-8b", "stack": "vllm", "vllm": {"block_size": 32}})
    assert config.vllm_settings.block_size == 32 and config.max_num_batched_tokens == 8192


def test_the_modeled_peak_of_a_vllm_replica_is_what_the_engine_sustains() -> None:
    """Closed loop at full batch through the engine vs ``modeled_peak``'s steady state: within 10%."""
    config = resolve_preset("h100/llama3-8b", stack="vllm", decode_slots=64)
    peak = modeled_peak(config, input_tokens=200, output_tokens=200)
    engine = VllmEngine(config)
    rng = random.Random(3)
    rid = 0
    for _ in range(64):  # outputs of 100-300 (mean 200) desynchronize the requests: a steady state
        engine.submit(req(rid, 200, rng.randint(100, 300)), 0.0)
        rid += 1
    tokens, horizon = 0, 30.0
    while (t := engine.next_event_time()) is not None and t < horizon:
        for c in engine.advance(t)[1]:
            if c.end_s > 5.0:
                tokens += c.output_tokens
            engine.submit(req(rid, 200, rng.randint(100, 300), t), t)
            rid += 1
    assert tokens / (horizon - 5.0) == pytest.approx(peak.output_tokens_s, rel=0.10)


def _workload(seed: int, n: int) -> list[tuple[float, int, int, bool]]:
    rng = random.Random(seed)
    t, out = 0.0, []
    for _ in range(n):
        t += rng.expovariate(20.0)
        out.append((t, rng.randint(1, 60), rng.randint(1, 60), rng.random() < 0.1))
    return out


def _run(config: ReplicaConfig, work: list[tuple[float, int, int, bool]], stretches: bool) -> list[tuple[int, float]]:
    """Arrivals and cancels (50 ms after a marked request's arrival) in time order, every engine event
    before each of them handed out at its own time."""
    engine = VllmEngine(config, stretches=stretches)
    ends: list[tuple[int, float]] = []
    actions = sorted(
        [(t, 1, rid) for rid, (t, *_) in enumerate(work)]
        + [(t + 0.05, 0, rid) for rid, (t, *_, c) in enumerate(work) if c]
    )

    def run_to(t: float) -> None:
        while (nt := engine.next_event_time()) is not None and nt <= t:
            ends.extend((c.request_id, c.end_s) for c in engine.advance(nt)[1])

    for t, kind, rid in actions:
        run_to(t)
        if kind == 0:
            engine.cancel(rid, t)
        else:
            _, n_in, n_out, _ = work[rid]
            engine.submit(req(rid, n_in, n_out, t), t)
    run_to(math.inf)
    return sorted(ends)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), seqs=st.integers(1, 8), budget=st.sampled_from([8, 16, 64]),
       utilization=st.sampled_from([0.6, 0.7, 1.0]), host_s=st.sampled_from([0.0, 2e-3]))  # fmt: skip
def test_stretches_give_the_same_ends_as_stepping_one_by_one(
    seed: int, seqs: int, budget: int, utilization: float, host_s: float
) -> None:
    """``host_s``: vLLM's CPU time per request, a floor on the step (8 x 2 ms binds over the toy's 10 ms)."""
    config = toy(budget=budget, seqs=seqs, utilization=utilization, prefill_backlog_limit=10_000)
    config = dataclasses.replace(config, efficiency=dataclasses.replace(EXACT, decode_overhead_s_per_slot=host_s))
    work = _workload(seed, 60)
    fast, slow = _run(config, work, True), _run(config, work, False)
    assert [r for r, _ in fast] == [r for r, _ in slow]
    assert all(abs(a - b) < 1e-9 for (_, a), (_, b) in zip(fast, slow, strict=True))


def test_every_request_is_answered_or_cancelled() -> None:
    config = dataclasses.replace(toy(budget=16, seqs=3, utilization=0.6), prefill_backlog_limit=10_000)
    work = _workload(7, 200)
    ends = _run(config, work, True)
    cancelled = {rid for rid, w in enumerate(work) if w[3]}
    answered = {rid for rid, _ in ends}
    assert answered | cancelled >= set(range(len(work)))


def test_without_chunked_prefill_a_prompt_waits_for_a_step_that_holds_it_whole() -> None:
    def run(settings: VllmSettings) -> dict[int, Completion]:
        engine = VllmEngine(toy(vllm=settings))
        engine.submit(req(1, 10, 30), 0.0)
        engine.submit(req(3, 10, 40), 0.0)
        engine.advance(0.0)
        engine.submit(req(2, 63, 1), 0.0)  # 63 tokens + two decodes > 64: whole, it waits for request 1 to end
        return {c.request_id: c for c in drain(engine)}

    whole = run(VllmSettings(max_num_batched_tokens=64, gpu_memory_utilization=1.0, enable_chunked_prefill=False))
    assert whole[2].prefill_start_s >= whole[1].end_s
    chunked = run(VllmSettings(max_num_batched_tokens=64, gpu_memory_utilization=1.0))
    assert chunked[2].end_s < chunked[1].end_s
    with pytest.raises(ConfigError, match=r"'vllm.max_num_batched_tokens' must be >= max_model_len \(64\) without"):
        toy(vllm=VllmSettings(max_num_batched_tokens=16, gpu_memory_utilization=1.0, enable_chunked_prefill=False))
