"""The HorizontalPodAutoscaler a cluster runs, rendered from jetscale's ``HPASpec``.

The output is the input HPA with two changes: its metrics are spelled for the chosen metrics path (see
``jetscale.k8s.metrics``), and its ``behavior`` is always written out in full. When the manifest had no
``behavior`` the defaults are those of ``GenerateHPAScaleUpRules``/``GenerateHPAScaleDownRules`` with the
controller's 300 s downscale stabilization, so the scaling rules a reader sees are the ones that run.
Pure: dataclasses in, dicts out.
"""

from __future__ import annotations

from enum import StrEnum

from jetscale.errors import ConfigError
from jetscale.hpa.spec import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP
from jetscale.hpa.types import Behavior, HPAScalingRules, HPASpec, MetricSourceType, MetricSpec, MetricTarget
from jetscale.k8s.metrics import (
    HBM_USED,
    MetricKind,
    Scope,
    adapter_metric_name,
    classify,
    gke_metric_name,
    hbm_target_bytes,
)
from jetscale.k8s.workload import MANAGED_BY, Doc
from jetscale.units import format_milli

__all__ = ["DOWNSCALE_STABILIZATION_S", "MetricsPath", "behavior_manifest", "hpa_manifest", "source_field"]

DOWNSCALE_STABILIZATION_S = 300  # --horizontal-pod-autoscaler-downscale-stabilization

_SOURCE_FIELD = {
    MetricSourceType.OBJECT: "object",
    MetricSourceType.PODS: "pods",
    MetricSourceType.RESOURCE: "resource",
    MetricSourceType.CONTAINER_RESOURCE: "containerResource",
    MetricSourceType.EXTERNAL: "external",
}


class MetricsPath(StrEnum):
    """Which metrics API serves the HPA's custom and external metrics."""

    STACKDRIVER = "stackdriver"  # GKE's Custom Metrics Stackdriver Adapter
    PROMETHEUS_ADAPTER = "prometheus-adapter"  # prometheus-adapter on Prometheus (or Managed Prometheus)


def source_field(source_type: MetricSourceType) -> str:
    return _SOURCE_FIELD[source_type]


def hpa_manifest(spec: HPASpec, *, path: MetricsPath, scope: Scope) -> Doc:
    """The autoscaling/v2 manifest of ``spec`` for ``path``; ``ConfigError`` when a metric cannot travel it."""
    ref: Doc = {"apiVersion": spec.scale_target_ref.api_version or "apps/v1"}
    ref |= {"kind": spec.scale_target_ref.kind, "name": spec.scale_target_ref.name}
    metrics = [_metric(metric, index, path, scope) for index, metric in enumerate(spec.metrics)]
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": spec.name,
            "namespace": scope.namespace,
            "labels": {"app.kubernetes.io/name": scope.deployment, "app.kubernetes.io/managed-by": MANAGED_BY},
        },
        "spec": {
            "scaleTargetRef": ref,
            "minReplicas": spec.min_replicas,
            "maxReplicas": spec.max_replicas,
            "metrics": metrics,
            "behavior": behavior_manifest(spec.behavior),
        },
    }


def behavior_manifest(behavior: Behavior | None) -> Doc:
    """``spec.behavior`` with every default written out."""
    scale_up = behavior.scale_up if behavior is not None else DEFAULT_SCALE_UP
    scale_down = behavior.scale_down if behavior is not None else DEFAULT_SCALE_DOWN
    return {"scaleUp": _rules(scale_up), "scaleDown": _rules(scale_down)}


def _rules(rules: HPAScalingRules) -> Doc:
    window = rules.stabilization_window_s
    out: Doc = {"stabilizationWindowSeconds": DOWNSCALE_STABILIZATION_S if window is None else window}
    out["selectPolicy"] = rules.select_policy.value
    out["policies"] = [
        {"type": policy.type.value, "value": policy.value, "periodSeconds": policy.period_s}
        for policy in rules.policies
    ]
    if rules.tolerance is not None:
        out["tolerance"] = format_milli(round(rules.tolerance * 1000))
    return out


def _target(target: MetricTarget) -> Doc:
    out: Doc = {"type": target.type.value}
    if target.average_utilization is not None:
        out["averageUtilization"] = target.average_utilization
    if target.value_milli is not None:
        out["value"] = format_milli(target.value_milli)
    if target.average_value_milli is not None:
        out["averageValue"] = format_milli(target.average_value_milli)
    return out


def _identifier(name: str, selector: dict[str, str] | None) -> Doc:
    out: Doc = {"name": name}
    if selector:
        out["selector"] = {"matchLabels": selector}
    return out


def _metric(metric: MetricSpec, index: int, path: MetricsPath, scope: Scope) -> Doc:
    kind = classify(metric, scope)
    field = _SOURCE_FIELD[metric.type]
    where = f"spec.metrics[{index}].{field}.target"
    selector = dict(metric.selector) if metric.selector else None
    if kind in (MetricKind.HBM_BYTES, MetricKind.HBM_FRACTION):
        target: Doc = {"type": "AverageValue", "averageValue": str(hbm_target_bytes(metric, scope, where))}
        if path is MetricsPath.STACKDRIVER:
            raw = metric.raw_name or metric.name
            if raw.startswith("kubernetes.io|"):
                return {"type": "External", "external": {"metric": {"name": raw}, "target": target}}
            labels = {
                f"metric.labels.{scope.namespace_label}": scope.namespace,
                "metric.labels.container": scope.container,
            }
            name = f"prometheus.googleapis.com|{HBM_USED}|gauge"
            return {"type": "External", "external": {"metric": _identifier(name, labels), "target": target}}
        identifier = _identifier(adapter_metric_name(metric, scope), {"container": scope.container})
        return {"type": "External", "external": {"metric": identifier, "target": target}}
    source: Doc
    if kind is MetricKind.RESOURCE:
        source = {"name": metric.name}
        if metric.container is not None:
            if metric.container != scope.container:
                raise ConfigError(
                    f"'spec.metrics[{index}].containerResource.container' must be the server container "
                    f"{scope.container!r} (got {metric.container!r})"
                )
            source["container"] = metric.container
    elif kind is MetricKind.OBJECT:
        assert metric.described_object is not None
        described = metric.described_object
        ref: Doc = {"apiVersion": described.api_version} if described.api_version else {}
        source = {
            "describedObject": ref | {"kind": described.kind, "name": described.name},
            "metric": _identifier(metric.raw_name or metric.name, selector),
        }
    else:
        name = gke_metric_name(metric) if path is MetricsPath.STACKDRIVER else adapter_metric_name(metric, scope)
        source = {"metric": _identifier(name, selector)}
    source["target"] = _target(metric.target)
    return {"type": metric.type.value, field: source}
