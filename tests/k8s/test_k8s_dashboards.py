"""Dashboards: valid JSON of the right shape that queries the JetStream and HPA metrics and draws targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jetscale.hpa.spec import parse_hpa
from jetscale.hpa.types import HPASpec
from jetscale.k8s.dashboards import cloud_monitoring_dashboard, grafana_dashboard

INPUTS = Path(__file__).with_name("golden") / "inputs"
METRICS = [
    "jetstream_prefill_backlog_size",
    "jetstream_slots_used_percentage",
    "memory_used",
    "memory_total",
    "jetstream_time_to_first_token_bucket",
    "jetstream_time_per_output_token_bucket",
    "jetstream_request_success_count_total",
    "jetstream_request_output_length_sum",
    "kube_horizontalpodautoscaler_status_current_replicas",
    "kube_horizontalpodautoscaler_status_desired_replicas",
]


def _queries_cloud(doc: dict) -> list[str]:
    return [
        data_set["timeSeriesQuery"]["prometheusQuery"]
        for tile in doc["mosaicLayout"]["tiles"]
        for data_set in tile["widget"]["xyChart"]["dataSets"]
    ]


def _queries_grafana(doc: dict) -> list[str]:
    return [target["expr"] for panel in doc["panels"] for target in panel["targets"]]


@pytest.fixture(scope="module")
def spec() -> HPASpec:
    return parse_hpa((INPUTS / "hpa-tpu.yaml").read_text(encoding="utf-8"))


def test_cloud_monitoring_dashboard_shape(spec: HPASpec) -> None:
    doc = json.loads(json.dumps(cloud_monitoring_dashboard(spec, namespace="llm")))
    assert doc["displayName"] == "JetStream autoscaling: jetstream-hpa"
    layout = doc["mosaicLayout"]
    assert layout["columns"] == 48
    for tile in layout["tiles"]:
        assert {"xPos", "yPos", "width", "height", "widget"} <= set(tile)
        assert tile["xPos"] + tile["width"] <= layout["columns"]
        assert tile["widget"]["xyChart"]["dataSets"]
    queries = "\n".join(_queries_cloud(doc))
    for metric in METRICS:
        assert metric in queries, metric
    assert 'exported_namespace=~"llm"' in queries, "GKE's HBM comes from the TPU device plugin"
    assert 'horizontalpodautoscaler="jetstream-hpa"' in queries


def test_grafana_dashboard_shape(spec: HPASpec) -> None:
    doc = json.loads(json.dumps(grafana_dashboard(spec, namespace="llm")))
    assert {"title", "uid", "panels", "templating", "schemaVersion", "time"} <= set(doc)
    assert len(doc["uid"]) <= 40
    assert [v["name"] for v in doc["templating"]["list"]] == ["datasource", "namespace"]
    ids = [panel["id"] for panel in doc["panels"]]
    assert len(ids) == len(set(ids))
    for panel in doc["panels"]:
        assert panel["type"] == "timeseries" and panel["targets"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])
    queries = "\n".join(_queries_grafana(doc))
    for metric in METRICS:
        assert metric in queries, metric
    assert 'namespace=~"$namespace"' in queries


@pytest.mark.parametrize(
    ("title", "value"),
    [
        pytest.param("Prefill backlog per replica", 5.0, id="backlog"),
        pytest.param("Decode slots used (fraction)", 0.8, id="slots"),
        pytest.param("HBM used (fraction)", 0.9, id="hbm"),
    ],
)
def test_hpa_targets_are_drawn_as_lines(spec: HPASpec, title: str, value: float) -> None:
    cloud = {
        t["widget"]["title"]: t["widget"]["xyChart"] for t in cloud_monitoring_dashboard(spec)["mosaicLayout"]["tiles"]
    }
    assert [t["value"] for t in cloud[title]["thresholds"]] == [value]
    grafana = {p["title"]: p for p in grafana_dashboard(spec)["panels"]}
    defaults = grafana[title]["fieldConfig"]["defaults"]
    assert defaults["custom"]["thresholdsStyle"]["mode"] == "line"
    assert [step["value"] for step in defaults["thresholds"]["steps"]][1:] == [value]


def test_without_an_hpa_there_are_no_target_lines_but_the_replica_panel_stays() -> None:
    cloud = cloud_monitoring_dashboard(None)
    assert all(not t["widget"]["xyChart"]["thresholds"] for t in cloud["mosaicLayout"]["tiles"])
    assert "Replicas (HPA)" in {t["widget"]["title"] for t in cloud["mosaicLayout"]["tiles"]}
    assert grafana_dashboard(None)["uid"] == "jetscale-jetstream"


def test_another_hpa_metric_gets_its_own_panel() -> None:
    manifest = (
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n"
        "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: s}\n  maxReplicas: 4\n  metrics:\n"
        "    - type: Pods\n      pods:\n        metric: {name: num_requests_waiting}\n"
        "        target: {type: AverageValue, averageValue: 7}\n"
    )
    panels = {p["title"]: p for p in grafana_dashboard(parse_hpa(manifest))["panels"]}
    panel = panels["num_requests_waiting per replica vs HPA target"]
    assert "num_requests_waiting" in panel["targets"][0]["expr"]
    assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] == 7.0
