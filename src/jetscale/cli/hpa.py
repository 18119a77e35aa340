"""``jetscale hpa``: read, explain and run the autoscaling/v2 algorithm on a manifest.

The helpers here (``read_manifest``, ``load_hpa_file``, ``spec_table``) are the file-reading edge of
``jetscale.hpa.spec`` and are shared by every ``hpa`` sub-command and by ``simulate``, ``tune`` and ``up``.

``--kubernetes-version`` (1.33 .. 1.37, default 1.37) picks the feature gates' defaults
(``jetscale.hpa.versions``): HPAScaleToZero is on from 1.37, so ``minReplicas: 0`` with an Object or
External metric is accepted there without ``--scale-to-zero``; ``--no-scale-to-zero`` turns it off.

``load_hpa_file`` also refuses a target of 90 on a fraction metric (``FRACTION_METRICS``: JetStream's
slot use and the HBM ratio are 0..1, so 90 means "never scale"), naming the unit. ``explain`` and
``decide`` take ``--json`` (one document on stdout, nothing else).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from jetscale.cli.output import make_console, print_json
from jetscale.errors import ConfigError
from jetscale.hpa.describe import Origin, describe_spec
from jetscale.hpa.spec import load_manifest, parse_hpa
from jetscale.hpa.types import ControllerConfig, HPASpec
from jetscale.hpa.versions import DEFAULT_KUBERNETES_VERSION, SUPPORTED_KUBERNETES_VERSIONS, controller_config_for
from jetscale.units import format_milli

__all__ = ["FRACTION_METRICS", "app", "check_fraction_targets", "load_hpa_file", "read_manifest", "spec_table"]

# Metrics whose values are fractions 0..1, whatever their names say; what 1 means.
FRACTION_METRICS = {
    "jetstream_slots_used_percentage": "1 = every decode slot busy",
    "memory_used_percentage": "1 = all HBM in use",
    "accelerator_memory_used_ratio": "1 = all HBM in use",
}

app = typer.Typer(help="The Kubernetes HPA (autoscaling/v2) algorithm on your manifest.", no_args_is_help=True)

_ORIGIN_STYLE = {
    Origin.MANIFEST: "green",
    Origin.DEFAULT: "yellow",
    Origin.FLAG: "cyan",
    Origin.CONTROLLER: "cyan",
}

ManifestArg = Annotated[
    Path, typer.Argument(metavar="HPA.yaml", help="An autoscaling/v2 HorizontalPodAutoscaler manifest.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout, nothing else.")]
ScaleToZeroOpt = Annotated[
    bool | None,
    typer.Option(
        "--scale-to-zero/--no-scale-to-zero",
        help="Turn the HPAScaleToZero feature gate on or off (it allows minReplicas: 0); "
        "default: the Kubernetes version's default (on from 1.37).",
        show_default=False,
    ),
]
VersionOpt = Annotated[
    str,
    typer.Option(
        "--kubernetes-version",
        help=f"The Kubernetes release whose feature-gate defaults apply ({', '.join(SUPPORTED_KUBERNETES_VERSIONS)}).",
    ),
]


def read_manifest(path: Path) -> Mapping[str, object]:
    """The HPA document of the YAML file at ``path``; ``ConfigError`` when it is missing or not YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    return load_manifest(text, origin=str(path))


def load_hpa_file(path: Path, *, scale_to_zero: bool | None = None, kubernetes_version: str | None = None) -> HPASpec:
    """The validated spec of the manifest at ``path``; ``ManifestError`` lists every invalid field, and a
    fraction metric with a target above 1 is a ``ConfigError`` (``check_fraction_targets``).
    ``scale_to_zero`` None is ``kubernetes_version``'s default (off when no version is given)."""
    spec = parse_hpa(
        read_manifest(path), origin=str(path), scale_to_zero=scale_to_zero, kubernetes_version=kubernetes_version
    )
    check_fraction_targets(spec, origin=str(path))
    return spec


def check_fraction_targets(spec: HPASpec, *, origin: str) -> None:
    """Refuse a target above 1 on a metric of ``FRACTION_METRICS`` (95 where 0.95 was meant)."""
    for i, metric in enumerate(spec.metrics):
        meaning = FRACTION_METRICS.get(metric.name)
        target = metric.target.average_value_milli or metric.target.value_milli
        if meaning is not None and target is not None and target > 1000:
            raise ConfigError(
                f"{origin}: 'spec.metrics[{i}]' target of {metric.name} must be a fraction in 0..1 ({meaning}), "
                f"such as 900m or 0.9, not a percentage (got {format_milli(target)})"
            )


