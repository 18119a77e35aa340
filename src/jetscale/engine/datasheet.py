"""Chips, models and efficiencies outside the built-in tables, read from the replica YAML's mappings.

An accelerator is given by its data sheet (chips, HBM and bandwidth per chip, peak FLOP/s), a model by
its architecture (the sizes in its Hugging Face ``config.json`` and its parameter count), an efficiency
by its numbers and their source. Numbers may be plain (``819000000000``, ``8.19e11``) or Kubernetes
quantities (``819G``, ``16Gi``, ``197T``); YAML 1.1 reads ``819e9`` as text, which is accepted too.
Every error names the dotted field and the value, on one line. The ``*_to_mapping`` functions write
what the readers read back to an equal value. docs/replica.md documents every field. Pure.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Mapping
from fractions import Fraction

from jetscale.engine.accelerator import GIB, Accelerator, Efficiency, EfficiencyKind, Model, Precision
from jetscale.engine.calibration import CALIBRATED_EFFICIENCY, REFERENCE_SETUP
from jetscale.errors import ConfigError
from jetscale.units import parse_quantity

__all__ = [
    "ACCELERATOR_FIELDS",
    "DEFAULT_RESERVE_BYTES_PER_CHIP",
    "EFFICIENCY_FIELDS",
    "MODEL_FIELDS",
    "accelerator_from_mapping",
    "accelerator_to_mapping",
    "check_fields",
    "efficiency_from_mapping",
    "efficiency_to_mapping",
    "model_from_mapping",
    "model_to_mapping",
    "number",
]

# estimate: what the runtime (XLA or CUDA context, compiled programs, allocator slack) keeps per chip
DEFAULT_RESERVE_BYTES_PER_CHIP = GIB

ACCELERATOR_FIELDS = (
    "name",
    "family",
    "chips",
    "hbm_bytes_per_chip",
    "hbm_bandwidth_bytes_s",
    "peak_bf16_flops",
    "peak_int8_ops",
    "runtime_reserve_bytes_per_chip",
    "source",
)
MODEL_FIELDS = (
    "name",
    "family",
    "params",
    "layers",
    "hidden_size",
    "heads",
    "kv_heads",
    "head_dim",
    "vocab_size",
    "dtype",
    "kv_dtype",
    "source",
)
EFFICIENCY_FIELDS = (
    "decode",
    "prefill",
    "decode_overhead_s",
    "prefill_overhead_s",
    "int8_read_overhead",
    "decode_overhead_s_per_slot",
    "source",
    "kind",
    "borrowed_from",
    "profile",
)
# dtype -> (the matmuls' precision, bytes per weight); kv_dtype -> bytes per KV value
_DTYPES: dict[str, tuple[Precision, float]] = {"bf16": (Precision.BF16, 2.0), "int8": (Precision.INT8, 1.0)}
_KV_BYTES: dict[str, int] = {"bf16": 2, "int8": 1}
_DTYPE_ALIASES = {"bfloat16": "bf16", "bf16": "bf16", "int8": "int8"}


def check_fields(data: object, path: str, allowed: tuple[str, ...], *, what: str) -> dict[str, object]:
    """``data`` as a dict of known fields; ConfigError naming the first unknown one (with a hint)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"'{path}' must be a mapping of {what} fields (got {data!r})")
    for key in data:
        if not isinstance(key, str) or key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"'{_join(path, str(key))}' must be one of the {what} fields {', '.join(allowed)} (got {key!r}){hint}"
            )
    return {str(k): v for k, v in data.items()}


def number(
    value: object, path: str, *, integer: bool = False, minimum: float = 0.0, inclusive: bool = False
) -> Fraction:
    """A number from YAML: int, float, numeric text (``8.19e11``) or a quantity (``819G``, ``16Gi``)."""
    kind = "a whole number" if integer else "a number"
    bound = f"{'>=' if inclusive else '>'} {minimum:g}"
    example = "such as 16Gi, 819G or 8.19e11"
    try:
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError("not finite")
        exact = parse_quantity(value, path)
    except ConfigError:
        raise ConfigError(f"'{path}' must be {kind} {bound} {example} (got {value!r})") from None
    if (exact < minimum if inclusive else exact <= minimum) or (integer and exact.denominator != 1):
        raise ConfigError(f"'{path}' must be {kind} {bound} (got {value!r})")
    return exact


