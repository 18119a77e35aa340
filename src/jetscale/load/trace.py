"""Trace replay: requests' arrival times and sizes read from a JSONL or CSV file.

A trace is the open loop's schedule given rather than drawn: each row's time (seconds, or an ISO
timestamp as in Azure's public LLM inference traces), its input and output tokens, and optionally its
prompt. Times are shifted to start at 0 and can be sped up. Pure: the caller passes the file's lines.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from jetscale.errors import ConfigError

__all__ = ["Trace", "parse_trace"]


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


def parse_trace(lines: Iterable[str], *, source: str, speed: float = 1.0) -> Trace:
    """A trace from JSONL objects or CSV rows with a header.

    Columns: a time (``t``, ``timestamp``: seconds or ISO time; Azure's ``TIMESTAMP``), input tokens
    (``input_tokens``, ``ContextTokens``), output tokens (``output_tokens``, ``GeneratedTokens``), and
    optionally ``prompt``. Times are shifted to start at 0 and divided by ``speed``.
    """
    if not (math.isfinite(speed) and speed > 0):
        raise ConfigError(f"'--trace-speed' must be > 0 (got {speed})")
    materialized = [line for line in lines if line.strip()]
    if not materialized:
        raise ConfigError(f"{source}: the trace has no rows")
    rows: list[dict[str, object]]
    if materialized[0].lstrip().startswith("{"):
        rows = []
        for number, line in enumerate(materialized, start=1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{source}:{number}: not a JSON object ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{source}:{number}: must be a JSON object")
            rows.append(row)
    else:
        rows = [dict(r) for r in csv.DictReader(materialized)]
    times: list[float] = []
    inputs: list[int] = []
    outputs: list[int] = []
    prompts: list[str | None] = []
    for number, row in enumerate(rows, start=1):
        where = f"{source}:{number}"
        t = _first(row, _TIME_KEYS)
        if t is None:
            raise ConfigError(f"{where}: needs a time column ({', '.join(_TIME_KEYS)})")
        prompt = row.get("prompt")
        n_in = _first(row, _INPUT_KEYS)
        n_out = _first(row, _OUTPUT_KEYS)
        if n_in is None and not isinstance(prompt, str):
            raise ConfigError(f"{where}: needs input tokens ({', '.join(_INPUT_KEYS)}) or a prompt")
        if n_out is None:
            raise ConfigError(f"{where}: needs output tokens ({', '.join(_OUTPUT_KEYS)})")
        times.append(_time_value(t, where))
        inputs.append(_size(n_in, where, "input_tokens") if n_in is not None else max(1, round(len(str(prompt)) / 4)))
        outputs.append(_size(n_out, where, "output_tokens"))
        prompts.append(prompt if isinstance(prompt, str) and prompt else None)
    order = np.argsort(np.asarray(times), kind="stable")
    t_arr = np.asarray(times)[order]
    return Trace(
        times_s=(t_arr - t_arr[0]) / speed,
        input_tokens=np.asarray(inputs, dtype=np.int64)[order],
        output_tokens=np.asarray(outputs, dtype=np.int64)[order],
        prompts=tuple(prompts[i] for i in order) if any(p is not None for p in prompts) else (),
    )
