"""The checks themselves: each one catches a broken object or query and names where it is."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from jetscale.errors import ConfigError
from jetscale.k8s.prometheus import dump_yaml
from jetscale.k8s.validate import (
    PROMTOOL_INSTALL,
    adapter_check_rules,
    find_promtool,
    promtool_check_config,
    promtool_check_rules,
    validate_custom_resource,
    validate_object,
)

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "srv", "namespace": "llm"},
    "spec": {
        "selector": {"matchLabels": {"app": "srv"}},
        "template": {"metadata": {"labels": {"app": "srv"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}},
    },
}
POD_MONITORING: dict[str, Any] = {
    "apiVersion": "monitoring.googleapis.com/v1",
    "kind": "PodMonitoring",
    "metadata": {"name": "srv", "namespace": "llm"},
    "spec": {"selector": {"matchLabels": {"app": "srv"}}, "endpoints": [{"port": "metrics", "interval": "15s"}]},
}
SCALED_OBJECT: dict[str, Any] = {
    "apiVersion": "keda.sh/v1alpha1",
    "kind": "ScaledObject",
    "metadata": {"name": "srv", "namespace": "llm"},
    "spec": {
        "scaleTargetRef": {"name": "srv"},
        "fallback": {"failureThreshold": 3, "replicas": 2},
        "triggers": [
            {"type": "prometheus", "metricType": "AverageValue", "metadata": {"query": "up", "threshold": "1"}}
        ],
    },
}


def _with(doc: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        node = node[key]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


def test_valid_objects_pass() -> None:
    validate_object(DEPLOYMENT, kubernetes_version="1.33")
    validate_custom_resource(POD_MONITORING)
    validate_custom_resource(SCALED_OBJECT)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param(_with(DEPLOYMENT, ("spec", "replicas"), "two"), "'spec.replicas' is invalid", id="wrong-type"),
        pytest.param(_with(DEPLOYMENT, ("spec", "replicaz"), 2), "'spec' is invalid", id="unknown-field-strict"),
        pytest.param(_with(DEPLOYMENT, ("spec", "selector"), None), "'spec' is invalid", id="missing-selector"),
    ],
)
def test_kubernetes_schema_errors_name_object_and_field(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_object(doc, kubernetes_version="1.33", origin="jetstream.yaml")
    assert str(info.value).startswith("jetstream.yaml: Deployment/srv: ")
    assert message in str(info.value)


def test_hpa_tolerance_needs_a_kubernetes_version_that_has_it() -> None:
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "h"},
        "spec": {
            "scaleTargetRef": {"kind": "Deployment", "name": "srv"},
            "maxReplicas": 3,
            "behavior": {"scaleUp": {"tolerance": "50m"}},
        },
    }
    validate_object(hpa, kubernetes_version="1.33")
    with pytest.raises(ConfigError, match="tolerance"):
        validate_object(hpa, kubernetes_version="1.30")


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        pytest.param(
            _with(POD_MONITORING, ("spec", "endpoints", 0, "interval"), "15 seconds"),
            "spec.endpoints[0].interval",
            id="interval",
        ),
        pytest.param(_with(POD_MONITORING, ("spec", "selector"), None), "spec", id="no-selector"),
        pytest.param(
            _with(POD_MONITORING, ("spec", "targetLabels"), {"metadata": ["namespace"]}),
            "spec.targetLabels.metadata[0]",
            id="label",
        ),
        pytest.param(_with(SCALED_OBJECT, ("spec", "triggers"), None), "spec", id="no-triggers"),
        pytest.param(
            _with(SCALED_OBJECT, ("spec", "fallback", "replicas"), "2"), "spec.fallback.replicas", id="fallback"
        ),
        pytest.param(
            _with(SCALED_OBJECT, ("spec", "triggers", 0, "metadata", "threshold"), 1),
            "spec.triggers[0].metadata.threshold",
            id="threshold-not-string",
        ),
        pytest.param(_with(SCALED_OBJECT, ("spec", "pollingIntervall"), 5), "spec", id="typo"),
    ],
)
def test_crd_schema_errors_name_the_field(doc: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_custom_resource(doc)
    assert f"'{field}' is invalid" in str(info.value)


def test_unknown_custom_resource_is_refused() -> None:
    doc = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "x"}}
    with pytest.raises(
        ConfigError, match=r"custom resource must be one of .* \(got monitoring.coreos.com/v1/ServiceMonitor\)"
    ):
        validate_custom_resource(doc)


def test_missing_promtool_says_how_to_install_it() -> None:
    with pytest.raises(ConfigError) as info:
        find_promtool(["/nonexistent/promtool", None])
    assert PROMTOOL_INSTALL in str(info.value)


def test_promtool_rejects_a_broken_query() -> None:
    promtool = find_promtool()
    good = dump_yaml({"groups": [{"name": "g", "rules": [{"record": "a:b", "expr": "sum(up)"}]}]})
    promtool_check_rules(good, promtool=promtool)
    bad = good.replace("sum(up)", "sum(up")
    with pytest.raises(ConfigError, match="promtool check rules"):
        promtool_check_rules(bad, promtool=promtool, origin="rules.yml")


def test_promtool_checks_the_config_and_its_rules_and_our_kubernetes_sd_check() -> None:
    promtool = find_promtool()
    config = {
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {"job_name": "j", "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": ["llm"]}}]}
        ],
    }
    rules = dump_yaml({"groups": [{"name": "g", "rules": [{"record": "a:b", "expr": "sum(up)"}]}]})
    promtool_check_config(config, rules, promtool=promtool)
    with pytest.raises(ConfigError, match="role"):
        bad = copy.deepcopy(config)
        bad["scrape_configs"][0]["kubernetes_sd_configs"][0]["role"] = "pods"
        promtool_check_config(bad, rules, promtool=promtool)
    with pytest.raises(ConfigError, match="promtool check config"):
        promtool_check_config(config, rules.replace("sum(up)", "sum(up"), promtool=promtool)


def test_adapter_templates_expand_to_the_query_prometheus_receives() -> None:
    config = {
        "rules": [
            {
                "seriesQuery": 'jetstream_prefill_backlog_size{namespace!="",pod!=""}',
                "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
                "metricsQuery": "sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)",
            }
        ]
    }
    (rule,) = adapter_check_rules(config)["groups"][0]["rules"]
    assert rule["expr"] == 'sum(jetstream_prefill_backlog_size{namespace="sample",pod="sample"}) by (namespace,pod)'
    config["rules"][0]["metricsQuery"] = "sum(<<.Series>>{<<.LabelValuesByName>>})"
    with pytest.raises(ConfigError, match="unknown template"):
        adapter_check_rules(config)
