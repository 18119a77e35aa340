"""The replica shape a tuned HPA holds at, checked against the deploy config and written into it.

``jetscale tune`` recommends an HPA *and* the replica shape it was tuned at (batch size, prefill and
target lengths, HBM mode, chip and model); an HPA on slots or backlog means something else at another
batch size. ``ReplicaShape`` is that shape; ``shape_conflicts`` lists every place where the deploy config
says otherwise, each naming both values; ``with_shape`` writes what the config leaves unsaid into the
server's arguments, so that the rendered Deployment runs the tuned shape.

Two spellings of the server's arguments are understood:

* JetStream MaxText (``maxengine-server``): ``key=value`` arguments: ``per_device_batch_size``,
  ``max_prefill_predict_length``, ``max_target_length``, ``model_name``, ``quantization``;
* ``jetscale serve``: ``--preset NAME`` and ``--batch-size SLOTS`` (chosen when the arguments start with
  ``serve``, or use ``--`` flags, or the command runs ``jetscale``).

and, from the config's ``tpu`` section, the chips per replica and the GKE accelerator label. Pure.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from jetscale.engine.accelerator import Precision
from jetscale.engine.presets import PRESETS, HbmMode, ReplicaConfig, per_device_batch_size
from jetscale.errors import ConfigError
from jetscale.k8s.config import DeployConfig

__all__ = [
    "GKE_TPU_FAMILIES",
    "ReplicaShape",
    "ServerArgs",
    "ShapeConflict",
    "deploy_with_shape",
    "replica_shape",
    "server_args",
    "shape_conflicts",
    "with_shape",
]

# GKE's cloud.google.com/gke-tpu-accelerator labels -> jetscale's chip families
GKE_TPU_FAMILIES: Mapping[str, str] = {
    "tpu-v4-podslice": "tpu-v4",
    "tpu-v5-lite-podslice": "tpu-v5e",
    "tpu-v5-lite-device": "tpu-v5e",
    "tpu-v5p-slice": "tpu-v5p",
    "tpu-v6e-slice": "tpu-v6e",
}
_KEY_VALUE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaShape:
    """What the server must run with for a tuned HPA to hold (from the bundle's replica.yaml)."""

    name: str  # the replica's name (a preset's, when it is built on one)
    accelerator: str
    accelerator_family: str
    chips: int
    model: str
    model_family: str
    int8: bool
    decode_slots: int
    per_device_batch_size: int | float
    max_prefill_length: int
    max_target_length: int
    hbm_mode: HbmMode

    def as_mapping(self) -> dict[str, object]:
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out["hbm_mode"] = self.hbm_mode.value
        return out

    def describe(self) -> str:
        return (
            f"{self.model} on {self.accelerator}, {self.per_device_batch_size:g} per device ({self.decode_slots} "
            f"slots on {self.chips} chips), prefill {self.max_prefill_length} / target {self.max_target_length}, "
            f"HBM {self.hbm_mode.value}"
        )


def replica_shape(config: ReplicaConfig) -> ReplicaShape:
    return ReplicaShape(
        name=config.name,
        accelerator=config.accelerator.name,
        accelerator_family=config.accelerator.family,
        chips=config.accelerator.chips,
        model=config.model.name,
        model_family=config.model.family,
        int8=config.model.precision is Precision.INT8,
        decode_slots=config.decode_slots,
        per_device_batch_size=per_device_batch_size(config),
        max_prefill_length=config.max_prefill_length,
        max_target_length=config.max_target_length,
        hbm_mode=config.hbm_mode,
    )


class ServerArgs(StrEnum):
    MAXTEXT = "maxtext"  # key=value flags of JetStream MaxText's maxengine-server
    JETSCALE = "jetscale"  # jetscale serve --preset ... --batch-size ...


def server_args(config: DeployConfig) -> ServerArgs:
    """How the deploy config's server spells its arguments (see the module docstring)."""
    args = config.args
    if (args and args[0] == "serve") or any(a.startswith("--") for a in args):
        return ServerArgs.JETSCALE
    if any("jetscale" in part for part in config.command):
        return ServerArgs.JETSCALE
    return ServerArgs.MAXTEXT


@dataclass(frozen=True, slots=True, kw_only=True)
class ShapeConflict:
    """One place where the deploy config contradicts the tuned shape."""

    field: str  # where in the deploy config: "args: per_device_batch_size", "tpu.chips"
    deploy_value: str
    tuned_value: str
    why: str = ""

    def describe(self) -> str:
        why = f": {self.why}" if self.why else ""
        return f"'{self.field}' must be {self.tuned_value}, as tuned{why} (got {self.deploy_value})"


def _maxtext(args: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for arg in args:
        match = _KEY_VALUE.match(arg)
        if match is not None:
            out[match[1]] = match[2]
    return out


def _flag(args: tuple[str, ...], name: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    return None


def _same_number(text: str, value: float) -> bool:
    try:
        return float(text) == float(value)
    except ValueError:
        return False


def shape_conflicts(shape: ReplicaShape, config: DeployConfig) -> list[ShapeConflict]:
    """Every contradiction between the tuned ``shape`` and the deploy ``config``, in config order."""
    out: list[ShapeConflict] = []
    if config.tpu is not None:
        if config.tpu.chips != shape.chips:
            why = f"{shape.accelerator} has {shape.chips} chips per replica"
            out.append(_conflict("tpu.chips", config.tpu.chips, shape.chips, why))
        family = GKE_TPU_FAMILIES.get(config.tpu.accelerator)
        if family is not None and family != shape.accelerator_family:
            deployed = f"{config.tpu.accelerator} ({family})"
            tuned = f"a {shape.accelerator_family} node pool"
            out.append(_conflict("tpu.accelerator", deployed, tuned, f"the HPA was tuned on {shape.accelerator}"))
    if server_args(config) is ServerArgs.JETSCALE:
        return out + _jetscale_conflicts(shape, config.args)
    return out + _maxtext_conflicts(shape, _maxtext(config.args))


def _conflict(field: str, deployed: object, tuned: object, why: str = "") -> ShapeConflict:
    return ShapeConflict(field=field, deploy_value=str(deployed), tuned_value=str(tuned), why=why)


_PAGED_WHY = "the bundle was tuned with hbm_mode paged"


def _maxtext_conflicts(shape: ReplicaShape, args: Mapping[str, str]) -> list[ShapeConflict]:
    out: list[ShapeConflict] = []
    numbers = (
        ("per_device_batch_size", shape.per_device_batch_size, f"{shape.decode_slots} slots on {shape.chips} chips"),
        ("max_prefill_predict_length", shape.max_prefill_length, "the longest prompt"),
        ("max_target_length", shape.max_target_length, "the KV cache length per slot"),
    )
    for key, tuned, why in numbers:
        if key in args and not _same_number(args[key], tuned):
            out.append(_conflict(f"args: {key}", args[key], f"{tuned:g}", why))
    model_why = f"the HPA was tuned for {shape.model}"
    if "model_name" in args and args["model_name"] != shape.model_family:
        out.append(_conflict("args: model_name", args["model_name"], shape.model_family, model_why))
    if "quantization" in args and (args["quantization"] == "int8") != shape.int8:
        tuned_q = "int8" if shape.int8 else "unset (bf16)"
        out.append(_conflict("args: quantization", args["quantization"] or "''", tuned_q, model_why))
    if shape.hbm_mode is HbmMode.PAGED:
        deployed = "a MaxText server (it preallocates every slot's KV cache)"
        out.append(_conflict("args", deployed, "a server that pages its KV cache", _PAGED_WHY))
    return out


def _jetscale_conflicts(shape: ReplicaShape, args: tuple[str, ...]) -> list[ShapeConflict]:
    out: list[ShapeConflict] = []
    slots = _flag(args, "--batch-size")
    if slots is not None and not _same_number(slots, shape.decode_slots):
        why = f"decode slots, {shape.per_device_batch_size:g} per device x {shape.chips} chips"
        out.append(_conflict("args: --batch-size", slots, shape.decode_slots, why))
    preset = _flag(args, "--preset")
    base = PRESETS.get(preset or shape.name)
    if base is None or (base.accelerator, base.model) != (shape.accelerator, shape.model):
        if shape.name in PRESETS:
            out.append(_conflict("args: --preset", preset or "unset", shape.name))
        else:
            why = "jetscale serve takes presets only, and none has this chip and model"
            tuned = f"a preset of {shape.model} on {shape.accelerator}"
            out.append(_conflict("args: --preset", preset or "unset", tuned, why))
    if base is not None:
        for key in ("max_prefill_length", "max_target_length"):
            if getattr(base, key) != getattr(shape, key):
                deployed, tuned = f"{key} {getattr(base, key)}", f"{key} {getattr(shape, key)}"
                why = "jetscale serve has no flag for it"
                out.append(_conflict(f"args: --preset {base.name}", deployed, tuned, why))
    if shape.hbm_mode is HbmMode.PAGED:
        deployed = "jetscale serve (it preallocates, as MaxText does)"
        out.append(_conflict("args", deployed, "a server that pages its KV cache", _PAGED_WHY))
    return out


def with_shape(shape: ReplicaShape, config: DeployConfig) -> DeployConfig:
    """``config`` with the tuned shape's arguments added where the config does not set them."""
    args = list(config.args)
    if server_args(config) is ServerArgs.JETSCALE:
        if _flag(config.args, "--preset") is None and shape.name in PRESETS:
            args += ["--preset", shape.name]
        if _flag(config.args, "--batch-size") is None:
            args += ["--batch-size", str(shape.decode_slots)]
        return dataclasses.replace(config, args=tuple(args))
    given = _maxtext(config.args)
    wanted = {
        "per_device_batch_size": f"{shape.per_device_batch_size:g}",
        "max_prefill_predict_length": str(shape.max_prefill_length),
        "max_target_length": str(shape.max_target_length),
    }
    args += [f"{key}={value}" for key, value in wanted.items() if key not in given]
    if shape.int8 and "quantization" not in given:
        args.append("quantization=int8")
    return dataclasses.replace(config, args=tuple(args))


def deploy_with_shape(
    shape: ReplicaShape, config: DeployConfig, *, origin: str, bundle: str, force: bool = False
) -> tuple[DeployConfig, list[ShapeConflict]]:
    """The deploy config to render for a tuned bundle, and its conflicts with the shape.

    Conflicts refuse the rendering (``ConfigError``, one line naming every deploy value and the tuned one)
    unless ``force``: then the deploy config's values stay, the conflicts come back for the caller to warn
    about, and only what the config leaves unsaid is filled in from the shape.
    """
    conflicts = shape_conflicts(shape, config)
    if conflicts and not force:
        listed = "; ".join(c.describe() for c in conflicts)
        raise ConfigError(
            f"{origin} contradicts the tuned bundle {bundle} ({shape.describe()}): {listed}. Change the deploy "
            "config, re-tune at its shape, or pass --force to render it anyway"
        )
    return with_shape(shape, config), conflicts
