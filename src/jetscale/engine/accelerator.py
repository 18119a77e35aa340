"""Accelerators, models and the roofline that times one replica's work.

LLM serving is memory-bound: a decode step reads every weight and the KV cache of every active
sequence once, and produces one token per active slot. A prefill is compute-bound: about
``2 x params`` FLOPs per prompt token. The roofline takes the slower of the two limits and divides it
by a measured efficiency, then adds a fixed overhead per call:

* decode step = max(bytes read / HBM bandwidth, FLOPs / peak) / decode efficiency + decode overhead,
  bytes read = weights + KV cache of the active slots' contexts, FLOPs = 2 x params x decode slots
  (JetStream steps the whole static batch, empty slots included);
* prefill of n prompt tokens, padded to JetStream's bucket = max(2 x params x padded / peak,
  weights / bandwidth) / prefill efficiency + prefill overhead;
* KV bytes per token = 2 (K and V) x layers x KV heads x head size x bytes per KV value.

Attention FLOPs and the logits are not modeled separately: they hide inside the calibrated
efficiencies (see ``jetscale.engine.calibration`` for the calibration and its sources); an
``Efficiency`` says where its numbers come from (``EfficiencyKind``: calibrated against a published
figure, borrowed from a calibrated setup, fitted to a profile, or given in a replica YAML).
Every table entry keeps its source next to it; chips and models outside the tables are read from their
data sheets (``jetscale.engine.datasheet``). Pure: no clock, no I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from enum import StrEnum

from jetscale.errors import ConfigError

__all__ = [
    "ACCELERATORS",
    "GIB",
    "MODELS",
    "PREFILL_BUCKETS",
    "Accelerator",
    "Efficiency",
    "EfficiencyKind",
    "Model",
    "Precision",
    "Roofline",
    "get_accelerator",
    "get_model",
    "prefill_bucket",
    "prefill_buckets",
    "roofline",
]

GIB = 2**30

# JetStream ``token_utils.DEFAULT_PREFILL_BUCKETS``; a prompt is padded to the smallest bucket that
# holds it, the list being cut at ``max_prefill_length`` (which becomes the last bucket).
PREFILL_BUCKETS: tuple[int, ...] = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


class Precision(StrEnum):
    """The number format the matmuls run in; picks the peak FLOP/s of the chip."""

    BF16 = "bf16"
    INT8 = "int8"


@dataclass(frozen=True, slots=True, kw_only=True)
class Accelerator:
    """One replica's accelerator slice: ``chips`` identical chips sharing one model (tensor parallel)."""

    name: str
    family: str  # chip generation, the key of the efficiency calibration ("tpu-v5e")
    chips: int
    hbm_bytes_per_chip: int
    hbm_bandwidth_bytes_s: float  # per chip
    peak_bf16_flops: float  # per chip
    peak_int8_ops: float  # per chip
    runtime_reserve_bytes_per_chip: int  # HBM the runtime keeps for itself
    source: str

    def __post_init__(self) -> None:
        _positive("chips", self.chips)
        _positive("hbm_bytes_per_chip", self.hbm_bytes_per_chip)
        _positive("hbm_bandwidth_bytes_s", self.hbm_bandwidth_bytes_s)
        _positive("peak_bf16_flops", self.peak_bf16_flops)
        _positive("peak_int8_ops", self.peak_int8_ops)
        if self.runtime_reserve_bytes_per_chip < 0:
            raise ConfigError(
                f"'runtime_reserve_bytes_per_chip' must be >= 0 (got {self.runtime_reserve_bytes_per_chip})"
            )

    @property
    def hbm_total_bytes(self) -> int:
        return self.chips * self.hbm_bytes_per_chip

    @property
    def bandwidth_bytes_s(self) -> float:
        """Aggregate HBM bandwidth of all chips."""
        return self.chips * self.hbm_bandwidth_bytes_s

    def peak_flops(self, precision: Precision) -> float:
        """Aggregate peak FLOP/s (or OP/s for int8) of all chips."""
        per_chip = self.peak_int8_ops if precision is Precision.INT8 else self.peak_bf16_flops
        return self.chips * per_chip


