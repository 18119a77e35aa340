"""A queueing-model controller in the spirit of llm-d's Workload Variant Autoscaler (WVA): a per-replica
service rate fitted online from observed throughput and time to first token, and the replica count
sized so that the predicted TTFT meets an SLO with a margin.

What it models (jetscale's own design; WVA is the inspiration, not the source of the formulas):

- **Each replica's TTFT as an M/M/1 sojourn time**: at per-replica throughput x (requests/s) and
  service rate mu, TTFT = 1 / (mu - x), i.e. ``1/TTFT = a + b x`` with a = mu and b = -1. The line is
  fitted online by **recursive least squares with exponential forgetting** (factor ``forgetting``,
  regressors (1, x), target 1/TTFT, prior (mu0, -1) with covariance ``priorVariance`` x I); the service
  rate is the throughput at which 1/TTFT reaches 0: mu = a / -b (the fit's saturation point; the prior
  mu0 while b is not negative). A step feeds the fit only when it saw completions, ready replicas and
  a mean TTFT.
- **Sizing** at the arrival rate averaged over ``rateWindowSeconds`` (time-weighted), for the target
  T = SLO x (1 - margin): ``queue: split`` (n independent M/M/1 queues with the load split evenly, as
  a round-robin router does): the fewest n with 1 / (mu - lambda / n) <= T, i.e.
  n = ceil(lambda / (mu - 1/T)); ``queue: pooled`` (M/M/c, as a least-outstanding router approaches):
  the fewest c with Erlang-C wait C(c, lambda/mu) / (c mu - lambda) + 1/mu <= T. No n within max
  meets T (mu <= 1/T): max, reason SloInfeasible.
- **Scale-down stabilization**: the highest count recommended over ``scaleDownStabilizationSeconds``,
  as the HPA's default downscale window does.

Does not model: WVA's state-dependent M/M/1/K queue with a batch-size-dependent service rate
(``pkg/analyzer/mm1modelstatedependent.go``), its ITL = alpha + beta x batch profile
(``docs/design/modeling-optimization.md``), its optimizer across variants and accelerators, ITL SLOs,
or prefill / decode as separate stages. Facts read from llm-d-incubation/workload-variant-autoscaler
at 56a651b0534373e0dc0aece5a78c267de65ba56c: TTFT = queueing wait + prefill time, sizing by the
largest rate that meets the target, parameters fitted from observations.

Config (YAML)::

    apiVersion: jetscale.dev/v1alpha1
    kind: QueueingController
    metadata: {name: llama}
    spec:
      minReplicas: 1
      maxReplicas: 20
      slo: {ttftSeconds: 2.0, margin: 0.2}
      queue: split                 # split | pooled
      fit: {initialServiceRateRps: 2.0, forgetting: 0.98, priorVariance: 100.0}
      rateWindowSeconds: 30
      scaleDownStabilizationSeconds: 120
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from jetscale.controllers._fields import FieldReader, load_documents
from jetscale.controllers.api import Decision, Observation, Reason
from jetscale.errors import ConfigError

__all__ = [
    "QueueModel",
    "QueueingPolicy",
    "QueueingSpec",
    "QueueingState",
    "RLSFit",
    "erlang_c",
    "load_queueing",
    "parse_queueing",
    "predicted_ttft_s",
    "size_replicas",
]

API_VERSION = "jetscale.dev/v1alpha1"
KIND = "QueueingController"
MAX_INT32 = 2**31 - 1


class QueueModel(StrEnum):
    SPLIT = "split"  # n x M/M/1, the load split evenly
    POOLED = "pooled"  # M/M/c


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueingSpec:
    name: str
    min_replicas: int
    max_replicas: int
    ttft_slo_s: float
    margin: float
    queue: QueueModel = QueueModel.SPLIT
    initial_service_rate_rps: float = 1.0
    forgetting: float = 0.98
    prior_variance: float = 100.0
    rate_window_s: float = 30.0
    scale_down_stabilization_s: float = 120.0

    @property
    def target_ttft_s(self) -> float:
        return self.ttft_slo_s * (1.0 - self.margin)


# ------------------------------------------------------------------------------------------- parsing

_TOP = ("apiVersion", "kind", "metadata", "spec")
_SPEC = (
    "minReplicas",
    "maxReplicas",
    "slo",
    "queue",
    "fit",
    "rateWindowSeconds",
    "scaleDownStabilizationSeconds",
)
_SLO = ("ttftSeconds", "margin")
_FIT = ("initialServiceRateRps", "forgetting", "priorVariance")


def load_queueing(text: str, *, origin: str = "") -> QueueingSpec:
    where = origin or "<queueing>"
    docs = [d for d in load_documents(text, origin=where) if d.get("kind") == KIND]
    if len(docs) != 1:
        raise ConfigError(f"{where}: must hold exactly one {KIND} (got {len(docs)})")
    return parse_queueing(docs[0], origin=origin)


def parse_queueing(doc: Mapping[str, object], *, origin: str = "") -> QueueingSpec:
    r = FieldReader(origin or "<queueing>")
    r.mapping(doc, "", _TOP)
    if doc.get("apiVersion") != API_VERSION:
        r.fail("apiVersion", API_VERSION, doc.get("apiVersion"))
    meta = doc.get("metadata") or {}
    name = r.text(r.mapping(meta, "metadata", ("name",)).get("name", "queueing"), "metadata.name")
    spec = r.mapping(r.required(doc, "spec", ""), "spec", _SPEC)
    lo = r.integer(spec.get("minReplicas", 1), "spec.minReplicas", lo=0)
    hi = r.integer(r.required(spec, "maxReplicas", "spec"), "spec.maxReplicas", lo=1)
    if hi < lo:
        r.fail("spec.maxReplicas", f">= minReplicas ({lo})", hi)
    slo = r.mapping(r.required(spec, "slo", "spec"), "spec.slo", _SLO)
    ttft = r.number(r.required(slo, "ttftSeconds", "spec.slo"), "spec.slo.ttftSeconds", lo=1e-6)
    margin = r.number(slo.get("margin", 0.2), "spec.slo.margin", lo=0.0, hi=0.95)
    queue = r.choice(spec.get("queue", "split"), "spec.queue", [q.value for q in QueueModel])
    fit = r.mapping(spec.get("fit") or {}, "spec.fit", _FIT)
    mu0 = r.number(fit.get("initialServiceRateRps", 1.0), "spec.fit.initialServiceRateRps", lo=1e-6)
    forgetting = r.number(fit.get("forgetting", 0.98), "spec.fit.forgetting", lo=0.5, hi=1.0)
    variance = r.number(fit.get("priorVariance", 100.0), "spec.fit.priorVariance", lo=1e-9)
    window = r.number(spec.get("rateWindowSeconds", 30), "spec.rateWindowSeconds", lo=1.0, hi=3600.0)
    stab = r.number(
        spec.get("scaleDownStabilizationSeconds", 120), "spec.scaleDownStabilizationSeconds", lo=0.0, hi=3600.0
    )
    return QueueingSpec(
        name=name,
        min_replicas=lo,
        max_replicas=hi,
        ttft_slo_s=ttft,
        margin=margin,
        queue=QueueModel(queue),
        initial_service_rate_rps=mu0,
        forgetting=forgetting,
        prior_variance=variance,
        rate_window_s=window,
        scale_down_stabilization_s=stab,
    )


# ----------------------------------------------------------------------------------------- the model


@dataclass(frozen=True, slots=True, kw_only=True)
class RLSFit:
    """Recursive least squares on ``y = a + b x`` with forgetting; ``p`` is the 2x2 covariance, row-major."""

    a: float
    b: float
    p: tuple[float, float, float, float]
    samples: int = 0

    @classmethod
    def prior(cls, service_rate_rps: float, variance: float) -> RLSFit:
        return cls(a=service_rate_rps, b=-1.0, p=(variance, 0.0, 0.0, variance))

    def update(self, x: float, y: float, forgetting: float) -> RLSFit:
        p11, p12, p21, p22 = self.p
        # k = P phi / (lambda + phi' P phi), phi = (1, x)
        pp1, pp2 = p11 + p12 * x, p21 + p22 * x
        denominator = forgetting + pp1 + x * pp2
        k1, k2 = pp1 / denominator, pp2 / denominator
        error = y - (self.a + self.b * x)
        # P = (P - k phi' P) / lambda ; phi' P = (p11 + x p21, p12 + x p22)
        q1, q2 = p11 + x * p21, p12 + x * p22
        p = (
            (p11 - k1 * q1) / forgetting,
            (p12 - k1 * q2) / forgetting,
            (p21 - k2 * q1) / forgetting,
            (p22 - k2 * q2) / forgetting,
        )
        return RLSFit(a=self.a + k1 * error, b=self.b + k2 * error, p=p, samples=self.samples + 1)

    def service_rate_rps(self, fallback: float) -> float:
        """The throughput at which the fitted 1/TTFT reaches 0; ``fallback`` while the fit is unusable."""
        if self.b < -1e-9 and self.a > 0:
            return self.a / -self.b
        return fallback


def erlang_c(servers: int, offered: float) -> float:
    """The probability that an arrival waits in M/M/c with ``offered`` = lambda / mu (< servers)."""
    if offered <= 0:
        return 0.0
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return servers * b / (servers - offered * (1.0 - b))


def predicted_ttft_s(queue: QueueModel, replicas: int, arrival_rps: float, service_rate_rps: float) -> float:
    """The model's mean TTFT; infinity when the replicas cannot keep up."""
    if replicas <= 0 or arrival_rps >= replicas * service_rate_rps:
        return math.inf if arrival_rps > 0 or replicas <= 0 else 1.0 / service_rate_rps
    if queue is QueueModel.SPLIT:
        return 1.0 / (service_rate_rps - arrival_rps / replicas)
    wait = erlang_c(replicas, arrival_rps / service_rate_rps) / (replicas * service_rate_rps - arrival_rps)
    return wait + 1.0 / service_rate_rps


