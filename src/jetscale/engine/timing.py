"""A replica's timing as data: coefficients fitted to a real server's measured points.

The roofline (``jetscale.engine.accelerator``) derives a replica's step times from a chip's data sheet, a
model's architecture and an efficiency. ``MeasuredTiming`` is the other source: the same few
coefficients, read off a running server by ``jetscale profile`` (``jetscale.profile``), so that the
engine, the simulator and the tuner can stand in for a server nobody here modeled. Both reduce to one
``Roofline``, which is all the engine reads.

The measured model, in model seconds:

* a decode step over a batch whose contexts hold ``c`` tokens in all takes
  ``decode_step_fixed_s + decode_step_per_token_s * c`` (the weights read once per step, the KV cache
  read per token: the memory-bound roofline with its efficiency and overheads folded in);
* a prefill of ``n`` prompt tokens takes ``prefill_fixed_s + max(prefill_floor_s, prefill_per_token_s *
  b(n))``, where ``b(n)`` is ``n`` padded up to the first of ``prefill_buckets`` at least ``n`` when the
  server pads prompts (JetStream does; the profiler finds out), else ``n`` itself. The floor is the
  roofline's other side: a short prompt still reads every weight once, so below some length a prefill
  costs the same whatever its length (0: no floor seen).

In a replica YAML it is the ``timing`` mapping (docs/replica.md): the four coefficients, the buckets (or
none) and ``source`` (the profile it came from). Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from jetscale.engine.accelerator import Roofline
from jetscale.engine.datasheet import check_fields
from jetscale.errors import ConfigError

__all__ = ["TIMING_FIELDS", "MeasuredTiming", "timing_from_mapping", "timing_to_mapping"]

TIMING_FIELDS = (
    "decode_step_fixed_s",
    "decode_step_per_token_s",
    "prefill_fixed_s",
    "prefill_per_token_s",
    "prefill_floor_s",
    "prefill_buckets",
    "source",
)
_COEFFICIENTS = TIMING_FIELDS[:4]  # required; the floor is optional (0)


@dataclass(frozen=True, slots=True, kw_only=True)
class MeasuredTiming:
    """Step and prefill times fitted to a server's measured points; see the module docstring."""

    decode_step_fixed_s: float  # per decode step, whatever the batch
    decode_step_per_token_s: float  # per token of context held by the batch's slots
    prefill_fixed_s: float  # per prefill call
    prefill_per_token_s: float  # per (padded) prompt token
    prefill_floor_s: float = 0.0  # the least a prefill's length-dependent part takes (weights read once)
    prefill_buckets: tuple[int, ...] | None = None  # the server pads prompts up to these lengths; None: no padding
    source: str = ""

    def __post_init__(self) -> None:
        for name in (*_COEFFICIENTS, "prefill_floor_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.0 <= value < math.inf:
                raise ConfigError(f"'timing.{name}' must be a number of seconds >= 0 (got {value!r})")
        if self.decode_step_fixed_s + self.decode_step_per_token_s <= 0.0:
            raise ConfigError(
                "'timing.decode_step_fixed_s' must be > 0 when decode_step_per_token_s is 0: a decode step takes "
                f"time (got {self.decode_step_fixed_s!r})"
            )
        if self.prefill_fixed_s + self.prefill_per_token_s + self.prefill_floor_s <= 0.0:
            raise ConfigError(
                "'timing.prefill_fixed_s' must be > 0 when prefill_per_token_s is 0: a prefill takes time "
                f"(got {self.prefill_fixed_s!r})"
            )
        buckets = self.prefill_buckets
        if buckets is not None and (
            not isinstance(buckets, tuple)
            or not buckets
            or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in buckets)
            or list(buckets) != sorted(set(buckets))
        ):
            raise ConfigError(
                f"'timing.prefill_buckets' must be increasing whole numbers of tokens >= 1 (got {buckets!r})"
            )
        if not isinstance(self.source, str):
            raise ConfigError(f"'timing.source' must be a string (got {self.source!r})")

    def decode_step_s(self, context_tokens: int) -> float:
        return self.decode_step_fixed_s + self.decode_step_per_token_s * context_tokens

    def prefill_s(self, prompt_tokens: int) -> float:
        padded = prompt_tokens
        if self.prefill_buckets is not None:
            padded = next((b for b in self.prefill_buckets if b >= prompt_tokens), self.prefill_buckets[-1])
        return self.prefill_fixed_s + max(self.prefill_floor_s, self.prefill_per_token_s * padded)

    def roofline(self, max_prefill_length: int) -> Roofline:
        """The engine's ``Roofline`` for prompts up to ``max_prefill_length`` tokens."""
        if self.prefill_buckets is None:
            buckets = tuple(range(1, max_prefill_length + 1))
        else:
            buckets = (*(b for b in self.prefill_buckets if b < max_prefill_length), max_prefill_length)
        return Roofline(
            weight_read_s=self.decode_step_fixed_s,
            kv_read_s_per_token=self.decode_step_per_token_s,
            decode_compute_s=0.0,
            decode_efficiency=1.0,
            decode_overhead_s=0.0,
            buckets=buckets,
            prefill_bucket_s=tuple(
                self.prefill_fixed_s + max(self.prefill_floor_s, self.prefill_per_token_s * b) for b in buckets
            ),
        )


def timing_from_mapping(data: object, *, path: str = "timing") -> MeasuredTiming:
    """A ``MeasuredTiming`` from a replica YAML's ``timing`` mapping; every error names the field."""
    fields = check_fields(data, path, TIMING_FIELDS, what="timing")
    missing = [name for name in _COEFFICIENTS if name not in fields]
    if missing:
        raise ConfigError(
            f"'{path}.{missing[0]}' must be given: a timing needs all of {', '.join(_COEFFICIENTS)} "
            f"(got {sorted(fields) or 'no fields'})"
        )
    buckets = fields.get("prefill_buckets")
    if buckets is not None:
        if not isinstance(buckets, list | tuple):
            raise ConfigError(f"'{path}.prefill_buckets' must be a list of token counts or null (got {buckets!r})")
        fields["prefill_buckets"] = tuple(buckets)
    fields.setdefault("source", "")
    try:
        return MeasuredTiming(**fields)  # type: ignore[arg-type]
    except ConfigError as error:
        message = str(error)
        raise ConfigError(message.replace("'timing.", f"'{path}.", 1)) from None


def timing_to_mapping(timing: MeasuredTiming) -> dict[str, object]:
    """The ``timing`` mapping that ``timing_from_mapping`` reads back to an equal value."""
    out: dict[str, object] = {name: float(getattr(timing, name)) for name in _COEFFICIENTS}
    if timing.prefill_floor_s:
        out["prefill_floor_s"] = float(timing.prefill_floor_s)
    out["prefill_buckets"] = list(timing.prefill_buckets) if timing.prefill_buckets is not None else None
    out["source"] = timing.source
    return out
