"""The exception tree of jetscale.

::

    JetscaleError
    ├── ConfigError (ValueError)       bad input: a manifest, a flag, a preset; names the field and value
    │   └── ManifestError              an HPA manifest with one or more field errors, all listed
    └── ServingError (RuntimeError)    a running component failed (server, fleet, metrics source)

Expected outcomes of the autoscaler (clamped, stabilized, no metrics) are not exceptions: they are
reasons in a ``Decision``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConfigError", "FieldError", "JetscaleError", "ManifestError", "ServingError"]


class JetscaleError(Exception):
    """Root of every error jetscale raises on purpose."""


class ConfigError(JetscaleError, ValueError):
    """Invalid input; the message names the field and the value."""


class ServingError(JetscaleError, RuntimeError):
    """A running component (server, fleet, metrics source) failed."""


@dataclass(frozen=True, slots=True)
class FieldError:
    """One invalid field: its path (``spec.behavior.scaleDown.policies[0].periodSeconds``) and why."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ManifestError(ConfigError):
    """A manifest with one or more invalid fields; every error is reported at once."""

    def __init__(self, errors: list[FieldError] | tuple[FieldError, ...], source: str = "") -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        self.source = source
        prefix = f"{source}: " if source else ""
        lines = "; ".join(str(e) for e in self.errors)
        super().__init__(f"{prefix}invalid HorizontalPodAutoscaler: {lines}")

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(e.path for e in self.errors)
