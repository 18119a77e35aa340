"""The JetStream server as Kubernetes objects: its Namespace, ServiceAccount, Deployment and Service.

One container serves JetStream's HTTP API (``/v1/health`` for the probes), optionally gRPC, and the
Prometheus metrics port. On TPUs the pod asks for ``google.com/tpu`` chips and selects its node pool
with GKE's ``cloud.google.com/gke-tpu-accelerator`` and ``cloud.google.com/gke-tpu-topology`` labels.
Secure defaults: a namespace that enforces the restricted Pod Security Standard when the image runs as
non-root, no service-account token, no privilege escalation, no capabilities, RuntimeDefault seccomp,
and requests and limits on every container. Pure: dicts in, dicts out.
"""

from __future__ import annotations

from jetscale.k8s.config import DeployConfig

__all__ = [
    "MANAGED_BY",
    "Doc",
    "container_security",
    "labels",
    "namespace",
    "pod_security",
    "selector_labels",
    "server_objects",
]

Doc = dict[str, object]
MANAGED_BY = "jetscale"


def selector_labels(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name}


def labels(name: str, component: str) -> dict[str, str]:
    return {
        **selector_labels(name),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def meta(name: str, namespace: str | None, component: str, app: str | None = None) -> Doc:
    out: Doc = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    out["labels"] = labels(app or name, component)
    return out


def namespace(name: str, *, restricted: bool) -> Doc:
    """A Namespace enforcing the restricted (or, for root images, baseline) Pod Security Standard."""
    level = "restricted" if restricted else "baseline"
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/managed-by": MANAGED_BY,
                "pod-security.kubernetes.io/enforce": level,
                "pod-security.kubernetes.io/warn": "restricted",
            },
        },
    }


def pod_security(*, run_as_non_root: bool, run_as_user: int | None) -> Doc:
    out: Doc = {"seccompProfile": {"type": "RuntimeDefault"}}
    if run_as_non_root:
        out["runAsNonRoot"] = True
        if run_as_user is not None:
            out["runAsUser"] = run_as_user
            out["runAsGroup"] = run_as_user
            out["fsGroup"] = run_as_user
    return out


def container_security(*, read_only_root: bool, add: tuple[str, ...] = ()) -> Doc:
    capabilities: Doc = {"drop": ["ALL"]}
    if add:
        capabilities["add"] = list(add)
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": capabilities,
    }


def service_account(name: str, ns: str, component: str, app: str, annotations: dict[str, str] | None = None) -> Doc:
    metadata = meta(name, ns, component, app)
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata, "automountServiceAccountToken": False}


def server_objects(config: DeployConfig, *, name: str, ns: str) -> list[Doc]:
    """ServiceAccount, Deployment and Service of the JetStream server."""
    component = "model-server"
    return [
        service_account(name, ns, component, name),
        _deployment(config, name=name, ns=ns),
        _service(config, name=name, ns=ns),
    ]


def _ports(config: DeployConfig) -> list[Doc]:
    ports: list[Doc] = [{"name": "http", "containerPort": config.ports.http, "protocol": "TCP"}]
    if config.ports.grpc:
        ports.append({"name": "grpc", "containerPort": config.ports.grpc, "protocol": "TCP"})
    if config.ports.metrics_name == "metrics":  # else /metrics is served on the http port
        ports.append({"name": "metrics", "containerPort": config.ports.metrics, "protocol": "TCP"})
    return ports


def _probe(config: DeployConfig, *, period_s: int, failures: int, timeout_s: int = 5) -> Doc:
    return {
        "httpGet": {"path": config.health_path, "port": "http"},
        "periodSeconds": period_s,
        "timeoutSeconds": timeout_s,
        "failureThreshold": failures,
    }


def _deployment(config: DeployConfig, *, name: str, ns: str) -> Doc:
    requests: dict[str, str] = dict(config.resources.requests)
    limits: dict[str, str] = dict(config.resources.limits)
    if config.tpu is not None:
        requests["google.com/tpu"] = str(config.tpu.chips)
        limits["google.com/tpu"] = str(config.tpu.chips)
    container: Doc = {"name": config.container, "image": config.image}
    if config.command:
        container["command"] = list(config.command)
    if config.args:
        container["args"] = list(config.args)
    if config.env:
        container["env"] = [{"name": key, "value": value} for key, value in sorted(config.env.items())]
    container |= {
        "ports": _ports(config),
        "resources": {"requests": requests, "limits": limits},
        "startupProbe": _probe(config, period_s=10, failures=max(1, config.startup_timeout_s // 10)),
        "readinessProbe": _probe(config, period_s=5, failures=3),
        "livenessProbe": _probe(config, period_s=15, failures=4),
        "securityContext": container_security(read_only_root=config.security.read_only_root_filesystem),
    }
    volumes: list[Doc] = []
    if config.security.read_only_root_filesystem:
        container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
        volumes.append({"name": "tmp", "emptyDir": {}})
    pod_spec: Doc = {
        "serviceAccountName": name,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": config.termination_grace_period_s,
        "securityContext": pod_security(
            run_as_non_root=config.security.run_as_non_root, run_as_user=config.security.run_as_user
        ),
    }
    if config.tpu is not None:
        pod_spec["nodeSelector"] = {
            "cloud.google.com/gke-tpu-accelerator": config.tpu.accelerator,
            "cloud.google.com/gke-tpu-topology": config.tpu.topology,
        }
    pod_spec["containers"] = [container]
    if volumes:
        pod_spec["volumes"] = volumes
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(name, ns, "model-server"),
        "spec": {
            # no replicas: the autoscaler owns the count, and re-applying must not reset it
            "selector": {"matchLabels": selector_labels(name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": labels(name, "model-server")}, "spec": pod_spec},
        },
    }


def _service(config: DeployConfig, *, name: str, ns: str) -> Doc:
    ports: list[Doc] = [{"name": "http", "port": config.ports.http, "targetPort": "http", "protocol": "TCP"}]
    if config.ports.grpc:
        ports.append({"name": "grpc", "port": config.ports.grpc, "targetPort": "grpc", "protocol": "TCP"})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta(name, ns, "model-server"),
        "spec": {"type": "ClusterIP", "selector": selector_labels(name), "ports": ports},
    }
