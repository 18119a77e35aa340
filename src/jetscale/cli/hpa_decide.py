"""``jetscale hpa decide``: one reconcile of the HPA on metric values given on the command line.

The cluster state is what a user can say in flags: ``--current`` replicas, all running and ready, and per
metric one value per pod (``--metric NAME=4,7,9``; fewer values than pods leaves the rest without
metrics, as a failed scrape would), or one value for an Object metric, or one per series for an External
one. ``--history`` reads the controller's history (JSON, times in seconds on the ``--now`` clock) and
``--save-history`` writes the new one, so decisions can be chained. A metric may be named as the
manifest names it or in the other spelling (``jetstream_slots_used_percentage`` or GKE's
``prometheus.googleapis.com|jetstream_slots_used_percentage|gauge``); a fraction metric's values must be
in 0..1 (``jetscale.cli.hpa.FRACTION_METRICS``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from jetscale.errors import ConfigError
from jetscale.hpa.controller import ControllerState, Decision, Observation, reconcile
from jetscale.hpa.types import (
    Condition,
    ConditionStatus,
    Container,
    ControllerConfig,
    ExternalMetric,
    HPASpec,
    MetricFailure,
    MetricReading,
    MetricSourceType,
    ObjectMetric,
    Pod,
    PodMetric,
    PodMetrics,
    ScaleEvent,
    Timestamped,
)
from jetscale.safeload import load_json
from jetscale.units import format_milli, quantity_to_milli

__all__ = [
    "build_observation",
    "decision_document",
    "load_history",
    "parse_metric_flags",
    "render_decision",
    "save_history",
]

_POD_START_S = -3600.0  # the pods have been running for an hour: past every readiness and CPU-init window


def parse_metric_flags(flags: Sequence[str]) -> dict[str, list[int]]:
    """``["name=4,7,9", "cpu=250m"]`` -> ``{"name": [4000, 7000, 9000], "cpu": [250]}`` in milli-units."""
    values: dict[str, list[int]] = {}
    for flag in flags:
        name, sep, text = flag.partition("=")
        name = name.strip()
        if not sep or not name or not text.strip():
            raise ConfigError(f"--metric: must be NAME=V1,V2,... (got {flag!r})")
        if name in values:
            raise ConfigError(f"--metric: {name!r} given twice")
        values[name] = [quantity_to_milli(v, f"--metric {name}") for v in text.split(",")]
    return values


def parse_requests(flags: Sequence[str]) -> dict[str, int]:
    """``["cpu=500m"]`` -> ``{"cpu": 500}``: the per-pod request for Utilization targets."""
    requests: dict[str, int] = {}
    for flag in flags:
        name, sep, text = flag.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"--request: must be RESOURCE=QUANTITY (got {flag!r})")
        requests[name.strip()] = quantity_to_milli(text, f"--request {name.strip()}")
    return requests


def build_observation(
    spec: HPASpec, current: int, values: Mapping[str, list[int]], requests: Mapping[str, int]
) -> Observation:
    """The observation of ``current`` ready pods reporting ``values``; ``ConfigError`` when a metric of
    the spec has no value, or a value names no metric of the spec."""
    if current < 0:
        raise ConfigError(f"--current: must be >= 0 (got {current})")
    from jetscale.cli.hpa import FRACTION_METRICS
    from jetscale.hpa.spec import resolve_metric_name

    known = {m.name for m in spec.metrics} | {m.raw_name for m in spec.metrics if m.raw_name}
    resolved = {resolve_metric_name(name): v for name, v in values.items()}  # either spelling names one metric
    if len(resolved) < len(values):
        raise ConfigError(f"--metric: one metric given in both spellings (got {', '.join(values)})")
    values = resolved
    for name, numbers in values.items():
        if name not in known:
            raise ConfigError(f"--metric: {name!r} is not a metric of {spec.name} (its metrics: {sorted(known)})")
        meaning = FRACTION_METRICS.get(name)
        if meaning is not None and any(not 0 <= v <= 1000 for v in numbers):
            bad = next(v for v in numbers if not 0 <= v <= 1000)
            raise ConfigError(
                f"'--metric {name}' must be a fraction in 0..1 ({meaning}), such as 0.95, "
                f"not a percentage (got {format_milli(bad)})"
            )
    names = [f"pod-{i}" for i in range(current)]
    container = Container(name="server", requests_milli=dict(requests))
    pods = tuple(
        Pod(name=n, start_time_s=_POD_START_S, ready_transition_s=_POD_START_S, containers=(container,)) for n in names
    )
    readings: list[MetricReading] = []
    for metric in spec.metrics:
        given = values.get(metric.name, values.get(metric.raw_name))
        if given is None:
            raise ConfigError(f"--metric: no value for {metric.name!r} (add --metric {metric.name}=V1,V2,...)")
        if metric.type in (MetricSourceType.OBJECT,):
            if len(given) != 1:
                raise ConfigError(f"--metric {metric.name}: an Object metric takes one value (got {len(given)})")
            readings.append(ObjectMetric(value_milli=given[0], timestamp_s=0.0))
        elif metric.type is MetricSourceType.EXTERNAL:
            readings.append(ExternalMetric(values_milli=tuple(given), timestamp_s=0.0))
        else:
            if len(given) > current:
                raise ConfigError(
                    f"--metric {metric.name}: {len(given)} values for {current} pods (one value per pod at most)"
                )
            readings.append(
                PodMetrics(values={n: PodMetric(value_milli=v) for n, v in zip(names, given, strict=False)})
            )
    return Observation(spec_replicas=current, status_replicas=current, pods=pods, readings=tuple(readings))


def _items(doc: Mapping[str, Any], key: str, path: Path) -> list[Mapping[str, Any]]:
    items = doc.get(key, [])
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise ConfigError(f"{path}: {key} must be a list of objects (got {items!r})")
    return items


def load_history(path: Path) -> ControllerState:
    """The controller history saved by ``--save-history`` (or written by hand)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"--history: {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"--history: {path}: cannot be read ({why})") from None
    doc = load_json(text, what=f"--history {path}")
    if not isinstance(doc, dict):
        raise ConfigError(f"--history: {path}: must be a JSON object (got {type(doc).__name__})")
    try:
        recs = tuple(
            Timestamped(recommendation=int(r["replicas"]), timestamp_s=float(r["time_s"]))
            for r in _items(doc, "recommendations", path)
        )
        up, down = (
            tuple(
                ScaleEvent(
                    replica_change=int(e["change"]),
                    timestamp_s=float(e["time_s"]),
                    outdated=bool(e.get("outdated", False)),
                )
                for e in _items(doc, key, path)
            )
            for key in ("scale_up_events", "scale_down_events")
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"--history: {path}: bad entry ({exc!r})") from None
    return ControllerState(recommendations=recs or None, scale_up_events=up, scale_down_events=down)


