"""Trace replay: requests' arrival times and sizes read from a JSONL or CSV file.

A trace is the open loop's schedule given rather than drawn: each row's time (seconds, milliseconds,
or an ISO timestamp as in Azure's public LLM inference traces), its input and output tokens, and
optionally its prompt. Times are shifted to start at 0 and can be sped up. Pure: the caller passes the
file's lines.

Numeric times are seconds unless declared (``time_unit="ms"``, ``--time-unit ms``; a column named
``t_ms``, ``time_ms`` or ``timestamp_ms``) or detected: a first time of at least ``EPOCH_MS_MIN`` is
epoch milliseconds (as seconds it would be after the year 5000), so a 284 s trace stays 284 s.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from jetscale.errors import ConfigError
from jetscale.safeload import load_json

__all__ = ["EPOCH_MS_MIN", "TIME_UNITS", "Trace", "parse_trace"]

TIME_UNITS = ("auto", "s", "ms")
EPOCH_MS_MIN = 1e11  # epoch seconds reach it in the year 5138; epoch milliseconds passed it in 1973


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Trace:
    """Requests to replay: arrival times (from 0, sorted) and sizes; prompts where the file has them."""

    times_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    prompts: tuple[str | None, ...] = ()

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1]) if len(self.times_s) else 0.0


_TIME_KEYS = ("t", "time_s", "timestamp", "TIMESTAMP", "arrival_s")
_MS_KEYS = ("t_ms", "time_ms", "timestamp_ms", "arrival_ms")
_INPUT_KEYS = ("input_tokens", "ContextTokens", "prompt_tokens", "Request tokens")
_OUTPUT_KEYS = ("output_tokens", "GeneratedTokens", "completion_tokens", "Response tokens")


def _first(row: dict[str, object], keys: tuple[str, ...]) -> object:
    for key in keys:
        if key in row and row[key] not in (None, ""):
            return row[key]
    return None


def _time_value(value: object, where: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        text = value.strip().replace("Z", "+00:00")
        head, dot, frac = text.partition(".")
        if dot:  # datetime.fromisoformat takes at most 6 fractional digits
            digits = "".join(c for c in frac if c.isdigit())
            text = f"{head}.{digits[:6]}{frac[len(digits) :]}"
        try:
            return datetime.fromisoformat(text).timestamp()
        except ValueError:
            pass
    raise ConfigError(f"{where}: the time must be seconds or an ISO timestamp (got {value!r})")


def _size(value: object, where: str, key: str) -> int:
    try:
        number = int(float(str(value)))
    except ValueError:
        number = -1
    if number < 1:
        raise ConfigError(f"{where}: '{key}' must be a whole number >= 1 (got {value!r})")
    return number


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def parse_trace(lines: Iterable[str], *, source: str, speed: float = 1.0, time_unit: str = "auto") -> Trace:
    """A trace from JSONL objects or CSV rows with a header.

    Columns: a time (``t``, ``timestamp``: seconds or ISO time; Azure's ``TIMESTAMP``; ``t_ms``,
    ``timestamp_ms``: milliseconds), input tokens (``input_tokens``, ``ContextTokens``), output tokens
    (``output_tokens``, ``GeneratedTokens``), and optionally ``prompt``. ``time_unit`` (auto, s, ms) is
    the unit of numeric times (module docstring). Times are shifted to start at 0 and divided by ``speed``.
    """
    if not (math.isfinite(speed) and speed > 0):
        raise ConfigError(f"'--trace-speed' must be > 0 (got {speed})")
    if time_unit not in TIME_UNITS:
        raise ConfigError(f"'--time-unit' must be one of {', '.join(TIME_UNITS)} (got {time_unit!r})")
    materialized = [line for line in lines if line.strip()]
    if not materialized:
        raise ConfigError(f"{source}: the trace has no rows")
    rows: list[dict[str, object]]
    if materialized[0].lstrip().startswith("{"):
        rows = []
        for number, line in enumerate(materialized, start=1):
            row = load_json(line, what=f"{source}:{number}")
            if not isinstance(row, dict):
                raise ConfigError(f"{source}:{number}: must be a JSON object")
            rows.append(row)
    else:
        rows = [dict(r) for r in csv.DictReader(materialized)]
    times: list[float] = []
    numeric: list[bool] = []
    in_ms: list[bool] = []
    inputs: list[int] = []
    outputs: list[int] = []
    prompts: list[str | None] = []
    for number, row in enumerate(rows, start=1):
        where = f"{source}:{number}"
        t = _first(row, _TIME_KEYS)
        ms_column = t is None and (t := _first(row, _MS_KEYS)) is not None
        if t is None:
            raise ConfigError(f"{where}: needs a time column ({', '.join(_TIME_KEYS + _MS_KEYS)})")
        if ms_column and time_unit == "s":
            raise ConfigError(f"{where}: '--time-unit s' contradicts its millisecond column ({', '.join(_MS_KEYS)})")
        prompt = row.get("prompt")
        n_in = _first(row, _INPUT_KEYS)
        n_out = _first(row, _OUTPUT_KEYS)
        if n_in is None and not isinstance(prompt, str):
            raise ConfigError(f"{where}: needs input tokens ({', '.join(_INPUT_KEYS)}) or a prompt")
        if n_out is None:
            raise ConfigError(f"{where}: needs output tokens ({', '.join(_OUTPUT_KEYS)})")
        times.append(_time_value(t, where))
        numeric.append(_is_number(t))
        in_ms.append(ms_column)
        inputs.append(_size(n_in, where, "input_tokens") if n_in is not None else max(1, round(len(str(prompt)) / 4)))
        outputs.append(_size(n_out, where, "output_tokens"))
        prompts.append(prompt if isinstance(prompt, str) and prompt else None)
    numbers = [t for t, n in zip(times, numeric, strict=True) if n]
    epoch_ms = time_unit == "auto" and bool(numbers) and min(numbers) >= EPOCH_MS_MIN
    in_s = [not (n and (time_unit == "ms" or epoch_ms or ms)) for n, ms in zip(numeric, in_ms, strict=True)]
    times = [t if s else t / 1000.0 for t, s in zip(times, in_s, strict=True)]
    order = np.argsort(np.asarray(times), kind="stable")
    t_arr = np.asarray(times)[order]
    return Trace(
        times_s=(t_arr - t_arr[0]) / speed,
        input_tokens=np.asarray(inputs, dtype=np.int64)[order],
        output_tokens=np.asarray(outputs, dtype=np.int64)[order],
        prompts=tuple(prompts[i] for i in order) if any(p is not None for p in prompts) else (),
    )
