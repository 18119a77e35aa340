"""The named presets and the replica YAML (the modeled peak, ``jetscale.engine.peak``, re-exported).

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
from jetscale.engine.config import HbmMode, KvRead, ReplicaConfig, ServingStack, VllmSettings
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
from jetscale.engine.peak import PeakEstimate, modeled_peak
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
