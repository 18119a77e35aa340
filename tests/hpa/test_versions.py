"""Versioned defaults: the feature gates of each supported Kubernetes release (``jetscale.hpa.versions``,
after the versioned specs of ``pkg/features/kube_features.go``), what they change in the reconcile, and
scale-to-zero validation by release (``pkg/apis/autoscaling/validation``: minReplicas 0 needs the gate,
and an Object or External metric)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import typer
from test_controller import CASES, CONFIG, NOW
from typer.testing import CliRunner

from jetscale.cli import hpa as hpa_cli
from jetscale.errors import ConfigError, ManifestError
from jetscale.hpa.controller import ControllerState, reconcile
from jetscale.hpa.spec import parse_hpa
from jetscale.hpa.types import ControllerConfig
from jetscale.hpa.versions import DEFAULT_KUBERNETES_VERSION, controller_config_for, gate_stage

BAD = Path(__file__).parent.parent / "data" / "bad_manifests"


@pytest.mark.parametrize(
    ("version", "scale_to_zero", "configurable_tolerance"),
    [
        ("1.33", False, False),  # HPAConfigurableTolerance alpha
        ("1.34", False, False),
        ("1.35", False, True),  # HPAConfigurableTolerance beta, on
        ("1.36", False, True),
        ("1.37", True, True),  # HPAScaleToZero beta, on; HPAConfigurableTolerance GA
    ],
)
def test_gate_defaults_by_release(version: str, scale_to_zero: bool, configurable_tolerance: bool) -> None:
    config = controller_config_for(version)
    assert (config.scale_to_zero, config.configurable_tolerance) == (scale_to_zero, configurable_tolerance)
    # the flags are not versioned: only the gates differ from the dataclass defaults
    gates = {"scale_to_zero": scale_to_zero, "configurable_tolerance": configurable_tolerance}
    assert config == replace(ControllerConfig(), **gates)


def test_the_default_release_is_1_37_and_the_dataclass_defaults_are_1_36s() -> None:
    assert DEFAULT_KUBERNETES_VERSION == "1.37"
    assert controller_config_for() == controller_config_for("1.37")
    assert controller_config_for("1.36") == ControllerConfig()
    assert (gate_stage("HPAScaleToZero", "1.36").stage, gate_stage("HPAScaleToZero", "1.37").stage) == ("Alpha", "Beta")
    assert gate_stage("HPAConfigurableTolerance", "1.37").locked


@pytest.mark.parametrize("spelling", ["v1.36", "1.36.4", " 1.36 "])
def test_release_spellings(spelling: str) -> None:
    assert controller_config_for(spelling) == controller_config_for("1.36")


def test_overrides_win_over_the_release() -> None:
    config = controller_config_for("1.36", scale_to_zero=True, tolerance=0.05)
    assert (config.scale_to_zero, config.tolerance, config.configurable_tolerance) == (True, 0.05, True)
    assert controller_config_for("1.37", scale_to_zero=False).scale_to_zero is False


@pytest.mark.parametrize(
    ("version", "overrides", "message"),
    [
        ("1.32", {}, r"^'kubernetes_version' must be one of 1\.33, 1\.34, 1\.35, 1\.36, 1\.37 \(got '1\.32'\)$"),
        ("1.38", {}, r"^'kubernetes_version' must be one of .* \(got '1\.38'\)$"),
        ("latest", {}, r"^'kubernetes_version' must be one of .* \(got 'latest'\)$"),
        ("1.36", {"tolerence": 0.2}, r"^'tolerence' must be a ControllerConfig field \(got tolerence=0\.2\)$"),
        (
            "1.37",
            {"configurable_tolerance": False},
            r"^'configurable_tolerance' must be True in Kubernetes 1\.37: HPAConfigurableTolerance is GA and "
            r"locked \(got False\)$",
        ),
    ],
)
def test_bad_versions_and_overrides_name_the_field_and_value(
    version: str, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        controller_config_for(version, **overrides)


def test_the_tolerance_gate_follows_the_release() -> None:
    """TestConfigurableTolerance's 1% scale-up tolerance: honoured from 1.35, ignored (the flag's 10%
    holds the count) in 1.33 and 1.34."""
    scenario = CASES["TestConfigurableTolerance/Scaling up because of a 1% configurable tolerance"].scenario
    desired = {}
    for version in ("1.34", "1.35", "1.37"):
        gates = controller_config_for(version)
        config = replace(CONFIG, configurable_tolerance=gates.configurable_tolerance)
        decision, _ = reconcile(scenario.spec(), ControllerState(), scenario.observation(), NOW, config)
        desired[version] = decision.desired_replicas
    assert desired == {"1.34": 3, "1.35": 4, "1.37": 4}


# ------------------------------------------------------------------------------ scale-to-zero validation


def manifest(min_replicas: int, metric: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "z"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "srv"},
            "minReplicas": min_replicas,
            "maxReplicas": 4,
            "metrics": [metric],
        },
    }


EXTERNAL = {"type": "External", "external": {"metric": {"name": "queue"}, "target": {"type": "Value", "value": 10}}}
PODS = {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue", "averageValue": 5}}}
CPU = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 60}}}


@pytest.mark.parametrize("version", ["1.33", "1.34", "1.35", "1.36"])
def test_min_replicas_zero_needs_the_gate_before_1_37(version: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_hpa(manifest(0, EXTERNAL), kubernetes_version=version)
    assert caught.value.paths == ("spec.minReplicas",)
    message = caught.value.errors[0].message
    assert message.startswith("must be >= 1 (got 0); 0 needs the HPAScaleToZero feature gate")
    assert f"off by default in Kubernetes {version}" in message
    assert parse_hpa(manifest(0, EXTERNAL), kubernetes_version=version, scale_to_zero=True).min_replicas == 0


def test_min_replicas_zero_with_an_external_metric_is_valid_in_1_37() -> None:
    assert parse_hpa(manifest(0, EXTERNAL), kubernetes_version="1.37").min_replicas == 0
    assert parse_hpa(manifest(0, EXTERNAL), kubernetes_version="v1.37.0").min_replicas == 0


def test_min_replicas_zero_with_the_gate_turned_off_in_1_37_says_so() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_hpa(manifest(0, EXTERNAL), kubernetes_version="1.37", scale_to_zero=False)
    assert caught.value.paths == ("spec.minReplicas",)
    assert "on by default in Kubernetes 1.37 but turned off here" in caught.value.errors[0].message


@pytest.mark.parametrize(("metric", "kind"), [(PODS, "Pods"), (CPU, "Resource")], ids=["pods", "resource"])
def test_min_replicas_zero_with_only_per_pod_metrics_names_the_field_and_why(metric: dict[str, Any], kind: str) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_hpa(manifest(0, metric), kubernetes_version="1.37")
    assert caught.value.paths == ("spec.metrics",)
    message = str(caught.value)
    assert "\n" not in message
    assert f"spec.metrics: must include an Object or External metric when spec.minReplicas is 0 (got only {kind}" in (
        message
    )
    assert "no pods to read" in message


def test_an_unsupported_release_is_a_config_error_in_parse_hpa() -> None:
    with pytest.raises(ConfigError, match=r"'kubernetes_version' must be one of .* \(got '1\.30'\)"):
        parse_hpa(manifest(1, EXTERNAL), kubernetes_version="1.30")


# ---------------------------------------------------------------------------------------------- CLI


def invoke(*args: str) -> tuple[int, str]:
    """The exit code, and the output or the error the command raised (the CLI's main prints it)."""
    root = typer.Typer()
    root.add_typer(hpa_cli.app, name="hpa")
    result = CliRunner().invoke(root, ["hpa", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output if result.exception is None else str(result.exception)


def test_cli_kubernetes_version_picks_the_gate(tmp_path: Path) -> None:
    path = tmp_path / "zero.yaml"
    path.write_text(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: z}\n"
        "spec:\n  scaleTargetRef: {kind: Deployment, name: srv}\n  minReplicas: 0\n  maxReplicas: 4\n"
        "  metrics:\n  - type: External\n    external:\n      metric: {name: queue}\n"
        "      target: {type: Value, value: 10}\n"
    )
    assert invoke("explain", str(path))[0] == 0  # 1.37 by default: the gate is on
    code, out = invoke("explain", "--kubernetes-version", "1.36", str(path))
    assert code != 0
    assert "spec.minReplicas: must be >= 1 (got 0)" in out and "Kubernetes 1.36" in out
    assert invoke("explain", "--kubernetes-version", "1.36", "--scale-to-zero", str(path))[0] == 0
    assert invoke("explain", "--no-scale-to-zero", str(path))[0] != 0


def test_cli_decide_uses_the_release_gates(tmp_path: Path) -> None:
    """From 1.37 a rescale writes the ScaledToZero condition (False, NotScaledToZero); 1.36 does not."""
    path = tmp_path / "ext.yaml"
    path.write_text(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: e}\n"
        "spec:\n  scaleTargetRef: {kind: Deployment, name: srv}\n  minReplicas: 1\n  maxReplicas: 8\n"
        "  metrics:\n  - type: External\n    external:\n      metric: {name: queue}\n"
        "      target: {type: AverageValue, averageValue: 10}\n"
    )
    outputs = {}
    for version in ("1.36", "1.37"):
        code, out = invoke(
            "decide", str(path), "--current", "2", "--metric", "queue=60", "--kubernetes-version", version, "--json"
        )
        assert code == 0, out
        outputs[version] = out
    assert "NotScaledToZero" in outputs["1.37"] and "NotScaledToZero" not in outputs["1.36"]
    code, out = invoke("decide", str(path), "--current", "2", "--metric", "queue=60", "--kubernetes-version", "2.0")
    assert code != 0
    assert "'kubernetes_version' must be one of 1.33, 1.34, 1.35, 1.36, 1.37 (got '2.0')" in out
