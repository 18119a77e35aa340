"""Getting the servers' metrics into Prometheus: scrape config, recording rules, PodMonitoring.

- On GKE, Managed Prometheus scrapes what a ``PodMonitoring`` selects: the servers' metrics port, and, for
  HBM, the TPU device plugin's exporter in ``kube-system`` (port 2112; GKE supports 15 s and up there).
- Elsewhere a Prometheus scrape config finds the server pods with Kubernetes service discovery limited to
  their namespace (so its RBAC is one namespaced Role), keeps the ``metrics`` port, and labels each series
  with ``namespace``, ``pod`` and ``container`` as the adapter rules expect.

The recording rules precompute what the dashboards and humans ask for: TTFT/TPOT percentiles, request and
token throughput, the HBM fraction (JetStream); TTFT/ITL/E2E/queue-time percentiles, request, token and
preemption rates, the queue, the batch and the KV cache use (vLLM, ``vllm_recording_rules``).
Pure: dicts and text out; ``promtool`` checks them in ``validate``.
"""

from __future__ import annotations

import yaml

from jetscale.k8s import vllm
from jetscale.k8s.config import DeployConfig
from jetscale.k8s.metrics import HBM_TOTAL, HBM_USED
from jetscale.k8s.workload import Doc, meta, selector_labels

__all__ = [
    "QUANTILES",
    "TPU_EXPORTER_PORT",
    "dump_yaml",
    "pod_monitorings",
    "prometheus_objects",
    "recording_rules",
    "scrape_config",
    "vllm_recording_rules",
]

QUANTILES = (0.5, 0.95, 0.99)
TPU_EXPORTER_PORT = 2112
KUBE_STATE_METRICS = "kube-state-metrics.kube-system.svc:8080"


class _Dumper(yaml.SafeDumper):
    """Block style for multi-line strings, so embedded configs stay readable."""


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump_yaml(doc: object) -> str:
    """YAML in the order the dicts were built, block style, long lines kept whole."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=10_000)


def pod_monitorings(config: DeployConfig, *, name: str, ns: str, tpu_metrics: bool) -> list[Doc]:
    """Managed Prometheus: the server's metrics port, and the TPU device plugin when HBM is scaled on."""
    out: list[Doc] = [
        {
            "apiVersion": "monitoring.googleapis.com/v1",
            "kind": "PodMonitoring",
            "metadata": meta(name, ns, "model-server"),
            "spec": {
                "selector": {"matchLabels": selector_labels(name)},
                "endpoints": [
                    {
                        "port": config.ports.metrics_name,
                        "path": config.metrics_path,
                        "interval": f"{config.scrape_interval_s}s",
                    }
                ],
                "targetLabels": {"metadata": ["pod", "container", "node"]},
            },
        }
    ]
    if tpu_metrics:
        out.append(
            {
                "apiVersion": "monitoring.googleapis.com/v1",
                "kind": "PodMonitoring",
                # GKE's documented name: applying it where it exists changes nothing and scrapes nothing twice
                "metadata": {
                    "name": "tpu-metrics-exporter",
                    "namespace": "kube-system",
                    "labels": {"k8s-app": "tpu-device-plugin"},
                },
                "spec": {
                    "selector": {"matchLabels": {"k8s-app": "tpu-device-plugin"}},
                    "endpoints": [{"port": TPU_EXPORTER_PORT, "interval": f"{max(15, config.scrape_interval_s)}s"}],
                },
            }
        )
    return out


def scrape_config(config: DeployConfig, *, name: str, ns: str) -> Doc:
    """prometheus.yml: the server pods of ``ns`` (port ``metrics``) and kube-state-metrics (HPA replicas)."""
    interval = f"{config.scrape_interval_s}s"
    relabel: list[Doc] = [
        {"source_labels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], "regex": name, "action": "keep"},
        {
            "source_labels": ["__meta_kubernetes_pod_container_port_name"],
            "regex": config.ports.metrics_name,
            "action": "keep",
        },
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_pod_node_name"], "target_label": "node"},
    ]
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {
                "job_name": name,
                "metrics_path": config.metrics_path,
                "scrape_interval": interval,
                "kubernetes_sd_configs": [{"role": "pod", "namespaces": {"names": [ns]}}],
                "relabel_configs": relabel,
            },
            {"job_name": "kube-state-metrics", "static_configs": [{"targets": [KUBE_STATE_METRICS]}]},
        ],
    }


