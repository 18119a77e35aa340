"""The metrics adapters that serve custom and external metrics to the HPA, with least-privilege RBAC.

- **Custom Metrics Stackdriver Adapter** (GKE): reads Cloud Monitoring (where Managed Prometheus writes the
  scraped series) through Workload Identity; serves ``custom.metrics.k8s.io`` and ``external.metrics.k8s.io``.
- **prometheus-adapter**: runs PromQL against a Prometheus API: on GKE the Managed Prometheus *frontend*
  (a small proxy that signs queries with the frontend's Workload Identity), elsewhere your Prometheus.
  Its rules are generated from the HPA's metrics, one per metric.

Each adapter gets its own ServiceAccount; cluster-wide it may only delegate authentication, read the
authentication ConfigMap, and get/list/watch the few resources it maps metrics onto. The HPA controller
gets read access to the two metrics APIs and nothing else. Pure: dicts in, dicts out.
"""

from __future__ import annotations

from jetscale.hpa.types import HPASpec
from jetscale.k8s.metrics import (
    HBM_USED,
    MetricKind,
    Scope,
    adapter_metric_name,
    classify,
    pod_aggregation,
)
from jetscale.k8s.workload import (
    Doc,
    container_security,
    labels,
    meta,
    pod_security,
    selector_labels,
    service_account,
)

__all__ = [
    "CMSA_IMAGE",
    "FRONTEND_IMAGE",
    "PROMETHEUS_ADAPTER_IMAGE",
    "adapter_rules",
    "frontend_objects",
    "frontend_url",
    "prometheus_adapter_objects",
    "stackdriver_adapter_objects",
]

CMSA_IMAGE = "gcr.io/gke-release/custom-metrics-stackdriver-adapter:v0.14.2-gke.0"
FRONTEND_IMAGE = "gke.gcr.io/prometheus-engine/frontend:v0.8.0-gke.4"
PROMETHEUS_ADAPTER_IMAGE = "registry.k8s.io/prometheus-adapter/prometheus-adapter:v0.12.0"
_NOBODY = 65534

CMSA = "custom-metrics-stackdriver-adapter"
PROM_ADAPTER = "prometheus-adapter"
FRONTEND = "gmp-frontend"


def stackdriver_adapter_objects(*, ns: str, gsa: str) -> list[Doc]:
    """The Custom Metrics Stackdriver Adapter: custom + external metrics from Cloud Monitoring."""
    wi = {"iam.gke.io/gcp-service-account": gsa}
    pod_labels = labels(CMSA, "metrics-adapter")
    container: Doc = {
        "name": "adapter",
        "image": CMSA_IMAGE,
        "command": ["/adapter", "--use-new-resource-model=true", "--fallback-for-container-metrics=true"],
        "ports": [{"name": "https", "containerPort": 443, "protocol": "TCP"}],
        "resources": {"requests": {"cpu": "250m", "memory": "200Mi"}, "limits": {"cpu": "500m", "memory": "400Mi"}},
        # the image runs as root and binds :443; it keeps only the capability to do that
        "securityContext": container_security(read_only_root=True, add=("NET_BIND_SERVICE",)),
    }
    deployment: Doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(CMSA, ns, "metrics-adapter"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(CMSA)},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "serviceAccountName": CMSA,
                    "securityContext": pod_security(run_as_non_root=False, run_as_user=None),
                    "containers": [container],
                },
            },
        },
    }
    return [
        _namespace(ns),
        service_account(CMSA, ns, "metrics-adapter", CMSA, wi) | {"automountServiceAccountToken": True},
        *_adapter_rbac(CMSA, ns, resources=("pods", "nodes", "nodes/stats")),
        deployment,
        _service(CMSA, ns, target="https"),
        *_api_services(CMSA, ns, custom_versions=("v1beta1", "v1beta2")),
    ]


def frontend_objects(*, ns: str, project_id: str, gsa: str) -> list[Doc]:
    """Managed Prometheus's query frontend: a Prometheus HTTP API over Cloud Monitoring, inside the cluster."""
    container: Doc = {
        "name": "frontend",
        "image": FRONTEND_IMAGE,
        "args": ["--web.listen-address=:9090", f"--query.project-id={project_id}"],
        "ports": [{"name": "web", "containerPort": 9090, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "web"}},
        "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": "web"}},
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "securityContext": container_security(read_only_root=True),
    }
    deployment: Doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(FRONTEND, ns, "prometheus-frontend"),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": selector_labels(FRONTEND)},
            "template": {
                "metadata": {"labels": labels(FRONTEND, "prometheus-frontend")},
                "spec": {
                    "serviceAccountName": FRONTEND,
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(run_as_non_root=True, run_as_user=1000),
                    "containers": [container],
                },
            },
        },
    }
    wi = {"iam.gke.io/gcp-service-account": gsa}
    return [
        service_account(FRONTEND, ns, "prometheus-frontend", FRONTEND, wi),
        deployment,
        _service(FRONTEND, ns, target="web", port=9090),
    ]


def frontend_url(ns: str) -> str:
    return f"http://{FRONTEND}.{ns}.svc:9090"


