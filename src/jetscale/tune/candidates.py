"""What the tuner tries: a scaling signal, its target, and the HPA behavior; and the manifests it writes.

A ``Candidate`` is one HPA: one Pods metric (the GKE guide never combines signals: HBM grows first as load
rises, so it would always decide over the backlog) with an ``AverageValue`` target in milli-units, and a
``BehaviorChoice`` naming one scale-up and one scale-down rule from short menus:

=============  ===========================================================================================
scale-up       ``default`` Kubernetes' own (no window; +4 pods or +100 % per 15 s, the larger);
               ``burst`` twice that (+8 pods or +200 % per 15 s) for spiky traffic under small targets;
               ``damped`` the default policies behind a 60 s window (one noisy scrape does not scale up)
scale-down     ``default`` Kubernetes' own (300 s window; -100 % per 15 s); ``short`` (60 s window);
               ``long`` (600 s window); ``gradual`` (300 s window, then at most one pod a minute: a fleet
               that creeps down instead of dropping to the minimum when a queue empties, against flapping)
=============  ===========================================================================================

``hpa_for`` renders a candidate as an autoscaling/v2 spec (read back through ``parse_hpa``, so it is
validated like any manifest); ``gke=True`` spells the metric ``prometheus.googleapis.com|<name>|gauge`` as
GKE's Custom Metrics Stackdriver Adapter serves it. ``gke_sample`` is GKE's sample HPA (backlog target 10,
no ``behavior``). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

import yaml

from jetscale.engine.config import ServerKind
from jetscale.errors import ConfigError
from jetscale.hpa.describe import to_manifest
from jetscale.hpa.spec import parse_hpa
from jetscale.hpa.types import (
    Behavior,
    CrossVersionObjectReference,
    HPAScalingPolicy,
    HPAScalingRules,
    HPASpec,
    MetricSourceType,
    MetricSpec,
    MetricTarget,
    MetricTargetType,
    PolicyType,
    SelectPolicy,
)
from jetscale.sim.signals import HBM_USAGE, PREFILL_BACKLOG, SLOTS_USED, VLLM_KV_USAGE, VLLM_RUNNING, VLLM_WAITING
from jetscale.units import format_milli

__all__ = [
    "DEFAULT_BEHAVIOR",
    "GKE_SAMPLE_TARGET_MILLI",
    "SCALE_DOWN",
    "SCALE_UP",
    "BehaviorChoice",
    "Candidate",
    "ManifestNames",
    "Signal",
    "gke_metric_name",
    "gke_sample",
    "hpa_for",
    "manifest_yaml",
    "parse_signals",
    "signals_for",
]


class Signal(StrEnum):
    """A metric the tuner can scale on: JetStream's three (the guide's) and vLLM's three (GKE's)."""

    BACKLOG = "backlog"
    SLOTS = "slots"
    HBM = "hbm"
    WAITING = "waiting"  # vLLM's queue size
    RUNNING = "running"  # vLLM's batch size
    KV = "kv"  # vLLM's KV cache use

    @property
    def metric(self) -> str:
        return _METRICS[self]

    @property
    def unit(self) -> str:
        return _UNITS[self]

    @property
    def kind(self) -> ServerKind:
        """The server that exports this metric."""
        return ServerKind.VLLM if self in _VLLM_SIGNALS else ServerKind.JETSTREAM


_VLLM_SIGNALS = frozenset({Signal.WAITING, Signal.RUNNING, Signal.KV})
_METRICS = {
    Signal.BACKLOG: PREFILL_BACKLOG,
    Signal.SLOTS: SLOTS_USED,
    Signal.HBM: HBM_USAGE,
    Signal.WAITING: VLLM_WAITING,
    Signal.RUNNING: VLLM_RUNNING,
    Signal.KV: VLLM_KV_USAGE,
}
_UNITS = {
    Signal.BACKLOG: "requests waiting per replica",
    Signal.SLOTS: "fraction of decode slots busy",
    Signal.HBM: "fraction of HBM in use",
    Signal.WAITING: "requests waiting per replica",
    Signal.RUNNING: "requests running per replica",
    Signal.KV: "fraction of KV cache blocks in use",
}


def signals_for(signals: tuple[Signal, ...], kind: ServerKind) -> tuple[Signal, ...]:
    """The signals a replica of ``kind`` exports; ConfigError naming the others when none is left."""
    mine = tuple(s for s in signals if s.kind is kind)
    if not mine:
        names = ", ".join(s.value for s in Signal if s.kind is kind)
        chosen = ", ".join(s.value for s in signals)
        raise ConfigError(f"'--signals' must include one a {kind.value} replica exports: {names} (got {chosen})")
    return mine


def parse_signals(text: str) -> tuple[Signal, ...]:
    """``backlog,slots,hbm`` (JetStream's), ``waiting,running,kv`` (vLLM's), any subset, or ``all``."""
    raw = [part.strip() for part in text.split(",") if part.strip()]
    if raw == ["all"]:
        return tuple(Signal)
    chosen: set[Signal] = set()
    for part in raw:
        try:
            chosen.add(Signal(part))
        except ValueError:
            names = ", ".join(s.value for s in Signal)
            raise ConfigError(f"'--signals' must be 'all' or a list of {names} (got {part!r})") from None
    if not chosen:
        raise ConfigError(f"'--signals' must name at least one signal (got {text!r})")
    return tuple(s for s in Signal if s in chosen)


def _rules(window_s: int, *policies: tuple[PolicyType, int, int]) -> HPAScalingRules:
    return HPAScalingRules(
        stabilization_window_s=window_s,
        select_policy=SelectPolicy.MAX,
        policies=tuple(HPAScalingPolicy(type=t, value=v, period_s=p) for t, v, p in policies),
    )


_PODS, _PERCENT = PolicyType.PODS, PolicyType.PERCENT
SCALE_UP: Mapping[str, HPAScalingRules] = {
    "default": _rules(0, (_PODS, 4, 15), (_PERCENT, 100, 15)),
    "burst": _rules(0, (_PODS, 8, 15), (_PERCENT, 200, 15)),
    "damped": _rules(60, (_PODS, 4, 15), (_PERCENT, 100, 15)),
}
SCALE_DOWN: Mapping[str, HPAScalingRules] = {
    "default": _rules(300, (_PERCENT, 100, 15)),
    "short": _rules(60, (_PERCENT, 100, 15)),
    "long": _rules(600, (_PERCENT, 100, 15)),
    "gradual": _rules(300, (_PODS, 1, 60)),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class BehaviorChoice:
    """One scale-up rule and one scale-down rule, by their names in ``SCALE_UP`` / ``SCALE_DOWN``."""

    up: str = "default"
    down: str = "default"

    def __post_init__(self) -> None:
        if self.up not in SCALE_UP:
            raise ConfigError(f"'up' must be one of {', '.join(SCALE_UP)} (got {self.up!r})")
        if self.down not in SCALE_DOWN:
            raise ConfigError(f"'down' must be one of {', '.join(SCALE_DOWN)} (got {self.down!r})")

    @property
    def label(self) -> str:
        return f"up={self.up},down={self.down}"

    def behavior(self) -> Behavior:
        return Behavior(scale_up=SCALE_UP[self.up], scale_down=SCALE_DOWN[self.down])


DEFAULT_BEHAVIOR = BehaviorChoice()
GKE_SAMPLE_TARGET_MILLI = 10_000  # ai-on-gke's original JetStream HPA: prefill backlog 10, no behavior block
GKE_VLLM_SAMPLE_TARGET_MILLI = 5_000  # GKE's vLLM sample HPA: vllm:num_requests_waiting 5 per replica


@dataclass(frozen=True, slots=True, kw_only=True)
class Candidate:
    """One HPA to try: ``signal`` with ``target_milli`` / 1000 as its AverageValue, and a behavior.
    ``behavior`` None is a manifest without a ``behavior`` block (the controller's legacy defaults)."""

    signal: Signal
    target_milli: int
    behavior: BehaviorChoice | None = field(default=DEFAULT_BEHAVIOR)

    def __post_init__(self) -> None:
        if isinstance(self.target_milli, bool) or not isinstance(self.target_milli, int) or self.target_milli < 1:
            raise ConfigError(f"'target_milli' must be an integer >= 1 (got {self.target_milli!r})")

    @property
    def target(self) -> float:
        return self.target_milli / 1000

    @property
    def label(self) -> str:
        behavior = self.behavior.label if self.behavior is not None else "no behavior block"
        return f"{self.signal.value} {format_milli(self.target_milli)} ({behavior})"


@dataclass(frozen=True, slots=True, kw_only=True)
class ManifestNames:
    """The HPA's name and namespace and the Deployment it scales."""

    name: str = "jetstream"
    namespace: str = "default"
    deployment: str = "jetstream-server"


def gke_metric_name(metric: str) -> str:
    return f"prometheus.googleapis.com|{metric}|gauge"


def hpa_for(
    candidate: Candidate,
    *,
    min_replicas: int,
    max_replicas: int,
    names: ManifestNames | None = None,
    gke: bool = False,
) -> HPASpec:
    """``candidate`` as a validated autoscaling/v2 spec (``ManifestError`` for a bad name or range)."""
    n = names if names is not None else ManifestNames()
    metric = candidate.signal.metric
    spec = HPASpec(
        name=n.name,
        namespace=n.namespace,
        scale_target_ref=CrossVersionObjectReference(kind="Deployment", name=n.deployment, api_version="apps/v1"),
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        metrics=(
            MetricSpec(
                type=MetricSourceType.PODS,
                name=metric,
                raw_name=gke_metric_name(metric) if gke else metric,
                target=MetricTarget(type=MetricTargetType.AVERAGE_VALUE, average_value_milli=candidate.target_milli),
            ),
        ),
        behavior=candidate.behavior.behavior() if candidate.behavior is not None else None,
    )
    return parse_hpa(to_manifest(spec), origin=f"candidate {candidate.label}")


def gke_sample(kind: ServerKind = ServerKind.JETSTREAM) -> Candidate:
    """GKE's sample: ``jetstream_prefill_backlog_size`` at 10, no ``behavior`` block; for vLLM,
    ``vllm:num_requests_waiting`` at 5 (GKE's vLLM sample, kubernetes-engine-samples vllm-hpa.yaml)."""
    if kind is ServerKind.VLLM:
        return Candidate(signal=Signal.WAITING, target_milli=GKE_VLLM_SAMPLE_TARGET_MILLI, behavior=None)
    return Candidate(signal=Signal.BACKLOG, target_milli=GKE_SAMPLE_TARGET_MILLI, behavior=None)


def manifest_yaml(spec: HPASpec, *, comments: tuple[str, ...] = ()) -> str:
    """The manifest as YAML, ``comments`` as ``#`` lines on top."""
    head = "".join(f"# {line}\n" if line else "#\n" for line in comments)
    return head + yaml.safe_dump(to_manifest(spec), sort_keys=False, default_flow_style=False)
