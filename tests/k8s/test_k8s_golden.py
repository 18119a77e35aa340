"""Golden files: every rendered file and both dashboards, byte for byte.

Regenerate after an intended change with ``JETSCALE_UPDATE_GOLDEN=1 .venv/bin/pytest tests/k8s``, then read
the diff before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from jetscale.hpa.spec import parse_hpa
from jetscale.k8s.config import parse_deploy_config
from jetscale.k8s.dashboards import cloud_monitoring_dashboard, grafana_dashboard
from jetscale.k8s.render import Target, render

GOLDEN = Path(__file__).with_name("golden")
INPUTS = GOLDEN / "inputs"
UPDATE = os.environ.get("JETSCALE_UPDATE_GOLDEN") == "1"

CASES = [
    pytest.param(Target.GKE, "hpa-tpu.yaml", "deploy-gke.yaml", id="gke-tpu"),
    pytest.param(Target.KUBERNETES, "hpa-backlog.yaml", "deploy-kubernetes.yaml", id="kubernetes-backlog"),
    pytest.param(Target.KEDA, "hpa-backlog.yaml", "deploy-kubernetes.yaml", id="keda-backlog"),
]


def _check(expected_dir: Path, produced: dict[str, str]) -> None:
    if UPDATE:
        for path, text in produced.items():
            (expected_dir / path).parent.mkdir(parents=True, exist_ok=True)
            (expected_dir / path).write_text(text, encoding="utf-8")
    on_disk = {p.relative_to(expected_dir).as_posix() for p in expected_dir.rglob("*") if p.is_file()}
    assert on_disk == set(produced), "file set changed: regenerate with JETSCALE_UPDATE_GOLDEN=1"
    for path, text in produced.items():
        assert (expected_dir / path).read_text(encoding="utf-8") == text, f"{path} differs from its golden file"


@pytest.mark.parametrize(("target", "hpa", "deploy"), CASES)
def test_rendering_matches_golden_files(target: Target, hpa: str, deploy: str) -> None:
    spec = parse_hpa((INPUTS / hpa).read_text(encoding="utf-8"))
    config = parse_deploy_config((INPUTS / deploy).read_text(encoding="utf-8"))
    produced = {file.path: file.text for file in render(target, spec, config)}
    _check(GOLDEN / f"{target.value}", produced)


def test_dashboards_match_golden_files() -> None:
    spec = parse_hpa((INPUTS / "hpa-tpu.yaml").read_text(encoding="utf-8"))
    produced = {
        "cloud-monitoring.json": json.dumps(cloud_monitoring_dashboard(spec, namespace="llm"), indent=2) + "\n",
        "grafana.json": json.dumps(grafana_dashboard(spec, namespace="llm"), indent=2) + "\n",
    }
    _check(GOLDEN / "dashboards", produced)
