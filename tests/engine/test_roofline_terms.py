"""The roofline's terms off its first calibration points, each worked out by hand on the toy chip.

Toy (tests/toy_replica.py): weights 1e7 B at 1e9 B/s (10 ms), KV 20,000 B per token (0.02 ms), peak
1e10 FLOP/s, efficiencies 1, no overheads.
"""

from __future__ import annotations

import dataclasses

import pytest
from toy_replica import CHIP, EXACT, KV_PER_TOKEN, MODEL, WEIGHTS

from jetscale.engine.accelerator import Precision
from jetscale.engine.api import EngineRequest
from jetscale.engine.config import KvRead, ReplicaConfig, ServingStack
from jetscale.engine.presets import modeled_peak, replica_config_from_mapping, replica_config_to_mapping
from jetscale.engine.replica import ReplicaEngine
from jetscale.errors import ConfigError

TWO_CHIPS = dataclasses.replace(CHIP, name="toy-2", chips=2, hbm_bytes_per_chip=20_000_000)


def toy(**overrides: object) -> ReplicaConfig:
    fields: dict[str, object] = {
        "accelerator": CHIP,
        "model": MODEL,
        "decode_slots": 4,
        "max_prefill_length": 32,
        "max_target_length": 64,
        "efficiency": EXACT,
    }
    fields.update(overrides)
    return ReplicaConfig(**fields)  # type: ignore[arg-type]


def test_a_preallocated_cache_is_read_whole_whatever_the_occupancy() -> None:
    # 4 slots x 64 tokens x 20,000 B = 5.12 MB: 5.12 ms on top of the weights' 10 ms, at any context
    timing = toy().roofline()
    assert timing.decode_step_s(0) == pytest.approx(0.01512)
    assert timing.decode_step_s(200) == pytest.approx(0.01512)
    active = toy(kv_read="active").roofline()
    assert active.decode_step_s(0) == pytest.approx(0.010)
    assert active.decode_step_s(200) == pytest.approx(0.010 + 200 * KV_PER_TOKEN / 1e9)


def test_the_engine_steps_at_the_whole_cache_time() -> None:
    engine = ReplicaEngine(toy())
    engine.submit(EngineRequest(request_id=1, input_tokens=4, output_tokens=3, arrival_s=0.0), 0.0)
    ends = []
    while (t := engine.next_event_time()) is not None:
        ends += engine.advance(t)[1]
    # prefill of 4 tokens (bucket 16): max(2 x 5e6 x 16 / 1e10, 10 ms) = 16 ms, then 2 steps of 15.12 ms
    assert ends[0].end_s == pytest.approx(0.016 + 2 * 0.01512)


def test_a_rolling_window_reads_and_holds_its_cache_length_only() -> None:
    rolling = toy(cache_length=40)
    assert rolling.roofline().decode_step_s(0) == pytest.approx(0.010 + 4 * 40 * KV_PER_TOKEN / 1e9)
    assert rolling.kv_cache_bytes == 4 * 40 * KV_PER_TOKEN
    # a request may still be prompt + output = max_target_length long
    engine = ReplicaEngine(rolling)
    engine.submit(EngineRequest(request_id=1, input_tokens=30, output_tokens=34, arrival_s=0.0), 0.0)
    done = []
    while (t := engine.next_event_time()) is not None:
        done += engine.advance(t)[1]
    assert done[0].output_tokens == 34


def test_data_parallel_groups_each_read_all_the_weights() -> None:
    # 2 groups of 1 chip on a 2-chip slice (2e9 B/s in all): each step reads the weights twice over the
    # aggregate bandwidth, 2 x 1e7 / 2e9 = 10 ms, plus the whole cache 4 x 64 x 20,000 / 2e9 = 2.56 ms
    dp = toy(accelerator=TWO_CHIPS, data_parallel=2)
    tp = toy(accelerator=TWO_CHIPS)
    assert dp.roofline().decode_step_s(0) == pytest.approx(0.010 + 0.00256)
    assert tp.roofline().decode_step_s(0) == pytest.approx(0.005 + 0.00256)
    # a prefill runs on one group: half the peak (bucket 16: 2 x 5e6 x 16 / 1e10 = 16 ms vs 8 ms)
    assert dp.roofline().prefill_s(10) == pytest.approx(0.016)
    assert tp.roofline().prefill_s(10) == pytest.approx(0.008)
    assert dp.weight_bytes == 2 * WEIGHTS


