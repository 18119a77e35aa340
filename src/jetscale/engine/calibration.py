"""The efficiencies of the roofline, calibrated against published JetStream figures, and the rule for
every setup without one.

A setup is a (chip family, model family) pair. Three of them have a published throughput figure and
are **calibrated** (``benchmarks/calibration.py`` replays each figure and prints the error). Every other
setup **borrows** a calibrated one and says which: an int8 model borrows its bf16 model's on the same
chip family (the figures are bf16), anything else borrows ``tpu-v5e/llama2-7b``, the setup with two
independent figures. A **fitted** efficiency (from a measured profile, ``jetscale profile``) is not
built yet; ``EfficiencyKind.FITTED`` and ``Efficiency.profile`` are where it will go. Pure.
"""

from __future__ import annotations

import dataclasses

from jetscale.engine.accelerator import Accelerator, Efficiency, EfficiencyKind, Model, Precision

__all__ = ["CALIBRATED_EFFICIENCY", "REFERENCE_SETUP", "efficiency_for", "setup_name"]

# decode efficiency: fitted by ``benchmarks/calibration.py --fit`` so that the replay of each published
# setup matches its output tok/s. prefill efficiency 0.5 and the overheads are estimates (no published
# prefill timing for these setups); the decode fit absorbs their error.
_PREFILL_EFFICIENCY = 0.5  # estimate: typical prefill MFU of a dense model on TPU
_DECODE_OVERHEAD_S = 0.0005  # estimate: host dispatch per generate step
_PREFILL_OVERHEAD_S = 0.001  # estimate: host tokenization + dispatch per prefill


def _calibrated(decode: float, source: str) -> Efficiency:
    return Efficiency(
        decode=decode,
        prefill=_PREFILL_EFFICIENCY,
        decode_overhead_s=_DECODE_OVERHEAD_S,
        prefill_overhead_s=_PREFILL_OVERHEAD_S,
        source=source,
        kind=EfficiencyKind.CALIBRATED,
    )


_MAXTEXT_7B = (
    "tpu-recipes inference/v5e/JetStream-Maxtext/Llama2-7B README: v5e-8, 88 slots, openorca 995 prompts "
    "at once: 3061.78 output tok/s"
)
_PYTORCH = "jetstream-pytorch benchmarks/summary.md (v5e-8, cache 2048, ShareGPT 2000 prompts)"

# (chip family, model family) -> efficiency, each with the published figures it was fitted to (bf16).
CALIBRATED_EFFICIENCY: dict[tuple[str, str], Efficiency] = {
    # fits 0.261 (MaxText figure) and 0.236 (PyTorch figure) separately; one value is within 6% of both
    ("tpu-v5e", "llama2-7b"): _calibrated(0.248, f"{_MAXTEXT_7B}; {_PYTORCH}: Llama2-7B batch 96, 3663"),
    ("tpu-v5e", "llama2-13b"): _calibrated(0.318, f"{_PYTORCH}: Llama2-13B batch 48, 2056"),
    ("tpu-v5e", "gemma-7b"): _calibrated(0.215, f"{_PYTORCH}: Gemma-7B batch 96, 3236"),
}
REFERENCE_SETUP = ("tpu-v5e", "llama2-7b")  # what a setup with nothing closer borrows


def setup_name(key: tuple[str, str]) -> str:
    """``tpu-v5e/llama2-7b``: how a setup is named in provenance lines."""
    return f"{key[0]}/{key[1]}"


def efficiency_for(accelerator: Accelerator, model: Model) -> Efficiency:
    """The calibrated efficiency of this chip family and bf16 model family, else the one it borrows."""
    key = (accelerator.family, model.family)
    own = CALIBRATED_EFFICIENCY.get(key)
    if own is not None and model.precision is Precision.BF16:
        return own
    if own is not None:
        lender, why = key, f"no published figure for {model.precision.value}; its bf16 model's"
    else:
        lender, why = REFERENCE_SETUP, f"no published JetStream figure for {setup_name(key)}"
    base = CALIBRATED_EFFICIENCY[lender]
    return dataclasses.replace(
        base,
        kind=EfficiencyKind.BORROWED,
        borrowed_from=setup_name(lender),
        source=f"{why}; calibrated on {base.source}",
    )
