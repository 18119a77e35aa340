"""``computeReplicasForMetrics``: every metric's proposal, and the one the controller acts on.

Mirrors Kubernetes' ``horizontal.go`` (newest master): validate the scale's selector, ask every metric
(``jetscale.hpa.replicas``), and take the highest valid proposal; a broken selector, every metric
failing, or a failure while the valid ones would scale down gives -1 (no change), with the
ScalingActive condition to set. ``jetscale.hpa.controller`` calls it once per reconcile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jetscale.hpa.behavior import tolerances_for
from jetscale.hpa.conditions import ConditionType, make_condition
from jetscale.hpa.replicas import UNABLE_TO_COMPUTE, replicas_for_metric
from jetscale.hpa.types import (
    Condition,
    ControllerConfig,
    HPASpec,
    MetricFailure,
    MetricProposal,
    SelectorStatus,
)

if TYPE_CHECKING:
    from jetscale.hpa.controller import Observation

__all__ = ["MetricsOutcome", "combine_proposals", "compute_replicas_for_metrics"]

_SELECTOR_PROBLEMS = {  # SelectorStatus -> (ScalingActive reason, condition message, error)
    SelectorStatus.EMPTY: ("InvalidSelector", "the HPA target's scale is missing a selector", "selector is required"),
    SelectorStatus.INVALID: (
        "InvalidSelector",
        "couldn't convert selector into a corresponding internal selector object",
        "couldn't convert selector into a corresponding internal selector object",
    ),
    SelectorStatus.AMBIGUOUS: (
        "AmbiguousSelector",
        "pods by the target's selector are controlled by more than one HPA",
        "pods by the target's selector are controlled by more than one HPA",
    ),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsOutcome:
    """``computeReplicasForMetrics``' result: ``replicas`` is -1 when nothing may be done."""

    replicas: int
    metric_name: str
    timestamp_s: float
    condition: Condition  # the ScalingActive condition to set
    error: str | None


def combine_proposals(results: Sequence[MetricProposal | MetricFailure], spec_replicas: int) -> MetricsOutcome:
    """The highest valid proposal; -1 if every metric failed, or if one failed and the valid ones
    would scale below ``spec_replicas`` (never scale down on partial information)."""
    replicas, name, timestamp = 0, "", 0.0
    failures = [r for r in results if isinstance(r, MetricFailure)]
    for result in results:
        if isinstance(result, MetricProposal) and (replicas == 0 or result.replicas > replicas):
            replicas, name, timestamp = result.replicas, result.metric_name, result.timestamp_s
    error = None
    if failures:
        error = (
            f"invalid metrics ({len(failures)} invalid out of {len(results)}), first error is: {failures[0].message}"
        )
    if failures and (len(failures) >= len(results) or replicas < spec_replicas):
        first = failures[0]
        condition = make_condition(
            ConditionType.SCALING_ACTIVE, False, first.reason, f"{UNABLE_TO_COMPUTE}: {first.message}"
        )
        return MetricsOutcome(replicas=-1, metric_name="", timestamp_s=0.0, condition=condition, error=error)
    message = f"the HPA was able to successfully calculate a replica count from {name}"
    condition = make_condition(ConditionType.SCALING_ACTIVE, True, "ValidMetricFound", message)
    return MetricsOutcome(replicas=replicas, metric_name=name, timestamp_s=timestamp, condition=condition, error=error)


def _describe(index: int, result: MetricProposal | MetricFailure) -> list[str]:
    if isinstance(result, MetricFailure):
        return [f"metric {index}: failed [{result.reason}]: {result.message}"]
    return [f"metric {index} ({result.metric_name}) proposes {result.replicas}"] + [
        f"  {line}" for line in result.explanation
    ]


def compute_replicas_for_metrics(
    spec: HPASpec, observation: Observation, config: ControllerConfig, now_s: float
) -> tuple[MetricsOutcome, tuple[MetricProposal | MetricFailure, ...], list[str]]:
    """``computeReplicasForMetrics``: validate the selector, ask every metric, combine the proposals.
    Returns the outcome, each metric's result and the explanation lines."""
    problem = _SELECTOR_PROBLEMS.get(observation.selector)
    if problem is not None:
        reason, message, error = problem
        condition = make_condition(ConditionType.SCALING_ACTIVE, False, reason, message)
        outcome = MetricsOutcome(replicas=-1, metric_name="", timestamp_s=0.0, condition=condition, error=error)
        return outcome, (), [f"selector {observation.selector}: {error}"]
    tolerances = tolerances_for(spec, config)
    results = tuple(
        replicas_for_metric(
            metric,
            reading,
            spec_replicas=observation.spec_replicas,
            status_replicas=observation.status_replicas,
            pods=observation.pods,
            tolerances=tolerances,
            config=config,
            now_s=now_s,
        )
        for metric, reading in zip(spec.metrics, observation.readings, strict=True)
    )
    lines = [line for i, result in enumerate(results) for line in _describe(i, result)]
    return combine_proposals(results, observation.spec_replicas), results, lines
