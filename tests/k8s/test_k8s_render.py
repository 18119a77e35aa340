"""Rendering for each target: what the issue asks of the objects, and that every one of them validates."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from jetscale.errors import ConfigError
from jetscale.hpa.spec import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, parse_hpa
from jetscale.hpa.types import HPASpec
from jetscale.k8s.autoscaler import DOWNSCALE_STABILIZATION_S
from jetscale.k8s.bundle import FileKind, RenderedFile
from jetscale.k8s.config import HBM_BYTES_PER_CHIP, DeployConfig, parse_deploy_config
from jetscale.k8s.render import Target, render
from jetscale.k8s.validate import find_promtool, validate_rendering

INPUTS = Path(__file__).with_name("golden") / "inputs"
EXAMPLES = Path(__file__).parents[2] / "examples" / "deploy"


def _hpa(name: str) -> HPASpec:
    return parse_hpa((INPUTS / name).read_text(encoding="utf-8"))


def _deploy(filename: str, **overrides: Any) -> DeployConfig:
    import yaml

    raw = yaml.safe_load((INPUTS / filename).read_text(encoding="utf-8"))
    return parse_deploy_config({**raw, **overrides})


def _docs(files: tuple[RenderedFile, ...], path: str | None = None) -> Iterator[Mapping[str, Any]]:
    for file in files:
        if file.kind is FileKind.MANIFESTS and (path is None or file.path == path):
            yield from file.documents


def _one(files: tuple[RenderedFile, ...], kind: str, path: str | None = None) -> Mapping[str, Any]:
    found = [doc for doc in _docs(files, path) if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind} in {path or 'the rendering'}, got {len(found)}"
    return found[0]


def _containers(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(doc["spec"]["template"]["spec"]["containers"])


GKE = (Target.GKE, "hpa-tpu.yaml", "deploy-gke.yaml")
KUBE = (Target.KUBERNETES, "hpa-backlog.yaml", "deploy-kubernetes.yaml")
KEDA = (Target.KEDA, "hpa-backlog.yaml", "deploy-kubernetes.yaml")


@pytest.mark.parametrize(
    ("target", "hpa", "deploy"),
    [
        pytest.param(*GKE, id="gke-tpu"),
        pytest.param(*KUBE, id="kubernetes"),
        pytest.param(*KEDA, id="keda"),
        pytest.param(Target.GKE, "hpa-backlog.yaml", "deploy-gke.yaml", id="gke-backlog-no-hbm"),
    ],
)
def test_every_object_validates_and_promtool_accepts_the_prometheus_files(
    target: Target, hpa: str, deploy: str
) -> None:
    spec = _hpa(hpa)
    config = _deploy(deploy, name=spec.scale_target_ref.name)
    files = render(target, spec, config)
    report = validate_rendering(files, kubernetes_version="1.33", promtool=find_promtool())
    manifests = sum(len(f.documents) for f in files if f.kind is FileKind.MANIFESTS)
    assert report.kubernetes_objects + report.custom_resources == manifests
    prometheus_files = [f for f in files if f.kind is not FileKind.MANIFESTS]
    # a config is checked together with its rules file, which is then checked again on its own
    assert report.promtool_checks == len(prometheus_files)


def test_gke_deployment_runs_on_the_tpu_slice_with_probes_and_metrics_port() -> None:
    files = render(*GKE[:1], _hpa(GKE[1]), _deploy(GKE[2]))
    deployment = _one(files, "Deployment", "jetstream.yaml")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v5-lite-podslice",
        "cloud.google.com/gke-tpu-topology": "2x4",
    }
    (container,) = _containers(deployment)
    assert container["resources"]["requests"]["google.com/tpu"] == "8"
    assert container["resources"]["limits"]["google.com/tpu"] == "8"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "grpc": 9000, "metrics": 9100}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/v1/health", "port": "http"}
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    service = _one(files, "Service", "jetstream.yaml")
    assert {p["name"] for p in service["spec"]["ports"]} == {"http", "grpc"}
    monitoring = [d for d in _docs(files, "podmonitoring.yaml") if d["metadata"]["namespace"] == "llm"]
    assert monitoring[0]["spec"]["endpoints"] == [{"port": "metrics", "path": "/", "interval": "15s"}]


def test_gke_stackdriver_hpa_uses_gmp_pods_metrics_and_hbm_as_external_bytes() -> None:
    spec = _hpa(GKE[1])
    files = render(Target.GKE, spec, _deploy(GKE[2]))
    hpa = _one(files, "HorizontalPodAutoscaler", "stackdriver-adapter/hpa.yaml")
    metrics = hpa["spec"]["metrics"]
    assert [m["type"] for m in metrics] == ["Pods", "Pods", "External"]
    assert metrics[0]["pods"]["metric"]["name"] == "prometheus.googleapis.com|jetstream_prefill_backlog_size|gauge"
    assert metrics[1]["pods"]["metric"]["name"] == "prometheus.googleapis.com|jetstream_slots_used_percentage|gauge"
    external = metrics[2]["external"]
    assert external["metric"]["name"] == "prometheus.googleapis.com|memory_used|gauge"
    assert external["metric"]["selector"]["matchLabels"] == {
        "metric.labels.exported_namespace": "llm",
        "metric.labels.container": "jetstream",
    }
    # 0.9 of a replica's HBM: 8 chips x 16 GiB (v5e)
    per_replica = 8 * HBM_BYTES_PER_CHIP["tpu-v5-lite-podslice"]
    assert external["target"] == {"type": "AverageValue", "averageValue": str(math.ceil(0.9 * per_replica))}
    tpu_monitoring = [d for d in _docs(files, "podmonitoring.yaml") if d["metadata"]["namespace"] == "kube-system"]
    assert tpu_monitoring[0]["spec"]["endpoints"][0]["port"] == 2112


def test_gke_prometheus_adapter_path_has_frontend_rules_and_adapter_metric_names() -> None:
    files = render(Target.GKE, _hpa(GKE[1]), _deploy(GKE[2]))
    hpa = _one(files, "HorizontalPodAutoscaler", "prometheus-adapter/hpa.yaml")
    names = [m.get("pods", m.get("external"))["metric"]["name"] for m in hpa["spec"]["metrics"]]
    assert names == ["jetstream_prefill_backlog_size", "jetstream_slots_used_percentage", "memory_used"]
    (config,) = [f for f in files if f.kind is FileKind.ADAPTER_CONFIG]
    rules = config.documents[0]
    assert [r["name"]["as"] for r in rules["rules"]] == names[:2]
    assert all('cluster="golden-cluster"' in r["metricsQuery"] for r in [*rules["rules"], *rules["externalRules"]])
    adapter_docs = list(_docs(files, "prometheus-adapter/adapter.yaml"))
    frontend = next(d for d in adapter_docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "gmp-frontend")
    assert "--query.project-id=golden-project" in _containers(frontend)[0]["args"]
    adapter = next(
        d for d in adapter_docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "prometheus-adapter"
    )
    assert "--prometheus-url=http://gmp-frontend.custom-metrics.svc:9090" in _containers(adapter)[0]["args"]
    config_map = next(d for d in adapter_docs if d["kind"] == "ConfigMap")
    assert config_map["data"]["config.yaml"] == config.text.split("\n", 1)[1], "ConfigMap holds the same rules"


def test_hpa_without_behavior_gets_the_kubernetes_defaults_written_out() -> None:
    files = render(Target.GKE, _hpa(GKE[1]), _deploy(GKE[2]))
    behavior = _one(files, "HorizontalPodAutoscaler", "stackdriver-adapter/hpa.yaml")["spec"]["behavior"]
    up, down = behavior["scaleUp"], behavior["scaleDown"]
    assert up["stabilizationWindowSeconds"] == DEFAULT_SCALE_UP.stabilization_window_s
    assert [(p["type"], p["value"], p["periodSeconds"]) for p in up["policies"]] == [
        (p.type.value, p.value, p.period_s) for p in DEFAULT_SCALE_UP.policies
    ]
    assert down["stabilizationWindowSeconds"] == DOWNSCALE_STABILIZATION_S
    assert down["selectPolicy"] == DEFAULT_SCALE_DOWN.select_policy.value


def test_kubernetes_target_scrapes_the_server_pods_and_hpa_reads_the_adapter() -> None:
    spec = _hpa(KUBE[1])
    files = render(Target.KUBERNETES, spec, _deploy(KUBE[2]))
    (prom,) = [f for f in files if f.kind is FileKind.PROMETHEUS_CONFIG]
    job = prom.documents[0]["scrape_configs"][0]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["serving"]}}]
    assert job["metrics_path"] == "/metrics"
    hpa = _one(files, "HorizontalPodAutoscaler", "hpa.yaml")
    assert hpa["metadata"]["namespace"] == "serving", "an HPA without a namespace takes the config's"
    assert [m["pods"]["metric"]["name"] for m in hpa["spec"]["metrics"]] == [m.name for m in spec.metrics]
    assert hpa["spec"]["behavior"]["scaleDown"]["selectPolicy"] == "Min"
    role = _one(files, "Role", "prometheus/config.yaml")
    assert role["metadata"]["namespace"] == "serving"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]


def test_keda_scaled_object_sums_over_pods_with_average_value_and_fallback() -> None:
    spec = _hpa(KEDA[1])
    files = render(Target.KEDA, spec, _deploy(KEDA[2]))
    scaled = _one(files, "ScaledObject", "scaledobject.yaml")["spec"]
    assert scaled["fallback"] == {"failureThreshold": 3, "replicas": 4}
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (spec.min_replicas, spec.max_replicas)
    assert all(t["metricType"] == "AverageValue" for t in scaled["triggers"])
    backlog, slots = scaled["triggers"]
    assert backlog["metadata"]["threshold"] == "3" and slots["metadata"]["threshold"] == "0.85"
    assert backlog["metadata"]["query"].startswith("sum(sum by (pod) (jetstream_prefill_backlog_size{")
    assert slots["metadata"]["query"].startswith("sum(avg by (pod) (jetstream_slots_used_percentage{")
    assert (
        scaled["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"]
        == 600
    )


@pytest.mark.parametrize(
    ("target", "hpa", "deploy"),
    [pytest.param(*GKE, id="gke"), pytest.param(*KUBE, id="kubernetes"), pytest.param(*KEDA, id="keda")],
)
def test_secure_defaults_on_every_workload_and_least_privilege_rbac(target: Target, hpa: str, deploy: str) -> None:
    files = render(target, _hpa(hpa), _deploy(deploy))
    workloads = [d for d in _docs(files) if d["kind"] == "Deployment"]
    assert workloads
    for doc in workloads:
        assert doc["metadata"]["namespace"], "every workload is namespaced"
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False and security["privileged"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert set(container["resources"]) == {"requests", "limits"}
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
    for doc in _docs(files):
        if doc["kind"] in ("ClusterRole", "Role"):
            for rule in doc["rules"]:
                assert set(rule["verbs"]) <= {"get", "list", "watch"}, doc["metadata"]["name"]
                assert "secrets" not in rule["resources"]
    accounts = {d["metadata"]["name"] for d in _docs(files) if d["kind"] == "ServiceAccount"}
    bound = {s["name"] for d in _docs(files) if d["kind"].endswith("Binding") for s in d["subjects"]}
    assert bound - {"horizontal-pod-autoscaler", "prometheus"} <= accounts, "bindings name rendered accounts"


def test_non_root_images_get_run_as_non_root_and_the_restricted_namespace() -> None:
    files = render(*KUBE[:1], _hpa(KUBE[1]), _deploy(KUBE[2]))
    server = _one(files, "Deployment", "jetstream.yaml")["spec"]["template"]["spec"]
    assert server["securityContext"]["runAsNonRoot"] is True and server["securityContext"]["runAsUser"] == 1000
    assert server["automountServiceAccountToken"] is False
    assert _containers(_one(files, "Deployment", "jetstream.yaml"))[0]["securityContext"]["readOnlyRootFilesystem"]
    labels = _one(files, "Namespace", "jetstream.yaml")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
    root = render(*GKE[:1], _hpa(GKE[1]), _deploy(GKE[2]))
    root_pod = _one(root, "Deployment", "jetstream.yaml")["spec"]["template"]["spec"]
    assert "runAsNonRoot" not in root_pod["securityContext"], "the maxengine image runs as root"
    assert (
        _one(root, "Namespace", "jetstream.yaml")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        == "baseline"
    )


BAD_RENDERS = [
    pytest.param(
        "kubernetes", "hpa-backlog.yaml", {"name": "other"}, "'name' must be the Deployment", id="name-mismatch"
    ),
    pytest.param(
        "gke", "hpa-tpu.yaml", {"namespace": "prod"}, "'namespace' must be the HPA's namespace", id="namespace-mismatch"
    ),
    pytest.param("gke", "hpa-backlog.yaml", {"gke": None}, "'gke' must be set", id="gke-without-gke-section"),
    pytest.param("gke", "hpa-tpu.yaml", {"tpu": None}, "'tpu' must be set", id="hbm-fraction-without-tpu"),
    pytest.param(
        "helm",
        "hpa-backlog.yaml",
        {},
        "'--target' must be one of gke, kubernetes, keda (got 'helm')",
        id="unknown-target",
    ),
]


@pytest.mark.parametrize(("target", "hpa", "overrides", "message"), BAD_RENDERS)
def test_bad_input_is_a_config_error_naming_field_and_value(
    target: str, hpa: str, overrides: dict[str, Any], message: str
) -> None:
    import yaml

    raw = yaml.safe_load((INPUTS / "deploy-gke.yaml").read_text(encoding="utf-8"))
    raw["name"] = _hpa(hpa).scale_target_ref.name
    raw = {k: v for k, v in {**raw, **overrides}.items() if v is not None}
    with pytest.raises(ConfigError) as info:
        render(target, _hpa(hpa), parse_deploy_config(raw))
    assert message in str(info.value)


KEDA_REFUSED = [
    pytest.param(
        "    - type: Resource\n      resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}\n",
        "'spec.metrics[0].type' must be Pods or External for KEDA's Prometheus triggers with fallback "
        "(got Resource 'cpu')",
        id="cpu-metric",
    ),
    pytest.param(
        "    - type: External\n      external:\n        metric: {name: queue_depth}\n"
        "        target: {type: Value, value: 30}\n",
        "'spec.metrics[0].external.target.type' must be AverageValue for KEDA's fallback (got Value)",
        id="value-target",
    ),
]


@pytest.mark.parametrize(("metric", "message"), KEDA_REFUSED)
def test_keda_refuses_metrics_its_fallback_cannot_serve(metric: str, message: str) -> None:
    manifest = (
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\nspec:\n"
        "  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: jetstream-server}\n"
        "  maxReplicas: 4\n  metrics:\n" + metric
    )
    with pytest.raises(ConfigError) as info:
        render(Target.KEDA, parse_hpa(manifest), _deploy("deploy-kubernetes.yaml"))
    assert str(info.value) == message


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_example_deploy_configs_parse(example: str) -> None:
    config = parse_deploy_config((EXAMPLES / example).read_text(encoding="utf-8"), origin=example)
    assert config.image
