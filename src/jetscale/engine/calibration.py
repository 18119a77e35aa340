"""The efficiencies of the roofline, calibrated against published figures, and the rule for every setup
without one.

A setup is a (chip family, model family) pair served by a stack. ``benchmarks/calibration.py`` replays
every published figure and prints predicted vs published with the error (docs/calibration.md):

* **TPU v5e**: jetstream-pytorch's table (15 rows: five models, bf16 and int8, batch 48 to 1024, cache
  2048 and 1280, data parallel) and the MaxText recipe's Llama2-7B figure. Each model's decode efficiency
  is fitted to its bf16 row at cache 2048; every other row (int8, the 1280-token rolling cache, the
  other batch sizes) is predicted, not fitted, from three constants shared by all models: the int8
  read overhead, the per-slot host overhead and the stack factor of MaxText.
* **GPUs**: kernel times of Llama-2-7B decode steps from Vidur's public profiles (microsoft/vidur
  ``data/profiling/compute/{a100,h100}``, batch 1-128 x context 512-2048 tokens), fitted by least squares
  to ``max(read, compute) / efficiency + overhead`` (A100 within 8% on 9 points, H100 within 7%).

Every other setup **borrows** a calibrated one and says which: the same model on another chip of the
family is itself; a model the chip family has no figure for borrows the family's reference model; a chip
family with none borrows ``tpu-v5e/llama2-7b`` (L4 borrows A100, both being NVIDIA parts read by the same
kernels). An int8 model uses its bf16 model's efficiency: int8's own cost is ``int8_read_overhead``.
A **fitted** efficiency comes from ``jetscale profile``. Pure.
"""

from __future__ import annotations

import dataclasses
from enum import StrEnum

from jetscale.engine.accelerator import Accelerator, Efficiency, EfficiencyKind, Model, Precision

__all__ = [
    "CALIBRATED_EFFICIENCY",
    "REFERENCE_SETUP",
    "STACK_FACTOR",
    "ServingStack",
    "efficiency_for",
    "setup_name",
]


class ServingStack(StrEnum):
    """The server software a replica runs: it sets how close to the roofline a step gets."""

    MAXTEXT = "jetstream-maxtext"  # JetStream with the MaxText engine (JAX)
    PYTORCH = "jetstream-pytorch"  # JetStream with the jetstream-pytorch engine (PyTorch/XLA)
    VLLM = "vllm"  # vLLM (v1 engine): its own scheduler, a paged cache (``jetscale.engine.vllm``)


# estimates (no published prefill timing for these setups; the decode fits absorb their error): a typical
# prefill MFU of a dense model on TPU, host dispatch per generate step and per prefill
_PREFILL_EFFICIENCY = 0.5
_DECODE_OVERHEAD_S = 0.0005
_PREFILL_OVERHEAD_S = 0.001
# fitted jointly over the 15 jetstream-pytorch rows (benchmarks/calibration.py): an int8 value (weight or KV)
# costs 1.5 bytes of read time, half a byte more than it holds (dequantization); JetStream's orchestrator
# spends 20 us per slot per step on the host (every slot's token goes through Python). Without the per-slot
# term Gemma-2B (512-1024 slots) needs half the other models' efficiency; with it all five models fit
# 0.72-0.94.
_INT8_READ_OVERHEAD = 0.5
_DECODE_OVERHEAD_S_PER_SLOT = 20e-6
# vLLM's CPU work per scheduled request per step, overlapped with the GPU (a floor on the step, not a sum):
# fitted to Lambda's H100 figure (Llama-3-8B, ShareGPT 1280 prompts, vLLM ~0.6: 7,627 output tok/s, which
# the GPU alone would beat by 25%); the A100's figure, GPU-bound, is held out (-4.6%)
_VLLM_HOST_S_PER_SEQ = 90e-6
_LAMBDA = "LambdaLabsML/vllm-benchmark results/prompt_1280 (Llama-3-8B-Instruct, vLLM ~0.6, 2024-09-07)"


def _calibrated(decode: float, source: str, *, overhead_s: float = _DECODE_OVERHEAD_S) -> Efficiency:
    return Efficiency(
        decode=decode,
        prefill=_PREFILL_EFFICIENCY,
        decode_overhead_s=overhead_s,
        prefill_overhead_s=_PREFILL_OVERHEAD_S,
        int8_read_overhead=_INT8_READ_OVERHEAD,
        decode_overhead_s_per_slot=_DECODE_OVERHEAD_S_PER_SLOT,
        source=source,
        kind=EfficiencyKind.CALIBRATED,
    )


_PYTORCH = "jetstream-pytorch benchmarks/summary.md (v5e-8, cache 2048, ShareGPT 2000 prompts)"
_VIDUR = "microsoft/vidur data/profiling kernel times, Llama-2-7B decode, batch 1-128 x context 512-2048"

