"""The named presets, the replica YAML, and a replica's modeled peak.

``ReplicaConfig`` (``jetscale.engine.config``, re-exported here) is one replica's shape. Presets
(``v5e-8/llama2-7b``, ``v6e-8/llama3-8b``, ``h100/llama3-8b``, ...) are
configs with sourced defaults; ``resolve_preset`` applies overrides on top of one.

The replica YAML (docs/replica.md) is ``replica_config_from_mapping``: a preset plus overrides, or every
field spelled out, where the accelerator and the model are a table name or a mapping of their data
sheet (``jetscale.engine.datasheet``); ``replica_config_to_mapping`` writes a config back so that it
reads to an equal one. HBM is preallocated by default, as JetStream's MaxText engine allocates every
slot's KV cache in ``init_decode_state`` (the HBM gauge stays flat under load).

The efficiencies of the roofline are calibrated in ``jetscale.engine.calibration`` (re-exported here).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from jetscale.engine.accelerator import Accelerator, Model
from jetscale.engine.calibration import CALIBRATED_EFFICIENCY, efficiency_for
from jetscale.engine.catalog import ACCELERATORS, MODELS, get_accelerator, get_model
from jetscale.engine.config import HbmMode, KvRead, ReplicaConfig, ServerKind, ServingStack, VllmSettings
from jetscale.engine.datasheet import (
    accelerator_from_mapping,
    accelerator_to_mapping,
    check_fields,
    efficiency_from_mapping,
    efficiency_to_mapping,
    model_from_mapping,
    model_to_mapping,
    number,
)
from jetscale.engine.timing import timing_from_mapping, timing_to_mapping
from jetscale.errors import ConfigError
from jetscale.units import parse_duration_s

__all__ = [
    "CALIBRATED_EFFICIENCY",
    "PRESETS",
    "HbmMode",
    "KvRead",
    "PeakEstimate",
    "Preset",
    "ReplicaConfig",
    "ServingStack",
    "efficiency_for",
    "estimate_model_load_s",
    "list_presets",
    "modeled_peak",
    "per_device_batch_size",
    "replica_config_from_mapping",
    "replica_config_to_mapping",
    "resolve_preset",
]


# --- Presets -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class Preset:
    """A named replica shape and where its numbers come from."""

    name: str
    accelerator: str
    model: str
    decode_slots: int
    max_prefill_length: int
    max_target_length: int
    source: str
    # A JetStream MaxText setup by default (GPU ones too: MaxText runs there); MaxText allocates the
    # decode state, every slot's KV cache at max_target_length, once in init_decode_state.
    hbm_mode: HbmMode = HbmMode.PREALLOCATED
    stack: ServingStack = ServingStack.MAXTEXT
    data_parallel: int = 1

    def config(self) -> ReplicaConfig:
        accelerator = get_accelerator(self.accelerator)
        model = get_model(self.model)
        return ReplicaConfig(
            accelerator=accelerator,
            model=model,
            decode_slots=self.decode_slots,
            max_prefill_length=self.max_prefill_length,
            max_target_length=self.max_target_length,
            model_load_s=estimate_model_load_s(model),
            hbm_mode=self.hbm_mode,
            stack=self.stack,
            data_parallel=self.data_parallel,
            name=self.name,
        )


def estimate_model_load_s(model: Model) -> float:
    """Seconds from process start to ready: read the weights, then compile and warm up.

    Estimate (no published ``jetstream_model_load_time``): checkpoint read at 1 GB/s plus 45 s of XLA
    compilation and warmup, rounded to 5 s.
    """
    seconds = 45.0 + model.weight_bytes / 1e9
    return float(5 * round(seconds / 5))


def _preset(
    name: str,
    accelerator: str,
    model: str,
    decode_slots: int,
    source: str,
    *,
    stack: ServingStack = ServingStack.MAXTEXT,
    data_parallel: int = 1,
    max_model_len: int | None = None,
) -> Preset:
    """A preset with prompts up to 1024 tokens in 2048 per slot, or (vLLM) any prompt within ``max_model_len``."""
    return Preset(
        name=name,
        accelerator=accelerator,
        model=model,
        decode_slots=decode_slots,
        max_prefill_length=1024 if max_model_len is None else max_model_len - 1,
        max_target_length=2048 if max_model_len is None else max_model_len,
        source=source,
        stack=stack,
        data_parallel=data_parallel,
    )


_PYTORCH_TABLE = "jetstream-pytorch benchmarks/summary.md"
# vLLM: max_num_seqs 256 (its default on these GPUs and TPUs), max_model_len 8192 (a common serving limit; GKE's
# vLLM TPU examples use 8192-16384); efficiencies borrowed per docs/calibration.md
_VLLM_DEFAULTS = "vLLM engine defaults: max_num_seqs 256, the hardware's max_num_batched_tokens; max_model_len 8192"


def _vllm(name: str, accelerator: str, model: str, *, seqs: int = 256, max_model_len: int = 8192) -> Preset:
    return _preset(name, accelerator, model, seqs, _VLLM_DEFAULTS, stack=ServingStack.VLLM, max_model_len=max_model_len)


_DOCS = "JetStream docs/online-inference-with-maxtext-engine.md (v5e-8, prefill 1024, target 2048)"
# Every preset serves prompts up to 1024 tokens in a 2048-token cache per slot (the JetStream docs' setup).
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _preset("v5e-8/llama2-7b", "tpu-v5e-8", "llama2-7b", 88, f"{_DOCS}: per_device_batch_size 11"),
        _preset("v5e-8/llama2-13b", "tpu-v5e-8", "llama2-13b", 32, f"{_DOCS}: per_device_batch_size 4"),
        _preset("v5e-8/gemma-7b", "tpu-v5e-8", "gemma-7b", 88, f"{_DOCS}: per_device_batch_size 11"),
        _preset("v5e-8/gemma-7b-int8", "tpu-v5e-8", "gemma-7b-int8", 96, f"{_DOCS}: 12 per device with int8"),
        _preset(
            "v5e-4/llama2-7b",
            "tpu-v5e-4",
            "llama2-7b",
            16,
            "ai-on-gke benchmarks/inference-server/jetstream/jetstream.yaml: v5e 2x2, per_device_batch_size 4",
        ),
        _preset("v6e-8/llama3-8b", "tpu-v6e-8", "llama3-8b", 128, "choice: 16 per chip (no published batch)"),
        _preset("v6e-1/llama3-8b", "tpu-v6e-1", "llama3-8b", 32, "choice: a one-chip replica for small fleets"),
        _preset(
            "v6e-8/llama2-70b-int8",
            "tpu-v6e-8",
            "llama2-70b-int8",
            400,
            "MaxText MLPerf llama2-70b README (v6e-8): per_device_batch_size 50, int8",
        ),
        _preset("v5p-8/llama3-70b", "tpu-v5p-8", "llama3-70b", 96, "choice: 24 per chip on 4 chips"),
        _preset(
            "v5e-8/llama3-8b-pytorch",
            "tpu-v5e-8",
            "llama3-8b",
            128,
            f"{_PYTORCH_TABLE}: Llama-3-8B bf16 batch 128 (2024-04-24)",
            stack=ServingStack.PYTORCH,
        ),
        _preset(
            "v5e-8/gemma-2b-pytorch",
            "tpu-v5e-8",
            "gemma-2b",
            512,
            f"{_PYTORCH_TABLE}: Gemma-2B bf16 batch 512, --shard_on_batch (data parallel) (2024-05-14)",
            stack=ServingStack.PYTORCH,
            data_parallel=8,
        ),
        _preset("v5e-1/gemma-2b", "tpu-v5e-1", "gemma-2b", 256, "choice: ~the most one v5e chip holds"),
        _preset("h100/llama3-8b", "h100-80gb-x1", "llama3-8b", 128, "choice: 128 slots on one H100 80GB"),
        _preset("a100/llama3-8b", "a100-80gb-x1", "llama3-8b", 128, "choice: 128 slots on one A100 80GB"),
        _preset("l4/llama3-8b", "l4-24gb-x1", "llama3-8b", 16, "choice: the most slots one L4 holds at 2048, bf16"),
        _preset("h100-x8/llama3-70b", "h100-80gb-x8", "llama3-70b", 256, "choice: 256 slots on eight H100 80GB"),
        _vllm("vllm-h100/llama3.1-8b", "h100-80gb-x1", "llama3.1-8b"),
        _vllm("vllm-a100/llama3.1-8b", "a100-80gb-x1", "llama3.1-8b"),
        _vllm("vllm-l4/llama3.1-8b", "l4-24gb-x1", "llama3.1-8b", max_model_len=4096),
        _vllm("vllm-l4-x4/llama3.1-8b", "l4-24gb-x4", "llama3.1-8b"),
        _vllm("vllm-h100/qwen2.5-7b", "h100-80gb-x1", "qwen2.5-7b"),
        _vllm("vllm-h100/qwen3-8b", "h100-80gb-x1", "qwen3-8b"),
        _vllm("vllm-l4/mistral-7b", "l4-24gb-x1", "mistral-7b", max_model_len=4096),
        _vllm("vllm-a100/gemma-2-9b", "a100-80gb-x1", "gemma-2-9b"),
        _vllm("vllm-h100-x4/llama3.1-70b", "h100-80gb-x4", "llama3.1-70b"),
        _vllm("vllm-h100-x8/llama3.1-70b", "h100-80gb-x8", "llama3.1-70b"),
        _vllm("vllm-v6e-8/llama3.1-8b", "tpu-v6e-8", "llama3.1-8b"),
        _vllm("vllm-v6e-8/llama3.1-70b", "tpu-v6e-8", "llama3.1-70b"),
        _vllm("vllm-v5e-8/llama3.1-8b", "tpu-v5e-8", "llama3.1-8b"),
    )
}

_FIELDS = tuple(f.name for f in dataclasses.fields(ReplicaConfig))
VLLM_FIELDS = tuple(f.name for f in dataclasses.fields(VllmSettings))
# what a replica YAML may hold: the config's fields, ``preset``, MaxText's per-device batch size, and the
# ``profile`` mapping of a `jetscale profile` (where the timing was measured, its points: read, not used)
YAML_FIELDS = ("preset", *(f for f in _FIELDS if f != "interleaved"), "per_device_batch_size", "interleaved", "profile")


def list_presets() -> list[Preset]:
    """Every preset, in table order."""
    return list(PRESETS.values())


def resolve_preset(name: str, **overrides: object) -> ReplicaConfig:
    """The config of preset ``name`` with ``overrides`` applied (validated again).

    Overrides are replica YAML values: ``accelerator`` and ``model`` by name or as a mapping, ``hbm_mode``
    as a string, ``per_device_batch_size`` in place of ``decode_slots``.
    """
    preset = PRESETS.get(name)
    if preset is None:
        raise ConfigError(f"'preset' must be one of {', '.join(PRESETS)} (got {name!r})")
    base = preset.config()
    if not overrides:
        return base
    coerced = _coerce(dict(overrides), base.accelerator)
    if "stack" in coerced and "kv_read" not in coerced:
        coerced["kv_read"] = None  # the new stack's own
    try:
        return dataclasses.replace(base, **coerced)  # type: ignore[arg-type]
    except TypeError as error:  # pragma: no cover - _coerce admits only the config's fields
        raise ConfigError(f"invalid replica config: {error}") from None


def replica_config_from_mapping(data: Mapping[str, object]) -> ReplicaConfig:
    """A config from a replica YAML mapping: ``preset`` plus overrides, or every field spelled out."""
    fields = check_fields(data, "", YAML_FIELDS, what="replica")
    provenance = fields.pop("profile", None)
    if provenance is not None and not isinstance(provenance, Mapping):
        raise ConfigError(f"'profile' must be the mapping jetscale profile writes (got {provenance!r})")
    if provenance is not None and "timing" not in fields:
        raise ConfigError("'timing' must be given with 'profile': the profile's fitted coefficients (got none)")
    preset = fields.pop("preset", None)
    if preset is not None:
        if not isinstance(preset, str):
            raise ConfigError(f"'preset' must be a string (got {preset!r})")
        return resolve_preset(preset, **fields)
    for required in ("accelerator", "model"):
        if required not in fields:
            raise ConfigError(f"'{required}' must be given when there is no 'preset' (got {sorted(fields)})")
    if "decode_slots" not in fields and "per_device_batch_size" not in fields:
        raise ConfigError(
            f"'decode_slots' (or per_device_batch_size) must be given when there is no 'preset' (got {sorted(fields)})"
        )
    coerced = _coerce(fields, None)
    try:
        return ReplicaConfig(**coerced)  # type: ignore[arg-type]
    except TypeError as error:  # pragma: no cover - _coerce admits only the config's fields
        raise ConfigError(f"invalid replica config: {error}") from None


def _coerce(fields: dict[str, object], base_accelerator: Accelerator | None) -> dict[str, object]:
    """Replica YAML values as config values; ConfigError naming the first bad field."""
    check_fields(fields, "", YAML_FIELDS[1:-1], what="replica")
    out = dict(fields)
    accelerator = out.get("accelerator")
    if isinstance(accelerator, str):
        out["accelerator"] = get_accelerator(accelerator)
    elif isinstance(accelerator, Mapping):
        out["accelerator"] = accelerator_from_mapping(accelerator)
    model = out.get("model")
    if isinstance(model, str):
        out["model"] = get_model(model)
    elif isinstance(model, Mapping):
        out["model"] = model_from_mapping(model)
    if isinstance(out.get("efficiency"), Mapping):
        out["efficiency"] = efficiency_from_mapping(out["efficiency"])
    if isinstance(out.get("timing"), Mapping):
        out["timing"] = timing_from_mapping(out["timing"])
    if isinstance(out.get("vllm"), Mapping):
        vllm = check_fields(out["vllm"], "vllm", VLLM_FIELDS, what="vLLM")
        out["vllm"] = VllmSettings(**vllm)  # type: ignore[arg-type]
    if "per_device_batch_size" in out:
        given = out.get("accelerator")
        chosen = given if isinstance(given, Accelerator) else base_accelerator
        out["decode_slots"] = _slots_of(out.pop("per_device_batch_size"), out.get("decode_slots"), chosen)
    hbm_mode = out.get("hbm_mode")
    if isinstance(hbm_mode, str) and not isinstance(hbm_mode, HbmMode):
        if hbm_mode not in tuple(HbmMode):
            choices = ", ".join(m.value for m in HbmMode)
            raise ConfigError(f"'hbm_mode' must be one of {choices} (got {hbm_mode!r})")
        out["hbm_mode"] = HbmMode(hbm_mode)
    if isinstance(out.get("model_load_s"), str):
        try:
            out["model_load_s"] = parse_duration_s(out["model_load_s"])
        except ConfigError:
            raise ConfigError(
                f"'model_load_s' must be seconds or a duration such as 90s or 2m (got {out['model_load_s']!r})"
            ) from None
    if isinstance(out.get("runtime_reserve_bytes"), str):
        reserve = number(out["runtime_reserve_bytes"], "runtime_reserve_bytes", integer=True, inclusive=True)
        out["runtime_reserve_bytes"] = int(reserve)
    return out


def _slots_of(per_device: object, decode_slots: object, accelerator: Accelerator | None) -> int:
    """MaxText's ``max_concurrent_decodes = int(per_device_batch_size x chips)``."""
    if decode_slots is not None:
        raise ConfigError(
            f"'per_device_batch_size' must not be given with decode_slots ({decode_slots!r}): "
            f"one is the other x chips (got {per_device!r})"
        )
    if accelerator is None:
        raise ConfigError(f"'per_device_batch_size' needs an accelerator to count chips (got {per_device!r})")
    per_chip = number(per_device, "per_device_batch_size")
    slots = int(per_chip * accelerator.chips)
    if slots < 1:
        raise ConfigError(
            f"'per_device_batch_size' must give at least one slot on {accelerator.chips} chips (got {per_device!r})"
        )
    return slots


