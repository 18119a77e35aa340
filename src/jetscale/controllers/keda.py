"""KEDA's ScaledObject (keda.sh/v1alpha1) over the exact HPA: the file a user applies drives it.

Models, from kedacore/keda at 8b4f083ca8c8c2baf8477e322bd4d16ac4dfa09a:

- **The HPA KEDA owns** (``pkg/scaling/resolver``, ``apis/keda/v1alpha1/scaledobject_types.go``):
  ``keda-hpa-<name>`` with minReplicas ``GetHPAMinReplicas`` (minReplicaCount if > 0, else 1),
  maxReplicas maxReplicaCount (100), ``advanced.horizontalPodAutoscalerConfig.behavior``, and one
  External metric per trigger whose target is the trigger's threshold (AverageValue or Value, in
  milli-units truncated as ``GetMetricTargetMili`` does). It runs as ``jetscale.hpa`` runs it, every
  step (the caller steps at the HPA's sync period, 15 s by default); it scales 1 <-> N.
- **The scale loop** (``pkg/scaling/executor/scale_scaledobjects.go``, ``RequestScale``): every
  ``pollingInterval`` (30 s) the triggers are read; a trigger is active when its value is strictly
  above ``activationThreshold`` (``prometheus_scaler.go``: ``val > ActivationThreshold``) or its
  fallback is on. Active while at 0 (or below minReplicaCount with idleReplicaCount set): scale to
  max(minReplicaCount, 1) and record lastActiveTime; active otherwise: record lastActiveTime unless a
  trigger errored. Inactive: with an error and a fallback of non-zero replicas, or an error and no
  fallback, nothing; else above idleReplicaCount (or above 0 with minReplicaCount 0) scale to
  idleReplicaCount or minReplicaCount once ``lastActiveTime + cooldownPeriod < now`` (or, never
  active, ``creation + initialCooldownPeriod < now``); else below minReplicaCount (no idle) scale to it.
  A step in which the scale loop writes the scale does not also run the HPA.
- **Fallback** (``pkg/fallback/fallback.go``): a trigger's consecutive failures are counted (reset by a
  success); once the count exceeds ``failureThreshold`` the HPA is fed ``threshold x replicas`` (divided
  by the ready replicas for a Value target; no fallback at 0 ready) with replicas by ``behavior``:
  ``static`` fallback.replicas, ``currentReplicas``, ``currentReplicasIfHigher`` max(current,
  fallback.replicas), ``currentReplicasIfLower`` min(current, fallback.replicas). The HPA's own rules
  (tolerance, stabilization, behavior) then apply to that value, as in a cluster.
- **Prometheus triggers** whose query is one aggregation (sum, avg, max, min, count) of one metric,
  evaluated over the per-pod values of that metric in the observation (an empty result is 0 when
  ``ignoreNullValues`` is true, its default, else an error).

Does not model: other scaler types (cpu, memory, kafka, ...), scalingModifiers, the pause annotations,
restoreToOriginalReplicaCount, ScaledJobs, PromQL beyond one aggregation of one metric, the metrics
server's own cache (``useCachedMetrics``), or the separate failure counts of KEDA's poll loop and the
HPA's metric reads (one count per step here: each step is one HPA read).

Errors: an unknown or out-of-range field is one ``ConfigError`` line naming the file, field and value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from jetscale.controllers._fields import FieldReader, load_documents, show
from jetscale.controllers.api import Decision, Observation, Reason
from jetscale.errors import ConfigError, ManifestError
from jetscale.hpa.controller import ControllerState, reconcile
from jetscale.hpa.controller import Observation as HPAObservation
from jetscale.hpa.spec import parse_hpa
from jetscale.hpa.types import (
    ConditionStatus,
    ControllerConfig,
    ExternalMetric,
    HPASpec,
    MetricReading,
    MetricUnavailable,
    Pod,
)

__all__ = [
    "Aggregation",
    "Fallback",
    "FallbackBehavior",
    "KEDAPolicy",
    "KEDAState",
    "PrometheusTrigger",
    "ScaledObjectSpec",
    "TriggerMetricType",
    "load_scaled_object",
    "parse_query",
    "parse_scaled_object",
]

API_VERSION = "keda.sh/v1alpha1"
KIND = "ScaledObject"
DEFAULT_POLLING_INTERVAL_S = 30
DEFAULT_COOLDOWN_PERIOD_S = 300
DEFAULT_INITIAL_COOLDOWN_PERIOD_S = 0
DEFAULT_MAX_REPLICA_COUNT = 100
BEHAVIOR_PATH = "spec.advanced.horizontalPodAutoscalerConfig.behavior"


class TriggerMetricType(StrEnum):
    AVERAGE_VALUE = "AverageValue"
    VALUE = "Value"


class FallbackBehavior(StrEnum):
    STATIC = "static"
    CURRENT_REPLICAS = "currentReplicas"
    CURRENT_REPLICAS_IF_HIGHER = "currentReplicasIfHigher"
    CURRENT_REPLICAS_IF_LOWER = "currentReplicasIfLower"


class Aggregation(StrEnum):
    SUM = "sum"
    AVG = "avg"
    MAX = "max"
    MIN = "min"
    COUNT = "count"


@dataclass(frozen=True, slots=True, kw_only=True)
class PrometheusTrigger:
    name: str
    query: str
    metric: str  # the one metric the query reads (per-pod values in the observation)
    aggregation: Aggregation  # the query's outermost aggregation over the pods
    threshold: float
    activation_threshold: float = 0.0
    metric_type: TriggerMetricType = TriggerMetricType.AVERAGE_VALUE
    ignore_null_values: bool = True

    @property
    def threshold_milli(self) -> int:
        return int(self.threshold * 1000)  # GetMetricTargetMili: int64(value * 1000)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fallback:
    failure_threshold: int
    replicas: int
    behavior: FallbackBehavior = FallbackBehavior.STATIC


@dataclass(frozen=True, slots=True, kw_only=True)
class ScaledObjectSpec:
    """A validated ScaledObject; ``min_replica_count``/``idle_replica_count`` None when not written."""

    name: str
    namespace: str
    polling_interval_s: int
    cooldown_period_s: int
    initial_cooldown_period_s: int
    min_replica_count: int | None
    max_replica_count: int
    idle_replica_count: int | None
    triggers: tuple[PrometheusTrigger, ...]
    fallback: Fallback | None
    hpa: HPASpec  # the HPA KEDA creates from it

    @property
    def executor_min_replicas(self) -> int:
        """What the scale loop reads as the minimum: minReplicaCount, 0 when not written."""
        return self.min_replica_count or 0


# ------------------------------------------------------------------------------------------- parsing

_IDENT = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\()?")
_KEYWORDS = frozenset({"by", "without"})
_INNER_FUNCTIONS = frozenset({"sum", "avg", "max", "min", "count", "max_over_time", "avg_over_time"})


def parse_query(query: str) -> tuple[Aggregation, str] | None:
    """(outermost aggregation, metric) of a query such as ``sum(max by (pod) (m{ns="x"}))``; None when
    the query is not one aggregation of one metric."""
    stripped = re.sub(r"\{[^}]*\}", "", query)  # label matchers
    stripped = re.sub(r"\b(by|without)\s*\([^)]*\)", "", stripped)  # grouping clauses
    stripped = re.sub(r"\[[^\]]*\]", "", stripped)  # range selectors
    calls: list[str] = []
    metrics: set[str] = set()
    for match in _IDENT.finditer(stripped):
        name, is_call = match.group(1), match.group(2) is not None
        if name in _KEYWORDS:
            continue
        if is_call:
            calls.append(name)
        else:
            metrics.add(name)
    if len(metrics) != 1 or not calls or calls[0] not in Aggregation.__members__.values():
        return None
    if any(call not in _INNER_FUNCTIONS for call in calls[1:]):
        return None
    if not stripped.strip().startswith(calls[0]):
        return None
    return Aggregation(calls[0]), next(iter(metrics))


_TOP = ("apiVersion", "kind", "metadata", "spec", "status")
_METADATA = ("name", "namespace", "labels", "annotations", "uid", "generation", "resourceVersion")
_SPEC = (
    "scaleTargetRef",
    "pollingInterval",
    "initialCooldownPeriod",
    "cooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "advanced",
    "triggers",
    "fallback",
)
_TARGET_REF = ("name", "apiVersion", "kind", "envSourceContainerName")
_ADVANCED = ("horizontalPodAutoscalerConfig", "restoreToOriginalReplicaCount", "scalingModifiers")
_HPA_CONFIG = ("behavior", "name")
_FALLBACK = ("failureThreshold", "replicas", "behavior")
_TRIGGER = ("type", "name", "metadata", "metricType", "authenticationRef", "useCachedMetrics")
_PROMETHEUS = (
    "serverAddress",
    "query",
    "threshold",
    "activationThreshold",
    "queryParameters",
    "namespace",
    "customHeaders",
    "ignoreNullValues",
    "unsafeSsl",
    "awsRegion",
    "timeout",
    "identityOwner",
    "authModes",
)


def load_scaled_object(text: str, *, origin: str = "") -> ScaledObjectSpec:
    """The one ScaledObject of YAML ``text`` (other documents, such as the Deployment, are skipped)."""
    docs = [doc for doc in load_documents(text, origin=origin or "<scaledobject>") if doc.get("kind") == KIND]
    if len(docs) != 1:
        raise ConfigError(f"{origin or '<scaledobject>'}: must hold exactly one {KIND} (got {len(docs)})")
    return parse_scaled_object(docs[0], origin=origin)


def parse_scaled_object(doc: Mapping[str, object], *, origin: str = "") -> ScaledObjectSpec:
    """A validated ``ScaledObjectSpec`` from a loaded ScaledObject; ``ConfigError`` on the first bad field."""
    r = FieldReader(origin or "<scaledobject>")
    r.mapping(doc, "", _TOP)
    if doc.get("apiVersion") != API_VERSION:
        r.fail("apiVersion", API_VERSION, doc.get("apiVersion"))
    if doc.get("kind") != KIND:
        r.fail("kind", KIND, doc.get("kind"))
    metadata = r.mapping(r.required(doc, "metadata", ""), "metadata", _METADATA)
    name = r.text(r.required(metadata, "name", "metadata"), "metadata.name")
    namespace = r.text(metadata.get("namespace", "default"), "metadata.namespace")
    spec = r.mapping(r.required(doc, "spec", ""), "spec", _SPEC)

    ref = r.mapping(r.required(spec, "scaleTargetRef", "spec"), "spec.scaleTargetRef", _TARGET_REF)
    target_name = r.text(r.required(ref, "name", "spec.scaleTargetRef"), "spec.scaleTargetRef.name")
    target_kind = r.text(ref.get("kind", "Deployment"), "spec.scaleTargetRef.kind")
    target_api = r.text(ref.get("apiVersion", "apps/v1"), "spec.scaleTargetRef.apiVersion")

    def optional_int(key: str, lo: int) -> int | None:
        value = spec.get(key)
        return None if value is None else r.integer(value, f"spec.{key}", lo=lo)

    polling = optional_int("pollingInterval", 1)
    initial_cooldown = optional_int("initialCooldownPeriod", 0)
    cooldown = optional_int("cooldownPeriod", 0)
    idle = optional_int("idleReplicaCount", 0)
    min_count = optional_int("minReplicaCount", 0)
    max_count = optional_int("maxReplicaCount", 1)
    hpa_max = DEFAULT_MAX_REPLICA_COUNT if max_count is None else max_count
    hpa_min = min_count if min_count is not None and min_count > 0 else 1  # GetHPAMinReplicas
    check_min = 0 if min_count is None else hpa_min  # CheckReplicaCountBoundsAreValid
    if min_count is not None and min_count > hpa_max:
        r.fail("spec.minReplicaCount", f"<= maxReplicaCount ({hpa_max})", min_count)
    if check_min > hpa_max:
        r.fail("spec.maxReplicaCount", f">= minReplicaCount's HPA minimum ({check_min})", max_count)
    if idle is not None and idle >= check_min:
        r.fail("spec.idleReplicaCount", f"< minReplicaCount ({check_min})", idle)

    behavior: object = None
    advanced_raw = spec.get("advanced")
    if advanced_raw is not None:
        advanced = r.mapping(advanced_raw, "spec.advanced", _ADVANCED)
        if advanced.get("scalingModifiers"):
            r.fail("spec.advanced.scalingModifiers", "absent (not modeled by jetscale)", advanced["scalingModifiers"])
        if "restoreToOriginalReplicaCount" in advanced:
            r.boolean(advanced["restoreToOriginalReplicaCount"], "spec.advanced.restoreToOriginalReplicaCount")
        hpa_config_raw = advanced.get("horizontalPodAutoscalerConfig")
        if hpa_config_raw is not None:
            hpa_config = r.mapping(hpa_config_raw, "spec.advanced.horizontalPodAutoscalerConfig", _HPA_CONFIG)
            behavior = hpa_config.get("behavior")

    fallback = _fallback(r, spec.get("fallback"))
    triggers = _triggers(r, r.required(spec, "triggers", "spec"))

    metrics: list[Mapping[str, object]] = []
    for index, trigger in enumerate(triggers):
        key = "averageValue" if trigger.metric_type is TriggerMetricType.AVERAGE_VALUE else "value"
        metrics.append(
            {
                "type": "External",
                "external": {
                    "metric": {"name": f"s{index}-prometheus"},
                    "target": {"type": trigger.metric_type.value, key: f"{trigger.threshold_milli}m"},
                },
            }
        )
    hpa_doc: dict[str, object] = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": f"keda-hpa-{name}", "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": target_api, "kind": target_kind, "name": target_name},
            "minReplicas": hpa_min,
            "maxReplicas": hpa_max,
            "metrics": metrics,
            **({"behavior": behavior} if behavior is not None else {}),
        },
    }
    try:
        hpa = parse_hpa(hpa_doc, origin=r.origin)
    except ManifestError as exc:
        lines = "; ".join(f"'{_keda_path(e.path)}' {e.message}" for e in exc.errors)
        raise ConfigError(f"{r.origin}: {lines}") from None
    return ScaledObjectSpec(
        name=name,
        namespace=namespace,
        polling_interval_s=DEFAULT_POLLING_INTERVAL_S if polling is None else polling,
        cooldown_period_s=DEFAULT_COOLDOWN_PERIOD_S if cooldown is None else cooldown,
        initial_cooldown_period_s=DEFAULT_INITIAL_COOLDOWN_PERIOD_S if initial_cooldown is None else initial_cooldown,
        min_replica_count=min_count,
        max_replica_count=hpa_max,
        idle_replica_count=idle,
        triggers=triggers,
        fallback=fallback,
        hpa=hpa,
    )


def _keda_path(path: str) -> str:
    if path.startswith("spec.behavior"):
        return BEHAVIOR_PATH + path[len("spec.behavior") :]
    if path.startswith("spec.metrics["):
        return "spec.triggers[" + path[len("spec.metrics[") :]
    return path


def _fallback(r: FieldReader, raw: object) -> Fallback | None:
    if raw is None:
        return None
    fb = r.mapping(raw, "spec.fallback", _FALLBACK)
    threshold = r.integer(r.required(fb, "failureThreshold", "spec.fallback"), "spec.fallback.failureThreshold", lo=0)
    replicas = r.integer(r.required(fb, "replicas", "spec.fallback"), "spec.fallback.replicas", lo=0)
    behavior = r.choice(
        fb.get("behavior", FallbackBehavior.STATIC.value),
        "spec.fallback.behavior",
        [b.value for b in FallbackBehavior],
    )
    return Fallback(failure_threshold=threshold, replicas=replicas, behavior=FallbackBehavior(behavior))


def _triggers(r: FieldReader, raw: object) -> tuple[PrometheusTrigger, ...]:
    if not isinstance(raw, list) or not raw:
        r.fail("spec.triggers", "a list of at least one trigger", raw)
    triggers: list[PrometheusTrigger] = []
    for index, item in enumerate(raw):
        path = f"spec.triggers[{index}]"
        trigger = r.mapping(item, path, _TRIGGER)
        kind = r.text(r.required(trigger, "type", path), f"{path}.type")
        if kind != "prometheus":
            r.fail(f"{path}.type", "prometheus (the only trigger type jetscale models)", kind)
        metric_type = r.choice(
            trigger.get("metricType", TriggerMetricType.AVERAGE_VALUE.value),
            f"{path}.metricType",
            [t.value for t in TriggerMetricType],
        )
        meta = r.mapping(r.required(trigger, "metadata", path), f"{path}.metadata", _PROMETHEUS)
        r.text(r.required(meta, "serverAddress", f"{path}.metadata"), f"{path}.metadata.serverAddress")
        query = r.text(r.required(meta, "query", f"{path}.metadata"), f"{path}.metadata.query")
        parsed = parse_query(query)
        if parsed is None:
            r.fail(f"{path}.metadata.query", "one aggregation (sum, avg, max, min, count) of one metric", query)
        threshold = r.number(r.required(meta, "threshold", f"{path}.metadata"), f"{path}.metadata.threshold", lo=0.001)
        activation = r.number(meta.get("activationThreshold", 0), f"{path}.metadata.activationThreshold", lo=0)
        ignore_null = r.boolean(meta.get("ignoreNullValues", True), f"{path}.metadata.ignoreNullValues")
        name = trigger.get("name", f"s{index}-prometheus")
        triggers.append(
            PrometheusTrigger(
                name=r.text(name, f"{path}.name"),
                query=query,
                aggregation=parsed[0],
                metric=parsed[1],
                threshold=threshold,
                activation_threshold=activation,
                metric_type=TriggerMetricType(metric_type),
                ignore_null_values=ignore_null,
            )
        )
    return tuple(triggers)


# ------------------------------------------------------------------------------------------ controller


@dataclass(frozen=True, slots=True, kw_only=True)
class KEDAState:
    """The operator's memory of one ScaledObject and the HPA controller's history of its HPA."""

    hpa: ControllerState = field(default_factory=ControllerState)
    failures: tuple[int, ...] = ()  # consecutive failed reads per trigger (status.health)
    created_s: float | None = None  # the first step: the ScaledObject's creation
    last_poll_s: float | None = None
    last_active_s: float | None = None  # status.lastActiveTime


def _evaluate(trigger: PrometheusTrigger, observation: Observation) -> float | str:
    """The trigger's query over the observation: a value, or the error text of a failed read."""
    if observation.metrics_failed:
        return "metrics source unavailable"
    values = observation.pod_metrics.get(trigger.metric)
    if values is None:
        return f"no series for {trigger.metric}"
    if not values and trigger.aggregation is not Aggregation.COUNT:
        return 0.0 if trigger.ignore_null_values else "prometheus metrics 'prometheus' target may be lost"
    if trigger.aggregation is Aggregation.SUM:
        return float(sum(values))
    if trigger.aggregation is Aggregation.AVG:
        return float(sum(values)) / len(values)
    if trigger.aggregation is Aggregation.MAX:
        return float(max(values))
    if trigger.aggregation is Aggregation.MIN:
        return float(min(values))
    return float(len(values))


