"""``--target gke``: the model server on GKE, autoscaled on Managed Prometheus metrics by either adapter.

Files (relative to ``--out``)::

    jetstream.yaml                      Namespace, ServiceAccount, Deployment (TPU node selectors), Service
                                        (vllm.yaml for a vLLM server: TPU or GPU node selectors)
    podmonitoring.yaml                  server metrics (+ the TPU device plugin's, when HBM is scaled on)
    stackdriver-adapter/adapter.yaml    Custom Metrics Stackdriver Adapter, RBAC, APIServices
    stackdriver-adapter/hpa.yaml        HPA on prometheus.googleapis.com|<metric>|gauge (+ HBM External)
    prometheus-adapter/adapter.yaml     Managed Prometheus frontend + prometheus-adapter, RBAC, APIServices
    prometheus-adapter/config.yaml      the adapter's rules (also inside adapter.yaml's ConfigMap)
    prometheus-adapter/hpa.yaml         HPA on the adapter's metrics

Apply ``jetstream.yaml`` (``vllm.yaml``) and ``podmonitoring.yaml``, then one of the two adapter folders.
For vLLM the Stackdriver adapter's HPA names ``prometheus.googleapis.com|vllm:<gauge>|gauge``, as GKE's
vLLM samples do, and prometheus-adapter serves each ``vllm:`` gauge under its own name. Pure.
"""

from __future__ import annotations

from jetscale.engine.config import ServerKind
from jetscale.errors import ConfigError
from jetscale.hpa.types import HPASpec
from jetscale.k8s.adapters import (
    adapter_rules,
    frontend_objects,
    frontend_url,
    prometheus_adapter_objects,
    stackdriver_adapter_objects,
)
from jetscale.k8s.autoscaler import MetricsPath, hpa_manifest
from jetscale.k8s.bundle import FileKind, RenderedFile, config_file, manifest_file, placement
from jetscale.k8s.config import DeployConfig
from jetscale.k8s.metrics import HBMSource, MetricKind, Scope, classify
from jetscale.k8s.prometheus import dump_yaml, pod_monitorings
from jetscale.k8s.workload import namespace, server_file, server_objects

__all__ = ["render_gke"]


def render_gke(spec: HPASpec, config: DeployConfig, *, kind: ServerKind = ServerKind.JETSTREAM) -> list[RenderedFile]:
    if config.gke is None:
        raise ConfigError("'gke' must be set in the deploy config for --target gke (got None)")
    gke = config.gke
    place = placement(spec, config)
    scope = Scope(
        namespace=place.namespace,
        deployment=place.name,
        container=config.container,
        cluster=gke.cluster_name,
        hbm_bytes_per_replica=config.tpu.hbm_bytes_per_replica if config.tpu else None,
        hbm_source=HBMSource.GKE_DEVICE_PLUGIN,
    )
    uses_hbm = any(classify(m, scope) in (MetricKind.HBM_BYTES, MetricKind.HBM_FRACTION) for m in spec.metrics)
    rules = adapter_rules(spec, scope)
    rules_yaml = dump_yaml(rules)
    adapter_ns = config.adapter_namespace
    server = [
        namespace(place.namespace, restricted=config.security.run_as_non_root),
        *server_objects(config, name=place.name, ns=place.namespace, kind=kind),
    ]
    prometheus_adapter = prometheus_adapter_objects(
        ns=adapter_ns, prometheus_url=frontend_url(adapter_ns), config_yaml=rules_yaml
    )
    frontend = frontend_objects(ns=adapter_ns, project_id=gke.project_id, gsa=gke.adapter_gsa)
    return [
        manifest_file(server_file(kind), server),
        manifest_file(
            "podmonitoring.yaml",
            pod_monitorings(
                config, name=place.name, ns=place.namespace, tpu_metrics=uses_hbm and config.tpu is not None
            ),
        ),
        manifest_file(
            "stackdriver-adapter/adapter.yaml", stackdriver_adapter_objects(ns=adapter_ns, gsa=gke.adapter_gsa)
        ),
        manifest_file("stackdriver-adapter/hpa.yaml", [hpa_manifest(spec, path=MetricsPath.STACKDRIVER, scope=scope)]),
        # the namespace first, then the frontend the adapter queries, then the adapter
        manifest_file("prometheus-adapter/adapter.yaml", [prometheus_adapter[0], *frontend, *prometheus_adapter[1:]]),
        config_file(
            "prometheus-adapter/config.yaml",
            FileKind.ADAPTER_CONFIG,
            rules,
            header="prometheus-adapter rules (helm: the chart's `rules.custom` / `rules.external` values)",
        ),
        manifest_file(
            "prometheus-adapter/hpa.yaml", [hpa_manifest(spec, path=MetricsPath.PROMETHEUS_ADAPTER, scope=scope)]
        ),
    ]