def save_history(path: Path, state: ControllerState) -> None:
    doc = {
        "recommendations": [
            {"replicas": r.recommendation, "time_s": r.timestamp_s} for r in state.recommendations or ()
        ],
        "scale_up_events": [
            {"change": e.replica_change, "time_s": e.timestamp_s, "outdated": e.outdated} for e in state.scale_up_events
        ],
        "scale_down_events": [
            {"change": e.replica_change, "time_s": e.timestamp_s, "outdated": e.outdated}
            for e in state.scale_down_events
        ],
    }
    path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")


def _condition_style(condition: Condition) -> str:
    return "green" if condition.status is ConditionStatus.TRUE else "yellow"


def render_decision(console: Console, spec: HPASpec, decision: Decision) -> None:
    """The decision, its conditions, every metric's proposal and the arithmetic behind it."""
    verb = "scale" if decision.rescale else "hold"
    console.print(
        f"[bold]{spec.namespace}/{spec.name}[/]: {verb} {decision.current_replicas} -> "
        f"[bold]{decision.desired_replicas}[/] replicas ({escape(decision.reason)})"
    )
    metrics = Table(title="metrics")
    for col in ("metric", "proposal", "usage", "ratio"):
        metrics.add_column(col)
    for metric, result in zip(spec.metrics, decision.proposals, strict=False):
        if isinstance(result, MetricFailure):
            metrics.add_row(metric.name, f"[red]{result.reason}[/]", result.message, "")
        else:
            usage = format_milli(result.usage_milli) if result.usage_milli is not None else "-"
            if result.utilization is not None:
                usage = f"{result.utilization}%"
            metrics.add_row(result.metric_name, str(result.replicas), usage, f"{result.usage_ratio:.3f}")
    console.print(metrics)
    conditions = Table(title="conditions")
    for col in ("type", "status", "reason", "message"):
        conditions.add_column(col)
    for c in decision.conditions:
        style = _condition_style(c)
        conditions.add_row(c.type, f"[{style}]{c.status}[/]", c.reason, c.message)
    console.print(conditions)
    console.print("[bold]arithmetic[/]")
    for line in decision.explanation:
        console.print(f"  {escape(line)}")
    if decision.error:
        console.print(f"[red]error:[/] {escape(decision.error)}")


def decide(
    spec: HPASpec,
    *,
    current: int,
    metric_flags: Sequence[str],
    request_flags: Sequence[str],
    history: Path | None,
    now_s: float,
    config: ControllerConfig | None = None,
) -> tuple[Decision, ControllerState]:
    """One reconcile on the flags' observation; ``config`` None is ``ControllerConfig()``."""
    observation = build_observation(spec, current, parse_metric_flags(metric_flags), parse_requests(request_flags))
    state = load_history(history) if history is not None else ControllerState()
    return reconcile(spec, state, observation, now_s, config or ControllerConfig())


def decision_document(spec: HPASpec, decision: Decision) -> dict[str, object]:
    """The decision as ``hpa decide --json`` prints it (stable keys; quantities as kubectl writes them)."""
    metrics: list[dict[str, object]] = []
    for metric, result in zip(spec.metrics, decision.proposals, strict=False):
        if isinstance(result, MetricFailure):
            metrics.append({"metric": metric.name, "failure": result.reason, "message": result.message})
        else:
            metrics.append(
                {
                    "metric": result.metric_name,
                    "replicas": result.replicas,
                    "usage": format_milli(result.usage_milli) if result.usage_milli is not None else None,
                    "utilization_percent": result.utilization,
                    "usage_ratio": result.usage_ratio,
                }
            )
    return {
        "command": "hpa decide",
        "namespace": spec.namespace,
        "name": spec.name,
        "current_replicas": decision.current_replicas,
        "desired_replicas": decision.desired_replicas,
        "rescale": decision.rescale,
        "reason": decision.reason,
        "metrics": metrics,
        "conditions": [
            {"type": c.type, "status": str(c.status), "reason": c.reason, "message": c.message}
            for c in decision.conditions
        ],
        "explanation": list(decision.explanation),
        "error": decision.error,
    }