def test_int8_values_pay_their_dequantization_in_read_time() -> None:
    int8 = dataclasses.replace(MODEL, precision=Precision.INT8, weight_bytes_per_param=1.0, kv_bytes_per_value=1)
    efficiency = dataclasses.replace(EXACT, int8_read_overhead=0.5)
    timing = toy(model=int8, efficiency=efficiency, kv_read="active").roofline()
    # weights 5e6 B and 10,000 B of KV per token, each byte read at 1.5 bytes' time
    assert timing.decode_step_s(0) == pytest.approx(0.0075)
    assert timing.decode_step_s(100) == pytest.approx(0.0075 + 100 * 15_000 / 1e9)
    # bf16 values pay nothing for it
    assert toy(efficiency=efficiency, kv_read="active").roofline().decode_step_s(0) == pytest.approx(0.010)


def test_host_work_per_slot_is_paid_every_step() -> None:
    efficiency = dataclasses.replace(EXACT, decode_overhead_s=0.001, decode_overhead_s_per_slot=0.0005)
    timing = toy(efficiency=efficiency, kv_read="active").roofline()
    assert timing.decode_step_s(0) == pytest.approx(0.010 + 0.001 + 4 * 0.0005)


def test_the_stack_picks_the_calibrated_efficiency() -> None:
    chip = replica_config_from_mapping({"preset": "v5e-8/llama2-7b"})
    pytorch = replica_config_from_mapping({"preset": "v5e-8/llama2-7b", "stack": "jetstream-pytorch"})
    assert chip.stack is ServingStack.MAXTEXT and pytorch.stack is ServingStack.PYTORCH
    assert chip.resolved_efficiency.decode < pytorch.resolved_efficiency.decode
    assert modeled_peak(chip).output_tokens_s < modeled_peak(pytorch).output_tokens_s


def test_the_new_fields_round_trip_through_the_replica_yaml() -> None:
    config = replica_config_from_mapping(
        {"preset": "v5e-8/llama2-7b", "cache_length": 1280, "kv_read": "cache", "data_parallel": 2, "decode_slots": 32}
    )
    assert (config.cache_length, config.kv_read, config.data_parallel) == (1280, KvRead.CACHE, 2)
    mapping = replica_config_to_mapping(config)
    assert mapping["stack"] == "jetstream-maxtext" and mapping["kv_read"] == "cache"
    assert replica_config_from_mapping(mapping) == config


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"cache_length": 16}, r"'cache_length' must be a whole number of tokens from max_prefill_length \(32\)"),
        ({"cache_length": 65}, r"to max_target_length \(64\) \(got 65\)"),
        ({"cache_length": 40, "kv_read": "active"}, r"'cache_length' must be max_target_length \(64\) with kv_read"),
        ({"kv_read": "paged"}, r"'kv_read' must be one of cache, active \(got 'paged'\)"),
        ({"stack": "vllm-ish"}, r"'stack' must be one of jetstream-maxtext, jetstream-pytorch, vllm \(got 'vllm-"),
        ({"data_parallel": 3}, r"'data_parallel' must divide the chips \(1\) and decode_slots \(4\)"),
        ({"data_parallel": 0}, r"'data_parallel' must be an integer >= 1 \(got 0\)"),
    ],
    ids=["cache-below-prompt", "cache-above-target", "rolling-paged", "kv-read", "stack", "dp-divides", "dp-zero"],
)
def test_bad_fields_name_the_field_and_value(change: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        toy(**change)


def test_data_parallel_weights_must_fit_once_per_group() -> None:
    # 2 copies of 1e7 B of weights plus the cache on 2 x 20 MB: fits; 8 copies on 8 chips of 11 MB do not
    small = dataclasses.replace(CHIP, name="toy-8", chips=8, hbm_bytes_per_chip=11_000_000)
    toy(accelerator=small, decode_slots=8)
    with pytest.raises(ConfigError, match=r"'decode_slots' must fit in HBM: weights 0.1 GiB"):
        toy(accelerator=small, decode_slots=8, data_parallel=8)
