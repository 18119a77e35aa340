"""The shape of one replica (chip, model, batch, lengths, startup) and the named presets.

A ``ReplicaConfig`` is validated once, when it is made: every field error names the field and the
value, and a batch whose KV cache cannot fit next to the weights is refused with the numbers
(weights GiB + KV GiB + reserve GiB > HBM GiB), as JetStream/MaxText would fail at
``init_decode_state``. Presets (``v5e-8/llama2-7b``, ``v6e-8/llama3-8b``, ``h100/llama3-8b``, ...) are
configs with sourced defaults; ``resolve_preset`` applies overrides on top of one.

The efficiencies of the roofline (``jetscale.engine.accelerator``) are calibrated here, against the
published JetStream throughput figures (tpu-recipes, jetstream-pytorch); ``benchmarks/calibration.py``
replays those setups and prints the error of each.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from jetscale.engine.accelerator import (
    GIB,
    Accelerator,
    Efficiency,
    Model,
    Roofline,
    get_accelerator,
    get_model,
    roofline,
)
from jetscale.errors import ConfigError

__all__ = [
    "CALIBRATED_EFFICIENCY",
    "PRESETS",
    "HbmMode",
    "PeakEstimate",
    "Preset",
    "ReplicaConfig",
    "efficiency_for",
    "estimate_model_load_s",
    "list_presets",
    "modeled_peak",
    "replica_config_from_mapping",
    "resolve_preset",
]


class HbmMode(StrEnum):
    """What the HBM gauge counts as used."""

    PAGED = "paged"  # weights + KV of live tokens (grows with load)
    PREALLOCATED = "preallocated"  # weights + the whole KV cache of every slot (JetStream MaxText: flat)


# --- Calibration ---------------------------------------------------------------------------------------
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
    )


_MAXTEXT_7B = (
    "tpu-recipes inference/v5e/JetStream-Maxtext/Llama2-7B README: v5e-8, 88 slots, openorca 995 prompts "
    "at once: 3061.78 output tok/s"
)
_PYTORCH = "jetstream-pytorch benchmarks/summary.md (v5e-8, cache 2048, ShareGPT 2000 prompts)"

# (chip family, model family) -> efficiency, each with the published figures it was fitted to.
CALIBRATED_EFFICIENCY: dict[tuple[str, str], Efficiency] = {
    # fits 0.261 (MaxText figure) and 0.236 (PyTorch figure) separately; one value is within 6% of both
    ("tpu-v5e", "llama2-7b"): _calibrated(0.248, f"{_MAXTEXT_7B}; {_PYTORCH}: Llama2-7B batch 96, 3663"),
    ("tpu-v5e", "llama2-13b"): _calibrated(0.318, f"{_PYTORCH}: Llama2-13B batch 48, 2056"),
    ("tpu-v5e", "gemma-7b"): _calibrated(0.215, f"{_PYTORCH}: Gemma-7B batch 96, 3236"),
}
# Chips and models without a published JetStream figure run at the v5e Llama2-7B efficiency.
_DEFAULT_EFFICIENCY = dataclasses.replace(
    CALIBRATED_EFFICIENCY[("tpu-v5e", "llama2-7b")],
    source="uncalibrated: no published JetStream figure; assumes the v5e Llama2-7B efficiency",
)


def efficiency_for(accelerator: Accelerator, model: Model) -> Efficiency:
    """The calibrated efficiency for this chip family and model family (int8 shares its bf16 model's)."""
    return CALIBRATED_EFFICIENCY.get((accelerator.family, model.family), _DEFAULT_EFFICIENCY)


# --- The replica config --------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaConfig:
    """One replica: what runs on what, with how many decode slots, and how long it takes to start."""

    accelerator: Accelerator
    model: Model
    decode_slots: int  # max_concurrent_decodes = per_device_batch_size x chips in MaxText
    max_prefill_length: int = 1024  # longer prompts keep their last tokens (JetStream pad_tokens)
    max_target_length: int = 2048  # KV cache length per slot: prompt + output
    prefill_backlog_limit: int = 1024  # submit() refuses beyond this (JetStream itself is unbounded)
    model_load_s: float = 60.0  # from start() until the replica is ready
    hbm_mode: HbmMode = HbmMode.PAGED
    runtime_reserve_bytes: int | None = None  # None: the accelerator's reserve per chip x chips
    interleaved: bool = True  # prefill and decode share the chips (the only mode modeled)
    efficiency: Efficiency | None = None  # None: the calibrated one (``efficiency_for``)
    name: str = ""

    def __post_init__(self) -> None:
        for field in ("decode_slots", "max_prefill_length", "prefill_backlog_limit"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"'{field}' must be an integer >= 1 (got {value!r})")
        if isinstance(self.max_target_length, bool) or not isinstance(self.max_target_length, int):
            raise ConfigError(f"'max_target_length' must be an integer (got {self.max_target_length!r})")
        if self.max_target_length <= self.max_prefill_length:
            raise ConfigError(
                f"'max_target_length' must be > max_prefill_length ({self.max_prefill_length}) "
                f"(got {self.max_target_length})"
            )
        if not self.model_load_s >= 0.0:
            raise ConfigError(f"'model_load_s' must be >= 0 (got {self.model_load_s!r})")
        if self.runtime_reserve_bytes is not None and self.runtime_reserve_bytes < 0:
            raise ConfigError(f"'runtime_reserve_bytes' must be >= 0 (got {self.runtime_reserve_bytes})")
        if not isinstance(self.hbm_mode, HbmMode):
            if self.hbm_mode not in tuple(HbmMode):
                raise ConfigError(f"'hbm_mode' must be one of paged, preallocated (got {self.hbm_mode!r})")
            object.__setattr__(self, "hbm_mode", HbmMode(self.hbm_mode))
        if self.interleaved is not True:
            raise ConfigError(
                f"'interleaved' must be true: disaggregated serving is not modeled (got {self.interleaved!r})"
            )
        needed = self.weight_bytes + self.kv_cache_bytes + self.reserve_bytes
        if needed > self.hbm_total_bytes:
            raise ConfigError(
                f"'decode_slots' must fit in HBM: weights {_gib(self.weight_bytes)} GiB + KV "
                f"{_gib(self.kv_cache_bytes)} GiB ({self.decode_slots} slots x {self.max_target_length} tokens x "
                f"{self.model.kv_bytes_per_token} B) + reserve {_gib(self.reserve_bytes)} GiB = {_gib(needed)} GiB "
                f"> HBM {_gib(self.hbm_total_bytes)} GiB on {self.accelerator.name} (got {self.decode_slots})"
            )

    @property
    def reserve_bytes(self) -> int:
        if self.runtime_reserve_bytes is not None:
            return self.runtime_reserve_bytes
        return self.accelerator.chips * self.accelerator.runtime_reserve_bytes_per_chip

    @property
    def weight_bytes(self) -> int:
        return self.model.weight_bytes

    @property
    def kv_cache_bytes(self) -> int:
        """The KV cache of every slot at ``max_target_length`` (what MaxText allocates up front)."""
        return self.decode_slots * self.max_target_length * self.model.kv_bytes_per_token

    @property
    def hbm_total_bytes(self) -> int:
        return self.accelerator.hbm_total_bytes

    @property
    def resolved_efficiency(self) -> Efficiency:
        if self.efficiency is not None:
            return self.efficiency
        return efficiency_for(self.accelerator, self.model)

    def roofline(self) -> Roofline:
        return roofline(
            self.accelerator,
            self.model,
            self.resolved_efficiency,
            decode_slots=self.decode_slots,
            max_prefill_length=self.max_prefill_length,
        )


def _gib(n: int) -> str:
    return f"{n / GIB:.1f}"


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
            name=self.name,
        )


