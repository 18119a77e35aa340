"""Accelerators, models and the roofline that times one replica's work.

LLM serving is memory-bound: a decode step reads every weight and the KV cache of every active
sequence once, and produces one token per active slot. A prefill is compute-bound: about
``2 x params`` FLOPs per prompt token. The roofline takes the slower of the two limits and divides it
by a measured efficiency, then adds a fixed overhead per call:

* decode step = max(bytes read / HBM bandwidth, FLOPs / peak) / decode efficiency + decode overhead,
  bytes read = weights + the KV cache the attention reads, FLOPs = 2 x params x decode slots
  (JetStream steps the whole static batch, empty slots included). A server that preallocates its cache
  (MaxText, jetstream-pytorch) reads every slot's whole cache each step, masked, whatever its
  occupancy: ``cache_length`` tokens per slot. A paged server (vLLM) reads only the active tokens;
* int8 values (weights, KV) read half the bytes of bf16 but are dequantized on the fly: each costs
  ``1 + int8_read_overhead`` bytes of read time (``Efficiency.int8_read_overhead``, fitted to the
  published int8 figures);
* a decode step also pays a fixed overhead and one per slot (host work per token);
* data parallel (jetstream-pytorch ``shard_on_batch``): the chips form ``data_parallel`` groups, each
  holding all the weights and its share of the slots, stepping in lockstep: every group reads the
  weights, so a step reads them ``data_parallel`` times over the same aggregate bandwidth, and a
  prefill runs on one group;
* prefill of n prompt tokens, padded to JetStream's bucket = max(2 x params x padded / peak,
  weights / bandwidth) / prefill efficiency + prefill overhead;
* KV bytes per token = 2 (K and V) x layers x KV heads x head size x bytes per KV value.

Attention FLOPs and the logits are not modeled separately: they hide inside the calibrated
efficiencies (see ``jetscale.engine.calibration`` for the calibration and its sources); an
``Efficiency`` says where its numbers come from (``EfficiencyKind``: calibrated against a published
figure, borrowed from a calibrated setup, fitted to a profile, or given in a replica YAML).
The tables of chips and models, each entry with its source, are ``jetscale.engine.catalog``; chips and
models outside them are read from their data sheets (``jetscale.engine.datasheet``). Pure: no clock, no I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from enum import StrEnum

from jetscale.errors import ConfigError

__all__ = [
    "GIB",
    "PREFILL_BUCKETS",
    "Accelerator",
    "Efficiency",
    "EfficiencyKind",
    "Model",
    "Precision",
    "Roofline",
    "prefill_bucket",
    "prefill_buckets",
    "read_bytes",
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
    FITTED = "fitted"  # fitted to measured points of a profile (``profile``)
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
    # an int8 value (weight or KV) costs (1 + this) bytes of read time: its dequantization on the fly
    int8_read_overhead: float = 0.0
    # host work per decode slot per step (JetStream's orchestrator handles every slot's token in Python)
    decode_overhead_s_per_slot: float = 0.0

    def __post_init__(self) -> None:
        for field in ("decode", "prefill"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0:
                raise ConfigError(f"'{field}' must be in (0, 1] (got {value!r})")
        for field in ("decode_overhead_s", "prefill_overhead_s", "int8_read_overhead", "decode_overhead_s_per_slot"):
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
    ``max(weight_read_s + cache_read_s + kv_read_s_per_token * c, decode_compute_s) / decode_efficiency
    + decode_overhead_s``.
    """

    weight_read_s: float  # weights / aggregate HBM bandwidth (x data-parallel groups)
    kv_read_s_per_token: float  # KV bytes per token / aggregate HBM bandwidth; 0 when the whole cache is read
    decode_compute_s: float  # 2 x params x decode slots / peak
    decode_efficiency: float
    decode_overhead_s: float
    buckets: tuple[int, ...]  # prefill buckets up to max_prefill_length
    prefill_bucket_s: tuple[float, ...]  # prefill time of each bucket
    cache_read_s: float = 0.0  # every slot's preallocated cache, read whole each step (else 0)

    def decode_step_s(self, context_tokens: int) -> float:
        """One generate step when the active slots hold ``context_tokens`` tokens in all."""
        read_s = self.weight_read_s + self.cache_read_s + self.kv_read_s_per_token * context_tokens
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
    cache_length: int | None = None,
    data_parallel: int = 1,
) -> Roofline:
    """The timing coefficients of ``model`` served on ``accelerator`` with ``decode_slots`` slots.

    ``cache_length``: every slot's preallocated cache is read whole each step (tokens per slot); None:
    only the active tokens are read (a paged cache). ``data_parallel``: groups of chips, each with all
    the weights (it divides the chips).
    """
    _positive("decode_slots", decode_slots)
    _positive("data_parallel", data_parallel)
    if accelerator.chips % data_parallel:
        raise ConfigError(
            f"'data_parallel' must divide the chips ({accelerator.chips} on {accelerator.name}) (got {data_parallel})"
        )
    bandwidth = accelerator.bandwidth_bytes_s
    peak = accelerator.peak_flops(model.precision)
    weight_read_s = data_parallel * read_bytes(model.weight_bytes, model.weight_bytes_per_param, efficiency) / bandwidth
    kv_read_s_per_token = read_bytes(model.kv_bytes_per_token, model.kv_bytes_per_value, efficiency) / bandwidth
    # a prefill runs on one group: its share of the chips, all the weights
    group_peak, group_weight_read_s = peak / data_parallel, weight_read_s
    buckets = prefill_buckets(max_prefill_length)
    prefill_times = tuple(
        max(2.0 * model.params * padded / group_peak, group_weight_read_s) / efficiency.prefill
        + efficiency.prefill_overhead_s
        for padded in buckets
    )
    return Roofline(
        weight_read_s=weight_read_s,
        kv_read_s_per_token=0.0 if cache_length is not None else kv_read_s_per_token,
        cache_read_s=kv_read_s_per_token * decode_slots * cache_length if cache_length is not None else 0.0,
        decode_compute_s=2.0 * model.params * decode_slots / peak,
        decode_efficiency=efficiency.decode,
        decode_overhead_s=efficiency.decode_overhead_s + efficiency.decode_overhead_s_per_slot * decode_slots,
        buckets=buckets,
        prefill_bucket_s=prefill_times,
    )


def read_bytes(stored_bytes: float, bytes_per_value: float, efficiency: Efficiency) -> float:
    """The bytes of read time ``stored_bytes`` cost: int8 values (one byte each) pay their dequantization."""
    if bytes_per_value == 1:
        return stored_bytes * (1.0 + efficiency.int8_read_overhead)
    return stored_bytes


def _positive(field: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"'{field}' must be > 0 (got {value!r})")
