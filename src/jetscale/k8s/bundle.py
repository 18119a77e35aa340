"""A rendering: the files ``jetscale k8s render`` writes, each with its kind and its parsed content.

A ``RenderedFile`` holds either Kubernetes objects (a YAML stream of ``documents``) or one non-Kubernetes
config (a Prometheus config, recording rules, prometheus-adapter rules) as a mapping; ``text`` is what goes
on disk. ``placement`` reconciles the deploy config with the HPA: the Deployment the HPA scales is the one
rendered, in the HPA's namespace (the config's when the HPA has none), and a disagreement is a
``ConfigError`` naming both values. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from jetscale.errors import ConfigError
from jetscale.hpa.types import HPASpec
from jetscale.k8s.config import DeployConfig
from jetscale.k8s.prometheus import dump_yaml

__all__ = ["FileKind", "Placement", "RenderedFile", "config_file", "manifest_file", "placement"]


class FileKind(StrEnum):
    MANIFESTS = "manifests"  # Kubernetes objects; validated against the Kubernetes / CRD schemas
    PROMETHEUS_CONFIG = "prometheus-config"  # promtool check config
    PROMETHEUS_RULES = "prometheus-rules"  # promtool check rules
    ADAPTER_CONFIG = "adapter-config"  # prometheus-adapter rules; their queries are checked by promtool


@dataclass(frozen=True, slots=True, kw_only=True)
class RenderedFile:
    """One output file: ``path`` is relative (``gke/jetstream.yaml``), ``text`` its exact content."""

    path: str
    kind: FileKind
    text: str
    documents: tuple[Mapping[str, object], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """Where the server goes: its Deployment name and namespace."""

    name: str
    namespace: str


def placement(spec: HPASpec, config: DeployConfig) -> Placement:
    ref = spec.scale_target_ref
    if ref.kind != "Deployment" or ref.api_version not in ("", "apps/v1"):
        raise ConfigError(
            f"'spec.scaleTargetRef' must be an apps/v1 Deployment to render a server for "
            f"(got {ref.api_version or '?'}/{ref.kind})"
        )
    if config.name is not None and config.name != ref.name:
        raise ConfigError(f"'name' must be the Deployment the HPA scales, {ref.name!r} (got {config.name!r})")
    namespace = spec.namespace
    if config.namespace is not None:
        # an HPA without metadata.namespace reads as "default": the deploy config may then choose
        if spec.namespace not in ("default", config.namespace):
            raise ConfigError(f"'namespace' must be the HPA's namespace, {spec.namespace!r} (got {config.namespace!r})")
        namespace = config.namespace
    return Placement(name=ref.name, namespace=namespace)


def manifest_file(path: str, documents: Sequence[Mapping[str, object]]) -> RenderedFile:
    text = "".join(f"---\n{dump_yaml(dict(doc))}" for doc in documents)
    return RenderedFile(path=path, kind=FileKind.MANIFESTS, text=text, documents=tuple(documents))


def config_file(path: str, kind: FileKind, content: Mapping[str, object], header: str = "") -> RenderedFile:
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return RenderedFile(path=path, kind=kind, text=comment + dump_yaml(dict(content)), documents=(content,))