def size_replicas(
    queue: QueueModel, arrival_rps: float, service_rate_rps: float, target_s: float, max_replicas: int
) -> int | None:
    """The fewest replicas whose predicted TTFT is within ``target_s`` (0 at no load); None if none up
    to ``max_replicas`` is."""
    if arrival_rps <= 0:
        return 0
    if 1.0 / service_rate_rps > target_s:
        return None
    if queue is QueueModel.SPLIT:
        headroom = service_rate_rps - 1.0 / target_s
        if headroom <= 0:
            return None
        n = max(1, math.ceil(arrival_rps / headroom - 1e-9))
        return n if n <= max_replicas else None
    c = max(1, math.floor(arrival_rps / service_rate_rps) + 1)
    while c <= max_replicas:
        if predicted_ttft_s(queue, c, arrival_rps, service_rate_rps) <= target_s:
            return c
        c += 1
    return None


# ------------------------------------------------------------------------------------------ controller


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueingState:
    fit: RLSFit
    arrivals: tuple[tuple[float, float, int], ...] = ()  # (end, span, arrived) over the rate window
    recommendations: tuple[tuple[float, int], ...] = ()  # (time, count) over the stabilization window


class QueueingPolicy:
    """The queueing-model controller as a ``Policy[QueueingState]``."""

    def __init__(self, spec: QueueingSpec) -> None:
        self._spec = spec

    @property
    def spec(self) -> QueueingSpec:
        return self._spec

    @property
    def name(self) -> str:
        return f"queueing:{self._spec.name}"

    @property
    def min_replicas(self) -> int:
        return self._spec.min_replicas

    @property
    def max_replicas(self) -> int:
        return self._spec.max_replicas

    def initial_state(self) -> QueueingState:
        return QueueingState(fit=RLSFit.prior(self._spec.initial_service_rate_rps, self._spec.prior_variance))

    def decide(self, state: QueueingState, observation: Observation, now_s: float) -> tuple[Decision, QueueingState]:
        spec, current = self._spec, observation.current_replicas
        fit = state.fit
        ttft = observation.mean_ttft_s
        if observation.ready_replicas > 0 and observation.completed_requests > 0 and ttft is not None and ttft > 0:
            per_replica = observation.throughput_rps / observation.ready_replicas
            fit = fit.update(per_replica, 1.0 / ttft, spec.forgetting)
        mu = fit.service_rate_rps(spec.initial_service_rate_rps)

        start = now_s - spec.rate_window_s
        arrivals = (
            *(a for a in state.arrivals if a[0] > start),
            (now_s, observation.interval_s, observation.arrived_requests),
        )
        covered = sum(min(span, end - start) for end, span, _ in arrivals)
        counted = sum(n * min(span, end - start) / span for end, span, n in arrivals)
        rate = counted / covered if covered > 0 else 0.0

        sized = size_replicas(spec.queue, rate, mu, spec.target_ttft_s, spec.max_replicas)
        if sized is None:
            wanted, reason = spec.max_replicas, Reason.SLO_INFEASIBLE
        else:
            wanted, reason = sized, Reason.SLO_SIZED
        clamped = max(spec.min_replicas, min(spec.max_replicas, wanted))
        if clamped != wanted:
            reason = Reason.BOUNDED
        recommendations = (
            *(rec for rec in state.recommendations if rec[0] > now_s - spec.scale_down_stabilization_s),
            (now_s, clamped),
        )
        # up at once; down to the highest count of the window, never above the current one
        desired = clamped if clamped >= current else min(current, max(n for _, n in recommendations))
        if desired != clamped:
            reason = Reason.STABILIZED
        predicted = predicted_ttft_s(spec.queue, desired, rate, mu)
        detail = (
            f"lambda {rate:.4g} rps, mu {mu:.4g} rps/replica (fit a {fit.a:.4g} b {fit.b:.4g}, {fit.samples} samples), "
            f"{spec.queue} model: {desired} replicas -> TTFT {predicted:.4g}s (target {spec.target_ttft_s:.4g}s)"
        )
        new_state = replace(state, fit=fit, arrivals=arrivals, recommendations=recommendations)
        return Decision(current_replicas=current, desired_replicas=desired, reason=reason, detail=detail), new_state
