"""An autoscaling/v2 HorizontalPodAutoscaler manifest read into an ``HPASpec``: defaults, then validation.

Mirrors what the API server does to an HPA before the controller sees it: ``SetDefaults_HorizontalPodAutoscaler``
with ``GenerateHPAScaleUpRules``/``GenerateHPAScaleDownRules`` (pkg/apis/autoscaling/v2/defaults.go), then
``ValidateHorizontalPodAutoscaler`` (pkg/apis/autoscaling/validation/validation.go). Three rules are stricter
than the API server, because a mistake there is silently ignored by Kubernetes or only fails at run time:
unknown and duplicated fields are errors, a target's type must suit its metric type (Utilization only for
Resource and ContainerResource, Value only for Object and External, AverageValue for all), and only the
value field that the target's type reads may be set.

Every error is collected; one ``ManifestError`` lists them all with their exact field paths.
Pure: the only input is YAML text or an already loaded mapping.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Hashable, Mapping
from enum import StrEnum
from typing import TypeVar

import yaml

from jetscale.errors import ConfigError, FieldError, ManifestError
from jetscale.hpa.types import (
    MAX_INT32,
    Behavior,
    CrossVersionObjectReference,
    HPAScalingPolicy,
    HPAScalingRules,
    HPASpec,
    MetricSourceType,
    MetricSpec,
    MetricTarget,
    MetricTargetType,
    PolicyType,
    SelectPolicy,
)
from jetscale.hpa.versions import gate_stage, normalize_version
from jetscale.safeload import LimitedLoader, load_yaml_all
from jetscale.units import parse_quantity, quantity_to_milli

__all__ = [
    "API_VERSION",
    "DEFAULT_METRIC",
    "DEFAULT_SCALE_DOWN",
    "DEFAULT_SCALE_UP",
    "KIND",
    "MAX_PERIOD_S",
    "MAX_STABILIZATION_WINDOW_S",
    "SOURCE_FIELD",
    "load_manifest",
    "parse_hpa",
    "resolve_metric_name",
]

API_VERSION = "autoscaling/v2"
KIND = "HorizontalPodAutoscaler"
MAX_PERIOD_S = 1800  # MaxPeriodSeconds
MAX_STABILIZATION_WINDOW_S = 3600  # MaxStabilizationWindowSeconds

# GenerateHPAScaleUpRules / GenerateHPAScaleDownRules with nothing given.
DEFAULT_SCALE_UP = HPAScalingRules(
    stabilization_window_s=0,
    select_policy=SelectPolicy.MAX,
    policies=(
        HPAScalingPolicy(type=PolicyType.PODS, value=4, period_s=15),
        HPAScalingPolicy(type=PolicyType.PERCENT, value=100, period_s=15),
    ),
)
DEFAULT_SCALE_DOWN = HPAScalingRules(
    stabilization_window_s=None,  # the controller's --horizontal-pod-autoscaler-downscale-stabilization
    select_policy=SelectPolicy.MAX,
    policies=(HPAScalingPolicy(type=PolicyType.PERCENT, value=100, period_s=15),),
)
# An HPA with no metrics gets CPU at 80 % utilization (autoscaling.DefaultCPUUtilization).
DEFAULT_METRIC = MetricSpec(
    type=MetricSourceType.RESOURCE,
    name="cpu",
    raw_name="cpu",
    target=MetricTarget(type=MetricTargetType.UTILIZATION, average_utilization=80),
)

_TOP = frozenset({"apiVersion", "kind", "metadata", "spec", "status"})
_METADATA = frozenset(
    {"name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation", "generateName",
     "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "ownerReferences", "finalizers",
     "managedFields", "selfLink"}
)  # fmt: skip
_SPEC = frozenset({"scaleTargetRef", "minReplicas", "maxReplicas", "metrics", "behavior"})
_REF = frozenset({"apiVersion", "kind", "name"})
_METRIC = frozenset({"type", "object", "pods", "resource", "containerResource", "external"})
_TARGET = frozenset({"type", "value", "averageValue", "averageUtilization"})
_IDENTIFIER = frozenset({"name", "selector"})
_SELECTOR = frozenset({"matchLabels", "matchExpressions"})
_BEHAVIOR = frozenset({"scaleUp", "scaleDown"})
_RULES = frozenset({"stabilizationWindowSeconds", "selectPolicy", "policies", "tolerance"})
_POLICY = frozenset({"type", "value", "periodSeconds"})

SOURCE_FIELD = {  # the manifest key that holds each metric type's source
    MetricSourceType.OBJECT: "object",
    MetricSourceType.PODS: "pods",
    MetricSourceType.RESOURCE: "resource",
    MetricSourceType.CONTAINER_RESOURCE: "containerResource",
    MetricSourceType.EXTERNAL: "external",
}
_SOURCE_KEYS = {
    MetricSourceType.OBJECT: frozenset({"describedObject", "metric", "target"}),
    MetricSourceType.PODS: frozenset({"metric", "target"}),
    MetricSourceType.RESOURCE: frozenset({"name", "target"}),
    MetricSourceType.CONTAINER_RESOURCE: frozenset({"name", "container", "target"}),
    MetricSourceType.EXTERNAL: frozenset({"metric", "target"}),
}
_VALUE, _AVERAGE, _UTILIZATION = MetricTargetType.VALUE, MetricTargetType.AVERAGE_VALUE, MetricTargetType.UTILIZATION
_TARGET_TYPES = {
    MetricSourceType.OBJECT: (_VALUE, _AVERAGE),
    MetricSourceType.PODS: (_AVERAGE,),
    MetricSourceType.RESOURCE: (_UTILIZATION, _AVERAGE),
    MetricSourceType.CONTAINER_RESOURCE: (_UTILIZATION, _AVERAGE),
    MetricSourceType.EXTERNAL: (_VALUE, _AVERAGE),
}
_TARGET_FIELD = {_VALUE: "value", _AVERAGE: "averageValue", _UTILIZATION: "averageUtilization"}

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_GKE_NAME = re.compile(r"^prometheus\.googleapis\.com\|(?P<name>[^|]+)\|(?P<kind>[a-z]+)$")

_E = TypeVar("_E", bound=StrEnum)


def resolve_metric_name(raw_name: str) -> str:
    """GKE's ``prometheus.googleapis.com|<name>|gauge`` (or ``|counter``, ...) is ``<name>``; others as written."""
    match = _GKE_NAME.match(raw_name)
    return match["name"] if match else raw_name