# (chip family, model family) -> efficiency on jetstream-pytorch (TPU) or at kernel level (GPU)
CALIBRATED_EFFICIENCY: dict[tuple[str, str], Efficiency] = {
    ("tpu-v5e", "llama2-7b"): _calibrated(0.894, f"{_PYTORCH}: Llama2-7B bf16 batch 96, 3663 tok/s"),
    ("tpu-v5e", "llama2-13b"): _calibrated(0.835, f"{_PYTORCH}: Llama2-13B bf16 batch 48, 2056 tok/s"),
    ("tpu-v5e", "gemma-7b"): _calibrated(0.721, f"{_PYTORCH}: Gemma-7B bf16 batch 96, 3236 tok/s"),
    ("tpu-v5e", "gemma-2b"): _calibrated(0.848, f"{_PYTORCH}: Gemma-2B bf16 batch 512 data parallel, 8700 tok/s"),
    ("tpu-v5e", "llama3-8b"): _calibrated(0.939, f"{_PYTORCH}: Llama-3-8B bf16 batch 128, 8249 tok/s"),
    # least squares over Vidur's 9 (batch, context) step times per GPU; the overhead absorbs the kernel
    # launches of 32 layers (the A100's within 8% on every point; the H100's attention times are the A100's
    # scaled by bandwidth, its linear layers measured)
    ("a100", "llama2-7b"): _calibrated(0.875, f"{_VIDUR} on A100 80GB", overhead_s=0.0023),
    ("h100", "llama2-7b"): _calibrated(0.902, f"{_VIDUR} on H100 SXM", overhead_s=0.00153),
}
# what a setup of a chip family with no figure for its model borrows
_FAMILY_REFERENCE = {"tpu-v5e": "llama2-7b", "a100": "llama2-7b", "h100": "llama2-7b"}
# a chip family with no figure at all borrows from another
_FAMILY_LENDER = {"l4": "a100"}
REFERENCE_SETUP = ("tpu-v5e", "llama2-7b")  # what a setup with nothing closer borrows

# a stack's decode efficiency relative to jetstream-pytorch's, from the one setup both published
# (Llama2-7B bf16 on v5e-8: MaxText's recipe 3061.78 tok/s at batch 88 on OpenOrca, vs PyTorch's 3663 at 96)
STACK_FACTOR: dict[ServingStack, float] = {
    ServingStack.PYTORCH: 1.0,
    ServingStack.MAXTEXT: 0.753,
    ServingStack.VLLM: 1.0,
}
_TPU_STACK = ServingStack.PYTORCH  # the stack the TPU figures were measured on (GPU figures are kernel times)


def setup_name(key: tuple[str, str]) -> str:
    """``tpu-v5e/llama2-7b``: how a setup is named in provenance lines."""
    return f"{key[0]}/{key[1]}"


def efficiency_for(accelerator: Accelerator, model: Model, stack: ServingStack = ServingStack.MAXTEXT) -> Efficiency:
    """The calibrated efficiency of this chip family, model family and stack, else the one it borrows."""
    key = (accelerator.family, model.family)
    base = CALIBRATED_EFFICIENCY.get(key)
    lender = key
    if base is None:
        family = _FAMILY_LENDER.get(accelerator.family, accelerator.family)
        lender = (family, _FAMILY_REFERENCE[family]) if family in _FAMILY_REFERENCE else REFERENCE_SETUP
        base = CALIBRATED_EFFICIENCY[lender]
    efficiency = base
    if lender[0].startswith("tpu-") and stack is not _TPU_STACK:
        factor = STACK_FACTOR[stack] / STACK_FACTOR[_TPU_STACK]
        efficiency = dataclasses.replace(
            base,
            decode=min(1.0, base.decode * factor),
            source=f"{base.source}; x {factor:.3f} for {stack.value} (its Llama2-7B v5e-8 figure vs PyTorch's)",
        )
    if stack is ServingStack.VLLM:
        efficiency = dataclasses.replace(
            efficiency,
            decode_overhead_s_per_slot=_VLLM_HOST_S_PER_SEQ,
            source=f"{efficiency.source}; vLLM host {_VLLM_HOST_S_PER_SEQ * 1e6:g} us per request per step, "
            f"overlapped, fitted to {_LAMBDA}",
        )
    if model.precision is Precision.INT8:
        efficiency = dataclasses.replace(
            efficiency,
            source=f"{efficiency.source}; int8: read overhead {efficiency.int8_read_overhead:g} per value, fitted to "
            "jetstream-pytorch's int8 rows",
        )
    if lender == key:
        return efficiency
    why = f"no published figure for {setup_name(key)}"
    return dataclasses.replace(
        efficiency,
        kind=EfficiencyKind.BORROWED,
        borrowed_from=setup_name(lender),
        source=f"{why}; calibrated on {efficiency.source}",
    )