def adapter_rules(spec: HPASpec, scope: Scope) -> Doc:
    """prometheus-adapter's config: one rule per HPA metric (custom for server gauges, external for HBM)."""
    cluster = f',cluster="{scope.cluster}"' if scope.cluster else ""
    rules: list[Doc] = []
    external: list[Doc] = []
    seen: set[tuple[str, str]] = set()
    for metric in spec.metrics:
        kind = classify(metric, scope)
        name = adapter_metric_name(metric, scope)
        if (kind.value, name) in seen or kind in (MetricKind.RESOURCE, MetricKind.OBJECT):
            continue
        seen.add((kind.value, name))
        if kind is MetricKind.SERVER:
            rules.append(
                {
                    "seriesQuery": f'{name}{{namespace!="",pod!=""}}',
                    "resources": {"overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}},
                    "name": {"matches": f"^{name}$", "as": name},
                    "metricsQuery": f"{pod_aggregation(name)}(<<.Series>>{{<<.LabelMatchers>>{cluster}}}) "
                    "by (<<.GroupBy>>)",
                }
            )
            continue
        ns_label = scope.namespace_label if name == HBM_USED else "namespace"
        external.append(
            {
                "seriesQuery": f'{name}{{{ns_label}!=""}}',
                "resources": {"overrides": {ns_label: {"resource": "namespace"}}},
                "name": {"matches": f"^{name}$", "as": name},
                "metricsQuery": f"sum(<<.Series>>{{<<.LabelMatchers>>{cluster}}})",
            }
        )
    out: Doc = {"rules": rules}
    if external:
        out["externalRules"] = external
    return out


def prometheus_adapter_objects(*, ns: str, prometheus_url: str, config_yaml: str) -> list[Doc]:
    """prometheus-adapter with its rules in a ConfigMap, serving custom + external metrics."""
    container: Doc = {
        "name": "adapter",
        "image": PROMETHEUS_ADAPTER_IMAGE,
        "args": [
            "--secure-port=6443",
            "--cert-dir=/tmp/cert",
            f"--prometheus-url={prometheus_url}",
            "--metrics-relist-interval=1m",
            "--config=/etc/adapter/config.yaml",
        ],
        "ports": [{"name": "https", "containerPort": 6443, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "https", "scheme": "HTTPS"}},
        "livenessProbe": {"httpGet": {"path": "/livez", "port": "https", "scheme": "HTTPS"}},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
        "securityContext": container_security(read_only_root=True),
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/adapter", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    deployment: Doc = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(PROM_ADAPTER, ns, "metrics-adapter"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector_labels(PROM_ADAPTER)},
            "template": {
                "metadata": {"labels": labels(PROM_ADAPTER, "metrics-adapter")},
                "spec": {
                    "serviceAccountName": PROM_ADAPTER,
                    "securityContext": pod_security(run_as_non_root=True, run_as_user=_NOBODY),
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": PROM_ADAPTER}},
                        {"name": "tmp", "emptyDir": {}},
                    ],
                },
            },
        },
    }
    config_map: Doc = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": meta(PROM_ADAPTER, ns, "metrics-adapter"),
        "data": {"config.yaml": config_yaml},
    }
    return [
        _namespace(ns),
        service_account(PROM_ADAPTER, ns, "metrics-adapter", PROM_ADAPTER) | {"automountServiceAccountToken": True},
        *_adapter_rbac(PROM_ADAPTER, ns, resources=("namespaces", "pods")),
        config_map,
        deployment,
        _service(PROM_ADAPTER, ns, target="https"),
        *_api_services(PROM_ADAPTER, ns, custom_versions=("v1beta1", "v1beta2")),
    ]


def _namespace(ns: str) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns, "labels": {"app.kubernetes.io/managed-by": "jetscale"}},
    }


def _service(name: str, ns: str, *, target: str, port: int = 443) -> Doc:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(name, ns, "metrics-adapter"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector_labels(name),
            "ports": [{"name": target, "port": port, "targetPort": target, "protocol": "TCP"}],
        },
    }


def _adapter_rbac(name: str, ns: str, *, resources: tuple[str, ...]) -> list[Doc]:
    """Delegated authn, the authn ConfigMap, read-only access to what metrics map onto, HPA read access."""
    subject = [{"kind": "ServiceAccount", "name": name, "namespace": ns}]
    reader = f"jetscale:{name}:resource-reader"
    hpa_reader = f"jetscale:{name}:metrics-reader"
    cluster_meta = meta(reader, None, "metrics-adapter", name)
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta(f"jetscale:{name}:auth-delegator", None, "metrics-adapter", name),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:auth-delegator",
            },
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta(f"jetscale:{name}:auth-reader", "kube-system", "metrics-adapter", name),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "extension-apiserver-authentication-reader",
            },
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": cluster_meta,
            "rules": [{"apiGroups": [""], "resources": list(resources), "verbs": ["get", "list", "watch"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta(reader, None, "metrics-adapter", name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": reader},
            "subjects": subject,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": meta(hpa_reader, None, "metrics-adapter", name),
            "rules": [
                {
                    "apiGroups": ["custom.metrics.k8s.io", "external.metrics.k8s.io"],
                    "resources": ["*"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta(hpa_reader, None, "metrics-adapter", name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": hpa_reader},
            "subjects": [{"kind": "ServiceAccount", "name": "horizontal-pod-autoscaler", "namespace": "kube-system"}],
        },
    ]


def _api_services(name: str, ns: str, *, custom_versions: tuple[str, ...]) -> list[Doc]:
    groups = [("custom.metrics.k8s.io", version) for version in custom_versions]
    groups.append(("external.metrics.k8s.io", "v1beta1"))
    return [
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": meta(f"{version}.{group}", None, "metrics-adapter", name),
            "spec": {
                "group": group,
                "version": version,
                "service": {"name": name, "namespace": ns, "port": 443},
                # the adapters serve a self-signed certificate, as their upstream manifests do
                "insecureSkipTLSVerify": True,
                "groupPriorityMinimum": 100,
                "versionPriority": 200 if version == "v1beta2" else 100,
            },
        }
        for group, version in groups
    ]