class _UniqueKeyLoader(LimitedLoader):
    """The limited ``yaml.SafeLoader`` (``jetscale.safeload``) that also refuses a key given twice in one
    mapping, as ``kubectl`` does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor` may be overridden by explicit keys
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                continue  # the base class reports an unhashable key
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_manifest(text: str, *, origin: str = "") -> Mapping[str, object]:
    """The HPA document of YAML ``text``; a file of several documents must hold exactly one HPA.

    Raises ``ConfigError`` (with line and column) for invalid YAML, YAML past ``jetscale.safeload``'s
    limits (nesting, number length, alias expansion) or when there is no single HPA.
    """
    prefix = f"{origin}: " if origin else ""
    docs = [doc for doc in load_yaml_all(text, what=origin or "manifest", loader=_UniqueKeyLoader) if doc is not None]
    if len(docs) > 1:
        hpas = [doc for doc in docs if isinstance(doc, Mapping) and doc.get("kind") == KIND]
        if len(hpas) != 1:
            raise ConfigError(f"{prefix}must hold exactly one {KIND} (got {len(hpas)} among {len(docs)} documents)")
        docs = hpas
    if not docs:
        raise ConfigError(f"{prefix}must hold a {KIND} manifest (got an empty document)")
    if not isinstance(docs[0], Mapping):
        raise ConfigError(f"{prefix}a manifest must be a mapping (got {type(docs[0]).__name__})")
    return docs[0]


def parse_hpa(
    source: str | Mapping[str, object],
    *,
    origin: str = "",
    scale_to_zero: bool | None = None,
    kubernetes_version: str | None = None,
) -> HPASpec:
    """A validated ``HPASpec`` with the API defaults filled in, from YAML text or a loaded manifest.

    ``scale_to_zero`` is the HPAScaleToZero feature gate: it allows ``minReplicas: 0`` when an Object or
    External metric is present. Left out (None), it is the default of ``kubernetes_version`` (on from
    1.37), or off when no version is given. Raises ``ManifestError`` listing every invalid field.
    """
    doc = load_manifest(source, origin=origin) if isinstance(source, str) else source
    reader = _Reader()
    gate_note = "0 needs the HPAScaleToZero feature gate"
    if kubernetes_version is not None:
        release = normalize_version(kubernetes_version)
        stage = gate_stage("HPAScaleToZero", release)
        if scale_to_zero is None:
            scale_to_zero = stage.default
        if stage.default:
            gate_note += f", {stage.stage.lower()} and on by default in Kubernetes {release} but turned off here"
        else:
            gate_note += f", {stage.stage.lower()} and off by default in Kubernetes {release} (on from 1.37)"
    reader.gate_note = gate_note
    spec = reader.manifest(doc, scale_to_zero=bool(scale_to_zero))
    if reader.errors or spec is None:
        raise ManifestError(reader.errors, source=origin)
    return spec


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _show(value: object, limit: int = 60) -> str:
    """``repr(value)``, cut short: an error line names the value, it does not dump a subtree."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path_segment_problem(name: str) -> str | None:
    """``IsValidPathSegmentName``: names end up in URL paths."""
    if name in (".", ".."):
        return f"may not be {name!r}"
    for char in "/%":
        if char in name:
            return f"may not contain {char!r} (got {name!r})"
    return None


