"""The model server as Kubernetes objects: its Namespace, ServiceAccount, Deployment and Service.

One container serves JetStream's HTTP API (``/v1/health`` for the probes), optionally gRPC, and the
Prometheus metrics port. On TPUs the pod asks for ``google.com/tpu`` chips and selects its node pool
with GKE's ``cloud.google.com/gke-tpu-accelerator`` and ``cloud.google.com/gke-tpu-topology`` labels;
on GPUs it asks for ``nvidia.com/gpu`` and selects ``cloud.google.com/gke-accelerator``.
A vLLM server (``kind=ServerKind.VLLM``, its arguments from ``jetscale.k8s.vllm``) also gets a memory-backed
``/dev/shm`` (tensor parallelism exchanges tensors through it), an optional Hugging Face token from the
Secret ``hf-secret`` (gated models such as Llama), and GKE's ``ai.gke.io/inference-server: vllm`` label.
Secure defaults: a namespace that enforces the restricted Pod Security Standard when the image runs as
non-root, no service-account token, no privilege escalation, no capabilities, RuntimeDefault seccomp,
and requests and limits on every container. Pure: dicts in, dicts out.
"""

from __future__ import annotations

from jetscale.engine.config import ServerKind
from jetscale.k8s.config import DeployConfig

__all__ = [
    "HF_SECRET",
    "HF_SECRET_KEY",
    "MANAGED_BY",
    "Doc",
    "container_security",
    "labels",
    "namespace",
    "pod_security",
    "selector_labels",
    "server_file",
    "server_objects",
    "server_title",
]

Doc = dict[str, object]
MANAGED_BY = "jetscale"
HF_SECRET = "hf-secret"  # kubectl create secret generic hf-secret --from-literal=hf_api_token=hf_...
HF_SECRET_KEY = "hf_api_token"


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


def server_file(kind: ServerKind) -> str:
    """The file the server's objects go to: ``jetstream.yaml`` or ``vllm.yaml``."""
    return f"{kind.value}.yaml"


def server_title(kind: ServerKind) -> str:
    return {ServerKind.JETSTREAM: "JetStream", ServerKind.VLLM: "vLLM"}[kind]


def server_objects(config: DeployConfig, *, name: str, ns: str, kind: ServerKind = ServerKind.JETSTREAM) -> list[Doc]:
    """ServiceAccount, Deployment and Service of the model server."""
    component = "model-server"
    return [
        service_account(name, ns, component, name),
        _deployment(config, name=name, ns=ns, kind=kind),
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


def _env(config: DeployConfig, kind: ServerKind) -> list[Doc]:
    env: list[Doc] = [{"name": key, "value": value} for key, value in sorted((config.env or {}).items())]
    if kind is ServerKind.VLLM and not any(item["name"] == "HF_TOKEN" for item in env):
        token = {"name": HF_SECRET, "key": HF_SECRET_KEY, "optional": True}
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": token}})
    return env


def _deployment(config: DeployConfig, *, name: str, ns: str, kind: ServerKind) -> Doc:
    requests: dict[str, str] = dict(config.resources.requests)
    limits: dict[str, str] = dict(config.resources.limits)
    if config.tpu is not None:
        requests["google.com/tpu"] = str(config.tpu.chips)
        limits["google.com/tpu"] = str(config.tpu.chips)
    if config.gpu is not None:
        requests["nvidia.com/gpu"] = str(config.gpu.count)
        limits["nvidia.com/gpu"] = str(config.gpu.count)
    container: Doc = {"name": config.container, "image": config.image}
    if config.command:
        container["command"] = list(config.command)
    if config.args:
        container["args"] = list(config.args)
    env = _env(config, kind)
    if env:
        container["env"] = env
    container |= {
        "ports": _ports(config),
        "resources": {"requests": requests, "limits": limits},
        "startupProbe": _probe(config, period_s=10, failures=max(1, config.startup_timeout_s // 10)),
        "readinessProbe": _probe(config, period_s=5, failures=3),
        "livenessProbe": _probe(config, period_s=15, failures=4),
        "securityContext": container_security(read_only_root=config.security.read_only_root_filesystem),
    }
    volumes: list[Doc] = []
    mounts: list[Doc] = []
    if config.security.read_only_root_filesystem:
        mounts.append({"name": "tmp", "mountPath": "/tmp"})
        volumes.append({"name": "tmp", "emptyDir": {}})
    if kind is ServerKind.VLLM:
        mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
        volumes.append({"name": "dshm", "emptyDir": {"medium": "Memory"}})
    if mounts:
        container["volumeMounts"] = mounts
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
    elif config.gpu is not None:
        pod_spec["nodeSelector"] = {"cloud.google.com/gke-accelerator": config.gpu.accelerator}
    pod_spec["containers"] = [container]
    if volumes:
        pod_spec["volumes"] = volumes
    pod_labels = labels(name, "model-server")
    if kind is ServerKind.VLLM:
        pod_labels["ai.gke.io/inference-server"] = "vllm"  # as GKE's vLLM samples label their pods
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta(name, ns, "model-server"),
        "spec": {
            # no replicas: the autoscaler owns the count, and re-applying must not reset it
            "selector": {"matchLabels": selector_labels(name)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
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
