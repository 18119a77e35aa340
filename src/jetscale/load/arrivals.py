"""When requests arrive: open-loop Poisson arrivals under a rate shape, closed-loop users, trace replay.

Open loop: arrivals are a non-homogeneous Poisson process whose rate follows a ``RateShape``: constant,
step, ramp, spike, diurnal sine, or a CSV of ``(t, rate)`` points. Times are drawn by thinning (Lewis and
Shedler): candidates at the shape's peak rate, each kept with probability rate(t) / peak. The expected
count over any window is the integral of the shape (``RateShape.expected_count``), which the tests check
the draws against. A load generator sends at these times whatever the server does; a request it could
not send on time is late, and the lateness is recorded, never hidden.

Closed loop (``ClosedLoop``): N users, each sending its next request when the previous one returns
and a think time has passed, as locust-load-inference does (with zero think time there).

Trace replay (``jetscale.load.trace``): timestamps and sizes from a file, sent like an open loop.

Everything here is pure: the caller passes a seeded numpy ``Generator`` and the lines of any file.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

import numpy as np

from jetscale.errors import ConfigError
from jetscale.units import parse_duration_s

__all__ = [
    "ClosedLoop",
    "RateShape",
    "ShapeKind",
    "ThinkKind",
    "parse_shape",
    "poisson_arrivals",
]

MAX_PLANNED_REQUESTS = 20_000_000  # an open-loop plan is held in memory; beyond this, shorten the run
_CHUNK_CANDIDATES = 65_536


class ShapeKind(StrEnum):
    CONSTANT = "constant"
    STEP = "step"
    RAMP = "ramp"
    SPIKE = "spike"
    DIURNAL = "diurnal"
    CSV = "csv"


@dataclass(frozen=True, slots=True, kw_only=True)
class RateShape:
    """A request rate over time, in requests per second.

    Every kind but ``diurnal`` is piecewise linear through ``knots`` ``(t_s, rps)`` with non-decreasing
    times (two knots at one time make a jump); after the last knot the last rate holds. ``diurnal`` is
    ``base + (peak - base) * (1 - cos(2 pi t / period)) / 2``: trough at t=0, peak at half a period.
    """

    kind: ShapeKind
    knots: tuple[tuple[float, float], ...] = ()
    peak_rps: float = 0.0  # diurnal peak
    base_rps: float = 0.0  # diurnal trough
    period_s: float = 0.0  # diurnal period

    def __post_init__(self) -> None:
        if self.kind is ShapeKind.DIURNAL:
            if not (self.peak_rps > 0 and 0 <= self.base_rps <= self.peak_rps and self.period_s > 0):
                raise ConfigError(
                    f"a diurnal shape needs peak > 0, 0 <= base <= peak and period > 0 "
                    f"(got peak {self.peak_rps}, base {self.base_rps}, period {self.period_s})"
                )
            return
        if not self.knots or self.knots[0][0] != 0.0:
            raise ConfigError(f"a rate shape must start at t=0 (got {self.knots[:1]})")
        times = [t for t, _ in self.knots]
        if any(b < a for a, b in pairwise(times)):
            raise ConfigError(f"rate shape times must not decrease (got {times})")
        if any(r < 0 or not math.isfinite(r) for _, r in self.knots):
            raise ConfigError(f"rates must be finite and >= 0 (got {[r for _, r in self.knots]})")
        if max(r for _, r in self.knots) <= 0:
            raise ConfigError("a rate shape needs some rate > 0")

    @property
    def max_rps(self) -> float:
        if self.kind is ShapeKind.DIURNAL:
            return self.peak_rps
        return max(r for _, r in self.knots)

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.array([k[0] for k in self.knots], dtype=float)
        r = np.array([k[1] for k in self.knots], dtype=float)
        cum = np.concatenate(([0.0], np.cumsum(np.diff(t) * (r[:-1] + r[1:]) / 2)))
        return t, r, cum

    def rate_at(self, t_s: np.ndarray | float) -> np.ndarray:
        t = np.asarray(t_s, dtype=float)
        if self.kind is ShapeKind.DIURNAL:
            swing = (1 - np.cos(2 * np.pi * t / self.period_s)) / 2
            return self.base_rps + (self.peak_rps - self.base_rps) * swing
        kt, kr, _ = self._arrays()
        k = np.clip(np.searchsorted(kt, t, side="right") - 1, 0, len(kt) - 1)
        nxt = np.minimum(k + 1, len(kt) - 1)
        width = kt[nxt] - kt[k]
        frac = np.where(width > 0, (t - kt[k]) / np.where(width > 0, width, 1.0), 0.0)
        rate: np.ndarray = kr[k] + (kr[nxt] - kr[k]) * frac
        return rate

    def cumulative(self, t_s: np.ndarray | float) -> np.ndarray:
        """The expected number of arrivals in [0, t]: the integral of the rate."""
        t = np.asarray(t_s, dtype=float)
        if self.kind is ShapeKind.DIURNAL:
            mid = (self.peak_rps + self.base_rps) / 2
            amp = (self.peak_rps - self.base_rps) / 2
            w = 2 * np.pi / self.period_s
            return mid * t - amp * np.sin(w * t) / w
        kt, kr, cum = self._arrays()
        k = np.clip(np.searchsorted(kt, t, side="right") - 1, 0, len(kt) - 1)
        total: np.ndarray = cum[k] + (t - kt[k]) * (kr[k] + self.rate_at(t)) / 2
        return total

    def expected_count(self, t0_s: float, t1_s: float) -> float:
        return float(self.cumulative(t1_s) - self.cumulative(t0_s))

    def describe(self) -> str:
        if self.kind is ShapeKind.DIURNAL:
            return f"diurnal {self.base_rps:g}..{self.peak_rps:g} rps, period {self.period_s:g}s"
        if self.kind is ShapeKind.CONSTANT:
            return f"constant {self.knots[0][1]:g} rps"
        return f"{self.kind.value} {' '.join(f'{t:g}s:{r:g}' for t, r in self.knots)} (t:rps)"


def _params(text: str, spec: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise ConfigError(f"'--shape' parameters must be key=value (got {part!r} in {spec!r})")
        out[key.strip()] = value.strip()
    return out


def _fraction(params: dict[str, str], key: str, default: float) -> float:
    raw = params.pop(key, None)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 1:
        raise ConfigError(f"'--shape' {key} must be a fraction of the peak rate in 0..1 (got {raw!r})")
    return value


def _seconds(params: dict[str, str], key: str, default: float | None, kind: str) -> float:
    raw = params.pop(key, None)
    if raw is None:
        if default is None:
            raise ConfigError(f"'--shape' {kind} needs {key}=DURATION or a '--duration'")
        return default
    return parse_duration_s(raw, f"'--shape' {key}")


def parse_shape(
    spec: str,
    *,
    rate_rps: float | None,
    duration_s: float | None,
    read_lines: Callable[[str], Iterable[str]] | None = None,
) -> RateShape:
    """A rate shape from its ``--shape`` spec; ``rate_rps`` is the peak rate.

    ``constant`` | ``step[:at=60s,base=0.25]`` | ``ramp[:base=0,end=300s]`` |
    ``spike[:at=150s,width=30s,base=0.2]`` | ``diurnal[:period=300s,base=0.2]`` | ``csv:PATH`` or a path
    ending in ``.csv`` holding ``t,rps`` rows (absolute rates; scaled to peak at ``rate_rps`` if given).
    Times default to fractions of ``duration_s``: step and spike at the middle, ramp to the end, one
    diurnal period per run, spike width a tenth of the run.
    """
    text = spec.strip()
    name, _, rest = text.partition(":")
    if name == "csv" or text.endswith(".csv"):
        path = rest if name == "csv" else text
        if read_lines is None:
            raise ConfigError(f"'--shape' {spec!r} names a file, but no file reader was given")
        return _csv_shape(read_lines(path), path, rate_rps)
    try:
        kind = ShapeKind(name)
    except ValueError:
        raise ConfigError(
            f"'--shape' must be one of constant, step, ramp, spike, diurnal or csv:PATH (got {spec!r})"
        ) from None
    if rate_rps is None or not (math.isfinite(rate_rps) and rate_rps > 0):
        raise ConfigError(f"'--rate' must be > 0 requests per second for the {kind.value} shape (got {rate_rps})")
    params = _params(rest, spec)
    half = duration_s / 2 if duration_s else None
    peak = rate_rps
    shape: RateShape
    if kind is ShapeKind.CONSTANT:
        shape = RateShape(kind=kind, knots=((0.0, peak),))
    elif kind is ShapeKind.STEP:
        at, base = _seconds(params, "at", half, name), _fraction(params, "base", 0.25)
        shape = RateShape(kind=kind, knots=((0.0, base * peak), (at, base * peak), (at, peak)))
    elif kind is ShapeKind.RAMP:
        base, end = _fraction(params, "base", 0.0), _seconds(params, "end", duration_s, name)
        if end <= 0:
            raise ConfigError(f"'--shape' ramp end must be > 0 (got {end})")
        shape = RateShape(kind=kind, knots=((0.0, base * peak), (end, peak)))
    elif kind is ShapeKind.SPIKE:
        at, base = _seconds(params, "at", half, name), _fraction(params, "base", 0.2)
        width = _seconds(params, "width", duration_s / 10 if duration_s else None, name)
        lo = base * peak
        shape = RateShape(kind=kind, knots=((0.0, lo), (at, lo), (at, peak), (at + width, peak), (at + width, lo)))
    else:
        period = _seconds(params, "period", duration_s, name)
        shape = RateShape(kind=kind, peak_rps=peak, base_rps=_fraction(params, "base", 0.2) * peak, period_s=period)
    if params:
        raise ConfigError(f"'--shape' {name} has unknown parameter(s) {', '.join(sorted(params))} (in {spec!r})")
    return shape


def _csv_shape(lines: Iterable[str], source: str, rate_rps: float | None) -> RateShape:
    knots: list[tuple[float, float]] = []
    for number, row in enumerate(csv.reader(lines), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        try:
            t, r = float(row[0]), float(row[1])
        except (ValueError, IndexError):
            if not knots and number == 1:
                continue  # a header row
            raise ConfigError(f"{source}:{number}: must be 't,rps' numbers (got {','.join(row)!r})") from None
        knots.append((t, r))
    if not knots:
        raise ConfigError(f"{source}: the rate CSV has no 't,rps' rows")
    if knots[0][0] != 0.0:
        knots.insert(0, (0.0, knots[0][1]))
    shape = RateShape(kind=ShapeKind.CSV, knots=tuple(knots))
    if rate_rps is not None:
        scale = rate_rps / shape.max_rps
        shape = RateShape(kind=ShapeKind.CSV, knots=tuple((t, r * scale) for t, r in knots))
    return shape


def poisson_arrivals(
    shape: RateShape, rng: np.random.Generator, *, duration_s: float | None, max_count: int | None = None
) -> np.ndarray:
    """Sorted arrival times in [0, duration_s) of a Poisson process with rate ``shape``, at most ``max_count``.

    With no duration, arrivals continue until ``max_count`` (the shape's rate must stay above 0).
    """
    if duration_s is None and max_count is None:
        raise ConfigError("an open-loop run needs '--duration' or '--max-requests'")
    peak = shape.max_rps
    if duration_s is not None and peak * duration_s > MAX_PLANNED_REQUESTS:
        raise ConfigError(
            f"'--rate' x '--duration' plans {peak * duration_s:.0f} requests at the peak rate; "
            f"keep it under {MAX_PLANNED_REQUESTS} (shorten the run or use '--max-requests')"
        )
    if duration_s is None and float(shape.rate_at(1e12)) <= 0:
        raise ConfigError("this shape's rate ends at 0, so it needs '--duration'")
    window = _CHUNK_CANDIDATES / peak
    chunks: list[np.ndarray] = []
    count, start = 0, 0.0
    limit = max_count if max_count is not None else MAX_PLANNED_REQUESTS
    while count < limit and (duration_s is None or start < duration_s):
        end = start + window if duration_s is None else min(start + window, duration_s)
        n = int(rng.poisson(peak * (end - start)))
        times = np.sort(rng.uniform(start, end, size=n))
        keep = rng.uniform(0.0, peak, size=n) < shape.rate_at(times)
        chunk = times[keep]
        chunks.append(chunk)
        count += len(chunk)
        start = end
    arrivals = np.concatenate(chunks) if chunks else np.empty(0)
    return arrivals[:limit]


class ThinkKind(StrEnum):
    FIXED = "fixed"
    EXPONENTIAL = "exponential"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClosedLoop:
    """``users`` users, each sending its next request ``think_time_s`` after the previous one returned."""

    users: int
    think_time_s: float = 0.0
    think: ThinkKind = ThinkKind.FIXED
    ramp_up_s: float = 0.0  # users start evenly spread over this time

    def __post_init__(self) -> None:
        if self.users < 1:
            raise ConfigError(f"'--users' must be >= 1 (got {self.users})")
        if self.think_time_s < 0 or self.ramp_up_s < 0:
            raise ConfigError(f"think time and ramp-up must be >= 0 (got {self.think_time_s}, {self.ramp_up_s})")

    def think_time(self, rng: np.random.Generator) -> float:
        if self.think is ThinkKind.FIXED or self.think_time_s == 0:
            return self.think_time_s
        return float(rng.exponential(self.think_time_s))

    def start_offsets_s(self) -> np.ndarray:
        return np.arange(self.users, dtype=float) * (self.ramp_up_s / self.users)