def _text(value: object, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"'{path}' must be a non-empty string (got {value!r})")
    return value


def _require(fields: Mapping[str, object], names: tuple[str, ...], path: str, what: str) -> None:
    for name in names:
        if fields.get(name) is None:
            raise ConfigError(
                f"'{_join(path, name)}' must be given for a custom {what} (got {sorted(fields) or 'no fields'})"
            )


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def accelerator_from_mapping(data: object, *, path: str = "accelerator") -> Accelerator:
    """An accelerator from its data sheet (all figures per chip); see docs/replica.md."""
    f = check_fields(data, path, ACCELERATOR_FIELDS, what="accelerator")
    required = ("name", "chips", "hbm_bytes_per_chip", "hbm_bandwidth_bytes_s", "peak_bf16_flops")
    _require(f, required, path, "accelerator")
    name = _text(f["name"], _join(path, "name"))
    bf16 = float(number(f["peak_bf16_flops"], _join(path, "peak_bf16_flops")))
    reserve = f.get("runtime_reserve_bytes_per_chip", DEFAULT_RESERVE_BYTES_PER_CHIP)
    accelerator = Accelerator(
        name=name,
        family=_text(f.get("family", name), _join(path, "family")),
        chips=int(number(f["chips"], _join(path, "chips"), integer=True)),
        hbm_bytes_per_chip=int(number(f["hbm_bytes_per_chip"], _join(path, "hbm_bytes_per_chip"), integer=True)),
        hbm_bandwidth_bytes_s=float(number(f["hbm_bandwidth_bytes_s"], _join(path, "hbm_bandwidth_bytes_s"))),
        peak_bf16_flops=bf16,
        peak_int8_ops=float(number(f["peak_int8_ops"], _join(path, "peak_int8_ops")))
        if f.get("peak_int8_ops") is not None
        else bf16,
        runtime_reserve_bytes_per_chip=int(
            number(reserve, _join(path, "runtime_reserve_bytes_per_chip"), integer=True, inclusive=True)
        ),
        source=_text(f.get("source", "replica YAML (no source given)"), _join(path, "source")),
    )
    if accelerator.runtime_reserve_bytes_per_chip >= accelerator.hbm_bytes_per_chip:
        raise ConfigError(
            f"'{_join(path, 'runtime_reserve_bytes_per_chip')}' must be < hbm_bytes_per_chip "
            f"({accelerator.hbm_bytes_per_chip}) (got {accelerator.runtime_reserve_bytes_per_chip})"
        )
    return accelerator


def model_from_mapping(data: object, *, path: str = "model") -> Model:
    """A decoder-only transformer from its architecture; see docs/replica.md."""
    f = check_fields(data, path, MODEL_FIELDS, what="model")
    _require(f, ("name", "params", "layers", "hidden_size", "heads", "vocab_size"), path, "model")

    def whole(key: str) -> int:
        return int(number(f[key], _join(path, key), integer=True))

    name = _text(f["name"], _join(path, "name"))
    hidden, heads = whole("hidden_size"), whole("heads")
    kv_heads = whole("kv_heads") if f.get("kv_heads") is not None else heads
    if kv_heads > heads or heads % kv_heads:
        raise ConfigError(
            f"'{_join(path, 'kv_heads')}' must divide heads ({heads}): each KV head serves a group of query heads "
            f"(got {kv_heads})"
        )
    if f.get("head_dim") is not None:
        head_dim = whole("head_dim")
    elif hidden % heads:
        raise ConfigError(
            f"'{_join(path, 'head_dim')}' must be given when heads ({heads}) does not divide hidden_size "
            f"(got hidden_size {hidden})"
        )
    else:
        head_dim = hidden // heads
    dtype = _dtype(f.get("dtype", "bf16"), _join(path, "dtype"))
    kv_dtype = _dtype(f.get("kv_dtype", dtype), _join(path, "kv_dtype"))
    precision, weight_bytes = _DTYPES[dtype]
    model = Model(
        name=name,
        family=_text(f.get("family", name), _join(path, "family")),
        params=whole("params"),
        layers=whole("layers"),
        hidden_size=hidden,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=whole("vocab_size"),
        precision=precision,
        weight_bytes_per_param=weight_bytes,
        kv_bytes_per_value=_KV_BYTES[kv_dtype],
        source=_text(f.get("source", "replica YAML (no source given)"), _join(path, "source")),
    )
    # the attention and embedding weights alone; a params figure below them is a typo (7.2e6 for 7.2e9)
    floor = model.layers * 2 * hidden * (heads + kv_heads) * head_dim + model.vocab_size * hidden
    if model.params < floor:
        raise ConfigError(
            f"'{_join(path, 'params')}' must be at least the attention and embedding weights of this "
            f"architecture, {floor:,} (got {model.params:,})"
        )
    return model