def estimate_model_load_s(model: Model) -> float:
    """Seconds from process start to ready: read the weights, then compile and warm up.

    Estimate (no published ``jetstream_model_load_time``): checkpoint read at 1 GB/s plus 45 s of XLA
    compilation and warmup, rounded to 5 s.
    """
    seconds = 45.0 + model.weight_bytes / 1e9
    return float(5 * round(seconds / 5))


def _preset(name: str, accelerator: str, model: str, decode_slots: int, source: str) -> Preset:
    return Preset(
        name=name,
        accelerator=accelerator,
        model=model,
        decode_slots=decode_slots,
        max_prefill_length=1024,
        max_target_length=2048,
        source=source,
    )


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
        _preset("h100/llama3-8b", "h100-80gb-x1", "llama3-8b", 128, "choice: 128 slots on one H100 80GB"),
        _preset("h100-x8/llama3-70b", "h100-80gb-x8", "llama3-70b", 256, "choice: 256 slots on eight H100 80GB"),
    )
}

_ENUM_FIELDS: dict[str, type[StrEnum]] = {"hbm_mode": HbmMode}
_FIELDS = tuple(f.name for f in dataclasses.fields(ReplicaConfig))


def list_presets() -> list[Preset]:
    """Every preset, in table order."""
    return list(PRESETS.values())


