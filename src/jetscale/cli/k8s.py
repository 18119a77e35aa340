"""``jetscale k8s``: render the manifests of an autoscaled JetStream or vLLM server, its dashboards, and apply them.

``render`` and ``dashboards`` read the HPA manifest and the deploy config, call the pure renderers of
``jetscale.k8s``, check the result (Kubernetes and CRD schemas; promtool when installed) and write files.
The server kind is the replica config's (``--replica FILE``, ``--preset NAME``, or a tune bundle's
``replica.yaml``): ``stack: vllm`` renders a vLLM server with its arguments from the replica config;
anything else, or no replica config, renders JetStream as the deploy config says.
``apply`` sends manifests to the cluster of your kubeconfig with server-side apply, by default as a
server-side dry run; it imports the ``kubernetes`` client only when it runs.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer

from jetscale.cli.output import make_console, print_json
from jetscale.engine.config import ReplicaConfig, ServerKind
from jetscale.errors import ConfigError, ServingError
from jetscale.hpa.spec import load_manifest, parse_hpa
from jetscale.hpa.types import HPASpec
from jetscale.k8s.bundle import placement
from jetscale.k8s.config import DeployConfig, parse_deploy_config
from jetscale.k8s.dashboards import cloud_monitoring_dashboard, grafana_dashboard
from jetscale.k8s.render import parse_target, render
from jetscale.safeload import load_yaml_all

__all__ = ["Applier", "apply_documents", "k8s_app", "load_manifests", "register"]

k8s_app = typer.Typer(
    help="Kubernetes manifests, dashboards and apply for an autoscaled JetStream or vLLM server.",
    no_args_is_help=True,
)
console = make_console()  # full width in pipes; quiet under --json (the document is stdout's only text)
err_console = make_console(stderr=True)


def register(app: typer.Typer) -> None:
    """Add ``k8s`` to the ``jetscale`` app."""
    app.add_typer(k8s_app, name="k8s")


def _read(path: Path, flag: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"'{flag}' must be a readable file (got {str(path)!r}: {why})") from None


def _inputs(
    hpa: Path, config: Path | None, kind: ServerKind = ServerKind.JETSTREAM
) -> tuple[HPASpec, DeployConfig | None]:
    text = _read(hpa, "--hpa")
    spec = parse_hpa(text, origin=str(hpa))
    deploy = (
        parse_deploy_config(_read(config, "--config"), origin=str(config), kind=kind) if config is not None else None
    )
    if deploy is not None:
        _same_namespace(load_manifest(text, origin=str(hpa)), deploy, hpa=hpa, config=config)
    return spec, deploy


def _same_namespace(manifest: Mapping[str, Any], deploy: DeployConfig, *, hpa: Path, config: Path | None) -> None:
    """An HPA that names its namespace keeps it: a deploy config naming another one is refused, never
    silently preferred (an HPA without ``metadata.namespace`` takes the config's)."""
    meta = manifest.get("metadata")
    given = meta.get("namespace") if isinstance(meta, Mapping) else None
    if given is not None and deploy.namespace is not None and given != deploy.namespace:
        raise ConfigError(
            f"'namespace' of {config} ({deploy.namespace!r}) contradicts the HPA's metadata.namespace in {hpa} "
            f"({given!r}): make them agree, or drop one of them"
        )


def _replica(preset: str | None, replica: Path | None, bundled: ReplicaConfig | None) -> ReplicaConfig | None:
    """The replica config that picks the server kind: ``--replica``/``--preset``, else a bundle's, else None."""
    if preset is None and replica is None:
        return bundled
    if bundled is not None:
        given = f"--preset {preset}" if preset is not None else f"--replica {replica}"
        raise ConfigError(
            f"'--replica' and '--preset' must not be given with a tune bundle: its replica.yaml is the shape it "
            f"was tuned at (got {given})"
        )
    from jetscale.sim.options import one_replica_option

    return one_replica_option(preset, replica)


_REPLICA_HELP = "Replica YAML (docs/replica.md): its stack picks the server kind (stack: vllm renders vLLM)."
_PRESET_HELP = "Replica preset, instead of --replica (with vLLM presets, renders vLLM)."


@k8s_app.command("render")
def render_command(
    target: Annotated[str, typer.Option("--target", help="gke, kubernetes or keda")],
    config: Annotated[Path, typer.Option("--config", help="The deploy config (image, TPU, ports, GKE...).")],
    out: Annotated[Path, typer.Option("--out", help="Directory to write the files to.")],
    hpa: Annotated[Path | None, typer.Option("--hpa", help="The autoscaling/v2 HPA manifest.")] = None,
    replica: Annotated[Path | None, typer.Option("--replica", help=_REPLICA_HELP)] = None,
    preset: Annotated[str | None, typer.Option("--preset", help=_PRESET_HELP)] = None,
    bundle: Annotated[
        Path | None,
        typer.Option("--bundle", help="A jetscale tune output (DIR): its HPA, at the replica shape it was tuned at."),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Render even when the deploy config contradicts the bundle (warns).")
    ] = False,
    kubernetes_version: Annotated[
        str | None, typer.Option("--kubernetes-version", help="Schemas to validate against (default: config's).")
    ] = None,
    validate: Annotated[bool, typer.Option("--validate/--no-validate", help="Check schemas (and promtool).")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="List the files written as JSON on stdout, only.")] = False,
) -> None:
    """Render Deployment, Service, metrics pipeline and HPA (or ScaledObject) for a cluster.

    With a tune bundle (``--bundle DIR``, or ``--hpa`` naming a bundle's HPA) the server's arguments are
    checked against the replica shape the HPA was tuned at and completed with it (``jetscale.k8s.tuned``).
    A vLLM replica config (``--replica``, ``--preset`` or the bundle's) renders a vLLM server whose
    arguments all come from it (``jetscale.k8s.vllm``).
    """
    from jetscale.tune.bundle import hpa_and_bundle

    console.quiet = json_out
    chosen = parse_target(target)
    hpa_path, tuned = hpa_and_bundle(hpa, bundle)
    server = _replica(preset, replica, tuned.replica if tuned is not None else None)
    kind = server.kind if server is not None else ServerKind.JETSTREAM
    spec, deploy = _inputs(hpa_path, config, kind)
    assert deploy is not None
    if tuned is not None and kind is ServerKind.JETSTREAM:
        from jetscale.k8s.tuned import deploy_with_shape

        deploy, conflicts = deploy_with_shape(
            tuned.shape, deploy, origin=str(config), bundle=str(tuned.manifest.parent), force=force
        )
        for conflict in conflicts:
            err_console.print(f"[bold red]WARNING (--force):[/] {conflict.describe()}", soft_wrap=True)
        if conflicts:
            err_console.print(
                f"[bold red]WARNING:[/] the HPA of {tuned.manifest.parent} was tuned at {tuned.shape.describe()}; "
                "rendered as the deploy config says, the promised cost and SLO do not hold",
                soft_wrap=True,
            )
        console.print(f"tuned shape from {tuned.replica_file}: {tuned.shape.describe()}", soft_wrap=True)
    files = render(chosen, spec, deploy, server)
    checked: dict[str, object] | None = None
    if validate:
        from jetscale.k8s.validate import find_promtool, validate_rendering

        try:
            promtool: str | None = find_promtool()
        except ConfigError:
            promtool = None
        version = kubernetes_version or deploy.kubernetes_version
        report = validate_rendering(files, kubernetes_version=version, promtool=promtool)
        checked = {"kubernetes_version": report.kubernetes_version, "kubernetes_objects": report.kubernetes_objects,
                   "custom_resources": report.custom_resources,
                   "promtool_checks": report.promtool_checks if promtool else None}  # fmt: skip
        console.print(
            f"validated {report.kubernetes_objects} objects against Kubernetes {report.kubernetes_version} schemas, "
            f"{report.custom_resources} custom resources against their CRD schemas"
            + (f", {report.promtool_checks} promtool checks" if promtool else "; promtool not found, not run")
        )
    for file in files:
        path = out / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(file.text, encoding="utf-8")
        console.print(f"wrote {path}")
    if json_out:
        print_json(
            {
                "command": "k8s render",
                "target": chosen.value,
                "server": kind.value,
                "namespace": placement(spec, deploy).namespace,
                "validated": checked,
                "files": [{"path": str(out / f.path), "kind": f.kind.value,
                           "objects": [f"{d.get('kind')}/{_name(d)}" for d in f.documents if "kind" in d]}
                          for f in files],
            }
        )  # fmt: skip


