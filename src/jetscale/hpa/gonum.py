"""Go's numeric rules, where the HPA's arithmetic depends on them.

Float division by zero gives ``+-Inf``/``NaN`` instead of raising, ``ceil`` passes infinities through,
integer division truncates toward zero, ``int32(x)`` saturates (Go leaves out-of-range conversions
implementation-defined; saturating keeps replica counts sane) and int64 addition wraps.
"""

from __future__ import annotations

import math

from jetscale.hpa.types import MAX_INT32, MIN_INT32

__all__ = ["go_ceil", "go_float_div", "go_int_div", "to_int32", "wrap_int64"]

_MIN_INT64 = -(2**63)


def go_float_div(numerator: float, denominator: float) -> float:
    """IEEE-754 division as Go does it: ``x/0`` is ``+Inf``/``-Inf``, ``0/0`` is ``NaN``."""
    if denominator == 0.0:
        if numerator == 0.0 or math.isnan(numerator):
            return math.nan
        negative = (numerator < 0) != (math.copysign(1.0, denominator) < 0)
        return -math.inf if negative else math.inf
    return numerator / denominator


def go_int_div(numerator: int, denominator: int) -> int:
    """Go integer division: truncates toward zero (Python's ``//`` floors)."""
    quotient = abs(numerator) // abs(denominator)
    return quotient if (numerator < 0) == (denominator < 0) else -quotient


def go_ceil(value: float) -> float:
    """``math.Ceil``: infinities and NaN pass through (Python's ``math.ceil`` raises on them)."""
    return float(math.ceil(value)) if math.isfinite(value) else value


def to_int32(value: float) -> int:
    """``int32(value)`` for a value already rounded: truncates, saturating at the int32 bounds (NaN -> 0)."""
    if math.isnan(value):
        return 0
    if value >= MAX_INT32:
        return MAX_INT32
    if value <= MIN_INT32:
        return MIN_INT32
    return int(value)


def wrap_int64(value: int) -> int:
    """Two's-complement int64 wrap-around, as Go's ``+`` overflows."""
    return (value - _MIN_INT64) % 2**64 + _MIN_INT64