class _Reader:
    """Walks one manifest, collecting every field error instead of stopping at the first."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.gate_note = "0 needs the HPAScaleToZero feature gate"  # why minReplicas 0 is refused

    def error(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    # ------------------------------------------------------------------------------- scalar fields

    def mapping(self, value: object, path: str, fields: frozenset[str]) -> Mapping[str, object] | None:
        if value is None:
            self.error(path, "required")
            return None
        if not isinstance(value, Mapping):
            self.error(path, f"must be a mapping (got {_show(value)})")
            return None
        for key in value:
            if key not in fields:
                close = difflib.get_close_matches(str(key), sorted(fields), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"expected one of {', '.join(sorted(fields))}"
                self.error(_join(path, str(key)), f"unknown field ({hint})")
        return value

    def integer(self, value: object, path: str, *, lo: int, hi: int = MAX_INT32) -> int | None:
        if value is None:
            self.error(path, "required")
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, f"must be an integer (got {_show(value)})")
            return None
        if not lo <= value <= hi:
            bound = f">= {lo}" if hi == MAX_INT32 else f"in {lo}..{hi}"
            self.error(path, f"must be {bound} (got {value})")
            return None
        return value

    def text(self, value: object, path: str) -> str | None:
        if value is None or value == "":
            self.error(path, "required")
            return None
        if not isinstance(value, str):
            self.error(path, f"must be a string (got {_show(value)})")
            return None
        return value

    def choice(self, value: object, path: str, enum: type[_E]) -> _E | None:
        allowed = [member.value for member in enum]
        if value is None:
            self.error(path, f"required (one of {', '.join(allowed)})")
            return None
        if not isinstance(value, str) or value not in allowed:
            self.error(path, f"must be one of {', '.join(allowed)} (got {_show(value)})")
            return None
        return enum(value)

    def positive_milli(self, value: object, path: str) -> int | None:
        """A quantity > 0 in milli-units (``MetricTarget`` values must be positive)."""
        try:
            exact = parse_quantity(value, path)
        except ConfigError as exc:
            self.error(path, str(exc).removeprefix(f"{path}: "))
            return None
        if exact <= 0:
            self.error(path, f"must be > 0 (got {value!r})")
            return None
        return quantity_to_milli(value, path)

    def tolerance(self, value: object, path: str) -> float | None:
        try:
            exact = parse_quantity(value, path)
        except ConfigError as exc:
            self.error(path, str(exc).removeprefix(f"{path}: "))
            return None
        if exact < 0:
            self.error(path, f"must be >= 0 (got {value!r})")
            return None
        return float(exact)

    # ----------------------------------------------------------------------------------- objects

    def manifest(self, doc: Mapping[str, object], *, scale_to_zero: bool) -> HPASpec | None:
        self.mapping(doc, "", _TOP)
        if doc.get("apiVersion") != API_VERSION:
            self.error("apiVersion", f"must be {API_VERSION} (got {_show(doc.get('apiVersion'))})")
        if doc.get("kind") != KIND:
            self.error("kind", f"must be {KIND} (got {_show(doc.get('kind'))})")
        name, namespace = self.metadata(doc.get("metadata"))
        spec = self.mapping(doc.get("spec"), "spec", _SPEC)
        if spec is None:
            return None
        target_ref = self.reference(spec.get("scaleTargetRef"), "spec.scaleTargetRef")
        min_replicas = self.min_replicas(spec.get("minReplicas"), scale_to_zero)
        max_replicas = self.integer(spec.get("maxReplicas"), "spec.maxReplicas", lo=1)
        if min_replicas is not None and max_replicas is not None and max_replicas < min_replicas:
            self.error("spec.maxReplicas", f"must be >= minReplicas ({min_replicas}) (got {max_replicas})")
        metrics, types = self.metrics(spec.get("metrics"))
        if min_replicas == 0 and not types & {MetricSourceType.OBJECT, MetricSourceType.EXTERNAL}:
            self.error(
                "spec.metrics",
                "must include an Object or External metric when spec.minReplicas is 0 (got only "
                f"{', '.join(sorted(t.value for t in types)) or 'the default cpu Resource'} metrics): at zero "
                "replicas there are no pods to read Pods or Resource metrics from, so HPAScaleToZero "
                "scales from zero only on those",
            )
        behavior = self.behavior(spec.get("behavior"), "spec.behavior")
        if name is None or target_ref is None or min_replicas is None or max_replicas is None or metrics is None:
            return None
        return HPASpec(
            name=name,
            namespace=namespace,
            scale_target_ref=target_ref,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            metrics=metrics,
            behavior=behavior,
        )

    def metadata(self, value: object) -> tuple[str | None, str]:
        if value is None:
            self.error("metadata.name", "required")
            return None, "default"
        meta = self.mapping(value, "metadata", _METADATA)
        if meta is None:
            return None, "default"
        name = self.text(meta.get("name"), "metadata.name")
        if name is not None and (len(name) > 253 or not all(_DNS_LABEL.match(part) for part in name.split("."))):
            self.error("metadata.name", f"must be a DNS-1123 subdomain such as jetstream-hpa (got {name!r})")
            name = None
        namespace = meta.get("namespace")
        if namespace is None:
            return name, "default"
        text = self.text(namespace, "metadata.namespace")
        if text is not None and (len(text) > 63 or not _DNS_LABEL.match(text)):
            self.error("metadata.namespace", f"must be a DNS-1123 label such as default (got {text!r})")
        return name, text or "default"

    def min_replicas(self, value: object, scale_to_zero: bool) -> int | None:
        if value is None:
            return 1
        if value == 0 and not isinstance(value, bool) and not scale_to_zero:
            self.error("spec.minReplicas", f"must be >= 1 (got 0); {self.gate_note}")
            return None
        return self.integer(value, "spec.minReplicas", lo=0 if scale_to_zero else 1)

    def reference(self, value: object, path: str) -> CrossVersionObjectReference | None:
        ref = self.mapping(value, path, _REF)
        if ref is None:
            return None
        before = len(self.errors)
        kind = self.text(ref.get("kind"), f"{path}.kind")
        name = self.text(ref.get("name"), f"{path}.name")
        for key, text in (("kind", kind), ("name", name)):
            problem = _path_segment_problem(text) if text is not None else None
            if problem is not None:
                self.error(f"{path}.{key}", problem)
        api_version = ref.get("apiVersion") or ""
        if not isinstance(api_version, str):
            self.error(f"{path}.apiVersion", f"must be a string such as apps/v1 (got {_show(api_version)})")
        if len(self.errors) > before or kind is None or name is None or not isinstance(api_version, str):
            return None
        return CrossVersionObjectReference(kind=kind, name=name, api_version=api_version)

    def metrics(self, value: object) -> tuple[tuple[MetricSpec, ...] | None, set[MetricSourceType]]:
        if value is None or value == []:
            return (DEFAULT_METRIC,), {DEFAULT_METRIC.type}
        if not isinstance(value, list):
            self.error("spec.metrics", f"must be a list (got {_show(value)})")
            return None, set()
        parsed = [self.metric(item, f"spec.metrics[{i}]") for i, item in enumerate(value)]
        types = {metric_type for metric_type, _ in parsed if metric_type is not None}
        metrics = tuple(metric for _, metric in parsed if metric is not None)
        return (metrics if len(metrics) == len(parsed) else None), types

    def metric(self, value: object, path: str) -> tuple[MetricSourceType | None, MetricSpec | None]:
        entry = self.mapping(value, path, _METRIC)
        if entry is None:
            return None, None
        source_type = self.choice(entry.get("type"), f"{path}.type", MetricSourceType)
        for other, key in SOURCE_FIELD.items():
            if source_type is not None and other != source_type and entry.get(key) is not None:
                self.error(f"{path}.{key}", f"must not be set when the metric type is {source_type}")
        if source_type is None:
            return None, None
        src_path = f"{path}.{SOURCE_FIELD[source_type]}"
        src = self.mapping(entry.get(SOURCE_FIELD[source_type]), src_path, _SOURCE_KEYS[source_type])
        if src is None:
            return source_type, None
        before = len(self.errors)
        target = self.target(src.get("target"), f"{src_path}.target", source_type)
        container: str | None = None
        selector: tuple[tuple[str, str], ...] | None = None
        described: CrossVersionObjectReference | None = None
        if source_type in (MetricSourceType.RESOURCE, MetricSourceType.CONTAINER_RESOURCE):
            raw_name = self.text(src.get("name"), f"{src_path}.name")
        else:
            raw_name, selector = self.identifier(src.get("metric"), f"{src_path}.metric")
        if source_type is MetricSourceType.CONTAINER_RESOURCE:
            container = self.text(src.get("container"), f"{src_path}.container")
            if container is not None and (len(container) > 63 or not _DNS_LABEL.match(container)):
                self.error(f"{src_path}.container", f"must be a DNS-1123 label (got {container!r})")
        if source_type is MetricSourceType.OBJECT:
            described = self.reference(src.get("describedObject"), f"{src_path}.describedObject")
        if len(self.errors) > before or target is None or raw_name is None:
            return source_type, None
        metric = MetricSpec(
            type=source_type,
            name=resolve_metric_name(raw_name),
            raw_name=raw_name,
            target=target,
            container=container,
            selector=selector,
            described_object=described,
        )
        return source_type, metric

    def identifier(self, value: object, path: str) -> tuple[str | None, tuple[tuple[str, str], ...] | None]:
        ident = self.mapping(value, path, _IDENTIFIER)
        if ident is None:
            return None, None
        name = self.text(ident.get("name"), f"{path}.name")
        problem = _path_segment_problem(name) if name is not None else None
        if problem is not None:
            self.error(f"{path}.name", problem)
        raw_selector = ident.get("selector")
        if raw_selector is None:
            return name, None
        selector = self.mapping(raw_selector, f"{path}.selector", _SELECTOR)
        if selector is None:
            return name, None
        if selector.get("matchExpressions"):
            self.error(f"{path}.selector.matchExpressions", "not supported by jetscale: use matchLabels")
        labels = selector.get("matchLabels") or {}
        if not isinstance(labels, Mapping):
            self.error(f"{path}.selector.matchLabels", f"must be a mapping of strings (got {_show(labels)})")
            return name, None
        pairs: list[tuple[str, str]] = []
        for key, label in labels.items():
            if not isinstance(key, str) or not isinstance(label, str):
                self.error(f"{path}.selector.matchLabels.{key}", f"must be a string (got {_show(label)})")
            else:
                pairs.append((key, label))
        return name, (tuple(sorted(pairs)) or None)

    def target(self, value: object, path: str, source_type: MetricSourceType) -> MetricTarget | None:
        target = self.mapping(value, path, _TARGET)
        if target is None:
            return None
        allowed = _TARGET_TYPES[source_type]
        target_type = self.choice(target.get("type"), f"{path}.type", MetricTargetType)
        if target_type is not None and target_type not in allowed:
            names = " or ".join(allowed)
            self.error(f"{path}.type", f"must be {names} for a {source_type} metric (got {target_type.value!r})")
            target_type = None
        values: dict[MetricTargetType, int | None] = {}
        for kind, key in _TARGET_FIELD.items():
            raw = target.get(key)
            if raw is None:
                continue
            if target_type is not None and kind is not target_type:
                self.error(f"{path}.{key}", f"must not be set when the target type is {target_type}")
            elif kind is _UTILIZATION:
                values[kind] = self.integer(raw, f"{path}.{key}", lo=1)
            else:
                values[kind] = self.positive_milli(raw, f"{path}.{key}")
        if target_type is None:
            return None
        if target_type not in values:
            self.error(f"{path}.{_TARGET_FIELD[target_type]}", f"required when the target type is {target_type}")
            return None
        number = values[target_type]
        if number is None:
            return None
        return MetricTarget(
            type=target_type,
            value_milli=number if target_type is _VALUE else None,
            average_value_milli=number if target_type is _AVERAGE else None,
            average_utilization=number if target_type is _UTILIZATION else None,
        )

    def behavior(self, value: object, path: str) -> Behavior | None:
        if value is None:
            return None
        behavior = self.mapping(value, path, _BEHAVIOR)
        if behavior is None:
            return None
        scale_up = self.rules(behavior.get("scaleUp"), f"{path}.scaleUp", DEFAULT_SCALE_UP)
        scale_down = self.rules(behavior.get("scaleDown"), f"{path}.scaleDown", DEFAULT_SCALE_DOWN)
        if scale_up is None or scale_down is None:
            return None
        return Behavior(scale_up=scale_up, scale_down=scale_down)

    def rules(self, value: object, path: str, default: HPAScalingRules) -> HPAScalingRules | None:
        """``copyHPAScalingRules``: each field given replaces the default; ``policies`` as a whole list."""
        if value is None:
            return default
        rules = self.mapping(value, path, _RULES)
        if rules is None:
            return None
        before = len(self.errors)
        window = default.stabilization_window_s
        if rules.get("stabilizationWindowSeconds") is not None:
            window = self.integer(
                rules["stabilizationWindowSeconds"], f"{path}.stabilizationWindowSeconds",
                lo=0, hi=MAX_STABILIZATION_WINDOW_S,
            )  # fmt: skip
        select = default.select_policy
        if rules.get("selectPolicy") is not None:
            select = self.choice(rules["selectPolicy"], f"{path}.selectPolicy", SelectPolicy) or select
        policies = default.policies
        if rules.get("policies") is not None:
            policies = self.policies(rules["policies"], f"{path}.policies")
        tolerance = default.tolerance
        if rules.get("tolerance") is not None:
            tolerance = self.tolerance(rules["tolerance"], f"{path}.tolerance")
        if len(self.errors) > before:
            return None
        return HPAScalingRules(
            stabilization_window_s=window, select_policy=select, policies=policies, tolerance=tolerance
        )

    def policies(self, value: object, path: str) -> tuple[HPAScalingPolicy, ...]:
        if not isinstance(value, list):
            self.error(path, f"must be a list of policies (got {_show(value)})")
            return ()
        if not value:
            self.error(path, "must list at least one policy")
        parsed: list[HPAScalingPolicy] = []
        for i, item in enumerate(value):
            policy = self.mapping(item, f"{path}[{i}]", _POLICY)
            if policy is None:
                continue
            policy_type = self.choice(policy.get("type"), f"{path}[{i}].type", PolicyType)
            amount = self.integer(policy.get("value"), f"{path}[{i}].value", lo=1)
            period = self.integer(policy.get("periodSeconds"), f"{path}[{i}].periodSeconds", lo=1, hi=MAX_PERIOD_S)
            if policy_type is not None and amount is not None and period is not None:
                parsed.append(HPAScalingPolicy(type=policy_type, value=amount, period_s=period))
        return tuple(parsed)
