"""``jetscale hpa explain``: the effective spec of the example manifests, and one clear line (exit 2) for a
missing file or a bad manifest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from jetscale import cli
from jetscale.cli import hpa

ROOT = Path(__file__).parent.parent
EXAMPLES = ROOT / "examples" / "hpa"
BAD = ROOT / "tests" / "data" / "bad_manifests"


def invoke(*args: str) -> tuple[int, str]:
    root = typer.Typer()
    root.add_typer(hpa.app, name="hpa")
    result = CliRunner().invoke(root, ["hpa", *args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("example", "metric_row"),
    [
        ("backlog.yaml", "Pods jetstream_prefill_backlog_size: AverageValue 5"),
        ("slots.yaml", "Pods jetstream_slots_used_percentage: AverageValue 900m"),
        ("hbm.yaml", "Pods memory_used_percentage: AverageValue 800m"),
    ],
)
def test_explain_examples(example: str, metric_row: str) -> None:
    code, out = invoke("explain", str(EXAMPLES / example))
    assert code == 0, out
    assert metric_row in out
    assert "Deployment/jetstream-server" in out
    for field in (
        "spec.minReplicas",
        "spec.maxReplicas",
        "spec.behavior.scaleUp.policies",
        "spec.behavior.scaleDown.stabilizationWindowSeconds",
        "spec.behavior.scaleDown.tolerance",
    ):
        assert field in out
    assert "Pods 4 per 15 s, Percent 100 per 15 s" in out
    assert "controller flag" in out  # the examples leave tolerance to --horizontal-pod-autoscaler-tolerance


def test_explain_shows_defaults_of_a_legacy_manifest(tmp_path: Path) -> None:
    path = tmp_path / "legacy.yaml"
    path.write_text(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: legacy}\n"
        "spec:\n  scaleTargetRef: {kind: Deployment, name: srv}\n  maxReplicas: 4\n"
    )
    code, out = invoke("explain", str(path))
    assert code == 0, out
    assert "Resource cpu: Utilization 80%" in out
    assert "legacy rules" in out
    assert "max(2 x current, 4) per sync" in out


def test_explain_scale_to_zero_flag(tmp_path: Path) -> None:
    path = tmp_path / "zero.yaml"
    path.write_text(
        "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: z}\n"
        "spec:\n  scaleTargetRef: {kind: Deployment, name: srv}\n  minReplicas: 0\n  maxReplicas: 4\n"
        "  metrics:\n  - type: External\n    external:\n      metric: {name: queue}\n"
        "      target: {type: Value, value: 10}\n"
    )
    code, out = invoke("explain", "--scale-to-zero", str(path))
    assert code == 0, out
    assert "External queue: Value 10" in out


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int | str | None, str]:
    with pytest.raises(SystemExit) as exited:
        cli.main(["hpa", *args])
    return exited.value.code, capsys.readouterr().err


def test_bad_manifest_exits_2_naming_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    path = BAD / "period_zero.yaml"
    code, err = run_main(capsys, "explain", str(path))
    assert code == 2
    assert err.count("\n") == 1
    assert "spec.behavior.scaleDown.policies[0].periodSeconds: must be in 1..1800 (got 0)" in err
    assert err.startswith("error: ")


def test_missing_file_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run_main(capsys, "explain", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "nope.yaml: no such file" in err


def test_zero_min_replicas_needs_the_gate(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_main(capsys, "explain", str(BAD / "min_replicas_zero.yaml"))
    assert code == 2
    assert "spec.minReplicas" in err and "HPAScaleToZero" in err


def test_console_script_reports_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("spec: [1,\n")
    script = Path(sys.executable).parent / "jetscale"
    done = subprocess.run([str(script), "hpa", "explain", str(path)], capture_output=True, text=True, check=False)
    assert done.returncode == 2
    assert "broken.yaml: line 2, column 1: invalid YAML" in done.stderr
    assert done.stdout == ""
