"""How each metric of an HPA reaches the cluster's HPA, per metrics path.

jetscale's HPA manifest names JetStream's metrics plainly (``jetstream_prefill_backlog_size``) or the GKE
way (``prometheus.googleapis.com|jetstream_prefill_backlog_size|gauge``). On a cluster the same metric
travels one of three roads, and each needs its own spelling:

- **Custom Metrics Stackdriver Adapter** (GKE): server gauges are ``Pods`` metrics named
  ``prometheus.googleapis.com|<name>|gauge``; HBM is the ``External`` metric
  ``prometheus.googleapis.com|memory_used|gauge`` of the TPU device plugin, selected by namespace and
  container.
- **prometheus-adapter** (on GKE over Managed Prometheus, or on any Prometheus): server gauges are
  ``Pods`` metrics of the custom metrics API, one adapter rule each; HBM is an ``External`` metric.
- **KEDA**: one Prometheus trigger per metric, its query summed over the pods so that an ``AverageValue``
  threshold divides it by the replica count exactly as a ``Pods`` metric would.

HBM comes from GKE's TPU device plugin on GKE, and from the server pods themselves elsewhere (jetscale's
replicas export ``memory_used`` and ``memory_used_percentage`` like any gauge). Device-plugin HBM targets
are per-replica averages. A fraction target (``memory_used_percentage: 800m``) is turned into
bytes (0.8 x chips x HBM per chip) because the adapters can only sum bytes: the HPA's ``AverageValue``
rule then computes ``ceil(sum(bytes) / (0.8 x HBM per replica))``, which is the replica count a
per-replica fraction of 0.8 asks for. Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from jetscale.errors import ConfigError
from jetscale.hpa.types import MetricSourceType, MetricSpec, MetricTargetType

__all__ = [
    "HBM_BYTES_NAMES",
    "HBM_FRACTION_NAMES",
    "HBMSource",
    "MetricKind",
    "Scope",
    "adapter_metric_name",
    "classify",
    "gke_metric_name",
    "hbm_target_bytes",
    "keda_query",
    "pod_aggregation",
    "promql_matchers",
]

# The accelerator memory metric as GKE exports it (bytes) and jetscale's fraction of it (used / total).
HBM_USED = "memory_used"
HBM_TOTAL = "memory_total"
HBM_BYTES_NAMES = frozenset(
    {
        HBM_USED,
        "accelerator_memory_used_bytes",
        "kubernetes.io|node|accelerator|memory_used",
        "kubernetes.io|container|accelerator|memory_used",
    }
)
HBM_FRACTION_NAMES = frozenset({"memory_used_percentage", "accelerator_memory_used_ratio"})


class MetricKind(StrEnum):
    SERVER = "server"  # a gauge every server pod exports (JetStream's jetstream_*)
    HBM_BYTES = "hbm_bytes"  # accelerator memory used, bytes per replica
    HBM_FRACTION = "hbm_fraction"  # accelerator memory used / total, 0..1 per replica
    RESOURCE = "resource"  # cpu / memory from metrics-server (Resource, ContainerResource)
    OBJECT = "object"  # an Object metric, passed through
    EXTERNAL = "external"  # any other External metric, passed through


class HBMSource(StrEnum):
    """Where the HBM series come from: GKE's TPU device plugin, or the server pods themselves."""

    GKE_DEVICE_PLUGIN = "gke-device-plugin"  # labels exported_namespace, container (scraped in kube-system)
    SERVER = "server"  # labels namespace, pod, container (scraped from the server pods)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """Where the metrics live: the server Deployment, its container, the GKE cluster label (or None)."""

    namespace: str
    deployment: str
    container: str
    cluster: str | None = None
    hbm_bytes_per_replica: int | None = None
    hbm_source: HBMSource = HBMSource.SERVER

    @property
    def namespace_label(self) -> str:
        return "exported_namespace" if self.hbm_source is HBMSource.GKE_DEVICE_PLUGIN else "namespace"


