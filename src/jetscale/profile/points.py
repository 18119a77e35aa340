"""What ``jetscale profile`` measures, as plain values that are saved after every measurement.

All times are model seconds: wall seconds times the server's speed (``--server-speed``; 1 for a real
server). ``Measurements`` is written to ``DIR/points.json`` after each point, so a profile that stops
(budget spent, errors, Ctrl-C) keeps what it measured and a second run resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from jetscale.errors import ConfigError
from jetscale.safeload import load_json

__all__ = ["CapacityPoint", "DecodePoint", "Measurements", "PrefillPoint", "steady_tokens_s"]

POINTS_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefillPoint:
    """Time to first token of one prompt length at concurrency 1 (the median of ``samples`` requests)."""

    prompt_tokens: int
    ttft_s: float
    samples: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodePoint:
    """One wave of ``concurrency`` requests decoding together: the step time while all of them decode.

    ``context_tokens`` is what the batch's slots held in all, at the middle of the measured stretch.
    """

    concurrency: int
    prompt_tokens: int
    output_tokens: int
    context_tokens: float
    step_s: float


def steady_tokens_s(ends: list[tuple[float, int]], clients: int) -> float | None:
    """Output tokens/s of a closed loop from its completions (time, tokens): the least-squares slope of the
    tokens completed over time, once every one of ``clients`` has had an answer (bursts of completions
    that end together do not tilt it as a first-to-last ratio would). None with too few completions."""
    ordered = sorted(ends)[clients - 1 :]
    if len(ordered) < 3:
        return None
    times = [t for t, _ in ordered]
    totals = []
    running = 0
    for _, tokens in ordered:
        running += tokens
        totals.append(running)
    mean_t = sum(times) / len(times)
    mean_n = sum(totals) / len(totals)
    spread = sum((t - mean_t) ** 2 for t in times)
    if spread <= 0:
        return None
    return sum((t - mean_t) * (n - mean_n) for t, n in zip(times, totals, strict=True)) / spread


@dataclass(frozen=True, slots=True, kw_only=True)
class CapacityPoint:
    """A closed loop of ``concurrency`` clients: output tokens/s, and the median TTFT they saw."""

    concurrency: int
    prompt_tokens: int
    output_tokens: int
    output_tokens_s: float
    ttft_p50_s: float
    requests: int


@dataclass(slots=True, kw_only=True)
class Measurements:
    """Everything measured so far, and what the server said about itself."""

    target: str
    api: str
    server_speed: float
    started: str  # ISO 8601, UTC
    server: dict[str, Any] = field(default_factory=dict)  # model name, metric family, slots as reported
    prefill: list[PrefillPoint] = field(default_factory=list)
    decode: list[DecodePoint] = field(default_factory=list)
    capacity: list[CapacityPoint] = field(default_factory=list)
    slots: int | None = None
    slots_source: str = ""  # how the slot count was found
    stopped: str = ""  # why the profile stopped early ("" when it ran to the end)
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        doc = dataclasses.asdict(self)
        doc["version"] = POINTS_VERSION
        return json.dumps(doc, indent=1)

    @classmethod
    def from_json(cls, text: str, *, source: str) -> Measurements:
        doc = load_json(text, what=source)
        if not isinstance(doc, dict) or doc.get("version") != POINTS_VERSION:
            raise ConfigError(f"'{source}' must be a points file of version {POINTS_VERSION} (got {str(doc)[:80]!r})")
        try:
            return cls(
                target=doc["target"], api=doc["api"], server_speed=float(doc["server_speed"]), started=doc["started"],
                server=dict(doc.get("server", {})),
                prefill=[PrefillPoint(**p) for p in doc.get("prefill", [])],
                decode=[DecodePoint(**p) for p in doc.get("decode", [])],
                capacity=[CapacityPoint(**p) for p in doc.get("capacity", [])],
                slots=doc.get("slots"), slots_source=doc.get("slots_source", ""), stopped=doc.get("stopped", ""),
                errors=list(doc.get("errors", [])),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"'{source}' must be a points file jetscale profile wrote ({error})") from None
