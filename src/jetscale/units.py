"""Kubernetes quantities and durations, exactly.

A Kubernetes ``resource.Quantity`` is a decimal number with an optional suffix: binary (``Ki``..``Ei``),
decimal SI (``n u m k M G T P E``) or a decimal exponent (``1e3``, ``2E-3``). jetscale keeps metric values
as integer milli-units, as the HPA controller does (``Quantity.MilliValue()``, which rounds up to the next
milli-unit), so that comparisons never depend on floats.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from jetscale.errors import ConfigError

__all__ = [
    "format_milli",
    "parse_duration_s",
    "parse_quantity",
    "quantity_to_float",
    "quantity_to_milli",
]

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# sign? digits with optional fraction, then suffix: binary, decimal, or exponent.
_QUANTITY = re.compile(
    r"^(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$"
)
_MAX_INT64 = 2**63 - 1


def parse_quantity(value: object, field: str = "quantity") -> Fraction:
    """The exact value of a Kubernetes quantity (``"500m"``, ``"1.5"``, ``10``, ``"2Gi"``, ``"1e3"``).

    Raises ``ConfigError`` naming ``field`` and the value when it is not a quantity.
    """
    if isinstance(value, bool):
        raise ConfigError(f"{field}: must be a quantity such as 500m, 1.5 or 2Gi (got {value!r})")
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{field}: must be a finite quantity (got {value!r})")
        return Fraction(repr(value))
    if not isinstance(value, str):
        raise ConfigError(f"{field}: must be a quantity such as 500m, 1.5 or 2Gi (got {value!r})")
    text = value.strip()
    match = _QUANTITY.match(text)
    if match is None:
        raise ConfigError(f"{field}: must be a quantity such as 500m, 1.5 or 2Gi (got {value!r})")
    number = Fraction(match["num"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    exponent = int(suffix[1:])
    if abs(exponent) > 64:
        raise ConfigError(f"{field}: exponent out of range (got {value!r})")
    return number * Fraction(10) ** exponent


def quantity_to_milli(value: object, field: str = "quantity") -> int:
    """``Quantity.MilliValue()``: the value in milli-units, rounded up, saturated to int64."""
    milli = math.ceil(parse_quantity(value, field) * 1000)
    return max(-_MAX_INT64 - 1, min(_MAX_INT64, milli))


def quantity_to_float(value: object, field: str = "quantity") -> float:
    """``Quantity.AsApproximateFloat64()``."""
    return float(parse_quantity(value, field))


def format_milli(milli: int) -> str:
    """A milli-value the way ``kubectl`` prints a quantity: ``4``, ``500m``, ``1500m``."""
    if milli % 1000 == 0:
        return str(milli // 1000)
    return f"{milli}m"


_DURATION = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<unit>ms|s|m|h)?$")
_DURATION_PART = re.compile(r"(?P<num>\d+(?:\.\d+)?)(?P<unit>ms|h|m|s)")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_UNIT_ORDER = ("h", "m", "s", "ms")


def _compound_s(text: str) -> float | None:
    """Seconds of ``1h30m``, ``2m30s``, ``1h0m0.5s`` (Go's spelling: units from largest to smallest, each once)."""
    total, last, at = 0.0, -1, 0
    while at < len(text):
        match = _DURATION_PART.match(text, at)
        if match is None:
            return None
        rank = _UNIT_ORDER.index(match["unit"])
        if rank <= last:
            return None
        total, last, at = total + float(match["num"]) * _UNIT_S[match["unit"]], rank, match.end()
    return total if last >= 0 else None


def parse_duration_s(value: object, field: str = "duration") -> float:
    """Seconds from ``15``, ``15s``, ``1.5m``, ``500ms``, ``2h`` or a compound ``1h30m`` / ``2m30s``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value < 0 or not math.isfinite(value):
            raise ConfigError(f"{field}: must be a non-negative duration (got {value!r})")
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        match = _DURATION.match(text)
        if match is not None:
            return float(match["num"]) * _UNIT_S[match["unit"]]
        compound = _compound_s(text)
        if compound is not None:
            return compound
    raise ConfigError(f"{field}: must be a duration such as 15s, 5m, 1h30m or 500ms (got {value!r})")
