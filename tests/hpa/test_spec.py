"""Reading autoscaling/v2 manifests: every metric type and target, quantities, GKE names, the API defaults
(``SetDefaults_HorizontalPodAutoscaler``, ``GenerateHPAScale{Up,Down}Rules``), scale to zero, YAML input,
``describe_spec`` and the ``to_manifest`` round trip."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from jetscale.errors import ConfigError, ManifestError
from jetscale.hpa.describe import Origin, describe_spec, to_manifest
from jetscale.hpa.spec import (
    DEFAULT_METRIC,
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    load_manifest,
    parse_hpa,
    resolve_metric_name,
)
from jetscale.hpa.types import (
    Behavior,
    ControllerConfig,
    CrossVersionObjectReference,
    HPAScalingPolicy,
    HPAScalingRules,
    MetricSourceType,
    MetricSpec,
    MetricTarget,
    MetricTargetType,
    PolicyType,
    SelectPolicy,
)

EXAMPLES = Path(__file__).parent.parent.parent / "examples" / "hpa"
PODS, PERCENT = PolicyType.PODS, PolicyType.PERCENT
AVG, VALUE, UTIL = MetricTargetType.AVERAGE_VALUE, MetricTargetType.VALUE, MetricTargetType.UTILIZATION


def manifest(**spec: Any) -> dict[str, Any]:
    """A minimal valid HPA; keyword arguments replace (or, with None, remove) fields of ``spec``."""
    body: dict[str, Any] = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "srv"}}
    body["maxReplicas"] = 10
    for key, value in spec.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "hpa"},
        "spec": body,
    }


def pods_metric(name: str, average_value: object) -> dict[str, Any]:
    return {
        "type": "Pods",
        "pods": {"metric": {"name": name}, "target": {"type": "AverageValue", "averageValue": average_value}},
    }


def rules(
    window: int | None, select: SelectPolicy, *policies: tuple[PolicyType, int, int], tol: float | None = None
) -> HPAScalingRules:
    return HPAScalingRules(
        stabilization_window_s=window,
        select_policy=select,
        policies=tuple(HPAScalingPolicy(type=t, value=v, period_s=p) for t, v, p in policies),
        tolerance=tol,
    )


# ------------------------------------------------------------------------------ metrics and targets

METRIC_CASES = [
    pytest.param(
        pods_metric("jetstream_prefill_backlog_size", 5),
        MetricSpec(
            type=MetricSourceType.PODS,
            name="jetstream_prefill_backlog_size",
            raw_name="jetstream_prefill_backlog_size",
            target=MetricTarget(type=AVG, average_value_milli=5000),
        ),
        id="pods-average-value",
    ),
    pytest.param(
        pods_metric("prometheus.googleapis.com|jetstream_slots_used_percentage|gauge", "900m"),
        MetricSpec(
            type=MetricSourceType.PODS,
            name="jetstream_slots_used_percentage",
            raw_name="prometheus.googleapis.com|jetstream_slots_used_percentage|gauge",
            target=MetricTarget(type=AVG, average_value_milli=900),
        ),
        id="pods-gke-gauge-name",
    ),
    pytest.param(
        {
            "type": "Object",
            "object": {
                "describedObject": {"apiVersion": "v1", "kind": "Service", "name": "router"},
                "metric": {"name": "requests_per_second"},
                "target": {"type": "Value", "value": "2k"},
            },
        },
        MetricSpec(
            type=MetricSourceType.OBJECT,
            name="requests_per_second",
            raw_name="requests_per_second",
            target=MetricTarget(type=VALUE, value_milli=2_000_000),
            described_object=CrossVersionObjectReference(kind="Service", name="router", api_version="v1"),
        ),
        id="object-value",
    ),
    pytest.param(
        {
            "type": "Object",
            "object": {
                "describedObject": {"kind": "Ingress", "name": "web"},
                "metric": {"name": "hits"},
                "target": {"type": "AverageValue", "averageValue": "1.5"},
            },
        },
        MetricSpec(
            type=MetricSourceType.OBJECT,
            name="hits",
            raw_name="hits",
            target=MetricTarget(type=AVG, average_value_milli=1500),
            described_object=CrossVersionObjectReference(kind="Ingress", name="web"),
        ),
        id="object-average-value",
    ),
    pytest.param(
        {
            "type": "External",
            "external": {
                "metric": {
                    "name": "prometheus.googleapis.com|memory_used|gauge",
                    "selector": {"matchLabels": {"z": "1", "container": "jetstream-http"}},
                },
                "target": {"type": "AverageValue", "averageValue": "10Gi"},
            },
        },
        MetricSpec(
            type=MetricSourceType.EXTERNAL,
            name="memory_used",
            raw_name="prometheus.googleapis.com|memory_used|gauge",
            target=MetricTarget(type=AVG, average_value_milli=10 * 2**30 * 1000),
            selector=(("container", "jetstream-http"), ("z", "1")),
        ),
        id="external-average-value-selector",
    ),
    pytest.param(
        {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": 30}}},
        MetricSpec(
            type=MetricSourceType.EXTERNAL,
            name="queue",
            raw_name="queue",
            target=MetricTarget(type=VALUE, value_milli=30_000),
        ),
        id="external-value",
    ),
    pytest.param(
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}},
        MetricSpec(
            type=MetricSourceType.RESOURCE,
            name="cpu",
            raw_name="cpu",
            target=MetricTarget(type=UTIL, average_utilization=60),
        ),
        id="resource-utilization",
    ),
    pytest.param(
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "2Ki"}}},
        MetricSpec(
            type=MetricSourceType.RESOURCE,
            name="memory",
            raw_name="memory",
            target=MetricTarget(type=AVG, average_value_milli=2048_000),
        ),
        id="resource-average-value-binary-suffix",
    ),
    pytest.param(
        {
            "type": "ContainerResource",
            "containerResource": {
                "name": "cpu",
                "container": "jetstream-http",
                "target": {"type": "Utilization", "averageUtilization": 150},
            },
        },
        MetricSpec(
            type=MetricSourceType.CONTAINER_RESOURCE,
            name="cpu",
            raw_name="cpu",
            container="jetstream-http",
            target=MetricTarget(type=UTIL, average_utilization=150),
        ),
        id="container-resource-utilization-over-100",
    ),
]


@pytest.mark.parametrize(("entry", "expected"), METRIC_CASES)
def test_metric_types_and_targets(entry: dict[str, Any], expected: MetricSpec) -> None:
    spec = parse_hpa(manifest(metrics=[entry]))
    assert spec.metrics == (expected,)


@pytest.mark.parametrize(
    ("quantity", "milli"),
    [
        pytest.param(5, 5000, id="int"),
        pytest.param(0.9, 900, id="float"),
        pytest.param("1.5", 1500, id="decimal-string"),
        pytest.param("500m", 500, id="milli"),
        pytest.param("1e3", 1_000_000, id="exponent"),
        pytest.param("100n", 1, id="rounds-up-to-one-milli"),
        pytest.param("2k", 2_000_000, id="kilo"),
    ],
)
def test_target_quantities_become_milli_units(quantity: object, milli: int) -> None:
    spec = parse_hpa(manifest(metrics=[pods_metric("m", quantity)]))
    assert spec.metrics[0].target.average_value_milli == milli


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        pytest.param(
            "prometheus.googleapis.com|jetstream_prefill_backlog_size|gauge", "jetstream_prefill_backlog_size"
        ),
        pytest.param("prometheus.googleapis.com|requests_total|counter", "requests_total", id="counter"),
        pytest.param("prometheus.googleapis.com|vllm:num_requests_waiting|gauge", "vllm:num_requests_waiting"),
        pytest.param("jetstream_slots_used_percentage", "jetstream_slots_used_percentage", id="plain"),
        pytest.param("kubernetes.io|node|accelerator|memory_used", "kubernetes.io|node|accelerator|memory_used"),
        pytest.param("prometheus.googleapis.com|a|b|gauge", "prometheus.googleapis.com|a|b|gauge", id="not-gke"),
    ],
)
def test_resolve_metric_name(raw: str, name: str) -> None:
    assert resolve_metric_name(raw) == name


def test_several_metrics_keep_their_order() -> None:
    spec = parse_hpa(manifest(metrics=[pods_metric("a", 1), pods_metric("b", 2)]))
    assert [m.name for m in spec.metrics] == ["a", "b"]


@pytest.mark.parametrize("metrics", [None, []], ids=["absent", "empty"])
def test_no_metrics_means_cpu_80_percent(metrics: list[object] | None) -> None:
    spec = parse_hpa(manifest(metrics=metrics))
    assert spec.metrics == (DEFAULT_METRIC,)
    assert DEFAULT_METRIC.target.average_utilization == 80
    assert DEFAULT_METRIC.name == "cpu"


def test_top_level_defaults_and_fields() -> None:
    spec = parse_hpa(manifest(metrics=[pods_metric("m", 1)]))
    assert (spec.name, spec.namespace, spec.min_replicas, spec.max_replicas) == ("hpa", "default", 1, 10)
    assert spec.scale_target_ref == CrossVersionObjectReference(kind="Deployment", name="srv", api_version="apps/v1")
    assert spec.behavior is None


def test_status_and_metadata_extras_are_accepted() -> None:
    doc = manifest(minReplicas=2)
    doc["metadata"].update(namespace="serving", labels={"app": "x"}, resourceVersion="12")
    doc["status"] = {"currentReplicas": 3}
    spec = parse_hpa(doc)
    assert (spec.namespace, spec.min_replicas) == ("serving", 2)


# -------------------------------------------------------------------------------------- behavior


BEHAVIOR_CASES = [
    pytest.param({}, Behavior(scale_up=DEFAULT_SCALE_UP, scale_down=DEFAULT_SCALE_DOWN), id="empty-gets-both-defaults"),
    pytest.param(
        {"scaleUp": {"stabilizationWindowSeconds": 30}},
        Behavior(
            scale_up=rules(30, SelectPolicy.MAX, (PODS, 4, 15), (PERCENT, 100, 15)),
            scale_down=rules(None, SelectPolicy.MAX, (PERCENT, 100, 15)),
        ),
        id="scale-up-window-only",
    ),
    pytest.param(
        {"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}},
        Behavior(
            scale_up=rules(0, SelectPolicy.MAX, (PODS, 4, 15), (PERCENT, 100, 15)),
            scale_down=rules(None, SelectPolicy.MAX, (PODS, 1, 60)),
        ),
        id="scale-down-policies-only-window-stays-unset",
    ),
    pytest.param(
        {"scaleUp": {"policies": [{"type": "Percent", "value": 200, "periodSeconds": 30}]}},
        Behavior(
            scale_up=rules(0, SelectPolicy.MAX, (PERCENT, 200, 30)),
            scale_down=DEFAULT_SCALE_DOWN,
        ),
        id="policies-replace-the-whole-default-list",
    ),
    pytest.param(
        {
            "scaleUp": {"selectPolicy": "Disabled", "tolerance": "50m"},
            "scaleDown": {"stabilizationWindowSeconds": 60, "selectPolicy": "Min", "tolerance": 0.2},
        },
        Behavior(
            scale_up=rules(0, SelectPolicy.DISABLED, (PODS, 4, 15), (PERCENT, 100, 15), tol=0.05),
            scale_down=rules(60, SelectPolicy.MIN, (PERCENT, 100, 15), tol=0.2),
        ),
        id="select-policy-and-tolerance-per-direction",
    ),
    pytest.param(
        {"scaleUp": None, "scaleDown": {"stabilizationWindowSeconds": 0, "tolerance": 0}},
        Behavior(scale_up=DEFAULT_SCALE_UP, scale_down=rules(0, SelectPolicy.MAX, (PERCENT, 100, 15), tol=0.0)),
        id="null-direction-and-zero-values",
    ),
]


@pytest.mark.parametrize(("behavior", "expected"), BEHAVIOR_CASES)
def test_behavior_defaults(behavior: dict[str, Any], expected: Behavior) -> None:
    assert parse_hpa(manifest(behavior=behavior)).behavior == expected


def test_api_default_rules_are_kubernetes_values() -> None:
    assert rules(0, SelectPolicy.MAX, (PODS, 4, 15), (PERCENT, 100, 15)) == DEFAULT_SCALE_UP
    assert rules(None, SelectPolicy.MAX, (PERCENT, 100, 15)) == DEFAULT_SCALE_DOWN


# ----------------------------------------------------------------------------------- scale to zero


def external(name: str = "queue") -> dict[str, Any]:
    return {"type": "External", "external": {"metric": {"name": name}, "target": {"type": "Value", "value": 1}}}


def object_metric() -> dict[str, Any]:
    return {
        "type": "Object",
        "object": {
            "describedObject": {"kind": "Service", "name": "s"},
            "metric": {"name": "m"},
            "target": {"type": "Value", "value": 1},
        },
    }


@pytest.mark.parametrize(
    ("metrics", "scale_to_zero", "error_paths"),
    [
        pytest.param([external()], True, None, id="external-with-gate"),
        pytest.param([pods_metric("a", 1), object_metric()], True, None, id="object-among-others-with-gate"),
        pytest.param([pods_metric("a", 1)], True, ("spec.metrics",), id="pods-only-with-gate"),
        pytest.param(None, True, ("spec.metrics",), id="default-cpu-with-gate"),
        pytest.param([external()], False, ("spec.minReplicas",), id="external-without-gate"),
    ],
)
def test_min_replicas_zero(
    metrics: list[object] | None, scale_to_zero: bool, error_paths: tuple[str, ...] | None
) -> None:
    doc = manifest(minReplicas=0, metrics=metrics)
    if error_paths is None:
        assert parse_hpa(doc, scale_to_zero=scale_to_zero).min_replicas == 0
    else:
        with pytest.raises(ManifestError) as caught:
            parse_hpa(doc, scale_to_zero=scale_to_zero)
        assert caught.value.paths == error_paths


def test_negative_min_replicas_fails_even_with_gate() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_hpa(manifest(minReplicas=-1, metrics=[external()]), scale_to_zero=True)
    assert caught.value.paths == ("spec.minReplicas",)


# ------------------------------------------------------------------------------------ YAML input


def test_yaml_text_and_dict_give_the_same_spec() -> None:
    doc = manifest(minReplicas=2, metrics=[pods_metric("m", "250m")], behavior={"scaleDown": {"tolerance": 0.05}})
    assert parse_hpa(yaml.safe_dump(doc)) == parse_hpa(doc)


def test_input_mapping_is_not_modified() -> None:
    doc = manifest(behavior={})
    before = copy.deepcopy(doc)
    parse_hpa(doc)
    assert doc == before


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        pytest.param(
            "apiVersion: autoscaling/v2\nspec: [1,\n", r"^x\.yaml: line 3, column 1: invalid YAML", id="syntax"
        ),
        pytest.param("a: 1\nb: {c: 2\n", r"^x\.yaml: line \d+, column \d+: invalid YAML", id="unclosed-flow"),
        pytest.param(
            "kind: HorizontalPodAutoscaler\nspec:\n  minReplicas: 1\n  minReplicas: 2\n",
            r"^x\.yaml: line 4, column 3: invalid YAML: duplicate key 'minReplicas'",
            id="duplicate-key",
        ),
        pytest.param("", r"^x\.yaml: must hold a HorizontalPodAutoscaler manifest", id="empty"),
        pytest.param("- 1\n- 2\n", r"^x\.yaml: a manifest must be a mapping \(got list\)", id="list"),
        pytest.param(
            "kind: HorizontalPodAutoscaler\n---\nkind: HorizontalPodAutoscaler\n",
            r"must hold exactly one HorizontalPodAutoscaler \(got 2 among 2 documents\)",
            id="two-hpas",
        ),
    ],
)
def test_unreadable_yaml_is_a_config_error_with_its_place(text: str, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern) as caught:
        parse_hpa(text, origin="x.yaml")
    assert not isinstance(caught.value, ManifestError)


def test_hpa_is_picked_out_of_a_multi_document_file() -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "srv"}}
    text = yaml.safe_dump_all([deployment, manifest(maxReplicas=7)])
    assert load_manifest(text)["kind"] == "HorizontalPodAutoscaler"
    assert parse_hpa(text).max_replicas == 7


def test_error_message_names_origin_and_every_field() -> None:
    doc = manifest(
        maxReplicas=0, behavior={"scaleDown": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 0}]}}
    )
    with pytest.raises(ManifestError) as caught:
        parse_hpa(doc, origin="hpa.yaml")
    assert str(caught.value) == (
        "hpa.yaml: invalid HorizontalPodAutoscaler: spec.maxReplicas: must be >= 1 (got 0); "
        "spec.behavior.scaleDown.policies[0].periodSeconds: must be in 1..1800 (got 0)"
    )


def test_unknown_field_suggests_the_close_name() -> None:
    with pytest.raises(ManifestError, match=r"spec\.minReplica: unknown field \(did you mean 'minReplicas'\?\)"):
        parse_hpa(manifest(minReplica=2))


# ---------------------------------------------------------------------------------- describe_spec


def origins(doc: dict[str, Any], config: ControllerConfig | None = None) -> dict[str, tuple[str, Origin]]:
    rows = describe_spec(parse_hpa(doc), doc, config=config)
    return {row.field: (row.value, row.origin) for row in rows}


def test_describe_legacy_spec() -> None:
    rows = origins(manifest())
    assert rows["metadata.namespace"] == ("default", Origin.DEFAULT)
    assert rows["spec.minReplicas"] == ("1", Origin.DEFAULT)
    assert rows["spec.maxReplicas"] == ("10", Origin.MANIFEST)
    assert rows["spec.metrics[0]"] == ("Resource cpu: Utilization 80%", Origin.DEFAULT)
    assert rows["spec.behavior"][1] is Origin.DEFAULT
    assert rows["scale-up limit"] == ("max(2 x current, 4) per sync", Origin.CONTROLLER)
    assert rows["scale-down stabilization"][1] is Origin.FLAG
    assert rows["scale-down stabilization"][0].startswith("300 s")


def test_describe_partial_behavior_tells_given_from_default() -> None:
    doc = manifest(
        metrics=[pods_metric("prometheus.googleapis.com|jetstream_prefill_backlog_size|gauge", 5)],
        behavior={"scaleUp": {"stabilizationWindowSeconds": 30, "tolerance": 0.05}},
    )
    rows = origins(doc, ControllerConfig(downscale_stabilization_s=120, tolerance=0.2))
    assert rows["spec.metrics[0]"] == (
        "Pods jetstream_prefill_backlog_size: AverageValue 5 "
        "(written prometheus.googleapis.com|jetstream_prefill_backlog_size|gauge)",
        Origin.MANIFEST,
    )
    assert rows["spec.behavior.scaleUp.stabilizationWindowSeconds"] == ("30 s", Origin.MANIFEST)
    assert rows["spec.behavior.scaleUp.selectPolicy"] == ("Max", Origin.DEFAULT)
    assert rows["spec.behavior.scaleUp.policies"] == ("Pods 4 per 15 s, Percent 100 per 15 s", Origin.DEFAULT)
    assert rows["spec.behavior.scaleUp.tolerance"] == ("0.05", Origin.MANIFEST)
    window, origin = rows["spec.behavior.scaleDown.stabilizationWindowSeconds"]
    assert (window.split(" (")[0], origin) == ("120 s", Origin.FLAG)
    tolerance, origin = rows["spec.behavior.scaleDown.tolerance"]
    assert (tolerance.split(" (")[0], origin) == ("0.2", Origin.FLAG)
    assert rows["spec.behavior.scaleDown.policies"] == ("Percent 100 per 15 s", Origin.DEFAULT)


def test_describe_notes_ignored_tolerance() -> None:
    doc = manifest(behavior={"scaleUp": {"tolerance": 0.05}})
    rows = origins(doc, ControllerConfig(configurable_tolerance=False))
    assert "ignored" in rows["spec.behavior.scaleUp.tolerance"][0]


def test_describe_selector_container_and_object() -> None:
    doc = manifest(
        metrics=[
            {
                "type": "External",
                "external": {
                    "metric": {"name": "q", "selector": {"matchLabels": {"b": "2", "a": "1"}}},
                    "target": {"type": "AverageValue", "averageValue": "500m"},
                },
            },
            {
                "type": "ContainerResource",
                "containerResource": {
                    "name": "cpu",
                    "container": "c",
                    "target": {"type": "Utilization", "averageUtilization": 70},
                },
            },
            object_metric(),
        ]
    )
    rows = origins(doc)
    assert rows["spec.metrics[0]"][0] == "External q{a=1,b=2}: AverageValue 500m"
    assert rows["spec.metrics[1]"][0] == "ContainerResource cpu of container c: Utilization 70%"
    assert rows["spec.metrics[2]"][0] == "Object m of Service/s: Value 1"


# ---------------------------------------------------------------------------- render and round trip


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_examples_round_trip_through_to_manifest(path: Path) -> None:
    spec = parse_hpa(path.read_text(), origin=str(path))
    assert spec.behavior is not None
    assert parse_hpa(yaml.safe_dump(to_manifest(spec))) == spec


@pytest.mark.parametrize(("entry", "expected"), METRIC_CASES)
def test_every_metric_round_trips(entry: dict[str, Any], expected: MetricSpec) -> None:
    spec = parse_hpa(manifest(metrics=[entry], minReplicas=3))
    assert parse_hpa(to_manifest(spec)) == spec


policies = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Pods", "Percent"]),
            "value": st.integers(1, 1000),
            "periodSeconds": st.integers(1, 1800),
        }
    ),
    min_size=1,
    max_size=4,
)
rule_fields = st.fixed_dictionaries(
    {},
    optional={
        "stabilizationWindowSeconds": st.integers(0, 3600),
        "selectPolicy": st.sampled_from(["Max", "Min", "Disabled"]),
        "policies": policies,
        "tolerance": st.decimals(min_value=0, max_value=2, places=3).map(str),
    },
)
behaviors = st.fixed_dictionaries({}, optional={"scaleUp": rule_fields, "scaleDown": rule_fields})


@settings(max_examples=150, deadline=None)
@given(behavior=behaviors)
def test_random_behaviors_are_filled_and_round_trip(behavior: dict[str, Any]) -> None:
    spec = parse_hpa(manifest(behavior=behavior))
    assert spec.behavior is not None
    for key, parsed, default in (
        ("scaleUp", spec.behavior.scale_up, DEFAULT_SCALE_UP),
        ("scaleDown", spec.behavior.scale_down, DEFAULT_SCALE_DOWN),
    ):
        given_rules = behavior.get(key, {})
        assert parsed.policies, "policies are always filled"
        expected_window = given_rules.get("stabilizationWindowSeconds", default.stabilization_window_s)
        assert parsed.stabilization_window_s == expected_window
        assert parsed.select_policy == SelectPolicy(given_rules.get("selectPolicy", default.select_policy))
        if "policies" in given_rules:
            assert [(p.type, p.value, p.period_s) for p in parsed.policies] == [
                (PolicyType(p["type"]), p["value"], p["periodSeconds"]) for p in given_rules["policies"]
            ]
        else:
            assert parsed.policies == default.policies
        if "tolerance" in given_rules:
            assert parsed.tolerance == pytest.approx(float(given_rules["tolerance"]))
        else:
            assert parsed.tolerance is None
    assert spec.behavior.scale_up.stabilization_window_s is not None
    rendered = yaml.safe_load(yaml.safe_dump(to_manifest(spec)))
    assert parse_hpa(rendered) == spec


def test_yaml_anchors_and_merge_keys_work() -> None:
    text = (
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: hpa}\n"
        "spec:\n  scaleTargetRef: {kind: Deployment, name: srv}\n  maxReplicas: 5\n"
        "  behavior:\n    scaleUp: &rules {stabilizationWindowSeconds: 60, selectPolicy: Min}\n"
        "    scaleDown:\n      <<: *rules\n      selectPolicy: Max\n"
    )
    behavior = parse_hpa(text).behavior
    assert behavior is not None
    assert (behavior.scale_up.stabilization_window_s, behavior.scale_up.select_policy) == (60, SelectPolicy.MIN)
    assert (behavior.scale_down.stabilization_window_s, behavior.scale_down.select_policy) == (60, SelectPolicy.MAX)
