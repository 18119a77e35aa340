"""The deploy config: what the HPA manifest does not say about a model server's deployment on a cluster.

An HPA names its target (a Deployment) and its metrics; to run that target jetscale also needs the server's
image and arguments, its ports, the TPU slice it runs on, its resources, and where the metrics flow (the
GKE project and cluster, or a Prometheus URL). This module reads that config (YAML text or a loaded mapping)
into a frozen ``DeployConfig``, with secure defaults, and refuses unknown or invalid fields with a
``ConfigError`` that names the field and the value. Pure: no I/O.

The defaults depend on the server kind (``parse_deploy_config(..., kind=ServerKind.VLLM)``): a vLLM
server has one port, 8000, for its OpenAI API, ``/health`` and ``/metrics``, runs as root in its images,
and may leave ``image`` unset (``jetscale.k8s.vllm`` then picks vLLM's image for the accelerator). A
``gpu`` section places a replica on a GKE GPU node pool (``cloud.google.com/gke-accelerator``).

Example (``examples/deploy/gke-v5e.yaml``)::

    name: maxengine-server
    namespace: llm
    image: us-docker.pkg.dev/cloud-tpu-images/inference/maxengine-server:v0.2.2
    args: [per_device_batch_size=4, prometheus_port=9100]
    tpu: {accelerator: tpu-v5-lite-podslice, topology: 2x4, chips: 8}
    gke: {project_id: my-project, cluster_name: my-cluster}
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from jetscale.engine.config import ServerKind
from jetscale.errors import ConfigError
from jetscale.safeload import load_yaml
from jetscale.units import parse_quantity

__all__ = [
    "HBM_BYTES_PER_CHIP",
    "DeployConfig",
    "GKEConfig",
    "GPUConfig",
    "KedaConfig",
    "Ports",
    "PrometheusConfig",
    "Resources",
    "Security",
    "TPUConfig",
    "parse_deploy_config",
]

# HBM per chip of the TPU node pools GKE labels with cloud.google.com/gke-tpu-accelerator.
HBM_BYTES_PER_CHIP: Mapping[str, int] = {
    "tpu-v4-podslice": 32 * 2**30,
    "tpu-v5-lite-podslice": 16 * 2**30,
    "tpu-v5-lite-device": 16 * 2**30,
    "tpu-v5p-slice": 95 * 2**30,
    "tpu-v6e-slice": 32 * 2**30,
}

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_TOPOLOGY = re.compile(r"^\d+(x\d+){1,2}$")
_VERSION = re.compile(r"^1\.(\d+)$")


@dataclass(frozen=True, slots=True, kw_only=True)
class Ports:
    """Container ports: HTTP (JetStream's ``/v1/health`` and ``/v1/generate``), gRPC (0: none), metrics.

    ``metrics`` may be the HTTP port, as for ``jetscale serve`` (``/metrics`` next to ``/v1/generate``):
    the pod then declares one port, ``http``, and it is the one scraped (``metrics_name``)."""

    http: int = 8000
    grpc: int = 9000
    metrics: int = 9100

    @property
    def metrics_name(self) -> str:
        """The name of the container port Prometheus scrapes."""
        return "http" if self.metrics == self.http else "metrics"


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """Requests and limits of the server container, as Kubernetes quantities (TPU chips are added apart)."""

    requests: Mapping[str, str]
    limits: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Security:
    """Pod hardening. ``run_as_non_root`` only where the image runs as a non-root user."""

    run_as_non_root: bool = True
    run_as_user: int = 1000
    read_only_root_filesystem: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class TPUConfig:
    """The TPU slice one replica runs on: the GKE node labels and ``google.com/tpu`` chips."""

    accelerator: str
    topology: str
    chips: int
    hbm_bytes_per_chip: int

    @property
    def hbm_bytes_per_replica(self) -> int:
        return self.chips * self.hbm_bytes_per_chip


@dataclass(frozen=True, slots=True, kw_only=True)
class GPUConfig:
    """The GPUs one replica runs on: GKE's ``cloud.google.com/gke-accelerator`` label and ``nvidia.com/gpu``."""

    accelerator: str  # nvidia-l4, nvidia-tesla-a100, nvidia-a100-80gb, nvidia-h100-80gb, ...
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class GKEConfig:
    """Google Cloud names for the metric adapters: the project, the cluster, the Workload Identity GSA."""

    project_id: str
    cluster_name: str
    adapter_gsa: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PrometheusConfig:
    """The Prometheus that scrapes the servers (kubernetes and keda targets)."""

    url: str = "http://prometheus.monitoring.svc:9090"
    namespace: str = "monitoring"
    service_account: str = "prometheus"


@dataclass(frozen=True, slots=True, kw_only=True)
class KedaConfig:
    """KEDA's ScaledObject knobs; ``fallback_replicas`` None means the HPA's ``minReplicas``."""

    polling_interval_s: int = 15
    failure_threshold: int = 3
    fallback_replicas: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeployConfig:
    """Everything but the autoscaling: ``name``/``namespace`` None mean the HPA's target and namespace."""

    image: str
    name: str | None = None
    namespace: str | None = None
    container: str = "jetstream"
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    ports: Ports = Ports()
    health_path: str = "/v1/health"
    metrics_path: str = "/"
    scrape_interval_s: int = 15
    startup_timeout_s: int = 900
    termination_grace_period_s: int = 120
    resources: Resources = Resources(requests={"cpu": "4", "memory": "16Gi"}, limits={"cpu": "8", "memory": "32Gi"})
    security: Security = Security()
    tpu: TPUConfig | None = None
    gpu: GPUConfig | None = None
    gke: GKEConfig | None = None
    prometheus: PrometheusConfig = PrometheusConfig()
    keda: KedaConfig = KedaConfig()
    adapter_namespace: str = "custom-metrics"
    kubernetes_version: str = "1.33"


_TOP = frozenset(
    {
        "name", "namespace", "image", "container", "command", "args", "env", "ports", "health_path",
        "metrics_path", "scrape_interval_s", "startup_timeout_s", "termination_grace_period_s", "resources",
        "security", "tpu", "gpu", "gke", "prometheus", "keda", "adapter_namespace", "kubernetes_version",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class _Defaults:
    """What a field not given means, per server kind."""

    image_required: bool = True
    container: str = "jetstream"
    ports: Ports = Ports()
    health_path: str = "/v1/health"
    metrics_path: str = "/"
    run_as_non_root: bool = True


_DEFAULTS: Mapping[ServerKind, _Defaults] = {
    ServerKind.JETSTREAM: _Defaults(),
    # vLLM's OpenAI server: one port (8000, vLLM's default) for the API, /health and /metrics; its
    # images (vllm/vllm-openai, vllm/vllm-tpu) run as root
    ServerKind.VLLM: _Defaults(
        image_required=False,
        container="vllm",
        ports=Ports(http=8000, grpc=0, metrics=8000),
        health_path="/health",
        metrics_path="/metrics",
        run_as_non_root=False,
    ),
}


def parse_deploy_config(
    source: str | Mapping[str, object], *, origin: str = "", kind: ServerKind = ServerKind.JETSTREAM
) -> DeployConfig:
    """A ``DeployConfig`` from YAML text or a loaded mapping; ``ConfigError`` names the first bad field.

    ``kind`` picks the defaults of the fields not given (see the module docstring); with ``ServerKind.VLLM``
    an unset ``image`` is the empty string, for ``jetscale.k8s.vllm`` to fill in."""
    prefix = f"{origin}: " if origin else ""
    loaded = load_yaml(source, what=origin or "config") if isinstance(source, str) else source
    try:
        return _Reader(_DEFAULTS[kind]).config(loaded)
    except ConfigError as exc:
        raise ConfigError(f"{prefix}{exc}") from None


class _Reader:
    """Reads one mapping level at a time; every error names the dotted field path and the value."""

    def __init__(self, defaults: _Defaults) -> None:
        self.defaults = defaults

    def config(self, doc: object) -> DeployConfig:
        top = self.mapping(doc, "", _TOP)
        if self.defaults.image_required or "image" in top:
            self.require(top, "image", "")
        ports = self.ports(top.get("ports"))
        tpu = self.tpu(top.get("tpu"))
        gpu = self.gpu(top.get("gpu"))
        if tpu is not None and gpu is not None:
            raise ConfigError(
                f"'gpu' must not be set with 'tpu': a replica runs on one kind of chip (got {gpu.accelerator!r} "
                f"and {tpu.accelerator!r})"
            )
        gke = self.gke(top.get("gke"))
        version = self.text(top.get("kubernetes_version", "1.33"), "kubernetes_version")
        if not _VERSION.match(version):
            raise ConfigError(f"'kubernetes_version' must be a minor version such as 1.33 (got {version!r})")
        return DeployConfig(
            image=self.text(top["image"], "image") if "image" in top else "",
            name=self.dns_label(top["name"], "name") if "name" in top else None,
            namespace=self.dns_label(top["namespace"], "namespace") if "namespace" in top else None,
            container=self.dns_label(top.get("container", self.defaults.container), "container"),
            command=self.strings(top.get("command", []), "command"),
            args=self.strings(top.get("args", []), "args"),
            env=self.env(top.get("env")),
            ports=ports,
            health_path=self.path(top.get("health_path", self.defaults.health_path), "health_path"),
            metrics_path=self.path(top.get("metrics_path", self.defaults.metrics_path), "metrics_path"),
            scrape_interval_s=self.integer(top.get("scrape_interval_s", 15), "scrape_interval_s", 5, 3600),
            startup_timeout_s=self.integer(top.get("startup_timeout_s", 900), "startup_timeout_s", 10, 86400),
            termination_grace_period_s=self.integer(
                top.get("termination_grace_period_s", 120), "termination_grace_period_s", 0, 86400
            ),
            resources=self.resources(top.get("resources")),
            security=self.security(top.get("security")),
            tpu=tpu,
            gpu=gpu,
            gke=gke,
            prometheus=self.prometheus(top.get("prometheus")),
            keda=self.keda(top.get("keda")),
            adapter_namespace=self.dns_label(top.get("adapter_namespace", "custom-metrics"), "adapter_namespace"),
            kubernetes_version=version,
        )

    # ----------------------------------------------------------------------------------- sections

    def ports(self, value: object) -> Ports:
        default = self.defaults.ports
        if value is None:
            return default
        raw = self.mapping(value, "ports", frozenset({"http", "grpc", "metrics"}))
        ports = Ports(
            http=self.integer(raw.get("http", default.http), "ports.http", 1, 65535),
            grpc=self.integer(raw.get("grpc", default.grpc), "ports.grpc", 0, 65535),
            metrics=self.integer(raw.get("metrics", default.metrics), "ports.metrics", 1, 65535),
        )
        used = [p for p in (ports.http, ports.grpc, ports.metrics if ports.metrics != ports.http else 0) if p]
        if len(set(used)) != len(used):
            raise ConfigError(f"'ports' must be different ports, metrics may be the http port (got {used})")
        return ports

    def resources(self, value: object) -> Resources:
        default = DeployConfig.__dataclass_fields__["resources"].default
        assert isinstance(default, Resources)
        if value is None:
            return default
        raw = self.mapping(value, "resources", frozenset({"requests", "limits"}))
        requests = self.quantities(raw.get("requests", default.requests), "resources.requests")
        limits = self.quantities(raw.get("limits", requests), "resources.limits")
        for key, request in requests.items():
            if key in limits and parse_quantity(limits[key]) < parse_quantity(request):
                raise ConfigError(
                    f"'resources.limits.{key}' must be >= resources.requests.{key} ({request}) (got {limits[key]})"
                )
        return Resources(requests=requests, limits=limits)

    def security(self, value: object) -> Security:
        non_root = self.defaults.run_as_non_root
        if value is None:
            return Security(run_as_non_root=non_root)
        raw = self.mapping(
            value, "security", frozenset({"run_as_non_root", "run_as_user", "read_only_root_filesystem"})
        )
        return Security(
            run_as_non_root=self.boolean(raw.get("run_as_non_root", non_root), "security.run_as_non_root"),
            run_as_user=self.integer(raw.get("run_as_user", 1000), "security.run_as_user", 1, 2**31 - 1),
            read_only_root_filesystem=self.boolean(
                raw.get("read_only_root_filesystem", False), "security.read_only_root_filesystem"
            ),
        )

    def tpu(self, value: object) -> TPUConfig | None:
        if value is None:
            return None
        raw = self.mapping(value, "tpu", frozenset({"accelerator", "topology", "chips", "hbm_bytes_per_chip"}))
        for key in ("accelerator", "topology", "chips"):
            self.require(raw, key, "tpu")
        accelerator = self.dns_label(raw["accelerator"], "tpu.accelerator")
        topology = self.text(raw["topology"], "tpu.topology")
        if not _TOPOLOGY.match(topology):
            raise ConfigError(f"'tpu.topology' must be a TPU topology such as 2x4 (got {topology!r})")
        chips = self.integer(raw["chips"], "tpu.chips", 1, 4096)
        if "hbm_bytes_per_chip" in raw:
            hbm = parse_quantity(raw["hbm_bytes_per_chip"], "tpu.hbm_bytes_per_chip")
            if hbm <= 0 or hbm.denominator != 1:
                raise ConfigError(f"'tpu.hbm_bytes_per_chip' must be a positive byte count such as 16Gi (got {hbm})")
            hbm_bytes = int(hbm)
        elif accelerator in HBM_BYTES_PER_CHIP:
            hbm_bytes = HBM_BYTES_PER_CHIP[accelerator]
        else:
            known = ", ".join(sorted(HBM_BYTES_PER_CHIP))
            raise ConfigError(
                f"'tpu.hbm_bytes_per_chip' must be set for an accelerator other than {known} (got {accelerator!r})"
            )
        return TPUConfig(accelerator=accelerator, topology=topology, chips=chips, hbm_bytes_per_chip=hbm_bytes)

    def gpu(self, value: object) -> GPUConfig | None:
        if value is None:
            return None
        raw = self.mapping(value, "gpu", frozenset({"accelerator", "count"}))
        for key in ("accelerator", "count"):
            self.require(raw, key, "gpu")
        accelerator = self.dns_label(raw["accelerator"], "gpu.accelerator")
        return GPUConfig(accelerator=accelerator, count=self.integer(raw["count"], "gpu.count", 1, 16))

    def gke(self, value: object) -> GKEConfig | None:
        if value is None:
            return None
        raw = self.mapping(value, "gke", frozenset({"project_id", "cluster_name", "adapter_gsa"}))
        for key in ("project_id", "cluster_name"):
            self.require(raw, key, "gke")
        project = self.text(raw["project_id"], "gke.project_id")
        if not re.match(r"^[a-z][-a-z0-9]{4,28}[a-z0-9]$", project):
            raise ConfigError(
                f"'gke.project_id' must be a Google Cloud project id such as my-project (got {project!r})"
            )
        default_gsa = f"jetscale-metrics@{project}.iam.gserviceaccount.com"
        return GKEConfig(
            project_id=project,
            cluster_name=self.text(raw["cluster_name"], "gke.cluster_name"),
            adapter_gsa=self.text(raw.get("adapter_gsa", default_gsa), "gke.adapter_gsa"),
        )

    def prometheus(self, value: object) -> PrometheusConfig:
        if value is None:
            return PrometheusConfig()
        raw = self.mapping(value, "prometheus", frozenset({"url", "namespace", "service_account"}))
        url = self.text(raw.get("url", PrometheusConfig().url), "prometheus.url")
        if not re.match(r"^https?://[^\s/]+", url):
            raise ConfigError(f"'prometheus.url' must be an http(s) URL (got {url!r})")
        return PrometheusConfig(
            url=url.rstrip("/"),
            namespace=self.dns_label(raw.get("namespace", "monitoring"), "prometheus.namespace"),
            service_account=self.dns_label(raw.get("service_account", "prometheus"), "prometheus.service_account"),
        )

    def keda(self, value: object) -> KedaConfig:
        if value is None:
            return KedaConfig()
        raw = self.mapping(value, "keda", frozenset({"polling_interval_s", "failure_threshold", "fallback_replicas"}))
        fallback = raw.get("fallback_replicas")
        return KedaConfig(
            polling_interval_s=self.integer(raw.get("polling_interval_s", 15), "keda.polling_interval_s", 1, 3600),
            failure_threshold=self.integer(raw.get("failure_threshold", 3), "keda.failure_threshold", 1, 1000),
            fallback_replicas=None
            if fallback is None
            else self.integer(fallback, "keda.fallback_replicas", 1, 2**31 - 1),
        )

    # ------------------------------------------------------------------------------------ scalars

    def mapping(self, value: object, path: str, allowed: frozenset[str]) -> Mapping[str, object]:
        where = path or "the deploy config"
        if not isinstance(value, Mapping):
            raise ConfigError(f"'{where}' must be a mapping (got {value!r})")
        for key in value:
            if key not in allowed:
                field = f"{path}.{key}" if path else str(key)
                close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ConfigError(f"'{field}' is not a known field (got {value[key]!r}){hint}")
        return {str(k): v for k, v in value.items()}

    def require(self, raw: Mapping[str, object], key: str, path: str) -> None:
        if raw.get(key) is None:
            field = f"{path}.{key}" if path else key
            raise ConfigError(f"'{field}' must be set (got {raw.get(key)!r})")

    def text(self, value: object, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"'{path}' must be a non-empty string (got {value!r})")
        return value

    def dns_label(self, value: object, path: str) -> str:
        text = self.text(value, path)
        if len(text) > 63 or not _DNS_LABEL.match(text):
            raise ConfigError(f"'{path}' must be a DNS-1123 label such as jetstream (got {value!r})")
        return text

    def path(self, value: object, path: str) -> str:
        text = self.text(value, path)
        if not text.startswith("/"):
            raise ConfigError(f"'{path}' must be an absolute URL path such as /v1/health (got {value!r})")
        return text

    def integer(self, value: object, path: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"'{path}' must be an integer in [{low}, {high}] (got {value!r})")
        return value

    def boolean(self, value: object, path: str) -> bool:
        if not isinstance(value, bool):
            raise ConfigError(f"'{path}' must be true or false (got {value!r})")
        return value

    def strings(self, value: object, path: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) for v in value):
            raise ConfigError(f"'{path}' must be a list of strings (got {value!r})")
        return tuple(str(v) for v in value)

    def env(self, value: object) -> Mapping[str, str] | None:
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ConfigError(f"'env' must be a mapping of names to strings (got {value!r})")
        env: dict[str, str] = {}
        for key, item in value.items():
            if not isinstance(key, str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key):
                raise ConfigError(f"'env' names must be environment variable names (got {key!r})")
            if isinstance(item, (Mapping, list)) or item is None:
                raise ConfigError(f"'env.{key}' must be a string (got {item!r})")
            env[key] = str(item).lower() if isinstance(item, bool) else str(item)
        return env

    def quantities(self, value: object, path: str) -> dict[str, str]:
        if not isinstance(value, Mapping) or not value:
            raise ConfigError(f"'{path}' must be a mapping of resource names to quantities (got {value!r})")
        out: dict[str, str] = {}
        for key, item in value.items():
            if key == "google.com/tpu":
                raise ConfigError(f"'{path}.{key}' must not be set: use tpu.chips (got {item!r})")
            if key == "nvidia.com/gpu":
                raise ConfigError(f"'{path}.{key}' must not be set: use gpu.count (got {item!r})")
            quantity = parse_quantity(item, f"{path}.{key}")
            if quantity <= 0:
                raise ConfigError(f"'{path}.{key}' must be a positive quantity (got {item!r})")
            out[str(key)] = str(item)
        return out
