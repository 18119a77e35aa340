"""Kubernetes manifests and dashboards for an autoscaled JetStream, rendered from an HPA manifest.

``render(target, spec, config)`` turns an ``HPASpec`` (``jetscale.hpa.spec.parse_hpa``) and a
``DeployConfig`` (``parse_deploy_config``) into the files of one target:

- ``gke``: the JetStream Deployment on TPU nodes, Service, PodMonitoring, and both metric paths of GKE:
  the Custom Metrics Stackdriver Adapter and prometheus-adapter over Managed Prometheus, each with its HPA;
- ``kubernetes``: a Prometheus scrape config and recording rules, prometheus-adapter, and the HPA;
- ``keda``: a KEDA ScaledObject with Prometheus triggers and a fallback.

Rendering is pure (``config``, ``metrics``, ``workload``, ``autoscaler``, ``adapters``, ``prometheus``,
``gke``, ``kubernetes``, ``keda``, ``dashboards``); ``validate`` checks a rendering against the
Kubernetes schemas, the CRD schemas in ``schemas/`` and promtool.
"""

from __future__ import annotations

from jetscale.k8s.bundle import FileKind, RenderedFile
from jetscale.k8s.config import DeployConfig, parse_deploy_config
from jetscale.k8s.dashboards import cloud_monitoring_dashboard, grafana_dashboard
from jetscale.k8s.render import Target, parse_target, render

__all__ = [
    "DeployConfig",
    "FileKind",
    "RenderedFile",
    "Target",
    "cloud_monitoring_dashboard",
    "grafana_dashboard",
    "parse_deploy_config",
    "parse_target",
    "render",
]