@dataclass(frozen=True, slots=True, kw_only=True)
class Model:
    """A decoder-only transformer as the roofline sees it: its size and the shape of its KV cache."""

    name: str
    family: str  # the bf16 model it derives from, the key of the efficiency calibration
    params: int
    layers: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    precision: Precision
    weight_bytes_per_param: float
    kv_bytes_per_value: int
    source: str
    hidden_size: int | None = None  # not used by the roofline; checked against the heads when given
    heads: int | None = None  # query heads; a multiple of kv_heads (grouped-query attention)

    def __post_init__(self) -> None:
        for field in ("params", "layers", "kv_heads", "head_dim", "vocab_size", "kv_bytes_per_value"):
            _positive(field, getattr(self, field))
        _positive("weight_bytes_per_param", self.weight_bytes_per_param)
        if self.hidden_size is not None:
            _positive("hidden_size", self.hidden_size)
        if self.heads is not None:
            _positive("heads", self.heads)
            if self.heads % self.kv_heads:
                raise ConfigError(
                    f"'kv_heads' must divide heads ({self.heads}): each KV head serves a group of query heads "
                    f"(got {self.kv_heads})"
                )

    @property
    def weight_bytes(self) -> int:
        return int(self.params * self.weight_bytes_per_param)

    @property
    def kv_bytes_per_token(self) -> int:
        """K and V for one token in every layer."""
        return 2 * self.layers * self.kv_heads * self.head_dim * self.kv_bytes_per_value


class EfficiencyKind(StrEnum):
    """Where an efficiency's numbers come from."""

    CALIBRATED = "calibrated"  # fitted to a published throughput figure of this chip and model (``source``)
    BORROWED = "borrowed"  # a calibrated setup's efficiency reused for another (``borrowed_from``)
    FITTED = "fitted"  # fitted to measured points of a profile (``profile``; `jetscale profile`, not built yet)
    GIVEN = "given"  # set by hand (a replica YAML's ``efficiency``, a test)