def _percentile(metric: str, short: str, q: float) -> Doc:
    return {
        "record": f"namespace:{short}_seconds:p{round(q * 100)}",
        "expr": f"histogram_quantile({q}, sum by (namespace, le) (rate({metric}_bucket[1m])))",
    }


def recording_rules(config: DeployConfig) -> Doc:
    """rules.yml: percentiles, throughput and HBM per namespace, evaluated every scrape interval."""
    rules: list[Doc] = []
    for metric, short in (
        ("jetstream_time_to_first_token", "jetstream_ttft"),
        ("jetstream_time_per_output_token", "jetstream_tpot"),
        ("jetstream_queue_duration", "jetstream_queue_duration"),
    ):
        rules += [_percentile(metric, short, q) for q in QUANTILES]
    rules += [
        {
            "record": "namespace:jetstream_requests:rate1m",
            "expr": "sum by (namespace) (rate(jetstream_request_success_count_total[1m]))",
        },
        {
            "record": "namespace:jetstream_output_tokens:rate1m",
            "expr": "sum by (namespace) (rate(jetstream_request_output_length_sum[1m]))",
        },
        {
            "record": "namespace:jetstream_prefill_backlog_size:sum",
            "expr": "sum by (namespace) (jetstream_prefill_backlog_size)",
        },
        {
            "record": "namespace:jetstream_slots_used_percentage:avg",
            "expr": "avg by (namespace) (jetstream_slots_used_percentage)",
        },
        {
            "record": "namespace:hbm_used:ratio",
            "expr": f"sum by (namespace) ({HBM_USED}) / sum by (namespace) ({HBM_TOTAL})",
        },
    ]
    return {"groups": [{"name": "jetscale-jetstream", "interval": f"{config.scrape_interval_s}s", "rules": rules}]}


def vllm_recording_rules(config: DeployConfig) -> Doc:
    """rules.yml for vLLM servers: latency percentiles, rates, and the three GKE signals per namespace."""
    rules: list[Doc] = []
    for metric, short in (
        (vllm.TTFT, "vllm_ttft"),
        (vllm.ITL, "vllm_itl"),
        (vllm.E2E, "vllm_e2e"),
        (vllm.QUEUE_TIME, "vllm_queue_time"),
    ):
        rules += [_percentile(metric, short, q) for q in QUANTILES]
    for metric, short in (
        (vllm.REQUEST_SUCCESS, "vllm_requests"),
        (vllm.PROMPT_TOKENS, "vllm_prompt_tokens"),
        (vllm.GENERATION_TOKENS, "vllm_generation_tokens"),
        (vllm.PREEMPTIONS, "vllm_preemptions"),
    ):
        rules.append({"record": f"namespace:{short}:rate1m", "expr": f"sum by (namespace) (rate({metric}[1m]))"})
    for metric, how in ((vllm.REQUESTS_WAITING, "sum"), (vllm.REQUESTS_RUNNING, "sum"), (vllm.KV_CACHE_USAGE, "avg")):
        short = metric.replace("vllm:", "vllm_")
        rules.append({"record": f"namespace:{short}:{how}", "expr": f"{how} by (namespace) ({metric})"})
    return {"groups": [{"name": "jetscale-vllm", "interval": f"{config.scrape_interval_s}s", "rules": rules}]}


def prometheus_objects(config: DeployConfig, *, name: str, ns: str, prometheus_yml: str, rules_yml: str) -> list[Doc]:
    """The scrape config as a ConfigMap for your Prometheus, and the namespaced Role it needs to discover pods."""
    prom = config.prometheus
    subject = [{"kind": "ServiceAccount", "name": prom.service_account, "namespace": prom.namespace}]
    role = f"jetscale:{name}:prometheus-discovery"
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": meta(f"{name}-prometheus", prom.namespace, "prometheus-config", name),
            "data": {"prometheus.yml": prometheus_yml, "rules.yml": rules_yml},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta(role, ns, "prometheus-config", name),
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(role, ns, "prometheus-config", name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
            "subjects": subject,
        },
    ]
