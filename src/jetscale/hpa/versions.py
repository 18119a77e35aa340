"""The HPA's feature gates by Kubernetes release: which are on by default, and which can be turned off.

The versioned gate specs of ``pkg/features/kube_features.go`` for the two gates that change the
algorithm:

- ``HPAScaleToZero`` (``ControllerConfig.scale_to_zero``): alpha and off from 1.16, beta and on from
  1.37 (kubernetes/kubernetes#139648). It allows ``minReplicas: 0`` with an Object or External metric,
  and drives the ``ScaledToZero`` condition.
- ``HPAConfigurableTolerance`` (``ControllerConfig.configurable_tolerance``): alpha and off in 1.33,
  beta and on from 1.35, GA from 1.37 (kubernetes/kubernetes#140107), where it is always on.

``controller_config_for`` turns a release into a ``ControllerConfig``; the releases jetscale models are
``SUPPORTED_KUBERNETES_VERSIONS``, the default the newest.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

from jetscale.errors import ConfigError
from jetscale.hpa.types import ControllerConfig

__all__ = [
    "DEFAULT_KUBERNETES_VERSION",
    "FEATURE_GATES",
    "SUPPORTED_KUBERNETES_VERSIONS",
    "GateStage",
    "controller_config_for",
    "gate_stage",
    "normalize_version",
]

SUPPORTED_KUBERNETES_VERSIONS = ("1.33", "1.34", "1.35", "1.36", "1.37")
DEFAULT_KUBERNETES_VERSION = "1.37"


@dataclass(frozen=True, slots=True, kw_only=True)
class GateStage:
    """One entry of a gate's versioned spec: from ``since`` on, the gate is at ``stage`` with
    ``default``; a ``locked`` gate cannot be set against its default."""

    since: str
    stage: str  # Alpha | Beta | GA
    default: bool
    locked: bool = False


# Gate name -> (ControllerConfig field, stages oldest first).
FEATURE_GATES: dict[str, tuple[str, tuple[GateStage, ...]]] = {
    "HPAScaleToZero": (
        "scale_to_zero",
        (
            GateStage(since="1.16", stage="Alpha", default=False),
            GateStage(since="1.37", stage="Beta", default=True),
        ),
    ),
    "HPAConfigurableTolerance": (
        "configurable_tolerance",
        (
            GateStage(since="1.33", stage="Alpha", default=False),
            GateStage(since="1.35", stage="Beta", default=True),
            GateStage(since="1.37", stage="GA", default=True, locked=True),
        ),
    ),
}


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def normalize_version(version: str) -> str:
    """``"1.36"``, ``"v1.36"`` and ``"1.36.2"`` -> ``"1.36"``; ``ConfigError`` for a release jetscale
    does not model."""
    text = version.strip().removeprefix("v")
    parts = text.split(".")
    short = ".".join(parts[:2]) if len(parts) in (2, 3) and all(p.isdigit() for p in parts) else text
    if short not in SUPPORTED_KUBERNETES_VERSIONS:
        choices = ", ".join(SUPPORTED_KUBERNETES_VERSIONS)
        raise ConfigError(f"'kubernetes_version' must be one of {choices} (got {version!r})")
    return short


def gate_stage(gate: str, version: str) -> GateStage:
    """The stage of ``gate`` in Kubernetes ``version`` (a supported release)."""
    wanted = _minor(normalize_version(version))
    stages = FEATURE_GATES[gate][1]
    return [s for s in stages if _minor(s.since) <= wanted][-1]


def controller_config_for(version: str = DEFAULT_KUBERNETES_VERSION, **overrides: object) -> ControllerConfig:
    """The controller of Kubernetes ``version``: its feature-gate defaults, then ``overrides`` (any
    ``ControllerConfig`` field, e.g. ``scale_to_zero=True`` for ``--feature-gates=HPAScaleToZero=true``).

    ``ConfigError`` names the field and value: an unsupported version, an unknown field, or a GA gate
    set against its locked default.
    """
    release = normalize_version(version)
    known = {f.name for f in fields(ControllerConfig)}
    for name, value in overrides.items():
        if name not in known:
            raise ConfigError(f"'{name}' must be a ControllerConfig field (got {name}={value!r})")
    gates: dict[str, object] = {}
    for gate, (field_name, _) in FEATURE_GATES.items():
        stage = gate_stage(gate, release)
        gates[field_name] = stage.default
        wanted = overrides.get(field_name, stage.default)
        if stage.locked and wanted != stage.default:
            raise ConfigError(
                f"'{field_name}' must be {stage.default} in Kubernetes {release}: {gate} is {stage.stage} "
                f"and locked (got {wanted!r})"
            )
    return replace(ControllerConfig(), **{**gates, **overrides})  # type: ignore[arg-type]
