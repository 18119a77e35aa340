"""The effective spec of an HPA in words, and back to a manifest.

``describe_spec`` lists every effective value and where it came from (the manifest, an API default, or a
controller flag), for ``jetscale hpa explain``; ``to_manifest`` writes a spec back out as an
autoscaling/v2 manifest with every default explicit, which ``parse_hpa`` reads back to an equal spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from jetscale.hpa.spec import API_VERSION, KIND, SOURCE_FIELD
from jetscale.hpa.types import (
    ControllerConfig,
    CrossVersionObjectReference,
    HPAScalingPolicy,
    HPAScalingRules,
    HPASpec,
    MetricSourceType,
    MetricSpec,
    MetricTarget,
    SelectPolicy,
)
from jetscale.units import format_milli

__all__ = [
    "Origin",
    "SpecRow",
    "describe_metric",
    "describe_policies",
    "describe_spec",
    "describe_target",
    "to_manifest",
]


class Origin(StrEnum):
    """Where an effective value of the spec comes from."""

    MANIFEST = "manifest"
    DEFAULT = "default"  # filled in by the API server's defaulting
    FLAG = "controller flag"  # left unset: kube-controller-manager's flag decides
    CONTROLLER = "controller"  # a constant of the controller's legacy (no behavior) path


@dataclass(frozen=True, slots=True, kw_only=True)
class SpecRow:
    """One line of ``describe_spec``: a field path, its effective value in words, and its origin."""

    field: str
    value: str
    origin: Origin


def _given(manifest: Mapping[str, object], *keys: str) -> bool:
    node: object = manifest
    for key in keys:
        if not isinstance(node, Mapping) or node.get(key) in (None, []):
            return False
        node = node[key]
    return True


def describe_target(target: MetricTarget) -> str:
    """``AverageValue 5``, ``Value 500m`` or ``Utilization 80%``."""
    if target.average_utilization is not None:
        return f"{target.type} {target.average_utilization}%"
    milli = target.value_milli if target.value_milli is not None else target.average_value_milli
    return f"{target.type} {format_milli(milli or 0)}"


def describe_metric(metric: MetricSpec) -> str:
    """``Pods jetstream_prefill_backlog_size: AverageValue 5``, with selector, container, object, raw name."""
    text = f"{metric.type} {metric.name}"
    if metric.selector:
        text += "{" + ",".join(f"{key}={value}" for key, value in metric.selector) + "}"
    if metric.container:
        text += f" of container {metric.container}"
    if metric.described_object is not None:
        text += f" of {metric.described_object.kind}/{metric.described_object.name}"
    text += f": {describe_target(metric.target)}"
    if metric.raw_name and metric.raw_name != metric.name:
        text += f" (written {metric.raw_name})"
    return text


def describe_policies(policies: tuple[HPAScalingPolicy, ...]) -> str:
    """``Pods 4 per 15 s, Percent 100 per 15 s``."""
    return ", ".join(f"{p.type} {p.value} per {p.period_s} s" for p in policies)


def describe_spec(
    spec: HPASpec, manifest: Mapping[str, object], *, config: ControllerConfig | None = None
) -> list[SpecRow]:
    """The effective spec, field by field, each value with where it came from.

    ``manifest`` is the mapping ``spec`` was parsed from (it tells a given value from a default);
    ``config`` holds the controller flags that decide what the spec leaves unset.
    """
    config = config or ControllerConfig()

    def origin(*keys: str) -> Origin:
        return Origin.MANIFEST if _given(manifest, *keys) else Origin.DEFAULT

    ref = spec.scale_target_ref
    rows = [
        SpecRow(field="metadata.name", value=spec.name, origin=Origin.MANIFEST),
        SpecRow(field="metadata.namespace", value=spec.namespace, origin=origin("metadata", "namespace")),
        SpecRow(
            field="spec.scaleTargetRef",
            value=f"{ref.kind}/{ref.name}" + (f" ({ref.api_version})" if ref.api_version else ""),
            origin=Origin.MANIFEST,
        ),
        SpecRow(field="spec.minReplicas", value=str(spec.min_replicas), origin=origin("spec", "minReplicas")),
        SpecRow(field="spec.maxReplicas", value=str(spec.max_replicas), origin=Origin.MANIFEST),
    ]
    rows += [
        SpecRow(field=f"spec.metrics[{i}]", value=describe_metric(metric), origin=origin("spec", "metrics"))
        for i, metric in enumerate(spec.metrics)
    ]
    flag_window = f"{config.downscale_stabilization_s:g} s (--horizontal-pod-autoscaler-downscale-stabilization)"
    flag_tolerance = f"{config.tolerance:g} (--horizontal-pod-autoscaler-tolerance)"
    if spec.behavior is None:
        limit = f"max({config.scale_up_limit_factor:g} x current, {config.scale_up_limit_minimum:g}) per sync"
        return [
            *rows,
            SpecRow(field="spec.behavior", value="absent: the controller's legacy rules apply", origin=Origin.DEFAULT),
            SpecRow(field="scale-up limit", value=limit, origin=Origin.CONTROLLER),
            SpecRow(field="scale-down stabilization", value=flag_window, origin=Origin.FLAG),
            SpecRow(field="tolerance (both directions)", value=flag_tolerance, origin=Origin.FLAG),
        ]
    for key, rules in (("scaleUp", spec.behavior.scale_up), ("scaleDown", spec.behavior.scale_down)):
        path = f"spec.behavior.{key}"
        window, window_origin = flag_window, Origin.FLAG
        if rules.stabilization_window_s is not None:
            window = f"{rules.stabilization_window_s} s"
            window_origin = origin("spec", "behavior", key, "stabilizationWindowSeconds")
        tolerance, tolerance_origin = flag_tolerance, Origin.FLAG
        if rules.tolerance is not None:
            tolerance, tolerance_origin = f"{rules.tolerance:g}", Origin.MANIFEST
            if not config.configurable_tolerance:
                tolerance += f" (ignored: HPAConfigurableTolerance is off, {config.tolerance:g} applies)"
        select = str(rules.select_policy)
        if rules.select_policy is SelectPolicy.DISABLED:
            select += " (no scaling in this direction)"
        rows += [
            SpecRow(field=f"{path}.stabilizationWindowSeconds", value=window, origin=window_origin),
            SpecRow(field=f"{path}.selectPolicy", value=select, origin=origin("spec", "behavior", key, "selectPolicy")),
            SpecRow(
                field=f"{path}.policies",
                value=describe_policies(rules.policies),
                origin=origin("spec", "behavior", key, "policies"),
            ),
            SpecRow(field=f"{path}.tolerance", value=tolerance, origin=tolerance_origin),
        ]
    return rows


def to_manifest(spec: HPASpec) -> dict[str, object]:
    """``spec`` as an autoscaling/v2 manifest mapping (defaults written out); ``parse_hpa`` reads it back."""
    body: dict[str, object] = {
        "scaleTargetRef": _render_reference(spec.scale_target_ref),
        "minReplicas": spec.min_replicas,
        "maxReplicas": spec.max_replicas,
        "metrics": [_render_metric(metric) for metric in spec.metrics],
    }
    if spec.behavior is not None:
        body["behavior"] = {
            "scaleUp": _render_rules(spec.behavior.scale_up),
            "scaleDown": _render_rules(spec.behavior.scale_down),
        }
    metadata = {"name": spec.name, "namespace": spec.namespace}
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": body}


def _render_reference(ref: CrossVersionObjectReference) -> dict[str, object]:
    rendered: dict[str, object] = {"apiVersion": ref.api_version} if ref.api_version else {}
    return {**rendered, "kind": ref.kind, "name": ref.name}


def _render_metric(metric: MetricSpec) -> dict[str, object]:
    target: dict[str, object] = {"type": metric.target.type.value}
    if metric.target.average_utilization is not None:
        target["averageUtilization"] = metric.target.average_utilization
    if metric.target.value_milli is not None:
        target["value"] = format_milli(metric.target.value_milli)
    if metric.target.average_value_milli is not None:
        target["averageValue"] = format_milli(metric.target.average_value_milli)
    source: dict[str, object] = {}
    if metric.type in (MetricSourceType.RESOURCE, MetricSourceType.CONTAINER_RESOURCE):
        source["name"] = metric.name
    else:
        identifier: dict[str, object] = {"name": metric.raw_name or metric.name}
        if metric.selector:
            identifier["selector"] = {"matchLabels": dict(metric.selector)}
        source["metric"] = identifier
    if metric.container is not None:
        source["container"] = metric.container
    if metric.described_object is not None:
        source["describedObject"] = _render_reference(metric.described_object)
    source["target"] = target
    return {"type": metric.type.value, SOURCE_FIELD[metric.type]: source}


def _render_rules(rules: HPAScalingRules) -> dict[str, object]:
    rendered: dict[str, object] = {}
    if rules.stabilization_window_s is not None:
        rendered["stabilizationWindowSeconds"] = rules.stabilization_window_s
    rendered["selectPolicy"] = rules.select_policy.value
    rendered["policies"] = [
        {"type": p.type.value, "value": p.value, "periodSeconds": p.period_s} for p in rules.policies
    ]
    if rules.tolerance is not None:
        rendered["tolerance"] = rules.tolerance
    return rendered
