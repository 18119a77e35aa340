"""The deploy config: defaults, and one clear ConfigError per bad field naming the field and the value."""

from __future__ import annotations

from typing import Any

import pytest

from jetscale.errors import ConfigError
from jetscale.k8s.config import HBM_BYTES_PER_CHIP, parse_deploy_config

MINIMAL: dict[str, Any] = {"image": "registry.example/jetstream:1"}


def test_minimal_config_has_secure_defaults() -> None:
    config = parse_deploy_config(MINIMAL)
    assert config.name is None and config.namespace is None, "both come from the HPA"
    assert (config.ports.http, config.ports.grpc, config.ports.metrics) == (8000, 9000, 9100)
    assert config.health_path == "/v1/health"
    assert config.security.run_as_non_root is True
    assert set(config.resources.requests) == {"cpu", "memory"} == set(config.resources.limits)
    assert config.tpu is None and config.gke is None


def test_tpu_hbm_defaults_from_the_accelerator_and_gke_gsa_from_the_project() -> None:
    config = parse_deploy_config(
        {
            **MINIMAL,
            "tpu": {"accelerator": "tpu-v6e-slice", "topology": "2x4", "chips": 8},
            "gke": {"project_id": "my-project", "cluster_name": "c1"},
        }
    )
    assert config.tpu is not None and config.gke is not None
    assert config.tpu.hbm_bytes_per_replica == 8 * HBM_BYTES_PER_CHIP["tpu-v6e-slice"]
    assert config.gke.adapter_gsa == "jetscale-metrics@my-project.iam.gserviceaccount.com"


def test_yaml_text_and_explicit_hbm_per_chip() -> None:
    text = "image: i\ntpu: {accelerator: tpu-v7x, topology: 2x2x1, chips: 4, hbm_bytes_per_chip: 192Gi}\n"
    config = parse_deploy_config(text, origin="deploy.yaml")
    assert config.tpu is not None and config.tpu.hbm_bytes_per_chip == 192 * 2**30


BAD = [
    pytest.param({}, "'image' must be set (got None)", id="missing-image"),
    pytest.param({**MINIMAL, "imgae": "x"}, "'imgae' is not a known field (got 'x'); did you mean 'image'?", id="typo"),
    pytest.param({**MINIMAL, "name": "Jet_Stream"}, "'name' must be a DNS-1123 label", id="bad-name"),
    pytest.param(
        {**MINIMAL, "ports": {"http": 0}}, "'ports.http' must be an integer in [1, 65535] (got 0)", id="port-0"
    ),
    pytest.param(
        {**MINIMAL, "ports": {"http": 9000}},
        "'ports' must be different ports, metrics may be the http port (got [9000, 9000, 9100])",
        id="dup",
    ),
    pytest.param({**MINIMAL, "health_path": "v1/health"}, "'health_path' must be an absolute URL path", id="rel-path"),
    pytest.param(
        {**MINIMAL, "tpu": {"accelerator": "tpu-v5-lite-podslice", "chips": 8}},
        "'tpu.topology' must be set",
        id="no-topology",
    ),
    pytest.param(
        {**MINIMAL, "tpu": {"accelerator": "tpu-v5-lite-podslice", "topology": "two", "chips": 8}},
        "'tpu.topology' must be a TPU topology such as 2x4 (got 'two')",
        id="bad-topology",
    ),
    pytest.param(
        {**MINIMAL, "tpu": {"accelerator": "tpu-unknown", "topology": "2x4", "chips": 8}},
        "'tpu.hbm_bytes_per_chip' must be set for an accelerator other than",
        id="unknown-accelerator",
    ),
    pytest.param(
        {**MINIMAL, "gke": {"project_id": "my-project"}}, "'gke.cluster_name' must be set (got None)", id="gke"
    ),
    pytest.param(
        {**MINIMAL, "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}},
        "'resources.limits.cpu' must be >= resources.requests.cpu (2) (got 1)",
        id="limit-below-request",
    ),
    pytest.param(
        {**MINIMAL, "resources": {"requests": {"google.com/tpu": 8}}},
        "'resources.requests.google.com/tpu' must not be set: use tpu.chips (got 8)",
        id="tpu-in-resources",
    ),
    pytest.param(
        {**MINIMAL, "security": {"run_as_non_root": "yes"}},
        "'security.run_as_non_root' must be true or false",
        id="bool",
    ),
    pytest.param(
        {**MINIMAL, "prometheus": {"url": "prometheus:9090"}}, "'prometheus.url' must be an http(s) URL", id="url"
    ),
    pytest.param(
        {**MINIMAL, "keda": {"fallback_replicas": 0}}, "'keda.fallback_replicas' must be an integer in [1,", id="fb"
    ),
    pytest.param(
        {**MINIMAL, "kubernetes_version": "v1.33"}, "'kubernetes_version' must be a minor version", id="version"
    ),
    pytest.param({**MINIMAL, "args": "serve"}, "'args' must be a list of strings (got 'serve')", id="args-string"),
    pytest.param(["image: x"], "'the deploy config' must be a mapping", id="not-a-mapping"),
]


@pytest.mark.parametrize(("raw", "message"), BAD)
def test_bad_field_is_named_with_its_value(raw: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_deploy_config(raw)
    assert message in str(info.value)


def test_origin_prefixes_the_message() -> None:
    with pytest.raises(ConfigError, match=r"^deploy\.yaml: 'image' must be set"):
        parse_deploy_config("name: x\n", origin="deploy.yaml")
    with pytest.raises(ConfigError, match=r"^deploy\.yaml: line 2, column 1: invalid YAML"):
        parse_deploy_config("image: [unclosed\n", origin="deploy.yaml")