def spec_table(spec: HPASpec, manifest: Mapping[str, object], config: ControllerConfig | None = None) -> Table:
    """The effective spec as a table: field, value, and where the value came from."""
    ref = spec.scale_target_ref
    table = Table(title=f"HorizontalPodAutoscaler {spec.namespace}/{spec.name} -> {ref.kind}/{ref.name}")
    table.add_column("field", overflow="fold", ratio=2, min_width=20)
    table.add_column("effective value", overflow="fold", ratio=3, min_width=24)
    table.add_column("from", no_wrap=True)
    for row in describe_spec(spec, manifest, config=config):
        style = _ORIGIN_STYLE[row.origin]
        table.add_row(row.field, row.value, f"[{style}]{row.origin}[/]")
    return table


@app.command()
def _config_for(kubernetes_version: str, scale_to_zero: bool | None) -> ControllerConfig:
    """The controller of ``--kubernetes-version``, with ``--scale-to-zero``/``--no-scale-to-zero`` if given."""
    overrides = {} if scale_to_zero is None else {"scale_to_zero": scale_to_zero}
    return controller_config_for(kubernetes_version, **overrides)


@app.command()
def explain(
    manifest: ManifestArg,
    scale_to_zero: ScaleToZeroOpt = None,
    kubernetes_version: VersionOpt = DEFAULT_KUBERNETES_VERSION,
    json_out: JsonOpt = False,
) -> None:
    """Print the effective spec of HPA.yaml: every value, defaults filled in, and where each came from."""
    config = _config_for(kubernetes_version, scale_to_zero)
    document = read_manifest(manifest)
    spec = parse_hpa(
        document, origin=str(manifest), scale_to_zero=config.scale_to_zero, kubernetes_version=kubernetes_version
    )
    if json_out:
        ref = spec.scale_target_ref
        print_json(
            {
                "command": "hpa explain",
                "manifest": str(manifest),
                "namespace": spec.namespace,
                "name": spec.name,
                "scale_target_ref": {"kind": ref.kind, "name": ref.name},
                "legacy_behavior": spec.behavior is None,
                "fields": [
                    {"field": r.field, "value": r.value, "from": r.origin.value}
                    for r in describe_spec(spec, document, config=config)
                ],
            }
        )
        return
    console = make_console()
    console.print(spec_table(spec, document, config))
    if spec.behavior is None:
        console.print(
            "No spec.behavior: the controller's legacy rules apply. Add a behavior block to choose "
            "stabilization windows and scaling policies per direction."
        )


@app.command()
def decide(
    manifest: ManifestArg,
    current: Annotated[int, typer.Option("--current", help="Current replicas (scale.spec.replicas).")],
    metric: Annotated[
        list[str],
        typer.Option(
            "--metric",
            help="NAME=V1,V2,...: one value per pod (Pods/Resource), one for Object, "
            "one per series for External. Repeat for several metrics.",
        ),
    ],
    request: Annotated[
        list[str] | None,
        typer.Option("--request", help="RESOURCE=QUANTITY per pod, for Utilization targets (e.g. cpu=500m)."),
    ] = None,
    history: Annotated[
        Path | None, typer.Option("--history", help="JSON controller history (from --save-history).")
    ] = None,
    save: Annotated[Path | None, typer.Option("--save-history", help="Write the new history here.")] = None,
    now: Annotated[
        float, typer.Option("--now", help="The time of this sync, in seconds on the history's clock.")
    ] = 0.0,
    scale_to_zero: ScaleToZeroOpt = None,
    kubernetes_version: VersionOpt = DEFAULT_KUBERNETES_VERSION,
    json_out: JsonOpt = False,
) -> None:
    """One reconcile of HPA.yaml on the given metric values: the decision, its reason and the arithmetic.

    ``--save-history`` is written before anything is printed, so ``... --save-history F | head`` keeps F.
    """
    from jetscale.cli import hpa_decide

    config = _config_for(kubernetes_version, scale_to_zero)
    spec = load_hpa_file(manifest, scale_to_zero=config.scale_to_zero, kubernetes_version=kubernetes_version)
    decision, state = hpa_decide.decide(
        spec,
        current=current,
        metric_flags=metric,
        request_flags=request or [],
        history=history,
        now_s=now,
        config=config,
    )
    if save is not None:
        hpa_decide.save_history(save, state)
    if json_out:
        print_json({**hpa_decide.decision_document(spec, decision), "history_saved": str(save) if save else None})
        return
    hpa_decide.render_decision(make_console(), spec, decision)