def per_device_batch_size(config: ReplicaConfig) -> int | float:
    """``decode_slots / chips``: MaxText's per_device_batch_size (an int when it divides evenly)."""
    chips = config.accelerator.chips
    return config.decode_slots // chips if config.decode_slots % chips == 0 else config.decode_slots / chips


def replica_config_to_mapping(config: ReplicaConfig) -> dict[str, object]:
    """The replica YAML mapping of ``config``: ``replica_config_from_mapping`` reads it to an equal config.

    Table chips and models are written by name, others as their data-sheet mappings; defaults that
    JetStream shares (interleaved) and unset optional fields are left out.
    """
    accelerator = config.accelerator
    model = config.model
    out: dict[str, object] = {}
    if config.name:
        out["name"] = config.name
    out["accelerator"] = (
        accelerator.name if ACCELERATORS.get(accelerator.name) == accelerator else accelerator_to_mapping(accelerator)
    )
    out["model"] = model.name if MODELS.get(model.name) == model else model_to_mapping(model)
    for field in _FIELDS:
        if field in ("name", "accelerator", "model", "interleaved", "efficiency", "timing", "vllm"):
            continue
        value = getattr(config, field)
        if value is None:
            continue
        out[field] = value.value if isinstance(value, StrEnum) else value
    if config.efficiency is not None:
        out["efficiency"] = efficiency_to_mapping(config.efficiency)
    if config.timing is not None:
        out["timing"] = timing_to_mapping(config.timing)
    if config.vllm is not None:
        out["vllm"] = {k: v for k, v in dataclasses.asdict(config.vllm).items() if v is not None}
    return out


# --- Modeled peak --------------------------------------------------------------------------------------
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
    from jetscale.engine.vllm import StepCost

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
