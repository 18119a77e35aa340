"""Knative's Pod Autoscaler (KPA) from a revision's ``autoscaling.knative.dev/*`` annotations and the
``config-autoscaler`` ConfigMap.

Models, from knative/serving at 98e5ef90aa7033797aa0a61ef97f3ff7e49a3944:

- **The decider** (``pkg/autoscaler/scaling/autoscaler.go``, ``Scale``): the observed value
  (concurrency: requests in flight fleet-wide; rps: arrivals per second) averaged over the stable
  window and over the panic window (stable x panic-window-percentage / 100, rounded to whole seconds,
  at least 1 s; ``pkg/reconciler/autoscaling/resources/metric.go``), each rounded to 6 digits as
  ``WindowAverage`` does; desired = ceil(average / (target x utilization)) with the target at least
  0.01 (``resources/target.go``); both kept within [floor(ready / max-scale-down-rate),
  ceil(max-scale-up-rate x ready)] with ready at least 1; activation-scale as a floor of any non-zero
  count; panic entered when panic desired / ready >= panic-threshold-percentage / 100, extended while
  over it, left a stable window after the last time over it; in panic the count is max(stable, panic)
  and never goes down (``maxPanicPods``); a fresh decider with more than one ready pod starts in panic.
  scale-down-delay keeps the highest count of its window.
- **The scaler** (``pkg/reconciler/autoscaling/kpa/scaler.go``): min-scale / max-scale bounds (max 0 =
  none), initial-scale as a floor until the revision first reached it; a count of 0 is applied only
  when enable-scale-to-zero, after the revision has been active a stable window (until then 1), and
  once it has been inactive max(scale-to-zero-grace-period, scale-to-zero-pod-retention-period); in
  between the count is left as it is.
- **Window averages** weight each observation by the interval it covers, clipped to the window, and
  divide by the time covered (Knative divides by the buckets written since the first write).

Does not model: the activator and target-burst-capacity (accepted, not used), containerConcurrency as a
hard limit (only as the target cap), the weighted-exponential aggregation algorithm, unreachable
revisions, activation timeouts (progress deadline), the class hpa.autoscaling.knative.dev (use an HPA
manifest), per-pod sampling of the metric when there are many pods.

max-scale-up-rate and max-scale-down-rate are ConfigMap keys, not annotations, in Knative; an
``autoscaling.knative.dev/max-scale-up-rate`` annotation is an error that says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from jetscale.controllers._fields import FieldReader, load_documents
from jetscale.controllers.api import Decision, Observation, Reason
from jetscale.errors import ConfigError

__all__ = ["KPAClusterConfig", "KPAPolicy", "KPASpec", "KPAState", "load_kpa", "parse_kpa", "window_average"]

PREFIX = "autoscaling.knative.dev/"
KPA_CLASS = "kpa.autoscaling.knative.dev"
TARGET_MIN = 0.01
WINDOW_MIN_S, WINDOW_MAX_S = 6.0, 3600.0
PRECISION = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class KPAClusterConfig:
    """The ``config-autoscaler`` ConfigMap (Knative's defaults)."""

    stable_window_s: float = 60.0
    panic_window_percentage: float = 10.0
    panic_threshold_percentage: float = 200.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    container_concurrency_target_percentage: float = 70.0
    container_concurrency_target_default: float = 100.0
    requests_per_second_target_default: float = 200.0
    enable_scale_to_zero: bool = True
    scale_to_zero_grace_period_s: float = 30.0
    scale_to_zero_pod_retention_period_s: float = 0.0
    scale_down_delay_s: float = 0.0
    initial_scale: int = 1
    allow_zero_initial_scale: bool = False
    min_scale: int = 0
    max_scale: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class KPASpec:
    """The decider's and scaler's spec after resolving annotations over the cluster config."""

    metric: str  # concurrency | rps
    target_value: float  # target x utilization (per pod)
    panic_threshold: float  # a ratio: 2.0 for 200%
    stable_window_s: float
    panic_window_s: float
    max_scale_up_rate: float
    max_scale_down_rate: float
    min_scale: int
    max_scale: int  # 0: unbounded
    initial_scale: int
    activation_scale: int  # 0: unset
    scale_down_delay_s: float
    enable_scale_to_zero: bool
    scale_to_zero_grace_period_s: float
    scale_to_zero_pod_retention_period_s: float


# ------------------------------------------------------------------------------------------- parsing

_ANNOTATIONS = (
    "class",
    "metric",
    "target",
    "target-utilization-percentage",
    "window",
    "panic-window-percentage",
    "panic-threshold-percentage",
    "min-scale",
    "max-scale",
    "initial-scale",
    "activation-scale",
    "scale-down-delay",
    "scale-to-zero-pod-retention-period",
    "target-burst-capacity",
    "metric-aggregation-algorithm",
)
_CONFIGMAP_ONLY = (
    "max-scale-up-rate",
    "max-scale-down-rate",
    "stable-window",
    "scale-to-zero-grace-period",
    "enable-scale-to-zero",
)
_CONFIG_KEYS = (
    "stable-window",
    "panic-window-percentage",
    "panic-threshold-percentage",
    "max-scale-up-rate",
    "max-scale-down-rate",
    "container-concurrency-target-percentage",
    "container-concurrency-target-default",
    "requests-per-second-target-default",
    "enable-scale-to-zero",
    "scale-to-zero-grace-period",
    "scale-to-zero-pod-retention-period",
    "scale-down-delay",
    "initial-scale",
    "allow-zero-initial-scale",
    "min-scale",
    "max-scale",
    "max-scale-limit",
    "target-burst-capacity",
    "activator-capacity",
    "pod-autoscaler-class",
)


def load_kpa(text: str, *, origin: str = "") -> KPASpec:
    """A KPA spec from YAML text: a Knative Service (the annotations of ``spec.template.metadata``), or
    a plain mapping of annotations; a ``config-autoscaler`` ConfigMap in the same file sets the cluster
    defaults."""
    where = origin or "<knative>"
    docs = load_documents(text, origin=where)
    config_maps = [d for d in docs if d.get("kind") == "ConfigMap"]
    others = [d for d in docs if d.get("kind") != "ConfigMap"]
    if len(others) != 1 or len(config_maps) > 1:
        raise ConfigError(
            f"{where}: must hold one Knative Service or annotation mapping and at most one config-autoscaler "
            f"ConfigMap (got {len(others)} and {len(config_maps)})"
        )
    cluster = parse_cluster_config(config_maps[0], origin=where) if config_maps else KPAClusterConfig()
    return parse_kpa(others[0], origin=where, cluster=cluster)


def parse_cluster_config(doc: Mapping[str, object], *, origin: str = "") -> KPAClusterConfig:
    r = FieldReader(origin or "<knative>")
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if name != "config-autoscaler":
        r.fail("metadata.name", "config-autoscaler", name)
    data = r.mapping(doc.get("data", {}), "data", _CONFIG_KEYS)
    c = KPAClusterConfig()

    def get(key: str) -> object | None:
        return data.get(key)

    def num(key: str, default: float, lo: float, hi: float = math.inf) -> float:
        value = get(key)
        return default if value is None else r.number(value, f"data.{key}", lo=lo, hi=hi)

    def dur(key: str, default: float, lo: float = 0.0, hi: float = WINDOW_MAX_S) -> float:
        value = get(key)
        return default if value is None else r.duration_s(value, f"data.{key}", lo=lo, hi=hi)

    def integer(key: str, default: int) -> int:
        value = get(key)
        return default if value is None else r.int_string(value, f"data.{key}", lo=0)

    def flag(key: str, default: bool) -> bool:
        value = get(key)
        return default if value is None else r.boolean(value, f"data.{key}")

    up = num("max-scale-up-rate", c.max_scale_up_rate, 1.0)
    down = num("max-scale-down-rate", c.max_scale_down_rate, 1.0)
    if up <= 1.0:
        r.fail("data.max-scale-up-rate", "greater than 1", get("max-scale-up-rate"))
    if down <= 1.0:
        r.fail("data.max-scale-down-rate", "greater than 1", get("max-scale-down-rate"))
    config = KPAClusterConfig(
        stable_window_s=dur("stable-window", c.stable_window_s, WINDOW_MIN_S),
        panic_window_percentage=num("panic-window-percentage", c.panic_window_percentage, 1.0, 100.0),
        panic_threshold_percentage=num("panic-threshold-percentage", c.panic_threshold_percentage, 110.0, 1000.0),
        max_scale_up_rate=up,
        max_scale_down_rate=down,
        container_concurrency_target_percentage=num(
            "container-concurrency-target-percentage", c.container_concurrency_target_percentage, 1.0, 100.0
        ),
        container_concurrency_target_default=num(
            "container-concurrency-target-default", c.container_concurrency_target_default, TARGET_MIN
        ),
        requests_per_second_target_default=num(
            "requests-per-second-target-default", c.requests_per_second_target_default, TARGET_MIN
        ),
        enable_scale_to_zero=flag("enable-scale-to-zero", c.enable_scale_to_zero),
        scale_to_zero_grace_period_s=dur("scale-to-zero-grace-period", c.scale_to_zero_grace_period_s, 6.0),
        scale_to_zero_pod_retention_period_s=dur(
            "scale-to-zero-pod-retention-period", c.scale_to_zero_pod_retention_period_s
        ),
        scale_down_delay_s=dur("scale-down-delay", c.scale_down_delay_s),
        initial_scale=integer("initial-scale", c.initial_scale),
        allow_zero_initial_scale=flag("allow-zero-initial-scale", c.allow_zero_initial_scale),
        min_scale=integer("min-scale", c.min_scale),
        max_scale=integer("max-scale", c.max_scale),
    )
    if config.max_scale != 0 and config.max_scale < config.min_scale:
        r.fail("data.max-scale", f">= min-scale ({config.min_scale}) or 0", get("max-scale"))
    if config.initial_scale == 0 and not config.allow_zero_initial_scale:
        r.fail("data.initial-scale", "> 0 unless allow-zero-initial-scale is true", get("initial-scale"))
    return config


def _annotations(r: FieldReader, doc: Mapping[str, object]) -> tuple[Mapping[str, object], str, float]:
    """(annotations, their field path, containerConcurrency) of a Service or a plain mapping."""
    if doc.get("kind") == "Service" and str(doc.get("apiVersion", "")).startswith("serving.knative.dev/"):
        spec = doc.get("spec")
        template = spec.get("template") if isinstance(spec, Mapping) else None
        if not isinstance(template, Mapping):
            r.fail("spec.template", "a mapping", template)
        meta = template.get("metadata") or {}
        if not isinstance(meta, Mapping):
            r.fail("spec.template.metadata", "a mapping", meta)
        annotations = meta.get("annotations") or {}
        if not isinstance(annotations, Mapping):
            r.fail("spec.template.metadata.annotations", "a mapping", annotations)
        pod_spec = template.get("spec") or {}
        cc: object = pod_spec.get("containerConcurrency", 0) if isinstance(pod_spec, Mapping) else 0
        concurrency = r.int_string(cc, "spec.template.spec.containerConcurrency", lo=0, hi=1000)
        return annotations, "spec.template.metadata.annotations", float(concurrency)
    if "kind" in doc or "apiVersion" in doc:
        r.fail("kind", "a Knative Service (serving.knative.dev) or a plain annotation mapping", doc.get("kind"))
    return doc, "annotations", 0.0


def parse_kpa(
    doc: Mapping[str, object],
    *,
    origin: str = "",
    cluster: KPAClusterConfig = KPAClusterConfig(),
) -> KPASpec:
    """A ``KPASpec`` from a Knative Service or a plain annotation mapping; ``ConfigError`` on the first
    invalid annotation, naming the file, the annotation and its value."""
    r = FieldReader(origin or "<knative>")
    raw, base, container_concurrency = _annotations(r, doc)
    anns: dict[str, object] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not key.startswith(PREFIX):
            continue  # other tools' annotations
        short = key[len(PREFIX) :]
        if short in _CONFIGMAP_ONLY:
            raise ConfigError(
                f"{r.origin}: '{base}.{key}' is not an annotation: set {short} in the config-autoscaler "
                f"ConfigMap (got {value!r})"
            )
        if short not in _ANNOTATIONS:
            r.mapping({key: value}, base, [PREFIX + a for a in _ANNOTATIONS])
        anns[short] = value

    def path(short: str) -> str:
        return f"{base}.{PREFIX}{short}"

    def number(short: str, lo: float, hi: float = math.inf) -> float | None:
        return None if short not in anns else r.number(anns[short], path(short), lo=lo, hi=hi)

    def integer(short: str) -> int | None:
        return None if short not in anns else r.int_string(anns[short], path(short), lo=0)

    def duration(short: str, lo: float, hi: float) -> float | None:
        return None if short not in anns else r.duration_s(anns[short], path(short), lo=lo, hi=hi)

    if "class" in anns and anns["class"] != KPA_CLASS:
        r.fail(path("class"), f"{KPA_CLASS} (for the HPA class use an HPA manifest)", anns["class"])
    if "metric-aggregation-algorithm" in anns:
        r.choice(anns["metric-aggregation-algorithm"], path("metric-aggregation-algorithm"), ["linear"])
    metric = "concurrency" if "metric" not in anns else r.choice(anns["metric"], path("metric"), ["concurrency", "rps"])
    target = number("target", TARGET_MIN)
    utilization = number("target-utilization-percentage", 1.0, 100.0)
    number("target-burst-capacity", -1.0)
    window = duration("window", WINDOW_MIN_S, WINDOW_MAX_S)
    if window is not None and window != math.floor(window):
        r.fail(path("window"), "whole seconds", anns["window"])
    panic_window_pct = number("panic-window-percentage", 1.0, 100.0)
    panic_threshold_pct = number("panic-threshold-percentage", 110.0, 1000.0)
    min_scale, max_scale = integer("min-scale"), integer("max-scale")
    initial = integer("initial-scale")
    activation = integer("activation-scale")
    delay = duration("scale-down-delay", 0.0, WINDOW_MAX_S)
    retention = duration("scale-to-zero-pod-retention-period", 0.0, WINDOW_MAX_S)

    lo = cluster.min_scale if min_scale is None else min_scale
    hi = cluster.max_scale if max_scale is None else max_scale
    if hi != 0 and hi < lo:
        r.fail(path("max-scale"), f">= min-scale ({lo}) or 0", anns.get("max-scale", hi))
    if activation is not None:
        if activation < 2:
            r.fail(path("activation-scale"), "greater than 1", anns["activation-scale"])
        if lo > activation:
            r.fail(path("activation-scale"), f">= min-scale ({lo})", anns["activation-scale"])
        if hi != 0 and hi < activation:
            r.fail(path("activation-scale"), f"<= max-scale ({hi})", anns["activation-scale"])
    if initial == 0 and not cluster.allow_zero_initial_scale:
        r.fail(path("initial-scale"), "> 0 (the cluster does not allow-zero-initial-scale)", anns["initial-scale"])

    # ResolveMetricTarget
    if metric == "rps":
        total = cluster.requests_per_second_target_default
    else:
        total = container_concurrency or cluster.container_concurrency_target_default
    if target is not None:
        total = min(target, container_concurrency) if metric == "concurrency" and container_concurrency else target
    fraction = (cluster.container_concurrency_target_percentage if utilization is None else utilization) / 100.0
    stable = cluster.stable_window_s if window is None else window
    panic_pct = cluster.panic_window_percentage if panic_window_pct is None else panic_window_pct
    panic_window = max(1.0, float(round(stable * panic_pct / 100.0)))
    return KPASpec(
        metric=metric,
        target_value=max(TARGET_MIN, total * fraction),
        panic_threshold=(cluster.panic_threshold_percentage if panic_threshold_pct is None else panic_threshold_pct)
        / 100.0,
        stable_window_s=stable,
        panic_window_s=panic_window,
        max_scale_up_rate=cluster.max_scale_up_rate,
        max_scale_down_rate=cluster.max_scale_down_rate,
        min_scale=lo,
        max_scale=hi,
        initial_scale=cluster.initial_scale if initial is None else initial,
        activation_scale=activation or 0,
        scale_down_delay_s=cluster.scale_down_delay_s if delay is None else delay,
        enable_scale_to_zero=cluster.enable_scale_to_zero,
        scale_to_zero_grace_period_s=cluster.scale_to_zero_grace_period_s,
        scale_to_zero_pod_retention_period_s=(
            cluster.scale_to_zero_pod_retention_period_s if retention is None else retention
        ),
    )


# ------------------------------------------------------------------------------------------ controller


@dataclass(frozen=True, slots=True, kw_only=True)
class Sample:
    end_s: float
    span_s: float
    value: float


@dataclass(frozen=True, slots=True, kw_only=True)
class KPAState:
    started: bool = False
    samples: tuple[Sample, ...] = ()  # the stable window's observations, oldest first
    panic_since_s: float | None = None  # panicTime: the last time over the panic threshold
    max_panic_pods: int = 0
    delayed: tuple[tuple[float, int], ...] = ()  # scale-down-delay window: (time, count)
    active_since_s: float | None = None
    inactive_since_s: float | None = None
    initialized: bool = False  # the scale target once reached initial-scale


def _round(value: float) -> float:
    scale = 10.0**PRECISION
    return math.floor(value * scale + 0.5) / scale


def window_average(samples: tuple[Sample, ...], now_s: float, window_s: float) -> float:
    """The time-weighted mean of the samples over (now - window, now], over the time they cover."""
    start = now_s - window_s
    total = covered = 0.0
    for sample in samples:
        overlap = min(sample.end_s, now_s) - max(sample.end_s - sample.span_s, start)
        if overlap > 0:
            total += sample.value * overlap
            covered += overlap
    return _round(total / covered) if covered > 0 else 0.0


class KPAPolicy:
    """Knative's KPA as a ``Policy[KPAState]``; step it at Knative's tick (2 s) or any period."""

    def __init__(self, spec: KPASpec) -> None:
        self._spec = spec

    @property
    def spec(self) -> KPASpec:
        return self._spec

    @property
    def name(self) -> str:
        return f"kpa:{self._spec.metric}"

    @property
    def min_replicas(self) -> int:
        return self._spec.min_scale

    @property
    def max_replicas(self) -> int:
        """max-scale, or the largest int32 when unbounded."""
        return self._spec.max_scale or 2**31 - 1

    def initial_state(self) -> KPAState:
        return KPAState()

    def decide(self, state: KPAState, observation: Observation, now_s: float) -> tuple[Decision, KPAState]:
        spec, current, ready = self._spec, observation.current_replicas, observation.ready_replicas
        if not state.started:  # newAutoscaler: start in panic above one ready pod
            state = replace(state, started=True, max_panic_pods=ready, panic_since_s=now_s if ready > 1 else None)
        if ready > 0 and state.active_since_s is None:
            state = replace(state, active_since_s=now_s, inactive_since_s=None)
        elif ready == 0 and state.active_since_s is None and state.inactive_since_s is None:
            state = replace(state, inactive_since_s=now_s)
        if spec.initial_scale > 1 and ready >= spec.initial_scale:
            state = replace(state, initialized=True)
        if observation.metrics_failed:
            return Decision(
                current_replicas=current, desired_replicas=current, reason=Reason.METRICS_UNAVAILABLE
            ), state

        value = observation.in_flight_requests if spec.metric == "concurrency" else observation.arrival_rate_rps
        keep_from = now_s - spec.stable_window_s
        fresh = Sample(end_s=now_s, span_s=observation.interval_s, value=value)
        samples = (*(s for s in state.samples if s.end_s > keep_from), fresh)
        stable = window_average(samples, now_s, spec.stable_window_s)
        panic = window_average(samples, now_s, spec.panic_window_s)
        ready_f = float(max(1, ready))
        max_up = math.ceil(spec.max_scale_up_rate * ready_f)
        max_down = math.floor(ready_f / spec.max_scale_down_rate)
        dspc = math.ceil(stable / spec.target_value)
        dppc = math.ceil(panic / spec.target_value)
        stable_count = int(min(max(dspc, max_down), max_up))
        panic_count = int(min(max(dppc, max_down), max_up))
        if spec.activation_scale > 1:
            if dspc > 0 and spec.activation_scale > stable_count:
                stable_count = spec.activation_scale
            if dppc > 0 and spec.activation_scale > panic_count:
                panic_count = spec.activation_scale
        over = dppc / ready_f >= spec.panic_threshold
        panic_since, max_panic = state.panic_since_s, state.max_panic_pods
        if over:
            panic_since = now_s
        elif panic_since is not None and panic_since + spec.stable_window_s < now_s:
            panic_since, max_panic = None, 0
        in_panic = panic_since is not None
        if in_panic:
            max_panic = max(max_panic, stable_count, panic_count)
            desired = max_panic
        else:
            desired = stable_count
        reason = Reason.PANIC if in_panic else Reason.STABLE
        if not in_panic and not max_down <= dspc <= max_up and desired in (max_down, max_up):
            reason = Reason.RATE_LIMITED
        detail = (
            f"stable {stable:g} panic {panic:g} target {spec.target_value:g}: stable {dspc} panic {dppc} "
            f"(limits [{max_down}, {max_up}], ready {ready})"
        )
        delayed = state.delayed
        if spec.scale_down_delay_s > 0:
            delayed = (*((t, n) for t, n in delayed if t > now_s - spec.scale_down_delay_s), (now_s, desired))
            held = max(n for _, n in delayed)
            if held != desired:
                desired, reason = held, Reason.STABILIZED
        state = replace(state, samples=samples, panic_since_s=panic_since, max_panic_pods=max_panic, delayed=delayed)
        return self._scale(state, current, desired, reason, detail, now_s)

    def _scale(
        self, state: KPAState, current: int, desired: int, reason: Reason, detail: str, now_s: float
    ) -> tuple[Decision, KPAState]:
        """``scaler.scale``: bounds, initial scale, then the scale-to-zero rules."""
        spec = self._spec
        lo, hi = spec.min_scale, spec.max_scale
        if spec.initial_scale > 1 and not state.initialized:
            lo = max(lo, spec.initial_scale)
        bounded = max(desired, lo)
        if hi != 0:
            bounded = min(bounded, hi)
        if bounded != desired:
            desired, reason = bounded, Reason.BOUNDED

        def decision(count: int, why: Reason) -> Decision:
            return Decision(current_replicas=current, desired_replicas=count, reason=why, detail=detail)

        if desired != 0:
            if state.inactive_since_s is not None:
                state = replace(state, inactive_since_s=None)
            return decision(desired, reason), state
        if not spec.enable_scale_to_zero:
            return decision(1, Reason.BOUNDED), state
        if state.inactive_since_s is None:
            active_for = now_s - (state.active_since_s if state.active_since_s is not None else now_s)
            if active_for >= spec.stable_window_s:
                # marked inactive now; the count is left as it is
                return decision(current, Reason.SCALE_TO_ZERO_GRACE), replace(state, inactive_since_s=now_s)
            return decision(1, Reason.SCALE_TO_ZERO_GRACE), state
        wait = max(spec.scale_to_zero_grace_period_s, spec.scale_to_zero_pod_retention_period_s)
        if current == 0:
            return decision(0, Reason.IDLE), replace(state, active_since_s=None)
        if now_s - state.inactive_since_s >= wait:
            return decision(0, Reason.SCALED_TO_ZERO), replace(state, active_since_s=None)
        return decision(current, Reason.SCALE_TO_ZERO_GRACE), state