def _dtype(value: object, path: str) -> str:
    key = _DTYPE_ALIASES.get(value) if isinstance(value, str) else None
    if key is None:
        raise ConfigError(f"'{path}' must be one of bf16, int8 (got {value!r})")
    return key


def efficiency_from_mapping(data: object, *, path: str = "efficiency") -> Efficiency:
    """An efficiency given by hand: ``decode`` and ``source`` at least (the rest default as calibrated)."""
    f = check_fields(data, path, EFFICIENCY_FIELDS, what="efficiency")
    _require(f, ("decode", "source"), path, "efficiency")
    base = CALIBRATED_EFFICIENCY[REFERENCE_SETUP]

    def share(key: str, default: float) -> float:
        value = f.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 < value <= 1.0:
            raise ConfigError(f"'{_join(path, key)}' must be a share in (0, 1] (got {value!r})")
        return float(value)

    def seconds(key: str, default: float) -> float:
        value = f.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not (0.0 <= value < math.inf):
            raise ConfigError(f"'{_join(path, key)}' must be a number of seconds >= 0 (got {value!r})")
        return float(value)

    def share_of_a_byte(key: str, default: float) -> float:
        value = f.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not (0.0 <= value < math.inf):
            raise ConfigError(f"'{_join(path, key)}' must be bytes of read time >= 0 per int8 value (got {value!r})")
        return float(value)

    kind = f.get("kind", EfficiencyKind.GIVEN.value)
    if kind not in tuple(EfficiencyKind):
        choices = ", ".join(k.value for k in EfficiencyKind)
        raise ConfigError(f"'{_join(path, 'kind')}' must be one of {choices} (got {kind!r})")
    optional = {k: _text(f[k], _join(path, k)) if f.get(k) is not None else None for k in ("borrowed_from", "profile")}
    values = {
        "decode": share("decode", base.decode),
        "prefill": share("prefill", base.prefill),
        "decode_overhead_s": seconds("decode_overhead_s", base.decode_overhead_s),
        "prefill_overhead_s": seconds("prefill_overhead_s", base.prefill_overhead_s),
        "decode_overhead_s_per_slot": seconds("decode_overhead_s_per_slot", base.decode_overhead_s_per_slot),
        "int8_read_overhead": share_of_a_byte("int8_read_overhead", base.int8_read_overhead),
        "source": _text(f["source"], _join(path, "source")),
    }
    try:
        return Efficiency(**values, kind=EfficiencyKind(str(kind)), **optional)  # type: ignore[arg-type]
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def accelerator_to_mapping(accelerator: Accelerator) -> dict[str, object]:
    return {f: getattr(accelerator, f) for f in ACCELERATOR_FIELDS}


def model_to_mapping(model: Model) -> dict[str, object]:
    dtype = next((k for k, v in _DTYPES.items() if v == (model.precision, model.weight_bytes_per_param)), None)
    kv_dtype = next((k for k, v in _KV_BYTES.items() if v == model.kv_bytes_per_value), None)
    if dtype is None or kv_dtype is None or model.hidden_size is None or model.heads is None:
        raise ConfigError(
            f"'model' {model.name!r} cannot be written as a replica YAML mapping: it needs hidden_size, heads and "
            f"a bf16 or int8 dtype (got {model.hidden_size}, {model.heads}, {model.precision.value} at "
            f"{model.weight_bytes_per_param} B per weight)"
        )
    out: dict[str, object] = {f: getattr(model, f) for f in MODEL_FIELDS if f not in ("dtype", "kv_dtype")}
    out["dtype"], out["kv_dtype"] = dtype, kv_dtype
    return {f: out[f] for f in MODEL_FIELDS}


def efficiency_to_mapping(efficiency: Efficiency) -> dict[str, object]:
    out = {f.name: getattr(efficiency, f.name) for f in dataclasses.fields(efficiency)}
    out["kind"] = efficiency.kind.value
    return {k: v for k, v in out.items() if v is not None}
