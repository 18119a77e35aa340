"""``--target kubernetes``: any cluster with a Prometheus: scrape config, prometheus-adapter, the HPA.

Files (relative to ``--out``)::

    jetstream.yaml                  Namespace, ServiceAccount, Deployment, Service (vllm.yaml for vLLM)
    prometheus/prometheus.yml       scrape config for your Prometheus (server pods + kube-state-metrics)
    prometheus/rules.yml            recording rules (percentiles, throughput, HBM fraction; vLLM's own)
    prometheus/config.yaml          both as a ConfigMap, and the namespaced Role to discover the pods
    prometheus-adapter/config.yaml  the adapter's rules
    prometheus-adapter/adapter.yaml prometheus-adapter, RBAC, APIServices
    hpa.yaml                        the HPA on the adapter's metrics

Pure.
"""

from __future__ import annotations

from jetscale.engine.config import ServerKind
from jetscale.hpa.types import HPASpec
from jetscale.k8s.adapters import adapter_rules, prometheus_adapter_objects
from jetscale.k8s.autoscaler import MetricsPath, hpa_manifest
from jetscale.k8s.bundle import FileKind, Placement, RenderedFile, config_file, manifest_file, placement
from jetscale.k8s.config import DeployConfig
from jetscale.k8s.metrics import HBMSource, Scope
from jetscale.k8s.prometheus import (
    dump_yaml,
    prometheus_objects,
    recording_rules,
    scrape_config,
    vllm_recording_rules,
)
from jetscale.k8s.workload import namespace, server_file, server_objects, server_title

__all__ = ["prometheus_files", "render_kubernetes", "server_scope"]


def server_scope(place: Placement, config: DeployConfig) -> Scope:
    """Metrics scraped by a plain Prometheus: the server pods export them, labelled namespace/pod/container."""
    return Scope(
        namespace=place.namespace,
        deployment=place.name,
        container=config.container,
        hbm_bytes_per_replica=config.tpu.hbm_bytes_per_replica if config.tpu else None,
        hbm_source=HBMSource.SERVER,
    )


def prometheus_files(
    place: Placement, config: DeployConfig, kind: ServerKind = ServerKind.JETSTREAM
) -> list[RenderedFile]:
    title = server_title(kind)
    prom = config_file(
        "prometheus/prometheus.yml",
        FileKind.PROMETHEUS_CONFIG,
        scrape_config(config, name=place.name, ns=place.namespace),
        header=f"Prometheus scrape config for the {title} servers (rendered by jetscale)",
    )
    rules = config_file(
        "prometheus/rules.yml",
        FileKind.PROMETHEUS_RULES,
        vllm_recording_rules(config) if kind is ServerKind.VLLM else recording_rules(config),
        header=f"Recording rules for the {title} dashboards (rendered by jetscale)",
    )
    objects = prometheus_objects(
        config, name=place.name, ns=place.namespace, prometheus_yml=prom.text, rules_yml=rules.text
    )
    return [prom, rules, manifest_file("prometheus/config.yaml", objects)]


def render_kubernetes(
    spec: HPASpec, config: DeployConfig, *, kind: ServerKind = ServerKind.JETSTREAM
) -> list[RenderedFile]:
    place = placement(spec, config)
    scope = server_scope(place, config)
    rules = adapter_rules(spec, scope)
    server = [
        namespace(place.namespace, restricted=config.security.run_as_non_root),
        *server_objects(config, name=place.name, ns=place.namespace, kind=kind),
    ]
    adapter = prometheus_adapter_objects(
        ns=config.adapter_namespace, prometheus_url=config.prometheus.url, config_yaml=dump_yaml(rules)
    )
    return [
        manifest_file(server_file(kind), server),
        *prometheus_files(place, config, kind),
        config_file(
            "prometheus-adapter/config.yaml",
            FileKind.ADAPTER_CONFIG,
            rules,
            header="prometheus-adapter rules (helm: the chart's `rules.custom` / `rules.external` values)",
        ),
        manifest_file("prometheus-adapter/adapter.yaml", adapter),
        manifest_file("hpa.yaml", [hpa_manifest(spec, path=MetricsPath.PROMETHEUS_ADAPTER, scope=scope)]),
    ]
