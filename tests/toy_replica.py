"""The toy chip and model the engine tests compute by hand (see test_replica.py's docstring for the
arithmetic): weights 1e7 B at 1e9 B/s, KV 20,000 B per token, 1e10 FLOP/s, efficiencies 1, no overheads."""

from __future__ import annotations

from jetscale.engine.accelerator import Accelerator, Efficiency, Model, Precision

__all__ = ["CHIP", "EXACT", "KV_PER_TOKEN", "MODEL", "WEIGHTS"]

CHIP = Accelerator(
    name="toy",
    family="toy",
    chips=1,
    hbm_bytes_per_chip=20_000_000,
    hbm_bandwidth_bytes_s=1e9,
    peak_bf16_flops=1e10,
    peak_int8_ops=2e10,
    runtime_reserve_bytes_per_chip=0,
    source="test",
)
MODEL = Model(
    name="toy",
    family="toy",
    params=5_000_000,
    layers=1,
    kv_heads=1,
    head_dim=5000,
    vocab_size=100,
    precision=Precision.BF16,
    weight_bytes_per_param=2.0,
    kv_bytes_per_value=2,
    source="test",
)
EXACT = Efficiency(decode=1.0, prefill=1.0, decode_overhead_s=0.0, prefill_overhead_s=0.0, source="test")
WEIGHTS = 10_000_000
KV_PER_TOKEN = 20_000
