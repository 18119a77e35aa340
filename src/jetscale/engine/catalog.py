"""The chips and models jetscale knows by name, each with its source next to it.

Chips: Cloud TPU v5e, v6e (Trillium) and v5p slices, and NVIDIA H100, A100 and L4 GPUs, from their data
sheets. Models: from their Hugging Face ``config.json`` files, bf16 and int8 (int8 weights and KV cache).
Anything else is given in a replica YAML (``jetscale.engine.datasheet``). Pure.
"""

from __future__ import annotations

from jetscale.engine.accelerator import GIB, Accelerator, Model, Precision
from jetscale.errors import ConfigError

__all__ = ["ACCELERATORS", "MODELS", "get_accelerator", "get_model"]


# --- Chips -------------------------------------------------------------------------------------------
# Cloud TPU docs (system architecture pages):
# v5e 197 TFLOP/s bf16, 393 TOP/s int8, 16 GiB HBM2, 819 GB/s; v6e 918 / 1836, 32 GiB, 1638 GB/s.
_V5E = "Cloud TPU v5e docs: 197 TFLOP/s bf16, 393 TOP/s int8, 16 GiB HBM2, 819 GB/s per chip"
_V6E = (
    "Cloud TPU v6e (Trillium) docs: 918 TFLOP/s bf16, 1836 TOP/s int8, 32 GiB HBM, 1638 GB/s per chip; "
    "JAX sees 31.25 GiB of it (MaxText MLPerf log), so 0.75 GiB is the runtime's"
)
_V5P = "Cloud TPU v5p docs: 459 TFLOP/s bf16, 918 TOP/s int8, 95 GiB HBM2e, 2765 GB/s per chip; v5p-8 = 4 chips"
_H100 = "NVIDIA H100 SXM5 80GB datasheet: 989 TFLOP/s bf16 dense, 1979 TOP/s int8 dense, 80 GiB HBM3, 3.35 TB/s"
_A100_80 = "NVIDIA A100 80GB SXM datasheet: 312 TFLOP/s bf16 dense, 624 TOP/s int8 dense, 80 GiB HBM2e, 2.039 TB/s"
_A100_40 = "NVIDIA A100 40GB SXM datasheet: 312 TFLOP/s bf16 dense, 624 TOP/s int8 dense, 40 GiB HBM2, 1.555 TB/s"
_L4 = "NVIDIA L4 datasheet: 121 TFLOP/s bf16 dense, 242.5 TOP/s int8 dense, 24 GiB GDDR6, 300 GB/s"


def _tpu_v5e(chips: int) -> Accelerator:
    return Accelerator(
        name=f"tpu-v5e-{chips}",
        family="tpu-v5e",
        chips=chips,
        hbm_bytes_per_chip=16 * GIB,
        hbm_bandwidth_bytes_s=819e9,
        peak_bf16_flops=197e12,
        peak_int8_ops=393e12,
        runtime_reserve_bytes_per_chip=GIB // 4,  # estimate: JAX reports ~15.75 GiB usable
        source=_V5E,
    )


def _tpu_v6e(chips: int) -> Accelerator:
    return Accelerator(
        name=f"tpu-v6e-{chips}",
        family="tpu-v6e",
        chips=chips,
        hbm_bytes_per_chip=32 * GIB,
        hbm_bandwidth_bytes_s=1638e9,
        peak_bf16_flops=918e12,
        peak_int8_ops=1836e12,
        runtime_reserve_bytes_per_chip=3 * GIB // 4,
        source=_V6E,
    )


def _gpu(
    name: str, family: str, gpus: int, *, memory_gib: int, bandwidth: float, bf16: float, int8: float, source: str
) -> Accelerator:
    return Accelerator(
        name=f"{name}-x{gpus}",
        family=family,
        chips=gpus,
        hbm_bytes_per_chip=memory_gib * GIB,
        hbm_bandwidth_bytes_s=bandwidth,
        peak_bf16_flops=bf16,
        peak_int8_ops=int8,
        runtime_reserve_bytes_per_chip=GIB,  # estimate: CUDA context and allocator slack
        source=source,
    )


def _h100(gpus: int) -> Accelerator:
    return _gpu("h100-80gb", "h100", gpus, memory_gib=80, bandwidth=3.35e12, bf16=989e12, int8=1979e12, source=_H100)


