"""A vLLM step's time, from the replica's roofline or a profile's measured timing. Pure.

``max(read / decode efficiency, 2 x params x scheduled tokens / peak / prefill efficiency, host floor)
+ overhead``: the step reads the weights and the KV of every scheduled token's context, computes every
scheduled token, and takes at least vLLM's CPU time per scheduled request (overlapped with the device);
a profile's fit adds its terms instead (``decode_step_fixed_s + decode_step_per_token_s x context +
prefill_per_token_s x new tokens``). ``jetscale.engine.vllm`` steps with it, and the modeled peak
(``jetscale.engine.presets.modeled_peak``) prices a steady state with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from jetscale.engine.config import ReplicaConfig

__all__ = ["StepCost"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StepCost:
    """A step's time: ``max(g x (fixed + per_context_token x context), per_new_token x tokens) + overhead``."""

    fixed_s: float  # the weights' read (memory side, before the efficiency)
    per_context_token_s: float  # one token of KV read
    per_new_token_s: float  # one scheduled token's compute, efficiency included
    g: float  # 1 / decode efficiency, on the memory side
    overhead_s: float
    additive: bool = False  # a profile's fit: the compute adds to the read instead of overlapping it
    host_s_per_seq: float = 0.0  # CPU work per scheduled request, overlapped with the device: a floor

    @classmethod
    def of(cls, config: ReplicaConfig) -> StepCost:
        if config.timing is not None:
            t = config.timing
            return cls(
                fixed_s=t.decode_step_fixed_s,
                per_context_token_s=t.decode_step_per_token_s,
                per_new_token_s=t.prefill_per_token_s,
                g=1.0,
                overhead_s=0.0,
                additive=True,
            )
        roof = config.roofline()
        efficiency = config.resolved_efficiency
        peak = config.accelerator.peak_flops(config.model.precision)
        return cls(
            fixed_s=roof.weight_read_s,
            per_context_token_s=roof.kv_read_s_per_token,
            per_new_token_s=2.0 * config.model.params / peak / efficiency.prefill,
            g=1.0 / efficiency.decode,
            overhead_s=efficiency.decode_overhead_s,
            host_s_per_seq=efficiency.decode_overhead_s_per_slot,
        )

    def step_s(self, context_tokens: int, new_tokens: int, seqs: int = 0) -> float:
        """A step over ``seqs`` requests reading ``context_tokens`` and computing ``new_tokens``."""
        read = self.g * (self.fixed_s + self.per_context_token_s * context_tokens)
        compute = self.per_new_token_s * new_tokens
        if self.additive:
            return read + compute + self.overhead_s
        device = read if read >= compute else compute
        host = self.host_s_per_seq * seqs
        return (device if device >= host else host) + self.overhead_s