@dataclass(frozen=True, slots=True, kw_only=True)
class Efficiency:
    """How far below the roofline a serving stack runs, and where that figure comes from."""

    decode: float  # share of the roofline a decode step reaches (0, 1]
    prefill: float  # share of peak FLOP/s a prefill reaches (0, 1]
    decode_overhead_s: float  # fixed cost per decode step (dispatch, sampling, host work)
    prefill_overhead_s: float  # fixed cost per prefill call
    source: str
    kind: EfficiencyKind = EfficiencyKind.GIVEN
    borrowed_from: str | None = None  # BORROWED: the calibrated setup, "<chip family>/<model family>"
    profile: str | None = None  # FITTED: the profile the points come from (what `jetscale profile` will write)

    def __post_init__(self) -> None:
        for field in ("decode", "prefill"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0:
                raise ConfigError(f"'{field}' must be in (0, 1] (got {value!r})")
        for field in ("decode_overhead_s", "prefill_overhead_s"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0.0:
                raise ConfigError(f"'{field}' must be >= 0 (got {value!r})")
        if not isinstance(self.kind, EfficiencyKind):
            if self.kind not in tuple(EfficiencyKind):
                choices = ", ".join(k.value for k in EfficiencyKind)
                raise ConfigError(f"'kind' must be one of {choices} (got {self.kind!r})")
            object.__setattr__(self, "kind", EfficiencyKind(self.kind))
        if (self.kind is EfficiencyKind.BORROWED) != (self.borrowed_from is not None):
            raise ConfigError(
                f"'borrowed_from' must name the calibrated setup exactly when kind is borrowed "
                f"(got kind {self.kind.value}, borrowed_from {self.borrowed_from!r})"
            )
        if (self.kind is EfficiencyKind.FITTED) != (self.profile is not None):
            raise ConfigError(
                f"'profile' must name the profile exactly when kind is fitted "
                f"(got kind {self.kind.value}, profile {self.profile!r})"
            )

    @property
    def provenance(self) -> str:
        """One line: what kind of figure this is and where it comes from."""
        if self.kind is EfficiencyKind.BORROWED:
            return f"borrowed from {self.borrowed_from} ({self.source})"
        if self.kind is EfficiencyKind.FITTED:
            return f"fitted to profile {self.profile} ({self.source})"
        return f"{self.kind.value}: {self.source}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Roofline:
    """The timing of one replica, reduced to a few coefficients (all seconds).

    decode step over a batch whose contexts total ``c`` tokens:
    ``max(weight_read_s + kv_read_s_per_token * c, decode_compute_s) / decode_efficiency
    + decode_overhead_s``.
    """

    weight_read_s: float  # weights / aggregate HBM bandwidth
    kv_read_s_per_token: float  # KV bytes per token / aggregate HBM bandwidth
    decode_compute_s: float  # 2 x params x decode slots / peak
    decode_efficiency: float
    decode_overhead_s: float
    buckets: tuple[int, ...]  # prefill buckets up to max_prefill_length
    prefill_bucket_s: tuple[float, ...]  # prefill time of each bucket

    def decode_step_s(self, context_tokens: int) -> float:
        """One generate step when the active slots hold ``context_tokens`` tokens in all."""
        read_s = self.weight_read_s + self.kv_read_s_per_token * context_tokens
        return max(read_s, self.decode_compute_s) / self.decode_efficiency + self.decode_overhead_s

    def prefill_s(self, prompt_tokens: int) -> float:
        """One prefill of a prompt of ``prompt_tokens`` tokens (padded to its bucket)."""
        index = bisect_left(self.buckets, prompt_tokens)
        return self.prefill_bucket_s[min(index, len(self.buckets) - 1)]


def prefill_buckets(max_prefill_length: int) -> tuple[int, ...]:
    """JetStream's buckets cut at ``max_prefill_length``, which is always the last one."""
    _positive("max_prefill_length", max_prefill_length)
    return (*(b for b in PREFILL_BUCKETS if b < max_prefill_length), max_prefill_length)


def prefill_bucket(tokens: int, max_prefill_length: int) -> int:
    """The padded length of a prompt of ``tokens`` tokens (longer prompts are cut to the last bucket)."""
    buckets = prefill_buckets(max_prefill_length)
    return buckets[min(bisect_left(buckets, tokens), len(buckets) - 1)]


def roofline(
    accelerator: Accelerator,
    model: Model,
    efficiency: Efficiency,
    *,
    decode_slots: int,
    max_prefill_length: int,
) -> Roofline:
    """The timing coefficients of ``model`` served on ``accelerator`` with ``decode_slots`` slots."""
    _positive("decode_slots", decode_slots)
    bandwidth = accelerator.bandwidth_bytes_s
    peak = accelerator.peak_flops(model.precision)
    weight_read_s = model.weight_bytes / bandwidth
    buckets = prefill_buckets(max_prefill_length)
    prefill_times = tuple(
        max(2.0 * model.params * padded / peak, weight_read_s) / efficiency.prefill + efficiency.prefill_overhead_s
        for padded in buckets
    )
    return Roofline(
        weight_read_s=weight_read_s,
        kv_read_s_per_token=model.kv_bytes_per_token / bandwidth,
        decode_compute_s=2.0 * model.params * decode_slots / peak,
        decode_efficiency=efficiency.decode,
        decode_overhead_s=efficiency.decode_overhead_s,
        buckets=buckets,
        prefill_bucket_s=prefill_times,
    )


def _positive(field: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"'{field}' must be > 0 (got {value!r})")


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


def _h100(gpus: int) -> Accelerator:
    return Accelerator(
        name=f"h100-80gb-x{gpus}",
        family="h100",
        chips=gpus,
        hbm_bytes_per_chip=80 * GIB,
        hbm_bandwidth_bytes_s=3.35e12,
        peak_bf16_flops=989e12,
        peak_int8_ops=1979e12,
        runtime_reserve_bytes_per_chip=GIB,  # estimate: CUDA context and allocator slack
        source=_H100,
    )


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
        _h100(8),
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

MODELS: dict[str, Model] = {m.name: m for base in _BASE_MODELS for m in (base, _int8(base))}


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
