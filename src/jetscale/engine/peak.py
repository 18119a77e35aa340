"""A replica's modeled peak: output tokens/s with every slot busy, the step and prefill times then, and
the HBM gauge, for JetStream's scheduler (a static batch refilled by one prefill at a time) and vLLM's
(a steady state of running requests, prefill chunks riding on decode steps). What `jetscale presets`,
`predict`, the demo's load and the tuner's grids are sized by. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass

from jetscale.engine.config import HbmMode, ReplicaConfig, ServerKind
from jetscale.engine.vllm_cost import StepCost
from jetscale.errors import ConfigError

__all__ = ["PeakEstimate", "modeled_peak"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PeakEstimate:
    """Steady state with every slot busy and the prefill backlog never empty."""

    input_tokens: int
    output_tokens: int
    decode_step_s: float  # at the mean context (input + output / 2 per slot)
    prefill_s: float
    output_tokens_s: float
    hbm_used_bytes: int
    hbm_total_bytes: int


def modeled_peak(
    config: ReplicaConfig, *, input_tokens: int | None = None, output_tokens: int | None = None
) -> PeakEstimate:
    """Peak output tokens/s at full batch and the HBM gauge then.

    Over ``output - 1`` steps every slot finishes one request and one prefill refills it, so
    tokens/s = slots x output / ((output - 1) x step + slots x prefill). Default request: half the
    prefill length in, half the remaining cache out (vLLM: 1024 in and out, or a quarter of the model
    length each; its steady state is ``_vllm_peak``).
    """
    if config.kind is ServerKind.VLLM:  # any prompt fits the model length: 1024 in and out, or a quarter of it
        half = min(1024, config.max_target_length // 4)
        default_in, default_out = half, half
    else:
        default_in = config.max_prefill_length // 2
        default_out = (config.max_target_length - config.max_prefill_length) // 2
    n_in = input_tokens if input_tokens is not None else default_in
    n_out = output_tokens if output_tokens is not None else default_out
    if n_in < 1 or n_out < 2 or n_in + n_out > config.max_target_length:
        raise ConfigError(
            f"'input_tokens + output_tokens' must fit in max_target_length {config.max_target_length} "
            f"with input >= 1 and output >= 2 (got {n_in} + {n_out})"
        )
    if config.kind is ServerKind.VLLM:
        return _vllm_peak(config, n_in, n_out)
    timing = config.roofline()
    slots = config.decode_slots
    mean_context = n_in + n_out / 2
    step_s = timing.decode_step_s(round(slots * mean_context))
    prefill_s = timing.prefill_s(n_in)
    tokens_s = slots * n_out / ((n_out - 1) * step_s + slots * prefill_s)
    paged_kv_bytes = round(slots * mean_context * config.model.kv_bytes_per_token)
    kv_bytes = config.kv_cache_bytes if config.hbm_mode is HbmMode.PREALLOCATED else paged_kv_bytes
    return PeakEstimate(
        input_tokens=n_in,
        output_tokens=n_out,
        decode_step_s=step_s,
        prefill_s=prefill_s,
        output_tokens_s=tokens_s,
        hbm_used_bytes=config.weight_bytes + kv_bytes + config.reserve_bytes,
        hbm_total_bytes=config.hbm_total_bytes,
    )


def _vllm_peak(config: ReplicaConfig, n_in: int, n_out: int) -> PeakEstimate:
    """vLLM at steady state: ``S`` requests run (``max_num_seqs``, cut to what the token budget and the KV
    pool hold at the mean context), each step decodes one token of each, and new requests arrive as fast
    as they finish, ``S / n_out`` a step (Little's law). A new prompt is prefilled in chunks of what the
    budget leaves beside the decodes, each chunk riding on one step: a share ``p`` of the steps carries a
    chunk (compute-bound when the chunk is long), the rest only decodes. TTFT on an idle replica: the
    prompt's chunks of ``max_num_batched_tokens``, one step each."""
    cost = StepCost.of(config)
    budget = config.max_num_batched_tokens
    mean_context = n_in + n_out / 2
    pool_tokens = config.kv_blocks * config.vllm_settings.block_size
    seqs = max(1, min(config.decode_slots, budget - 1, int(pool_tokens / (n_in + n_out))))
    room = budget - seqs
    chunks = -(-n_in // room)
    share = min(1.0, seqs / n_out * chunks)
    context = round(seqs * mean_context)
    with_chunk = cost.step_s(context, seqs + -(-n_in // chunks), seqs)
    decode_only = cost.step_s(context, seqs, seqs)
    step_s = share * with_chunk + (1.0 - share) * decode_only
    prefill_s = 0.0
    done = 0
    while done < n_in:
        chunk = min(budget, n_in - done)
        prefill_s += cost.step_s(done + chunk, chunk, 1)
        done += chunk
    return PeakEstimate(
        input_tokens=n_in,
        output_tokens=n_out,
        decode_step_s=step_s,
        prefill_s=prefill_s,
        output_tokens_s=seqs / step_s,
        hbm_used_bytes=config.weight_bytes + config.kv_cache_bytes + config.reserve_bytes,
        hbm_total_bytes=config.hbm_total_bytes,
    )