def classify(metric: MetricSpec, scope: Scope) -> MetricKind:
    """The road ``metric`` takes. HBM is recognized by name whatever its source type when the device plugin
    exports it (GKE); when the server pods export it, an HBM metric is just another server gauge."""
    if metric.type in (MetricSourceType.RESOURCE, MetricSourceType.CONTAINER_RESOURCE):
        return MetricKind.RESOURCE
    if metric.type is MetricSourceType.OBJECT:
        return MetricKind.OBJECT
    if scope.hbm_source is HBMSource.GKE_DEVICE_PLUGIN:
        if metric.name in HBM_BYTES_NAMES or metric.raw_name in HBM_BYTES_NAMES:
            return MetricKind.HBM_BYTES
        if metric.name in HBM_FRACTION_NAMES:
            return MetricKind.HBM_FRACTION
    if metric.type is MetricSourceType.PODS:
        return MetricKind.SERVER
    return MetricKind.EXTERNAL


def gke_metric_name(metric: MetricSpec) -> str:
    """The Stackdriver adapter's name: ``prometheus.googleapis.com|<name>|gauge`` unless already qualified."""
    raw = metric.raw_name or metric.name
    if raw.startswith("prometheus.googleapis.com|") or raw.startswith("kubernetes.io|"):
        return raw
    return f"prometheus.googleapis.com|{metric.name}|gauge"


def adapter_metric_name(metric: MetricSpec, scope: Scope) -> str:
    """The name prometheus-adapter serves: the Prometheus series name, device-plugin HBM as bytes used."""
    if classify(metric, scope) in (MetricKind.HBM_BYTES, MetricKind.HBM_FRACTION):
        return HBM_USED
    return metric.name


def pod_aggregation(name: str) -> str:
    """How one pod's series combine: a percentage (one series per engine ``idx``) averages, counts add."""
    return "avg" if name.endswith(("_percentage", "_perc", "_fraction", "_ratio")) else "sum"


def hbm_target_bytes(metric: MetricSpec, scope: Scope, path: str) -> int:
    """The per-replica HBM target in bytes; ``path`` names the target field in errors."""
    target = metric.target
    if target.type is not MetricTargetType.AVERAGE_VALUE or target.average_value_milli is None:
        raise ConfigError(
            f"'{path}.type' must be AverageValue for the HBM metric {metric.raw_name or metric.name!r} "
            f"(got {target.type.value})"
        )
    if classify(metric, scope) is MetricKind.HBM_BYTES:
        return math.ceil(target.average_value_milli / 1000)
    if scope.hbm_bytes_per_replica is None:
        raise ConfigError(
            f"'tpu' must be set in the deploy config to turn the HBM fraction target of "
            f"{metric.name!r} into bytes (got None)"
        )
    return math.ceil(target.average_value_milli * scope.hbm_bytes_per_replica / 1000)


def promql_matchers(labels: dict[str, str], regex: dict[str, str] | None = None) -> str:
    """``{a="x",b=~"y"}`` with values escaped for PromQL."""
    parts = [f'{key}="{_escape(value)}"' for key, value in labels.items()]
    parts += [f'{key}=~"{_escape(value)}"' for key, value in (regex or {}).items()]
    return "{" + ",".join(parts) + "}"


def keda_query(metric: MetricSpec, scope: Scope) -> str:
    """The Prometheus query of a KEDA trigger: a fleet-wide sum, so AverageValue divides by replicas."""
    kind = classify(metric, scope)
    if kind is MetricKind.SERVER:
        series = metric.name + promql_matchers(
            {"namespace": scope.namespace, **dict(metric.selector or ())},
            {"pod": f"{scope.deployment}-.*"},
        )
        return f"sum({pod_aggregation(metric.name)} by (pod) ({series}))"
    if kind in (MetricKind.HBM_BYTES, MetricKind.HBM_FRACTION):
        labels = {scope.namespace_label: scope.namespace, "container": scope.container}
        return f"sum({HBM_USED}{promql_matchers(labels)})"
    if kind is MetricKind.EXTERNAL:
        labels = {"namespace": scope.namespace, **dict(metric.selector or ())}
        return f"sum({metric.name}{promql_matchers(labels)})"
    raise ConfigError(f"metric {metric.name!r} ({metric.type.value}) has no Prometheus query")


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
