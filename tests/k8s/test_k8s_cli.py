"""``jetscale k8s``: render, dashboards and apply from the command line.

``apply`` is checked against a fake Kubernetes API server on 127.0.0.1 that answers discovery and records
each server-side apply, so the real ``kubernetes`` client runs end to end without a cluster.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlparse

import pytest
import typer
from typer.testing import CliRunner

from jetscale.cli.k8s import apply_documents, load_manifests, register
from jetscale.errors import ConfigError

INPUTS = Path(__file__).with_name("golden") / "inputs"


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Root."""

    register(app)
    return app


def _render(cli: typer.Typer, target: str, hpa: str, deploy: str, out: Path) -> None:
    args = ["k8s", "render", "--target", target, "--hpa", str(INPUTS / hpa), "--config", str(INPUTS / deploy)]
    result = CliRunner().invoke(cli, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "promtool checks" in result.output


def test_render_writes_every_file(cli: typer.Typer, tmp_path: Path) -> None:
    _render(cli, "gke", "hpa-tpu.yaml", "deploy-gke.yaml", tmp_path)
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == sorted(
        p.relative_to(INPUTS.parent / "gke").as_posix() for p in (INPUTS.parent / "gke").rglob("*") if p.is_file()
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--target", "helm"], "'--target' must be one of gke, kubernetes, keda (got 'helm')", id="target"),
        pytest.param(
            ["--target", "gke", "--config", "/nonexistent.yaml"], "'--config' must be a readable file", id="file"
        ),
    ],
)
def test_render_bad_input_is_a_config_error(cli: typer.Typer, tmp_path: Path, args: list[str], message: str) -> None:
    base = {"--target": "gke", "--hpa": str(INPUTS / "hpa-tpu.yaml"), "--config": str(INPUTS / "deploy-gke.yaml")}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [item for pair in base.items() for item in pair]
    result = CliRunner().invoke(cli, ["k8s", "render", *flat, "--out", str(tmp_path)])
    assert isinstance(result.exception, ConfigError)
    assert message in str(result.exception)


def test_dashboards_command_writes_two_json_files(cli: typer.Typer, tmp_path: Path) -> None:
    hpa = str(INPUTS / "hpa-tpu.yaml")
    result = CliRunner().invoke(cli, ["k8s", "dashboards", "--out", str(tmp_path), "--hpa", hpa])
    assert result.exit_code == 0, result.output
    cloud = json.loads((tmp_path / "cloud-monitoring.json").read_text())
    grafana = json.loads((tmp_path / "grafana.json").read_text())
    assert cloud["mosaicLayout"]["tiles"] and grafana["panels"]
    queries = [
        d["timeSeriesQuery"]["prometheusQuery"]
        for t in cloud["mosaicLayout"]["tiles"]
        for d in t["widget"]["xyChart"]["dataSets"]
    ]
    assert all('namespace=~"llm"' in q for q in queries), "the HPA's namespace filters every query"


