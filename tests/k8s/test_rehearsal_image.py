"""The rehearsal image: what ``k8s render --target kubernetes`` puts in the Deployment is what ``jetscale
serve`` accepts (parsed by the real CLI, the server built but not started), and the Dockerfile's command
runs the installed package. Docker itself is not needed."""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from jetscale.cli import _register, app, main
from jetscale.cli.serve import build_server
from jetscale.hpa.spec import parse_hpa
from jetscale.k8s.config import parse_deploy_config
from jetscale.k8s.render import Target, render

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "examples" / "deploy" / "kubernetes.yaml"
HPA = ROOT / "examples" / "hpa" / "backlog.yaml"


def _serve_context(args: Sequence[str]) -> Any:
    """``jetscale serve ARGS`` parsed and type-checked by the real command (its click context), not run."""
    _register()
    group: Any = typer.main.get_command(app)
    return group.commands["serve"].make_context("serve", list(args))


def _built(params: Mapping[str, Any]) -> None:
    """The server those flags describe, constructed (inert: no socket, no task) to check their values."""
    accepted = inspect.signature(build_server).parameters
    kwargs = {k: v for k, v in params.items() if k in accepted}
    kwargs["grpc_port"] = None if params["grpc_port"] == -1 else params["grpc_port"]
    server, replica = build_server(**kwargs)
    assert replica.decode_slots > 0 and server.config.http_port == params["port"]


def _deployment() -> tuple[Mapping[str, Any], Any]:
    config = parse_deploy_config(DEPLOY.read_text(encoding="utf-8"), origin=str(DEPLOY))
    files = render(Target.KUBERNETES, parse_hpa(HPA.read_text(encoding="utf-8")), config)
    docs = [d for f in files for d in f.documents if d.get("kind") == "Deployment"
            and d["metadata"]["name"] == "jetstream-server"]  # fmt: skip
    assert len(docs) == 1
    return docs[0], config


def test_the_rendered_container_args_are_what_serve_accepts() -> None:
    deployment, config = _deployment()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    args = container["args"]
    assert args[0] == "serve"  # the image's entrypoint is `jetscale`
    params = _serve_context(args[1:]).params
    assert params["host"] == "0.0.0.0"  # reachable from the Service, not only inside the pod
    assert params["port"] == config.ports.http and params["grpc_port"] == config.ports.grpc
    _built(params)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": params["port"], "grpc": params["grpc_port"]}  # /metrics is served on http
    assert container["image"] == "jetscale:0.1.0"


def test_the_old_example_flags_are_refused_by_the_parser() -> None:
    with pytest.raises(Exception, match="No such option: --http-port") as info:
        _serve_context(["--preset", "v5e-8/llama2-7b", "--http-port", "8000", "--metrics-port", "9100"])
    assert type(info.value).__name__ == "NoSuchOption"


def test_prometheus_scrapes_the_port_that_serves_metrics() -> None:
    config = parse_deploy_config(DEPLOY.read_text(encoding="utf-8"), origin=str(DEPLOY))
    files = render(Target.KUBERNETES, parse_hpa(HPA.read_text(encoding="utf-8")), config)
    scrape = next(f.documents[0] for f in files if f.path.endswith("prometheus.yml"))
    keep = [r for r in scrape["scrape_configs"][0]["relabel_configs"]
            if r.get("source_labels") == ["__meta_kubernetes_pod_container_port_name"]]  # fmt: skip
    assert keep == [{"source_labels": ["__meta_kubernetes_pod_container_port_name"], "regex": "http",
                     "action": "keep"}]  # fmt: skip


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", dockerfile)  # line continuations
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_the_dockerfile_runs_the_installed_package_as_a_non_root_user() -> None:
    steps = _instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM") :]  # the runtime stage
    assert re.match(r"python:\$\{PYTHON_VERSION\}-slim$", final[0][1])
    assert re.search(r"PYTHON_VERSION=3\.11\b", dict(steps)["ARG"])
    user = next(rest for word, rest in final if word == "USER")
    uid = int(user.split(":")[0])
    assert uid >= 1000  # numeric, so Kubernetes' runAsNonRoot can check it
    entrypoint = json.loads(next(rest for word, rest in final if word == "ENTRYPOINT"))
    command = json.loads(next(rest for word, rest in final if word == "CMD"))
    assert entrypoint == ["jetscale"] and command[0] == "serve"
    # nothing is fetched at run time: no pip, no curl, no wget after the build stage
    runtime = " ".join(rest for word, rest in final if word in ("RUN", "CMD", "ENTRYPOINT", "HEALTHCHECK"))
    assert not re.search(r"\b(pip|curl|wget|apt-get)\b", runtime)
    # the command line itself, with the console script of this venv in place of the image's
    script = Path(sys.executable).with_name(entrypoint[0])
    done = subprocess.run([str(script), *command, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Serve one JetStream-compatible replica" in done.stdout
    params = _serve_context(command[1:]).params
    assert params["host"] == "0.0.0.0"
    _built(params)
    deployment, _ = _deployment()
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == uid


def test_a_namespace_conflict_between_hpa_and_deploy_config_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    hpa = tmp_path / "hpa.yaml"
    doc = yaml.safe_load(HPA.read_text(encoding="utf-8"))
    doc["metadata"]["namespace"] = "default"  # written out, as `kubectl get -o yaml` or tune would
    hpa.write_text(yaml.safe_dump(doc), encoding="utf-8")
    args = ["k8s", "render", "--target", "kubernetes", "--config", str(DEPLOY), "--out", str(tmp_path / "out"),
            "--no-validate"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--hpa", str(hpa)])
    assert exit_.value.code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"'namespace' of {DEPLOY} ('llm') contradicts the HPA's metadata.namespace in {hpa} ('default')" in err
    assert not (tmp_path / "out").exists()
    # the example HPA names no namespace: the deploy config's applies, and --json lists what was written
    with pytest.raises(SystemExit) as exit_:
        main([*args, "--hpa", str(HPA), "--json"])
    assert exit_.value.code in (0, None)
    written = json.loads(capsys.readouterr().out)
    assert written["command"] == "k8s render" and written["namespace"] == "llm"
    paths = {Path(f["path"]).name for f in written["files"]}
    assert "jetstream.yaml" in paths
    assert all(Path(f["path"]).is_file() for f in written["files"])