def _a100(gpus: int, memory_gib: int) -> Accelerator:
    bandwidth, source = (2.039e12, _A100_80) if memory_gib == 80 else (1.555e12, _A100_40)
    return _gpu(
        f"a100-{memory_gib}gb",
        "a100",
        gpus,
        memory_gib=memory_gib,
        bandwidth=bandwidth,
        bf16=312e12,
        int8=624e12,
        source=source,
    )


def _l4(gpus: int) -> Accelerator:
    return _gpu("l4-24gb", "l4", gpus, memory_gib=24, bandwidth=300e9, bf16=121e12, int8=242.5e12, source=_L4)


ACCELERATORS: dict[str, Accelerator] = {
    a.name: a
    for a in (
        _tpu_v5e(1),
        _tpu_v5e(4),
        _tpu_v5e(8),
        _tpu_v6e(1),
        _tpu_v6e(4),
        _tpu_v6e(8),
        Accelerator(
            name="tpu-v5p-8",
            family="tpu-v5p",
            chips=4,
            hbm_bytes_per_chip=95 * GIB,
            hbm_bandwidth_bytes_s=2765e9,
            peak_bf16_flops=459e12,
            peak_int8_ops=918e12,
            runtime_reserve_bytes_per_chip=GIB,  # estimate
            source=_V5P,
        ),
        _h100(1),
        _h100(2),
        _h100(4),
        _h100(8),
        _a100(1, 80),
        _a100(8, 80),
        _a100(1, 40),
        _l4(1),
        _l4(2),
        _l4(4),
    )
}


# --- Models --------------------------------------------------------------------------------------------
# Sizes from the models' Hugging Face config.json files (num_hidden_layers, hidden_size,
# num_attention_heads, num_key_value_heads, head_dim or hidden_size / num_attention_heads, vocab_size) and
# their exact parameter counts.
def _bf16(
    name: str,
    *,
    params: int,
    layers: int,
    hidden_size: int,
    heads: int,
    kv_heads: int,
    head_dim: int,
    vocab_size: int,
    source: str,
) -> Model:
    return Model(
        name=name,
        family=name,
        params=params,
        layers=layers,
        hidden_size=hidden_size,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab_size,
        precision=Precision.BF16,
        weight_bytes_per_param=2.0,
        kv_bytes_per_value=2,
        source=source,
    )


def _int8(base: Model) -> Model:
    """MaxText's ``quantization=int8`` with ``quantize_kvcache=True``: int8 weights and KV cache."""
    return Model(
        name=f"{base.name}-int8",
        family=base.family,
        params=base.params,
        layers=base.layers,
        hidden_size=base.hidden_size,
        heads=base.heads,
        kv_heads=base.kv_heads,
        head_dim=base.head_dim,
        vocab_size=base.vocab_size,
        precision=Precision.INT8,
        weight_bytes_per_param=1.0,
        kv_bytes_per_value=1,
        source=f"{base.source}; int8 weights and KV cache (MaxText quantization=int8, quantize_kvcache)",
    )


