"""One entry point for the three targets: ``render(target, spec, config, replica)`` -> the files to write.

The server kind is the replica config's (``replica.kind``): without a replica config, or with a JetStream
one, the JetStream server is rendered as the deploy config says; with ``stack: vllm`` a vLLM server whose
image, arguments and node pool ``jetscale.k8s.vllm`` completes from the replica config. Pure."""

from __future__ import annotations

from enum import StrEnum

from jetscale.engine.config import ReplicaConfig, ServerKind
from jetscale.errors import ConfigError
from jetscale.hpa.types import HPASpec
from jetscale.k8s.bundle import RenderedFile
from jetscale.k8s.config import DeployConfig
from jetscale.k8s.gke import render_gke
from jetscale.k8s.keda import render_keda
from jetscale.k8s.kubernetes import render_kubernetes
from jetscale.k8s.vllm import vllm_deploy

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


def render(
    target: Target | str, spec: HPASpec, config: DeployConfig, replica: ReplicaConfig | None = None
) -> tuple[RenderedFile, ...]:
    """The files of ``target`` for the HPA ``spec``, the deploy ``config`` and the server kind of ``replica``
    (JetStream when None); ``ConfigError`` on bad input."""
    chosen = target if isinstance(target, Target) else parse_target(target)
    renderer = {Target.GKE: render_gke, Target.KUBERNETES: render_kubernetes, Target.KEDA: render_keda}[chosen]
    if replica is not None and replica.kind is ServerKind.VLLM:
        return tuple(renderer(spec, vllm_deploy(replica, config), kind=ServerKind.VLLM))
    if not config.image:
        raise ConfigError(f"'image' must be set in the deploy config for a JetStream server (got {config.image!r})")
    return tuple(renderer(spec, config))
