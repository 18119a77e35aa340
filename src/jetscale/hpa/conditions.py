"""The conditions an HPA's status carries, the reasons normalization writes on them, and
``setCondition``/``removeCondition`` over an immutable tuple.

Kubernetes keeps conditions in the order they were first set: setting one replaces the entry of the
same type in place, or appends it. The messages are the controller's, word for word where the tests
pin them (``horizontal.go``, newest master).
"""

from __future__ import annotations

from enum import StrEnum

from jetscale.hpa.types import Condition, ConditionStatus

__all__ = [
    "MESSAGES",
    "ConditionType",
    "Reason",
    "find_condition",
    "make_condition",
    "remove_condition",
    "set_condition",
]


class ConditionType(StrEnum):
    ABLE_TO_SCALE = "AbleToScale"
    SCALING_ACTIVE = "ScalingActive"
    SCALING_LIMITED = "ScalingLimited"
    SCALED_TO_ZERO = "ScaledToZero"


class Reason(StrEnum):
    """The reasons normalization writes on AbleToScale and ScalingLimited."""

    READY_FOR_NEW_SCALE = "ReadyForNewScale"
    SCALE_UP_STABILIZED = "ScaleUpStabilized"
    SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
    DESIRED_WITHIN_RANGE = "DesiredWithinRange"
    TOO_MANY_REPLICAS = "TooManyReplicas"
    TOO_FEW_REPLICAS = "TooFewReplicas"
    SCALE_UP_LIMIT = "ScaleUpLimit"
    SCALE_DOWN_LIMIT = "ScaleDownLimit"


# The condition messages, word for word as horizontal.go writes them.
MESSAGES: dict[Reason, str] = {
    Reason.READY_FOR_NEW_SCALE: "recommended size matches current size",
    Reason.SCALE_UP_STABILIZED: (
        "recent recommendations were lower than current one, applying the lowest recent recommendation"
    ),
    Reason.SCALE_DOWN_STABILIZED: (
        "recent recommendations were higher than current one, applying the highest recent recommendation"
    ),
    Reason.DESIRED_WITHIN_RANGE: "the desired count is within the acceptable range",
    Reason.TOO_MANY_REPLICAS: "the desired replica count is more than the maximum replica count",
    Reason.TOO_FEW_REPLICAS: "the desired replica count is less than the minimum replica count",
    Reason.SCALE_UP_LIMIT: "the desired replica count is increasing faster than the maximum scale rate",
    Reason.SCALE_DOWN_LIMIT: "the desired replica count is decreasing faster than the maximum scale rate",
}


def make_condition(kind: ConditionType, true: bool, reason: str, message: str) -> Condition:
    status = ConditionStatus.TRUE if true else ConditionStatus.FALSE
    return Condition(type=kind, status=status, reason=reason, message=message)


def set_condition(conditions: tuple[Condition, ...], condition: Condition) -> tuple[Condition, ...]:
    """``setCondition``: replace the condition of the same type in place, or append it."""
    for i, existing in enumerate(conditions):
        if existing.type == condition.type:
            return (*conditions[:i], condition, *conditions[i + 1 :])
    return (*conditions, condition)


def remove_condition(conditions: tuple[Condition, ...], kind: ConditionType) -> tuple[Condition, ...]:
    return tuple(c for c in conditions if c.type != kind)


def find_condition(conditions: tuple[Condition, ...], kind: ConditionType) -> Condition | None:
    return next((c for c in conditions if c.type == kind), None)