_BASE_MODELS = (
    _bf16(
        "gemma-7b",
        params=8_537_680_896,
        layers=28,
        hidden_size=3072,
        heads=16,
        kv_heads=16,
        head_dim=256,
        vocab_size=256_000,
        source="google/gemma-7b config.json: 28 layers, 16 KV heads x 256, vocab 256000; 8.54B params",
    ),
    _bf16(
        "gemma-2b",
        params=2_506_172_416,
        layers=18,
        hidden_size=2048,
        heads=8,
        kv_heads=1,
        head_dim=256,
        vocab_size=256_000,
        source="google/gemma-2b config.json: 18 layers, 1 KV head x 256 (multi-query), vocab 256000; 2.51B params",
    ),
    _bf16(
        "llama2-7b",
        params=6_738_415_616,
        layers=32,
        hidden_size=4096,
        heads=32,
        kv_heads=32,
        head_dim=128,
        vocab_size=32_000,
        source="meta-llama/Llama-2-7b-hf config.json: 32 layers, 32 KV heads x 128, vocab 32000; 6.74B params",
    ),
    _bf16(
        "llama2-13b",
        params=13_015_864_320,
        layers=40,
        hidden_size=5120,
        heads=40,
        kv_heads=40,
        head_dim=128,
        vocab_size=32_000,
        source="meta-llama/Llama-2-13b-hf config.json: 40 layers, 40 KV heads x 128, vocab 32000; 13.0B params",
    ),
    _bf16(
        "llama2-70b",
        params=68_976_648_192,
        layers=80,
        hidden_size=8192,
        heads=64,
        kv_heads=8,
        head_dim=128,
        vocab_size=32_000,
        source="meta-llama/Llama-2-70b-hf config.json: 80 layers, 8 KV heads x 128 (GQA), vocab 32000; 69.0B",
    ),
    _bf16(
        "llama3-8b",
        params=8_030_261_248,
        layers=32,
        hidden_size=4096,
        heads=32,
        kv_heads=8,
        head_dim=128,
        vocab_size=128_256,
        source="meta-llama/Meta-Llama-3-8B config.json: 32 layers, 8 KV heads x 128 (GQA), vocab 128256; 8.03B",
    ),
    _bf16(
        "llama3-70b",
        params=70_553_706_496,
        layers=80,
        hidden_size=8192,
        heads=64,
        kv_heads=8,
        head_dim=128,
        vocab_size=128_256,
        source="meta-llama/Meta-Llama-3-70B config.json: 80 layers, 8 KV heads x 128 (GQA), vocab 128256; 70.6B",
    ),
)

_VLLM_MODELS = (
    _bf16(
        "llama3.1-8b",
        params=8_030_261_248,
        layers=32,
        hidden_size=4096,
        heads=32,
        kv_heads=8,
        head_dim=128,
        vocab_size=128_256,
        source="meta-llama/Llama-3.1-8B config.json: 32 layers, 8 KV heads x 128 (GQA), vocab 128256; 8.03B params",
    ),
    _bf16(
        "llama3.1-70b",
        params=70_553_706_496,
        layers=80,
        hidden_size=8192,
        heads=64,
        kv_heads=8,
        head_dim=128,
        vocab_size=128_256,
        source="meta-llama/Llama-3.1-70B config.json: 80 layers, 8 KV heads x 128 (GQA), vocab 128256; 70.6B",
    ),
    _bf16(
        "mistral-7b",
        params=7_248_023_552,
        layers=32,
        hidden_size=4096,
        heads=32,
        kv_heads=8,
        head_dim=128,
        vocab_size=32_768,
        source="mistralai/Mistral-7B-v0.3 config.json: 32 layers, 8 KV heads x 128 (GQA), vocab 32768; 7.25B",
    ),
    _bf16(
        "qwen2.5-7b",
        params=7_615_616_512,
        layers=28,
        hidden_size=3584,
        heads=28,
        kv_heads=4,
        head_dim=128,
        vocab_size=152_064,
        source="Qwen/Qwen2.5-7B config.json: 28 layers, 4 KV heads x 128 (GQA), vocab 152064; 7.62B params",
    ),
    _bf16(
        "qwen3-8b",
        params=8_190_735_360,
        layers=36,
        hidden_size=4096,
        heads=32,
        kv_heads=8,
        head_dim=128,
        vocab_size=151_936,
        source="Qwen/Qwen3-8B config.json: 36 layers, 8 KV heads x 128 (GQA), vocab 151936; 8.19B params",
    ),
    _bf16(
        "gemma-2-9b",
        params=9_241_705_984,
        layers=42,
        hidden_size=3584,
        heads=16,
        kv_heads=8,
        head_dim=256,
        vocab_size=256_000,
        source="google/gemma-2-9b config.json: 42 layers, 8 KV heads x 256 (GQA), vocab 256000; 9.24B params",
    ),
)

MODELS: dict[str, Model] = {m.name: m for base in (*_BASE_MODELS, *_VLLM_MODELS) for m in (base, _int8(base))}


def get_accelerator(name: str) -> Accelerator:
    """The accelerator called ``name``; ConfigError listing the known ones otherwise."""
    try:
        return ACCELERATORS[name]
    except KeyError:
        raise ConfigError(f"'accelerator' must be one of {', '.join(ACCELERATORS)} (got {name!r})") from None


def get_model(name: str) -> Model:
    """The model called ``name``; ConfigError listing the known ones otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(f"'model' must be one of {', '.join(MODELS)} (got {name!r})") from None