def _fallback_milli(spec: ScaledObjectSpec, trigger: PrometheusTrigger, observation: Observation) -> int | None:
    """``doFallback``: the metric value that makes the HPA propose the fallback's replicas."""
    assert spec.fallback is not None
    fb, current = spec.fallback, observation.current_replicas
    if fb.behavior is FallbackBehavior.CURRENT_REPLICAS:
        replicas = float(current)
    elif fb.behavior is FallbackBehavior.CURRENT_REPLICAS_IF_HIGHER:
        replicas = float(max(current, fb.replicas))
    elif fb.behavior is FallbackBehavior.CURRENT_REPLICAS_IF_LOWER:
        replicas = float(min(current, fb.replicas))
    else:
        replicas = float(fb.replicas)
    if trigger.metric_type is TriggerMetricType.VALUE:
        if observation.ready_replicas == 0:
            return None  # "readyReplicas is zero, cannot do fallback"
        replicas /= observation.ready_replicas
    return int(trigger.threshold * 1000 * replicas)


class KEDAPolicy:
    """A ScaledObject as a ``Policy[KEDAState]``; step it at the HPA's sync period."""

    def __init__(self, spec: ScaledObjectSpec, config: ControllerConfig = ControllerConfig()) -> None:  # noqa: B008
        self._spec = spec
        self._config = config

    @property
    def spec(self) -> ScaledObjectSpec:
        return self._spec

    @property
    def name(self) -> str:
        return f"keda:{self._spec.name}"

    @property
    def min_replicas(self) -> int:
        idle = self._spec.idle_replica_count
        return idle if idle is not None else self._spec.executor_min_replicas

    @property
    def max_replicas(self) -> int:
        return self._spec.max_replica_count

    def initial_state(self) -> KEDAState:
        return KEDAState(failures=(0,) * len(self._spec.triggers))

    def decide(self, state: KEDAState, observation: Observation, now_s: float) -> tuple[Decision, KEDAState]:
        spec, current = self._spec, observation.current_replicas
        created = now_s if state.created_s is None else state.created_s
        reads = [_evaluate(t, observation) for t in spec.triggers]
        previous = state.failures or (0,) * len(reads)
        failures = tuple(0 if isinstance(v, float) else n + 1 for v, n in zip(reads, previous, strict=True))
        readings: list[MetricReading] = []
        active: list[bool] = []
        errors: list[str] = []
        fallback_on = False
        for trigger, value, count in zip(spec.triggers, reads, failures, strict=True):
            if isinstance(value, float):
                readings.append(ExternalMetric(values_milli=(int(value * 1000),), timestamp_s=now_s))
                active.append(value > trigger.activation_threshold)
                continue
            milli = None
            if spec.fallback is not None and count > spec.fallback.failure_threshold:
                milli = _fallback_milli(spec, trigger, observation)
            if milli is None:
                readings.append(MetricUnavailable(error=value))
                active.append(False)
                errors.append(f"{trigger.name}: {value}")
            else:
                readings.append(ExternalMetric(values_milli=(milli,), timestamp_s=now_s))
                active.append(True)
                fallback_on = True

        new_state = replace(state, failures=failures, created_s=created)
        note = ""
        if state.last_poll_s is None or now_s - state.last_poll_s >= spec.polling_interval_s:
            new_state = replace(new_state, last_poll_s=now_s)
            written, new_state, note = self._scale_loop(new_state, current, any(active), bool(errors), now_s)
            if written is not None:
                return written, new_state

        ready = observation.ready_replicas
        pods = tuple(
            Pod(name=f"pod-{i}", ready=ConditionStatus.TRUE if i < ready else ConditionStatus.FALSE)
            for i in range(current)
        )
        hpa_observation = HPAObservation(
            spec_replicas=current, status_replicas=current, pods=pods, readings=tuple(readings)
        )
        hpa_decision, hpa_state = reconcile(spec.hpa, state.hpa, hpa_observation, now_s, self._config)
        new_state = replace(new_state, hpa=hpa_state)
        desired = hpa_decision.desired_replicas
        if hpa_decision.rescale:
            reason = Reason.FALLBACK if fallback_on else Reason.HPA
        elif note == "cooldown":
            reason = Reason.COOLDOWN
        elif current == 0:
            reason = Reason.IDLE
        elif hpa_decision.metric_replicas is None and hpa_decision.error is not None:
            reason = Reason.METRICS_UNAVAILABLE
        else:
            reason = Reason.FALLBACK if fallback_on else Reason.HPA
        detail = f"HPA: {hpa_decision.reason}" + (f"; errors: {', '.join(errors)}" if errors else "")
        return Decision(current_replicas=current, desired_replicas=desired, reason=reason, detail=detail), new_state

    def _scale_loop(
        self, state: KEDAState, current: int, is_active: bool, is_error: bool, now_s: float
    ) -> tuple[Decision | None, KEDAState, str]:
        """``RequestScale``: a write of the scale (a decision), or None and a note for the HPA step."""
        spec = self._spec
        min_r, idle, fallback = spec.executor_min_replicas, spec.idle_replica_count, spec.fallback

        def write(target: int, reason: Reason, detail: str) -> Decision:
            return Decision(current_replicas=current, desired_replicas=target, reason=reason, detail=detail)

        if is_active:
            if (idle is not None and current < min_r) or current == 0:
                target = min_r if min_r > 0 else 1
                detail = f"a trigger is active: scale {current} -> {target}"
                return write(target, Reason.ACTIVATED, detail), replace(state, last_active_s=now_s), ""
            if not is_error:
                state = replace(state, last_active_s=now_s)
            return None, state, ""
        if is_error and fallback is not None and fallback.replicas != 0:
            return None, state, ""
        if is_error and fallback is None:
            return None, state, ""
        if (idle is not None and current > idle) or (current > 0 and min_r == 0):
            last = state.last_active_s
            created = state.created_s if state.created_s is not None else now_s
            cooled = (last is None and created + spec.initial_cooldown_period_s < now_s) or (
                last is not None and last + spec.cooldown_period_s < now_s
            )
            if cooled:
                target = idle if idle is not None else min_r
                since = "never active" if last is None else f"inactive since {last:g}s"
                return write(target, Reason.DEACTIVATED, f"{since}: scale {current} -> {target}"), state, ""
            return None, state, "cooldown"
        if idle is None and current < min_r:
            return write(min_r, Reason.BOUNDED, f"inactive below minReplicaCount: scale to {min_r}"), state, ""
        return None, state, ""


def describe(spec: ScaledObjectSpec) -> str:
    """One line: the ScaledObject's main knobs."""
    triggers = ", ".join(f"{t.name} {t.aggregation}({t.metric}) > {t.threshold:g}" for t in spec.triggers)
    return (
        f"ScaledObject {spec.name}: replicas [{spec.executor_min_replicas}, {spec.max_replica_count}], "
        f"polling {spec.polling_interval_s}s, cooldown {spec.cooldown_period_s}s, triggers {show(triggers, 200)}"
    )
