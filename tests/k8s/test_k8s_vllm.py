"""A vLLM replica config (``stack: vllm``) renders a vLLM server: golden files for every target and the
dashboards, the Deployment's arguments from the replica config, GKE's GPU and TPU node pools, the three
GKE vLLM signals through each metrics path, the HPA examples, and one-line errors naming the field.

Regenerate the golden files after an intended change with ``JETSCALE_UPDATE_GOLDEN=1``, then read the diff.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from jetscale.cli.k8s import register
from jetscale.engine.config import ReplicaConfig, ServerKind, VllmSettings
from jetscale.engine.presets import replica_config_from_mapping, resolve_preset
from jetscale.errors import ConfigError
from jetscale.hpa.spec import parse_hpa
from jetscale.hpa.types import HPASpec
from jetscale.k8s.bundle import FileKind, RenderedFile
from jetscale.k8s.config import DeployConfig, parse_deploy_config
from jetscale.k8s.dashboards import cloud_monitoring_dashboard, grafana_dashboard
from jetscale.k8s.render import Target, render
from jetscale.k8s.validate import find_promtool, promtool_check_rules, validate_rendering
from jetscale.k8s.vllm import VLLM_GPU_IMAGE, VLLM_TPU_IMAGE

GOLDEN = Path(__file__).with_name("golden")
INPUTS = GOLDEN / "inputs"
EXAMPLES = Path(__file__).parents[2] / "examples"
UPDATE = os.environ.get("JETSCALE_UPDATE_GOLDEN") == "1"


def _replica(name: str) -> ReplicaConfig:
    return replica_config_from_mapping(yaml.safe_load((INPUTS / name).read_text(encoding="utf-8")))


def _hpa(name: str) -> HPASpec:
    return parse_hpa((INPUTS / name).read_text(encoding="utf-8"))


def _deploy(name: str, **overrides: Any) -> DeployConfig:
    raw = yaml.safe_load((INPUTS / name).read_text(encoding="utf-8"))
    return parse_deploy_config({**raw, **overrides}, kind=ServerKind.VLLM)


def _one(files: tuple[RenderedFile, ...], kind: str, path: str | None = None) -> Mapping[str, Any]:
    found = [
        doc
        for file in files
        if file.kind is FileKind.MANIFESTS and (path is None or file.path == path)
        for doc in file.documents
        if doc["kind"] == kind
    ]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def _container(files: tuple[RenderedFile, ...]) -> Mapping[str, Any]:
    (container,) = _one(files, "Deployment", "vllm.yaml")["spec"]["template"]["spec"]["containers"]
    return container


def _check(expected_dir: Path, produced: dict[str, str]) -> None:
    if UPDATE:
        for path, text in produced.items():
            (expected_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / path).write_text(text, encoding="utf-8")
    on_disk = {p.relative_to(expected_dir).as_posix() for p in expected_dir.rglob("*") if p.is_file()}
    assert on_disk == set(produced), "file set changed: regenerate with JETSCALE_UPDATE_GOLDEN=1"
    for path, text in produced.items():
        assert (expected_dir / path).read_text(encoding="utf-8") == text, f"{path} differs from its golden file"


GKE_GPU = (Target.GKE, "hpa-vllm.yaml", "deploy-vllm-gke.yaml", "replica-vllm-h100.yaml")
GKE_TPU = (Target.GKE, "hpa-vllm.yaml", "deploy-vllm-gke.yaml", "replica-vllm-v6e.yaml")
KUBE = (Target.KUBERNETES, "hpa-vllm-batch.yaml", "deploy-vllm-kubernetes.yaml", "replica-vllm-h100.yaml")
KEDA = (Target.KEDA, "hpa-vllm-batch.yaml", "deploy-vllm-kubernetes.yaml", "replica-vllm-h100.yaml")
CASES = [
    pytest.param(*GKE_GPU, "gke-vllm-gpu", id="gke-vllm-gpu"),
    pytest.param(*GKE_TPU, "gke-vllm-tpu", id="gke-vllm-tpu"),
    pytest.param(*KUBE, "kubernetes-vllm", id="kubernetes-vllm"),
    pytest.param(*KEDA, "keda-vllm", id="keda-vllm"),
]


def _render(target: Target, hpa: str, deploy: str, replica: str) -> tuple[RenderedFile, ...]:
    return render(target, _hpa(hpa), _deploy(deploy), _replica(replica))


@pytest.mark.parametrize(("target", "hpa", "deploy", "replica", "golden"), CASES)
def test_rendering_matches_golden_files(target: Target, hpa: str, deploy: str, replica: str, golden: str) -> None:
    produced = {file.path: file.text for file in _render(target, hpa, deploy, replica)}
    _check(GOLDEN / golden, produced)


@pytest.mark.parametrize(("target", "hpa", "deploy", "replica", "golden"), CASES)
def test_every_vllm_object_validates_and_promtool_accepts_the_prometheus_files(
    target: Target, hpa: str, deploy: str, replica: str, golden: str
) -> None:
    files = _render(target, hpa, deploy, replica)
    report = validate_rendering(files, kubernetes_version="1.33", promtool=find_promtool())
    assert report.kubernetes_objects >= 4
    assert report.custom_resources == (1 if target in (Target.GKE, Target.KEDA) else 0)
    assert report.promtool_checks == sum(file.kind is not FileKind.MANIFESTS for file in files)
    assert "vllm.yaml" in {file.path for file in files} and "jetstream.yaml" not in {file.path for file in files}


def test_dashboards_match_golden_files() -> None:
    spec = _hpa("hpa-vllm.yaml")
    kind = ServerKind.VLLM
    produced = {
        "cloud-monitoring.json": json.dumps(cloud_monitoring_dashboard(spec, namespace="llm", kind=kind), indent=2)
        + "\n",
        "grafana.json": json.dumps(grafana_dashboard(spec, namespace="llm", kind=kind), indent=2) + "\n",
    }
    _check(GOLDEN / "dashboards-vllm", produced)


# ------------------------------------------------------------------------------------------ the Deployment


def test_gpu_deployment_runs_vllm_openai_with_every_argument_from_the_replica_config() -> None:
    files = _render(*GKE_GPU)
    container = _container(files)
    assert container["image"] == VLLM_GPU_IMAGE and VLLM_GPU_IMAGE.startswith("vllm/vllm-openai:")
    assert container["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert container["args"] == [
        "--model=meta-llama/Meta-Llama-3-8B",
        "--host=0.0.0.0",
        "--port=8000",
        "--tensor-parallel-size=1",
        "--max-model-len=2048",
        "--max-num-seqs=128",
        "--max-num-batched-tokens=8192",
        "--block-size=16",
        "--gpu-memory-utilization=0.9",
        "--no-enable-prefix-caching",
        "--served-model-name=llama3",  # the deploy config's own arguments follow
    ]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert "google.com/tpu" not in container["resources"]["limits"]
    pod = _one(files, "Deployment", "vllm.yaml")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    assert {"name": "dshm", "emptyDir": {"medium": "Memory"}} in pod["volumes"]


def test_tpu_deployment_runs_vllm_tpu_on_the_slice_of_the_replica() -> None:
    files = _render(*GKE_TPU)
    container = _container(files)
    assert container["image"] == VLLM_TPU_IMAGE and VLLM_TPU_IMAGE.startswith("vllm/vllm-tpu:")
    assert "--tensor-parallel-size=8" in container["args"]
    assert "--enable-prefix-caching" in container["args"] and "--no-enable-prefix-caching" not in container["args"]
    assert "--max-num-batched-tokens=1024" in container["args"]
    assert container["resources"]["limits"]["google.com/tpu"] == "8"
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    pod = _one(files, "Deployment", "vllm.yaml")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {
        "cloud.google.com/gke-tpu-accelerator": "tpu-v6e-slice",
        "cloud.google.com/gke-tpu-topology": "2x4",
    }


SETTINGS = [
    pytest.param({"decode_slots": 64}, "--max-num-seqs=64", id="max-num-seqs"),
    pytest.param({"max_target_length": 4096}, "--max-model-len=4096", id="max-model-len"),
    pytest.param({"vllm": VllmSettings(max_num_batched_tokens=4096)}, "--max-num-batched-tokens=4096", id="budget"),
    pytest.param({"vllm": VllmSettings(block_size=32)}, "--block-size=32", id="block-size"),
    pytest.param({"vllm": VllmSettings(gpu_memory_utilization=0.85)}, "--gpu-memory-utilization=0.85", id="memory"),
    pytest.param({"vllm": VllmSettings(enable_prefix_caching=True)}, "--enable-prefix-caching", id="prefix-cache"),
    pytest.param(
        {"vllm": VllmSettings(enable_chunked_prefill=False, max_num_batched_tokens=8192)},
        "--no-enable-chunked-prefill",
        id="no-chunked-prefill",
    ),
]


@pytest.mark.parametrize(("change", "flag"), SETTINGS)
def test_each_vllm_setting_reaches_its_flag(change: dict[str, Any], flag: str) -> None:
    replica = dataclasses.replace(_replica("replica-vllm-h100.yaml"), **change)
    files = render(Target.GKE, _hpa("hpa-vllm.yaml"), _deploy("deploy-vllm-gke.yaml"), replica)
    args = _container(files)["args"]
    assert flag in args
    name = flag.split("=")[0]
    assert sum(a.split("=")[0] == name for a in args) == 1


def test_tensor_parallel_is_the_replicas_gpus() -> None:
    replica = resolve_preset("h100-x8/llama3-70b", stack="vllm")
    files = render(Target.GKE, _hpa("hpa-vllm.yaml"), _deploy("deploy-vllm-gke.yaml"), replica)
    container = _container(files)
    assert "--tensor-parallel-size=8" in container["args"]
    assert "--model=meta-llama/Meta-Llama-3-70B" in container["args"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "8"


@pytest.mark.parametrize(
    ("preset", "label"),
    [
        pytest.param("l4/llama3-8b", "nvidia-l4", id="l4"),
        pytest.param("a100/llama3-8b", "nvidia-a100-80gb", id="a100-80gb"),
    ],
)
def test_gke_gpu_label_follows_the_accelerator(preset: str, label: str) -> None:
    replica = resolve_preset(preset, stack="vllm")
    files = render(Target.GKE, _hpa("hpa-vllm.yaml"), _deploy("deploy-vllm-gke.yaml"), replica)
    assert _one(files, "Deployment", "vllm.yaml")["spec"]["template"]["spec"]["nodeSelector"] == {
        "cloud.google.com/gke-accelerator": label
    }


def test_a_deploy_model_path_replaces_the_hugging_face_id() -> None:
    deploy = _deploy("deploy-vllm-gke.yaml", args=["--model=/gcs/llama3-8b"])
    files = render(Target.GKE, _hpa("hpa-vllm.yaml"), deploy, _replica("replica-vllm-h100.yaml"))
    args = _container(files)["args"]
    assert args[0] == "--model=/gcs/llama3-8b" and sum(a.startswith("--model") for a in args) == 1


# -------------------------------------------------------------------------------------- the metric paths


def test_each_metrics_path_names_vllms_gauges() -> None:
    gke = _render(*GKE_GPU)
    stackdriver = _one(gke, "HorizontalPodAutoscaler", "stackdriver-adapter/hpa.yaml")["spec"]["metrics"]
    assert [m["pods"]["metric"]["name"] for m in stackdriver] == [
        "prometheus.googleapis.com|vllm:num_requests_waiting|gauge",
        "prometheus.googleapis.com|vllm:kv_cache_usage_perc|gauge",
    ]
    adapter = _one(gke, "HorizontalPodAutoscaler", "prometheus-adapter/hpa.yaml")["spec"]["metrics"]
    assert [m["pods"]["metric"]["name"] for m in adapter] == ["vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"]
    (rules,) = next(f for f in gke if f.path == "prometheus-adapter/config.yaml").documents
    queries = {rule["name"]["as"]: rule["metricsQuery"] for rule in rules["rules"]}
    assert queries["vllm:num_requests_waiting"].startswith("sum(")  # a count adds up over a pod's engines
    assert queries["vllm:kv_cache_usage_perc"].startswith("avg(")  # a fraction averages
    monitoring = _one(gke, "PodMonitoring")["spec"]["endpoints"]
    assert monitoring == [{"port": "http", "path": "/metrics", "interval": "15s"}]


def test_keda_triggers_on_vllms_batch_size() -> None:
    scaled = _one(_render(*KEDA), "ScaledObject")["spec"]
    (trigger,) = scaled["triggers"]
    assert trigger["type"] == "prometheus" and trigger["metadata"]["threshold"] == "96"
    assert trigger["metadata"]["query"] == (
        'sum(sum by (pod) (vllm:num_requests_running{namespace="serving",pod=~"vllm-server-.*"}))'
    )


def test_kubernetes_recording_rules_are_vllms() -> None:
    files = _render(*KUBE)
    (rules,) = next(f for f in files if f.path == "prometheus/rules.yml").documents
    exprs = "\n".join(rule["expr"] for group in rules["groups"] for rule in group["rules"])
    for metric in (
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:inter_token_latency_seconds_bucket",
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:num_preemptions_total",
        "vllm:generation_tokens_total",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
    ):
        assert metric in exprs, metric
    assert "jetstream" not in exprs


def test_a_jetstream_replica_renders_what_no_replica_renders() -> None:
    spec = parse_hpa((INPUTS / "hpa-tpu.yaml").read_text(encoding="utf-8"))
    deploy = parse_deploy_config((INPUTS / "deploy-gke.yaml").read_text(encoding="utf-8"))
    jetstream = resolve_preset("v5e-8/llama2-7b")
    assert jetstream.kind is ServerKind.JETSTREAM
    with_replica = {f.path: f.text for f in render(Target.GKE, spec, deploy, jetstream)}
    assert with_replica == {f.path: f.text for f in render(Target.GKE, spec, deploy)}
    assert "jetstream.yaml" in with_replica


# ------------------------------------------------------------------------------------------------ errors

ERRORS = [
    pytest.param(
        "replica-vllm-h100.yaml",
        {"args": ["--max-num-seqs=8"]},
        "'args' must not set --max-num-seqs: the replica config sets it for the vLLM server (got '--max-num-seqs=8')",
        id="owned-flag",
    ),
    pytest.param(
        "replica-vllm-h100.yaml",
        {"args": ["--model", "x"]},
        "'args' must write --model as --model=PATH, one argument (got '--model')",
        id="model-two-args",
    ),
    pytest.param(
        "replica-vllm-h100.yaml",
        {"gpu": {"accelerator": "nvidia-h100-80gb", "count": 2}},
        "'gpu.count' must be the replica's 1 GPUs (h100-80gb-x1) (got 2)",
        id="gpu-count",
    ),
    pytest.param(
        "replica-vllm-h100.yaml",
        {"gpu": {"accelerator": "nvidia-l4", "count": 1}},
        "'gpu.accelerator' must be a h100 node pool, for h100-80gb-x1 (got 'nvidia-l4')",
        id="gpu-family",
    ),
    pytest.param(
        "replica-vllm-h100.yaml",
        {"tpu": {"accelerator": "tpu-v6e-slice", "topology": "2x4", "chips": 8}},
        "'tpu' must not be set for the GPU replica h100-80gb-x1 (got 'tpu-v6e-slice')",
        id="tpu-on-gpu",
    ),
    pytest.param(
        "replica-vllm-v6e.yaml",
        {"gpu": {"accelerator": "nvidia-l4", "count": 1}},
        "'gpu' must not be set for the TPU replica tpu-v6e-8 (got 'nvidia-l4')",
        id="gpu-on-tpu",
    ),
    pytest.param(
        "replica-vllm-v6e.yaml",
        {"tpu": {"accelerator": "tpu-v6e-slice", "topology": "2x2", "chips": 4}},
        "'tpu.chips' must be the replica's 8 chips (tpu-v6e-8) (got 4)",
        id="tpu-chips",
    ),
    pytest.param(
        "replica-vllm-v6e.yaml",
        {"tpu": {"accelerator": "tpu-v5-lite-podslice", "topology": "2x4", "chips": 8}},
        "'tpu.accelerator' must be a tpu-v6e node pool, for tpu-v6e-8 (got 'tpu-v5-lite-podslice')",
        id="tpu-family",
    ),
]


@pytest.mark.parametrize(("replica", "overrides", "message"), ERRORS)
def test_a_deploy_config_that_contradicts_the_replica_is_one_line(
    replica: str, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        render(Target.GKE, _hpa("hpa-vllm.yaml"), _deploy("deploy-vllm-gke.yaml", **overrides), _replica(replica))
    assert str(info.value) == message


def test_an_int8_model_is_refused_for_vllm() -> None:
    replica = resolve_preset("v5e-8/gemma-7b-int8", stack="vllm")
    with pytest.raises(
        ConfigError, match=r"^'model' must be a bf16 model for the vLLM server: .*\(got gemma-7b-int8\)$"
    ):
        render(Target.GKE, _hpa("hpa-vllm.yaml"), _deploy("deploy-vllm-gke.yaml"), replica)


def test_a_jetstream_server_still_needs_its_image() -> None:
    deploy = _deploy("deploy-vllm-gke.yaml")  # parsed for vLLM: no image
    with pytest.raises(ConfigError) as info:
        render(Target.GKE, _hpa("hpa-vllm.yaml"), deploy, resolve_preset("h100/llama3-8b"))
    assert str(info.value) == "'image' must be set in the deploy config for a JetStream server (got '')"


def test_vllm_deploy_defaults_and_gpu_section() -> None:
    vllm = parse_deploy_config({"gpu": {"accelerator": "nvidia-l4", "count": 1}}, kind=ServerKind.VLLM)
    assert (vllm.image, vllm.container, vllm.health_path, vllm.metrics_path) == ("", "vllm", "/health", "/metrics")
    assert (vllm.ports.http, vllm.ports.grpc, vllm.ports.metrics_name) == (8000, 0, "http")
    assert vllm.security.run_as_non_root is False  # vLLM's images run as root
    with pytest.raises(ConfigError) as info:
        parse_deploy_config({"image": "i", "gpu": {"accelerator": "nvidia-l4", "count": 0}})
    assert str(info.value) == "'gpu.count' must be an integer in [1, 16] (got 0)"
    with pytest.raises(ConfigError) as info:
        parse_deploy_config({"image": "i", "resources": {"requests": {"nvidia.com/gpu": "1"}}})
    assert str(info.value) == "'resources.requests.nvidia.com/gpu' must not be set: use gpu.count (got '1')"


# ------------------------------------------------------------------------------------------- dashboards

VLLM_METRICS = [
    "vllm:num_requests_waiting",
    "vllm:num_requests_running",
    "vllm:kv_cache_usage_perc",
    "vllm:time_to_first_token_seconds_bucket",
    "vllm:inter_token_latency_seconds_bucket",
    "vllm:e2e_request_latency_seconds_bucket",
    "vllm:num_preemptions_total",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "kube_horizontalpodautoscaler_status_current_replicas",
]


def test_vllm_dashboards_query_vllms_metrics_and_draw_the_hpa_targets() -> None:
    spec = _hpa("hpa-vllm.yaml")
    cloud = cloud_monitoring_dashboard(spec, namespace="llm", kind=ServerKind.VLLM)
    grafana = grafana_dashboard(spec, namespace="llm", kind=ServerKind.VLLM)
    assert cloud["displayName"] == "vLLM autoscaling: vllm-hpa" and "vllm" in grafana["tags"]
    tiles = {t["widget"]["title"]: t["widget"]["xyChart"] for t in cloud["mosaicLayout"]["tiles"]}
    assert [t["value"] for t in tiles["Requests waiting (queue size) per replica"]["thresholds"]] == [5.0]
    assert [t["value"] for t in tiles["KV cache used (fraction)"]["thresholds"]] == [0.8]
    assert tiles["Requests running (batch size) per replica"]["thresholds"] == []
    queries = [d["timeSeriesQuery"]["prometheusQuery"] for chart in tiles.values() for d in chart["dataSets"]]
    grafana_queries = [t["expr"] for panel in grafana["panels"] for t in panel["targets"]]
    for metric in VLLM_METRICS:
        assert any(metric in q for q in queries), metric
        assert any(metric in q for q in grafana_queries), metric
    assert not any("jetstream" in q for q in queries + grafana_queries)
    assert grafana["templating"]["list"][1]["query"] == "label_values(vllm:num_requests_waiting, namespace)"
    # every query is PromQL that promtool accepts
    rules = [{"record": f"jetscale:dashboard_{n}", "expr": q.replace("$namespace", "llm")} for n, q in
             enumerate(queries + grafana_queries)]  # fmt: skip
    promtool_check_rules(yaml.safe_dump({"groups": [{"name": "q", "rules": rules}]}), promtool=find_promtool())


# ---------------------------------------------------------------------------------- the HPA examples

HPA_EXAMPLES = [
    pytest.param("vllm-queue.yaml", "vllm:num_requests_waiting", 5000, id="queue"),
    pytest.param("vllm-batch.yaml", "vllm:num_requests_running", 96000, id="batch"),
    pytest.param("vllm-kv-cache.yaml", "vllm:kv_cache_usage_perc", 800, id="kv-cache"),
]


@pytest.mark.parametrize(("example", "metric", "milli"), HPA_EXAMPLES)
def test_hpa_examples_parse_and_render(example: str, metric: str, milli: int) -> None:
    spec = parse_hpa((EXAMPLES / "hpa" / example).read_text(encoding="utf-8"), origin=example)
    (only,) = spec.metrics
    assert only.name == metric and only.raw_name == f"prometheus.googleapis.com|{metric}|gauge"
    assert only.target.average_value_milli == milli
    files = render(Target.GKE, spec, _deploy("deploy-vllm-gke.yaml"), _replica("replica-vllm-h100.yaml"))
    validate_rendering(files, kubernetes_version="1.33", promtool=None)
    hpa = _one(files, "HorizontalPodAutoscaler", "stackdriver-adapter/hpa.yaml")
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == only.raw_name


def test_the_kv_cache_example_can_scale_up_under_the_default_tolerance() -> None:
    spec = parse_hpa((EXAMPLES / "hpa" / "vllm-kv-cache.yaml").read_text(encoding="utf-8"))
    target = spec.metrics[0].target.average_value_milli
    assert target is not None and target / 1000 * 1.1 < 1.0, "a fraction can never exceed target x 1.1"


def test_vllm_examples_render(tmp_path: Path) -> None:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Root."""

    register(app)
    vllm = EXAMPLES / "vllm"
    args = ["k8s", "render", "--target", "gke", "--hpa", str(EXAMPLES / "hpa" / "vllm-queue.yaml")]
    args += ["--config", str(vllm / "deploy-gke-h100.yaml"), "--replica", str(vllm / "replica-h100.yaml")]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "gpu"), "--json"])
    assert result.exit_code == 0, result.output
    written = json.loads(result.output)
    assert written["server"] == "vllm" and (tmp_path / "gpu" / "vllm.yaml").is_file()
    args = ["k8s", "dashboards", "--out", str(tmp_path / "dash"), "--replica", str(vllm / "replica-v6e.yaml")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    grafana = json.loads((tmp_path / "dash" / "grafana.json").read_text(encoding="utf-8"))
    assert grafana["uid"] == "jetscale-vllm"
