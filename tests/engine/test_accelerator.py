"""The chip and model tables and the roofline arithmetic."""

from __future__ import annotations

import dataclasses

import pytest

from jetscale.engine.accelerator import (
    GIB,
    Accelerator,
    Efficiency,
    Model,
    Precision,
    prefill_bucket,
    prefill_buckets,
    roofline,
)
from jetscale.engine.catalog import ACCELERATORS, MODELS, get_accelerator, get_model
from jetscale.errors import ConfigError

CHIP = Accelerator(
    name="toy",
    family="toy",
    chips=2,
    hbm_bytes_per_chip=10**9,
    hbm_bandwidth_bytes_s=5e8,  # 1e9 B/s for the pair
    peak_bf16_flops=5e9,  # 1e10 FLOP/s for the pair
    peak_int8_ops=1e10,
    runtime_reserve_bytes_per_chip=0,
    source="test",
)
MODEL = Model(
    name="toy",
    family="toy",
    params=5_000_000,
    layers=2,
    kv_heads=4,
    head_dim=8,
    vocab_size=100,
    precision=Precision.BF16,
    weight_bytes_per_param=2.0,
    kv_bytes_per_value=2,
    source="test",
)
EXACT = Efficiency(decode=1.0, prefill=1.0, decode_overhead_s=0.0, prefill_overhead_s=0.0, source="test")


@pytest.mark.parametrize(
    ("model", "kv_bytes_per_token"),
    [
        ("llama2-7b", 2 * 32 * 32 * 128 * 2),  # 0.5 MiB, jetstream.md §6H
        ("gemma-7b", 2 * 28 * 16 * 256 * 2),
        ("llama3-8b", 2 * 32 * 8 * 128 * 2),  # GQA: 8 KV heads
        ("llama3-8b-int8", 2 * 32 * 8 * 128 * 1),
    ],
)
def test_kv_bytes_per_token(model: str, kv_bytes_per_token: int) -> None:
    assert MODELS[model].kv_bytes_per_token == kv_bytes_per_token


def test_int8_variants_halve_the_weights_and_keep_the_family() -> None:
    bf16, int8 = MODELS["llama2-7b"], MODELS["llama2-7b-int8"]
    assert int8.weight_bytes * 2 == bf16.weight_bytes
    assert (int8.family, int8.precision) == ("llama2-7b", Precision.INT8)


def test_tables_name_their_sources_and_required_entries() -> None:
    for name in ("tpu-v5e-1", "tpu-v5e-4", "tpu-v5e-8", "tpu-v6e-1", "tpu-v6e-4", "tpu-v6e-8", "tpu-v5p-8"):
        assert name in ACCELERATORS
    assert {"h100-80gb-x1", "h100-80gb-x8"} <= set(ACCELERATORS)
    for name in ("gemma-7b", "llama2-7b", "llama2-13b", "llama3-8b", "llama3-70b"):
        assert name in MODELS and f"{name}-int8" in MODELS
    assert all(a.source for a in ACCELERATORS.values()) and all(m.source for m in MODELS.values())
    v5e8 = ACCELERATORS["tpu-v5e-8"]
    assert (v5e8.hbm_total_bytes, v5e8.bandwidth_bytes_s) == (128 * GIB, 8 * 819e9)
    assert ACCELERATORS["tpu-v5p-8"].chips == 4  # v5p counts TensorCores: 8 cores = 4 chips


@pytest.mark.parametrize(
    ("tokens", "max_prefill", "bucket"),
    [
        (1, 1024, 16),
        (16, 1024, 16),
        (17, 1024, 32),
        (218, 1024, 256),
        (1024, 1024, 1024),
        (5000, 1024, 1024),  # longer prompts are cut to the last bucket
        (600, 1000, 1000),  # max_prefill_length is the last bucket even when not a power of two
        (500, 1000, 512),
    ],
)
def test_prefill_bucket(tokens: int, max_prefill: int, bucket: int) -> None:
    assert prefill_bucket(tokens, max_prefill) == bucket


def test_prefill_buckets_are_cut_at_max_prefill_length() -> None:
    assert prefill_buckets(100) == (16, 32, 64, 100)


def test_roofline_by_hand() -> None:
    timing = roofline(CHIP, MODEL, EXACT, decode_slots=4, max_prefill_length=64)
    # weights 1e7 B at 1e9 B/s; KV 2*2*4*8*2 = 256 B per token; compute 2 * 5e6 * 4 / 1e10
    assert timing.weight_read_s == pytest.approx(0.01)
    assert timing.kv_read_s_per_token == pytest.approx(256e-9)
    assert timing.decode_compute_s == pytest.approx(0.004)
    assert timing.decode_step_s(1000) == pytest.approx(0.01 + 256e-6)
    # prefill: max(2 * 5e6 * padded / 1e10, 0.01): the weight read dominates up to 10 tokens
    assert timing.prefill_s(5) == pytest.approx(0.016)  # padded to 16
    assert timing.prefill_s(40) == pytest.approx(0.064)


def test_roofline_compute_floor_efficiency_and_overheads() -> None:
    slow = Efficiency(decode=0.5, prefill=0.5, decode_overhead_s=0.002, prefill_overhead_s=0.003, source="test")
    timing = roofline(CHIP, MODEL, slow, decode_slots=16, max_prefill_length=64)
    # compute 2 * 5e6 * 16 / 1e10 = 16 ms > 10 ms weight read: compute-bound at small contexts
    assert timing.decode_step_s(0) == pytest.approx(0.016 / 0.5 + 0.002)
    assert timing.prefill_s(64) == pytest.approx(0.064 / 0.5 + 0.003)


def test_int8_uses_the_int8_peak() -> None:
    int8 = dataclasses.replace(MODEL, precision=Precision.INT8, weight_bytes_per_param=1.0)
    timing = roofline(CHIP, int8, EXACT, decode_slots=4, max_prefill_length=64)
    assert timing.decode_compute_s == pytest.approx(0.002)
    assert timing.weight_read_s == pytest.approx(0.005)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"decode": 0.0}, r"^'decode' must be in \(0, 1\] \(got 0.0\)$"),
        ({"prefill": 1.5}, r"^'prefill' must be in \(0, 1\] \(got 1.5\)$"),
        ({"decode_overhead_s": -1.0}, r"^'decode_overhead_s' must be >= 0 \(got -1.0\)$"),
    ],
)
def test_efficiency_validation(change: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(EXACT, **change)


@pytest.mark.parametrize(
    ("target", "change", "message"),
    [
        ("chip", {"chips": 0}, r"^'chips' must be > 0 \(got 0\)$"),
        ("chip", {"runtime_reserve_bytes_per_chip": -1}, r"^'runtime_reserve_bytes_per_chip' must be >= 0"),
        ("model", {"layers": 0}, r"^'layers' must be > 0 \(got 0\)$"),
    ],
)
def test_table_entry_validation(target: str, change: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        dataclasses.replace(CHIP if target == "chip" else MODEL, **change)  # type: ignore[arg-type]


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"'accelerator' must be one of tpu-v5e-1, .*l4-24gb-x4 \(got 'tpu-v9'\)"):
        get_accelerator("tpu-v9")
    with pytest.raises(ConfigError, match=r"'model' must be one of gemma-7b, .* \(got 'gpt-5'\)"):
        get_model("gpt-5")
