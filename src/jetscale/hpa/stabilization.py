"""Stabilization: the recommendation history that keeps an HPA from flapping.

Mirrors ``stabilizeRecommendation`` (legacy path: the highest recommendation within the controller's
downscale window) and ``stabilizeRecommendationWithBehaviors`` (``current`` clamped into [lowest
recommendation in the scaleUp window, highest in the scaleDown window]) of Kubernetes'
``horizontal.go`` (newest master), and ``maybeInitScaleDownStabilizationWindow``. Kubernetes reads
``time.Now()`` and mutates its map; here ``now_s`` and the history are arguments and a new tuple is
returned. Time comparisons are strict, as Go's ``Before``/``After``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from jetscale.hpa.conditions import MESSAGES, Reason
from jetscale.hpa.types import ControllerConfig, HPAScalingRules, Timestamped

__all__ = [
    "Stabilization",
    "scale_down_window_s",
    "stabilize_recommendation",
    "stabilize_recommendation_with_behaviors",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Stabilization:
    """A stabilized recommendation and the recommendation history with the new entry stored.

    ``reason`` is what AbleToScale gets: ``ReadyForNewScale`` when stabilization changed nothing.
    """

    replicas: int
    reason: Reason
    recommendations: tuple[Timestamped, ...]
    explanation: str

    @property
    def message(self) -> str:
        return MESSAGES[self.reason]


def _store(history: tuple[Timestamped, ...], index: int | None, entry: Timestamped) -> tuple[Timestamped, ...]:
    if index is None:
        return (*history, entry)
    return (*history[:index], entry, *history[index + 1 :])


def stabilize_recommendation(
    recommendations: Sequence[Timestamped], prenormalized: int, *, window_s: float, now_s: float
) -> Stabilization:
    """``stabilizeRecommendation``: the highest recommendation not older than the downscale window
    (the new one included); the new one replaces the last expired entry, or is appended."""
    history = tuple(recommendations)
    cutoff = now_s - window_s
    highest = prenormalized
    old_index: int | None = None
    for i, rec in enumerate(history):
        if rec.timestamp_s < cutoff:
            old_index = i
        elif rec.recommendation > highest:
            highest = rec.recommendation
    stored = _store(history, old_index, Timestamped(recommendation=prenormalized, timestamp_s=now_s))
    reason = Reason.SCALE_DOWN_STABILIZED if highest != prenormalized else Reason.READY_FOR_NEW_SCALE
    return Stabilization(
        replicas=highest,
        reason=reason,
        recommendations=stored,
        explanation=(
            f"stabilization: highest recommendation of the last {window_s:g}s is {highest}"
            f" (metrics ask {prenormalized}) -> {highest} [{reason}]"
        ),
    )


def scale_down_window_s(rules: HPAScalingRules, config: ControllerConfig) -> float:
    """``maybeInitScaleDownStabilizationWindow``: an unset scaleDown window means the controller flag."""
    if rules.stabilization_window_s is None:
        return config.downscale_stabilization_s
    return float(rules.stabilization_window_s)


def stabilize_recommendation_with_behaviors(
    recommendations: Sequence[Timestamped],
    *,
    current: int,
    desired: int,
    up_window_s: float,
    down_window_s: float,
    now_s: float,
) -> Stabilization:
    """``stabilizeRecommendationWithBehaviors``: ``current`` clamped into [lowest recommendation
    within the up window, highest within the down window], both bounds including ``desired``.

    The unstabilized ``desired`` is stored, replacing the last entry expired for both windows.
    """
    history = tuple(recommendations)
    up_cutoff = now_s - up_window_s
    down_cutoff = now_s - down_window_s
    lowest = desired
    highest = desired
    old_index: int | None = None
    for i, rec in enumerate(history):
        if rec.timestamp_s > up_cutoff:
            lowest = min(lowest, rec.recommendation)
        if rec.timestamp_s > down_cutoff:
            highest = max(highest, rec.recommendation)
        if rec.timestamp_s < up_cutoff and rec.timestamp_s < down_cutoff:
            old_index = i
    result = current
    if result < lowest:
        result = lowest
    if result > highest:
        result = highest
    stored = _store(history, old_index, Timestamped(recommendation=desired, timestamp_s=now_s))
    if result == desired:
        reason = Reason.READY_FOR_NEW_SCALE
    elif desired >= current:
        reason = Reason.SCALE_UP_STABILIZED
    else:
        reason = Reason.SCALE_DOWN_STABILIZED
    return Stabilization(
        replicas=result,
        reason=reason,
        recommendations=stored,
        explanation=(
            f"stabilization: current {current} clamped into [lowest of the last {up_window_s:g}s = {lowest},"
            f" highest of the last {down_window_s:g}s = {highest}] (metrics ask {desired}) -> {result} [{reason}]"
        ),
    )
