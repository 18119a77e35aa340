"""JSON documents that every tool can read: NaN becomes ``null``, infinities the strings ``"inf"`` and
``"-inf"``, tuples lists and keys strings. Used by the files the commands write (``summary.json``,
``partial.json``, ...) and by their ``--json`` output on stdout."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from enum import Enum
from pathlib import Path

__all__ = ["dumps", "json_safe"]


def json_safe(value: object) -> object:
    """``value`` with every float finite or replaced, containers as lists and dicts, paths and enums as text."""
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    return value


def dumps(value: object) -> str:
    """The JSON text of ``value`` (``json_safe``), indented, with a final newline."""
    return json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n"