def test_apply_without_kubeconfig_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    _render(_fresh_cli(), "kubernetes", "hpa-backlog.yaml", "deploy-kubernetes.yaml", tmp_path / "out")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "missing")}
    code = "import sys; from jetscale.cli import main; main(sys.argv[1:])"
    result = subprocess.run(
        [sys.executable, "-c", code, "k8s", "apply", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "'kubeconfig' must exist" in lines[0] and str(tmp_path / "missing") in lines[0]


def _fresh_cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """Root."""

    register(app)
    return app


def test_load_manifests_skips_files_that_are_not_kubernetes_objects(tmp_path: Path) -> None:
    _render(_fresh_cli(), "kubernetes", "hpa-backlog.yaml", "deploy-kubernetes.yaml", tmp_path)
    docs = load_manifests([tmp_path / "prometheus", tmp_path / "hpa.yaml"])
    assert [(path.name, doc["kind"]) for path, doc in docs] == [
        ("config.yaml", "ConfigMap"),
        ("config.yaml", "Role"),
        ("config.yaml", "RoleBinding"),
        ("hpa.yaml", "HorizontalPodAutoscaler"),
    ]
    with pytest.raises(ConfigError, match="no such path"):
        load_manifests([tmp_path / "nope"])


class _FakeApplier:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def apply(self, doc: Mapping[str, Any], *, dry_run: bool) -> str:
        self.calls.append((doc["kind"], dry_run))
        return "ok"


def test_apply_documents_applies_in_order_one_line_each() -> None:
    docs = [
        (Path("a.yaml"), {"kind": "Namespace", "metadata": {"name": "llm"}}),
        (Path("a.yaml"), {"kind": "Service", "metadata": {"name": "s", "namespace": "llm"}}),
    ]
    fake = _FakeApplier()
    lines = apply_documents(docs, fake, dry_run=True)
    assert fake.calls == [("Namespace", True), ("Service", True)]
    assert lines == ["Namespace llm (a.yaml): ok", "Service llm/s (a.yaml): ok"]


# ------------------------------------------------------------------------ a fake API server on 127.0.0.1

_RESOURCES = {
    "/api/v1": [
        ("namespaces", "Namespace", False),
        ("services", "Service", True),
        ("serviceaccounts", "ServiceAccount", True),
    ],
    "/apis/apps/v1": [("deployments", "Deployment", True)],
}


class _Api(BaseHTTPRequestHandler):
    patches: ClassVar[list[tuple[str, dict[str, list[str]], str]]] = []

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def _json(self, body: object, status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = urlparse(self.path).path
        if path == "/version":
            self._json({"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
        elif path == "/api":
            self._json({"kind": "APIVersions", "versions": ["v1"]})
        elif path == "/apis":
            version = {"groupVersion": "apps/v1", "version": "v1"}
            group = {"name": "apps", "versions": [version], "preferredVersion": version}
            self._json({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group]})
        elif path in _RESOURCES:
            verbs = ["get", "list", "create", "patch", "update", "delete"]
            resources = [
                {"name": name, "singularName": "", "namespaced": ns, "kind": kind, "verbs": verbs}
                for name, kind, ns in _RESOURCES[path]
            ]
            group_version = path.removeprefix("/apis/").removeprefix("/api/")
            self._json({"kind": "APIResourceList", "groupVersion": group_version, "resources": resources})
        else:
            self._json({"kind": "Status", "status": "Failure", "code": 404}, status=404)

    def do_PATCH(self) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length", "0"))
        body = json.loads(self.rfile.read(length) or b"{}")
        _Api.patches.append((url.path, parse_qs(url.query), self.headers.get("Content-Type", "")))
        if body.get("kind") == "Service" and body["metadata"]["name"] == "rejected":
            self._json(
                {"kind": "Status", "status": "Failure", "message": "spec.ports: Required value", "code": 422}, 422
            )
        else:
            self._json(body)


@pytest.fixture
def api_server() -> Iterator[str]:
    # the kubernetes client caches discovery in the temp dir: remove what this test adds
    cache_dir = Path(tempfile.gettempdir())
    before = set(cache_dir.glob("osrcp-*.json"))
    _Api.patches = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        for path in set(cache_dir.glob("osrcp-*.json")) - before:
            path.unlink(missing_ok=True)


def _kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "me", "user": {"token": "fake-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "me"}}],
        "current-context": "fake",
    }
    path.write_text(json.dumps(config))
    return path


def test_apply_dry_run_server_sends_server_side_apply_with_dry_run(
    cli: typer.Typer, tmp_path: Path, api_server: str
) -> None:
    _render(cli, "kubernetes", "hpa-backlog.yaml", "deploy-kubernetes.yaml", tmp_path / "out")
    kubeconfig = _kubeconfig(tmp_path, api_server)
    args = [
        "k8s",
        "apply",
        str(tmp_path / "out" / "jetstream.yaml"),
        "--dry-run=server",
        "--kubeconfig",
        str(kubeconfig),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    paths = [path for path, _, _ in _Api.patches]
    assert paths == [
        "/api/v1/namespaces/serving",
        "/api/v1/namespaces/serving/serviceaccounts/jetstream-server",
        "/apis/apps/v1/namespaces/serving/deployments/jetstream-server",
        "/api/v1/namespaces/serving/services/jetstream-server",
    ]
    for _, query, content_type in _Api.patches:
        assert query["dryRun"] == ["All"] and query["fieldManager"] == ["jetscale"]
        assert content_type.startswith("application/apply-patch+yaml")
    assert result.output.count("valid (server dry run)") == 4


def test_apply_reports_a_rejected_object_and_fails(cli: typer.Typer, tmp_path: Path, api_server: str) -> None:
    manifest = tmp_path / "svc.yaml"
    manifest.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: rejected, namespace: llm}\nspec: {}\n")
    args = ["k8s", "apply", str(manifest), "--kubeconfig", str(_kubeconfig(tmp_path, api_server))]
    result = CliRunner().invoke(cli, args)
    assert "rejected: spec.ports: Required value" in result.output
    assert result.exception is not None and "1 of 1 objects were not accepted" in str(result.exception)