def _name(doc: Mapping[str, Any]) -> str:
    meta = doc.get("metadata")
    return str(meta.get("name")) if isinstance(meta, Mapping) else "?"


@k8s_app.command("dashboards")
def dashboards_command(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the dashboards to.")],
    hpa: Annotated[Path | None, typer.Option("--hpa", help="Draw this HPA's targets and replicas.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="Deploy config (for the namespace).")] = None,
    replica: Annotated[Path | None, typer.Option("--replica", help=_REPLICA_HELP)] = None,
    preset: Annotated[str | None, typer.Option("--preset", help=_PRESET_HELP)] = None,
    json_out: Annotated[bool, typer.Option("--json", help="List the files written as JSON on stdout, only.")] = False,
) -> None:
    """Write a Cloud Monitoring and a Grafana dashboard for the server's metrics (JetStream or vLLM) and the HPA."""
    console.quiet = json_out
    server = _replica(preset, replica, None)
    kind = server.kind if server is not None else ServerKind.JETSTREAM
    spec: HPASpec | None = None
    namespace: str | None = None
    if hpa is not None:
        spec, deploy = _inputs(hpa, config, kind)
        namespace = placement(spec, deploy).namespace if deploy is not None else spec.namespace
    elif config is not None:
        namespace = parse_deploy_config(_read(config, "--config"), origin=str(config), kind=kind).namespace
    out.mkdir(parents=True, exist_ok=True)
    for name, doc in (
        ("cloud-monitoring.json", cloud_monitoring_dashboard(spec, namespace=namespace or ".*", kind=kind)),
        ("grafana.json", grafana_dashboard(spec, namespace=namespace, kind=kind)),
    ):
        path = out / name
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {path}")
    if json_out:
        names = ("cloud-monitoring.json", "grafana.json")
        print_json(
            {
                "command": "k8s dashboards",
                "server": kind.value,
                "namespace": namespace,
                "files": [str(out / n) for n in names],
            }
        )


# ------------------------------------------------------------------------------------------------ apply


class Applier(Protocol):
    """Applies one object; returns what the server answered in a few words."""

    def apply(self, doc: Mapping[str, Any], *, dry_run: bool) -> str: ...


def load_manifests(paths: Sequence[Path]) -> list[tuple[Path, Mapping[str, Any]]]:
    """The Kubernetes objects of YAML files and of the YAML files directly inside directories.

    Files that are not Kubernetes objects (a prometheus.yml, adapter rules) are skipped.
    """
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            raise ConfigError(f"'PATHS' must be manifest files or directories (got {str(path)!r}: no such path)")
    out: list[tuple[Path, Mapping[str, Any]]] = []
    for file in files:
        docs = [doc for doc in load_yaml_all(_read(file, "PATHS"), what=str(file)) if doc is not None]
        if docs and all(isinstance(doc, Mapping) and "apiVersion" in doc and "kind" in doc for doc in docs):
            out += [(file, doc) for doc in docs]
    return out


def apply_documents(docs: Iterable[tuple[Path, Mapping[str, Any]]], applier: Applier, *, dry_run: bool) -> list[str]:
    """Apply every object in order; one line per object."""
    lines = []
    for file, doc in docs:
        meta = doc.get("metadata") or {}
        where = f"{meta.get('namespace')}/" if meta.get("namespace") else ""
        result = applier.apply(doc, dry_run=dry_run)
        lines.append(f"{doc['kind']} {where}{meta.get('name')} ({file.name}): {result}")
    return lines


def _kubeconfig_path(explicit: Path | None) -> str:
    candidates = (
        [str(explicit)]
        if explicit is not None
        else [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
        or [os.path.expanduser("~/.kube/config")]
    )
    for candidate in candidates:
        if os.path.isfile(candidate):
            return candidate
    raise ConfigError(
        f"'kubeconfig' must exist to apply to a cluster (got {', '.join(candidates)}: no such file); "
        "set KUBECONFIG or pass --kubeconfig"
    )


class _KubernetesApplier:
    """Server-side apply with the ``kubernetes`` client's dynamic API (imported here, not at startup)."""

    def __init__(self, kubeconfig: str) -> None:
        try:  # untyped: reached through Any
            client: Any = importlib.import_module("kubernetes.client")
            dynamic: Any = importlib.import_module("kubernetes.dynamic")
            kube_config: Any = importlib.import_module("kubernetes.config")
        except ImportError:
            raise ConfigError(
                "'kubernetes' Python package must be installed for k8s apply (got none): pip install kubernetes"
            ) from None
        try:
            api_client = kube_config.new_client_from_config(config_file=kubeconfig)
        except (kube_config.ConfigException, OSError, TypeError, ValueError) as exc:
            raise ConfigError(f"'kubeconfig' must be a valid kubeconfig (got {kubeconfig!r}: {exc})") from None
        try:
            self._client = dynamic.DynamicClient(api_client)
        except Exception as exc:  # urllib3 and API errors: one line, not a traceback
            raise ServingError(f"cannot reach the cluster of {kubeconfig!r}: {_one_line(exc)}") from None
        self._api_exception = client.exceptions.ApiException

    def apply(self, doc: Mapping[str, Any], *, dry_run: bool) -> str:
        try:
            resource = self._client.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
            self._client.server_side_apply(
                resource,
                body=dict(doc),
                field_manager="jetscale",
                force_conflicts=True,
                dry_run="All" if dry_run else None,
            )
        except self._api_exception as exc:
            summary = exc.summary() if hasattr(exc, "summary") else exc
            return f"rejected: {_one_line(summary)}"
        except Exception as exc:
            return f"failed: {_one_line(exc)}"
        return "valid (server dry run)" if dry_run else "applied"


def _one_line(value: object) -> str:
    return " ".join(str(value).split())[:300]


@k8s_app.command("apply")
def apply_command(
    paths: Annotated[list[Path], typer.Argument(help="Manifest files, or directories of them (not recursive).")],
    dry_run: Annotated[str, typer.Option("--dry-run", help="server: the API server checks, stores nothing; none")] = (
        "server"
    ),
    kubeconfig: Annotated[Path | None, typer.Option("--kubeconfig", help="Default: $KUBECONFIG, ~/.kube/config")] = (
        None
    ),
    json_out: Annotated[bool, typer.Option("--json", help="One line per object, as JSON on stdout, only.")] = False,
) -> None:
    """Server-side apply the rendered manifests (by default as a server-side dry run)."""
    console.quiet = json_out
    if dry_run not in ("server", "none"):
        raise ConfigError(f"'--dry-run' must be server or none (got {dry_run!r})")
    docs = load_manifests(paths)
    if not docs:
        raise ConfigError(f"'PATHS' must hold Kubernetes manifests (got none in {', '.join(map(str, paths))})")
    applier = _KubernetesApplier(_kubeconfig_path(kubeconfig))
    lines = apply_documents(docs, applier, dry_run=dry_run == "server")
    for line in lines:
        console.print(line)
    if json_out:
        print_json({"command": "k8s apply", "dry_run": dry_run, "objects": lines})
    failed = [line for line in lines if ": rejected:" in line or ": failed:" in line]
    if failed:
        raise ServingError(f"{len(failed)} of {len(lines)} objects were not accepted (see above)")
