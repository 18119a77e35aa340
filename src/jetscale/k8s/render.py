"""One entry point for the three targets: ``render(target, spec, config)`` -> the files to write. Pure."""

from __future__ import annotations

from enum import StrEnum

from jetscale.errors import ConfigError
from jetscale.hpa.types import HPASpec
from jetscale.k8s.bundle import RenderedFile
from jetscale.k8s.config import DeployConfig
from jetscale.k8s.gke import render_gke
from jetscale.k8s.keda import render_keda
from jetscale.k8s.kubernetes import render_kubernetes

__all__ = ["Target", "parse_target", "render"]


class Target(StrEnum):
    GKE = "gke"  # GKE TPUs, Managed Prometheus, Stackdriver adapter or prometheus-adapter
    KUBERNETES = "kubernetes"  # any cluster: Prometheus scrape config, prometheus-adapter, HPA
    KEDA = "keda"  # a KEDA ScaledObject with Prometheus triggers


def parse_target(value: str) -> Target:
    try:
        return Target(value)
    except ValueError:
        choices = ", ".join(t.value for t in Target)
        raise ConfigError(f"'--target' must be one of {choices} (got {value!r})") from None


def render(target: Target | str, spec: HPASpec, config: DeployConfig) -> tuple[RenderedFile, ...]:
    """The files of ``target`` for the HPA ``spec`` and the deploy ``config``; ``ConfigError`` on bad input."""
    chosen = target if isinstance(target, Target) else parse_target(target)
    renderer = {Target.GKE: render_gke, Target.KUBERNETES: render_kubernetes, Target.KEDA: render_keda}[chosen]
    return tuple(renderer(spec, config))
