"""``--target keda``: the same autoscaling as a KEDA ScaledObject with Prometheus triggers and a fallback.

KEDA creates and owns an HPA from the ScaledObject: ``minReplicaCount``/``maxReplicaCount`` are the HPA's
bounds and ``advanced.horizontalPodAutoscalerConfig.behavior`` its behavior, written out in full. Each HPA
metric becomes a ``prometheus`` trigger whose query sums over the pods with an ``AverageValue`` threshold,
so that KEDA's External metric divides by the replica count exactly as the HPA's ``Pods`` metric does.
When Prometheus fails ``failure_threshold`` times in a row KEDA scales to ``fallback.replicas``; KEDA allows
that only when every trigger is ``AverageValue``, so CPU/memory, Object and ``Value`` metrics are refused.

Files (relative to ``--out``)::

    jetstream.yaml       Namespace, ServiceAccount, Deployment, Service (vllm.yaml for vLLM)
    prometheus/...       scrape config, recording rules, ConfigMap + Role (as for --target kubernetes)
    scaledobject.yaml    the ScaledObject

Pure.
"""

from __future__ import annotations

import re
from fractions import Fraction

from jetscale.engine.config import ServerKind
from jetscale.errors import ConfigError
from jetscale.hpa.types import HPASpec, MetricTargetType
from jetscale.k8s.autoscaler import behavior_manifest, source_field
from jetscale.k8s.bundle import RenderedFile, manifest_file, placement
from jetscale.k8s.config import DeployConfig
from jetscale.k8s.kubernetes import prometheus_files, server_scope
from jetscale.k8s.metrics import MetricKind, Scope, classify, hbm_target_bytes, keda_query
from jetscale.k8s.workload import Doc, meta, namespace, server_file, server_objects

__all__ = ["decimal", "render_keda", "scaled_object"]


def decimal(milli: int) -> str:
    """A milli-value as KEDA's decimal threshold string: 500 -> ``0.5``, 4000 -> ``4``."""
    value = Fraction(milli, 1000)
    if value.denominator == 1:
        return str(value.numerator)
    return f"{milli / 1000:.3f}".rstrip("0")


def _trigger_name(name: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "metric"
    candidate, n = base, 2
    while candidate in used:
        candidate, n = f"{base}-{n}", n + 1
    used.add(candidate)
    return candidate


def scaled_object(spec: HPASpec, config: DeployConfig, scope: Scope) -> Doc:
    triggers: list[Doc] = []
    used: set[str] = set()
    for index, metric in enumerate(spec.metrics):
        kind = classify(metric, scope)
        where = f"spec.metrics[{index}]"
        if kind in (MetricKind.RESOURCE, MetricKind.OBJECT):
            raise ConfigError(
                f"'{where}.type' must be Pods or External for KEDA's Prometheus triggers with fallback "
                f"(got {metric.type.value} {metric.name!r})"
            )
        target_path = f"{where}.{source_field(metric.type)}.target"
        if kind in (MetricKind.HBM_BYTES, MetricKind.HBM_FRACTION):
            threshold = str(hbm_target_bytes(metric, scope, target_path))
        elif metric.target.type is MetricTargetType.AVERAGE_VALUE and metric.target.average_value_milli is not None:
            threshold = decimal(metric.target.average_value_milli)
        else:
            raise ConfigError(
                f"'{target_path}.type' must be AverageValue for KEDA's fallback (got {metric.target.type.value})"
            )
        triggers.append(
            {
                "type": "prometheus",
                "name": _trigger_name(metric.name, used),
                "metricType": "AverageValue",
                "metadata": {
                    "serverAddress": config.prometheus.url,
                    "query": keda_query(metric, scope),
                    "threshold": threshold,
                },
            }
        )
    fallback = config.keda.fallback_replicas or max(spec.min_replicas, 1)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": meta(spec.name, scope.namespace, "autoscaler", scope.deployment),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": scope.deployment},
            "pollingInterval": config.keda.polling_interval_s,
            "minReplicaCount": spec.min_replicas,
            "maxReplicaCount": spec.max_replicas,
            "fallback": {"failureThreshold": config.keda.failure_threshold, "replicas": fallback},
            "advanced": {
                "horizontalPodAutoscalerConfig": {"name": spec.name, "behavior": behavior_manifest(spec.behavior)}
            },
            "triggers": triggers,
        },
    }


def render_keda(spec: HPASpec, config: DeployConfig, *, kind: ServerKind = ServerKind.JETSTREAM) -> list[RenderedFile]:
    place = placement(spec, config)
    scope = server_scope(place, config)
    server = [
        namespace(place.namespace, restricted=config.security.run_as_non_root),
        *server_objects(config, name=place.name, ns=place.namespace, kind=kind),
    ]
    return [
        manifest_file(server_file(kind), server),
        *prometheus_files(place, config, kind),
        manifest_file("scaledobject.yaml", [scaled_object(spec, config, scope)]),
    ]