def resolve_preset(name: str, **overrides: object) -> ReplicaConfig:
    """The config of preset ``name`` with ``overrides`` applied (validated again).

    ``accelerator`` and ``model`` may be given by name, ``hbm_mode`` as a string.
    """
    preset = PRESETS.get(name)
    if preset is None:
        raise ConfigError(f"'preset' must be one of {', '.join(PRESETS)} (got {name!r})")
    base = preset.config()
    if not overrides:
        return base
    return _with_overrides(base, overrides)


def replica_config_from_mapping(data: Mapping[str, object]) -> ReplicaConfig:
    """A config from a YAML-like mapping: ``preset`` plus overrides, or every field spelled out."""
    fields = dict(data)
    preset = fields.pop("preset", None)
    if preset is not None:
        if not isinstance(preset, str):
            raise ConfigError(f"'preset' must be a string (got {preset!r})")
        return resolve_preset(preset, **fields)
    for required in ("accelerator", "model", "decode_slots"):
        if required not in fields:
            raise ConfigError(f"'{required}' must be given when there is no 'preset' (got {sorted(fields)})")
    coerced = _coerce(fields)
    try:
        return ReplicaConfig(**coerced)  # type: ignore[arg-type]
    except TypeError as error:
        raise ConfigError(f"invalid replica config: {error}") from None


def _with_overrides(base: ReplicaConfig, overrides: Mapping[str, object]) -> ReplicaConfig:
    coerced = _coerce(dict(overrides))
    try:
        return dataclasses.replace(base, **coerced)  # type: ignore[arg-type]
    except TypeError as error:
        raise ConfigError(f"invalid replica config: {error}") from None


def _coerce(fields: dict[str, object]) -> dict[str, object]:
    unknown = sorted(set(fields) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"'{unknown[0]}' must be one of the replica fields {', '.join(_FIELDS)} (got {unknown[0]!r})")
    out = dict(fields)
    if isinstance(out.get("accelerator"), str):
        out["accelerator"] = get_accelerator(str(out["accelerator"]))
    if isinstance(out.get("model"), str):
        out["model"] = get_model(str(out["model"]))
    for field, enum in _ENUM_FIELDS.items():
        value = out.get(field)
        if isinstance(value, str) and not isinstance(value, enum):
            try:
                out[field] = enum(value)
            except ValueError:
                choices = ", ".join(m.value for m in enum)
                raise ConfigError(f"'{field}' must be one of {choices} (got {value!r})") from None
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
    prefill length in, half the remaining cache out.
    """
    n_in = input_tokens if input_tokens is not None else config.max_prefill_length // 2
    n_out = output_tokens if output_tokens is not None else (config.max_target_length - config.max_prefill_length) // 2
    if n_in < 1 or n_out < 2 or n_in + n_out > config.max_target_length:
        raise ConfigError(
            f"'input_tokens + output_tokens' must fit in max_target_length {config.max_target_length} "
            f"with input >= 1 and output >= 2 (got {n_in} + {n_out})"
        )
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
