"""The fit: measured points in, a replica's ``MeasuredTiming`` and the quality of each fit out. Pure.

* **Decode**: ``step_s = fixed + per_token x context_tokens`` over the decode waves (each wave one point:
  the step time while its requests decode together, the context they hold).
* **Prefill**: ``ttft_s = fixed + per_token x padded(prompt_tokens)`` over the concurrency-1 points, with
  ``padded`` either the prompt itself or JetStream's buckets; the buckets are kept only when they explain
  the points clearly better (half the residual or less) and some point lies inside a bucket, which is
  what a padding server shows: flat steps between bucket edges.

Both by robust least squares (``scipy.optimize.least_squares``, soft-L1 loss on relative residuals, every
coefficient >= 0), so one slow outlier (a garbage collection, a noisy neighbour) does not bend the line.
Each fit reports R^2 and its largest relative residual. A coefficient the points cannot pin down (every
decode wave at one context, every prompt one length) is set to 0 and named in ``notes``, never invented.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from jetscale.engine.accelerator import PREFILL_BUCKETS
from jetscale.engine.presets import ReplicaConfig
from jetscale.engine.timing import MeasuredTiming
from jetscale.errors import ConfigError
from jetscale.profile.points import Measurements, PrefillPoint
from jetscale.profile.predict import closed_loop_tokens_s

__all__ = ["Fit", "FitQuality", "LineFit", "fit_line", "fit_measurements"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FitQuality:
    """Over the inliers: a point whose relative residual is more than 5 times the median one (and over 5%)
    is an outlier, down-weighted by the robust loss and counted here, not hidden."""

    points: int
    r2: float  # 1 - SS_res / SS_tot (nan when every measured value is the same)
    max_relative_residual: float  # the largest |fitted - measured| / measured
    outliers: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class LineFit:
    """``y = fixed + max(floor, slope x x)``, all >= 0 (``floor`` 0 unless asked for), and how well it fits."""

    fixed: float
    slope: float
    quality: FitQuality
    slope_pinned: bool  # False: every x was the same, so the slope is 0 by default, not by measurement
    floor: float = 0.0

    def __call__(self, x: float) -> float:
        return self.fixed + max(self.floor, self.slope * x)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fit:
    config: ReplicaConfig  # the base replica with the measured slots and the fitted timing
    decode: LineFit
    prefill: LineFit
    client_overhead_s: float  # what a client's TTFT holds beyond the server's prefill (HTTP, network)
    notes: tuple[str, ...]

    @property
    def timing(self) -> MeasuredTiming:
        assert self.config.timing is not None
        return self.config.timing


def fit_line(xs: Sequence[float], ys: Sequence[float], *, floor: bool = False) -> LineFit:
    """Robust ``y = a + b x`` with ``a, b >= 0``; with ``floor``, ``y = a + max(f, b x)`` (the floor kept
    only where some point sits on it); see the module docstring."""
    x = np.asarray(xs, dtype=float)
    y = np.asarray(ys, dtype=float)
    if len(x) == 0:
        raise ConfigError("'points' must hold at least one measurement to fit (got none)")
    if np.any(y <= 0) or not np.all(np.isfinite(y)):
        raise ConfigError(f"'points' must be positive times (got {[float(v) for v in y if not v > 0][:3]})")
    pinned = bool(np.ptp(x) > 0) and len(x) >= 2
    if not pinned:
        fixed = float(np.median(y))
        return LineFit(fixed=fixed, slope=0.0, quality=_quality(y, np.full_like(y, fixed)), slope_pinned=False)
    slope0, fixed0 = np.polyfit(x, y, 1)
    start = np.array([max(fixed0, 0.0), max(slope0, 0.0)])
    scale = float(np.median(y))

    def residuals(p: np.ndarray) -> np.ndarray:
        return _relative(p[0] + p[1] * x, y)

    result = least_squares(
        residuals, start, bounds=([0.0, 0.0], [np.inf, np.inf]), loss="soft_l1", f_scale=0.02,
        x_scale=[scale, scale / max(float(np.max(x)), 1.0)],
    )  # fmt: skip
    fixed, slope = (float(v) for v in result.x)
    line = LineFit(fixed=fixed, slope=slope, quality=_quality(y, fixed + slope * x), slope_pinned=True)
    if floor:
        line = _with_floor(line, x, y, scale)
    return line


def _with_floor(line: LineFit, x: np.ndarray, y: np.ndarray, scale: float) -> LineFit:
    """``line`` refitted as ``a + max(f, b x)`` when that explains the points better (the short prompts
    of a weight-bound prefill sit on a floor the straight line cannot bend to)."""

    def residuals(p: np.ndarray) -> np.ndarray:
        return _relative(p[0] + np.maximum(p[1], p[2] * x), y)

    best = None
    low = float(np.min(y))
    for start in ([line.fixed, 0.0, line.slope], [0.0, low, line.slope], [low / 2, low / 2, line.slope]):
        result = least_squares(
            residuals, np.array(start), bounds=([0.0, 0.0, 0.0], [np.inf, np.inf, np.inf]), loss="soft_l1",
            f_scale=0.02, x_scale=[scale, scale, scale / max(float(np.max(x)), 1.0)],
        )  # fmt: skip
        if best is None or result.cost < best.cost:
            best = result
    assert best is not None
    fixed, floor, slope = (float(v) for v in best.x)
    if floor <= slope * float(np.min(x)):  # no point on the floor: it says nothing
        return line
    fitted = fixed + np.maximum(floor, slope * x)
    candidate = LineFit(fixed=fixed, slope=slope, floor=floor, quality=_quality(y, fitted), slope_pinned=True)
    plain_cost = float(np.sum(np.abs(residuals(np.array([line.fixed, 0.0, line.slope])))))  # the same measure
    return candidate if float(np.sum(np.abs(residuals(best.x)))) < 0.8 * plain_cost else line


def _relative(fitted: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(fitted - measured) over their geometric mean: as a point too low weighs as much as one too high
    by the same factor (over the measured value alone, one low point outweighs the rest)."""
    out: np.ndarray = (fitted - y) / np.sqrt(np.maximum(fitted, 1e-12) * y)
    return out


def _quality(y: np.ndarray, fitted: np.ndarray) -> FitQuality:
    relative = np.abs(fitted - y) / y
    spread = np.abs(_relative(fitted, y))
    inlier = spread <= max(5.0 * float(np.median(spread)), 0.05)
    y, fitted, relative = y[inlier], fitted[inlier], relative[inlier]
    total = float(np.sum((y - y.mean()) ** 2))
    residual = float(np.sum((y - fitted) ** 2))
    r2 = 1.0 - residual / total if total > 0 else math.nan
    return FitQuality(points=len(y), r2=r2, max_relative_residual=float(np.max(relative)),
                      outliers=int(np.sum(~inlier)))  # fmt: skip


def _padded(tokens: int, buckets: Sequence[int]) -> int:
    return next((b for b in buckets if b >= tokens), tokens)


def _prefill(points: Sequence[PrefillPoint]) -> tuple[LineFit, tuple[int, ...] | None, str | None]:
    """The prefill line, and JetStream's buckets where the points show padding.

    Padding shows in pairs: a prompt three quarters of the way to a bucket edge costs what the edge costs
    (flat steps), where without padding it costs less by the line's slope. Each pair the line can tell
    apart (it predicts a ratio under 0.9) votes for whichever ratio the measured one is nearer to.
    """
    xs = [p.prompt_tokens for p in points]
    ys = [p.ttft_s for p in points]
    plain = fit_line(xs, ys, floor=True)
    top = max(xs)
    buckets = (*(b for b in PREFILL_BUCKETS if b < top), _padded(top, PREFILL_BUCKETS))
    ttft = dict(zip(xs, ys, strict=True))
    votes = [
        abs(ttft[x] / ttft[b] - 1.0) < abs(ttft[x] / ttft[b] - plain(x) / plain(b))
        for b in buckets
        for x in xs
        if b in ttft and b // 2 < x < b and plain(x) / plain(b) < 0.9
    ]
    if not plain.slope_pinned or not votes or sum(votes) * 2 <= len(votes):
        return plain, None, None
    padded = fit_line([_padded(x, buckets) for x in xs], ys, floor=True)
    note = f"prompts are padded to JetStream's buckets ({sum(votes)} of {len(votes)} bucket pairs show flat steps)"
    return padded, buckets, note


def _overhead(
    config: ReplicaConfig, timing: MeasuredTiming, measurements: Measurements
) -> tuple[MeasuredTiming, float, str]:
    """The prefill intercept without the client's overhead, from the closed loop that kept every slot busy.

    TTFT at concurrency 1 is the prefill plus the client's own time (HTTP, the network, the server's
    request handling). A closed loop of twice the slots keeps the backlog full, so its throughput depends
    on the server's prefill alone: the intercept is the one at which the engine gives that throughput
    (bisection; throughput falls as the intercept grows). The difference is the client's overhead.
    """
    slots = config.decode_slots
    loops = [p for p in measurements.capacity if p.concurrency >= 2 * slots]
    if not loops:
        return timing, 0.0, ("client overhead not separated (no closed loop at twice the slots): the prefill "
                             "times include the client's HTTP and network time")  # fmt: skip
    loop = max(loops, key=lambda p: p.concurrency)

    def tokens_s(intercept: float) -> float:
        trial = dataclasses.replace(config, timing=dataclasses.replace(timing, prefill_fixed_s=intercept))
        return closed_loop_tokens_s(trial, loop.concurrency, loop.prompt_tokens, loop.output_tokens)

    high = timing.prefill_fixed_s
    floor = 0.0 if timing.prefill_per_token_s > 0 else high * 1e-3
    if loop.output_tokens_s <= tokens_s(high):
        return timing, 0.0, "no client overhead found: the closed loop is as slow as TTFT at concurrency 1 implies"
    low = floor
    if loop.output_tokens_s >= tokens_s(low):
        note = ("the closed loop ran faster than any prefill intercept explains: the prefill intercept is set to "
                f"{low:g} s and the client overhead to the whole of it")  # fmt: skip
        return dataclasses.replace(timing, prefill_fixed_s=low), high - low, note
    for _ in range(40):
        middle = (low + high) / 2
        if tokens_s(middle) > loop.output_tokens_s:
            low = middle
        else:
            high = middle
    intercept = (low + high) / 2
    overhead = timing.prefill_fixed_s - intercept
    note = (f"client overhead {overhead * 1e3:.2f} ms (model time) of TTFT is not the server's prefill: found from "
            f"the closed loop of {loop.concurrency} clients")  # fmt: skip
    return dataclasses.replace(timing, prefill_fixed_s=intercept), overhead, note


def fit_measurements(measurements: Measurements, *, base: ReplicaConfig, source: str) -> Fit:
    """The replica ``base`` (chip, model, lengths) with the slots and timing of the measured points;
    ``source`` names the profile (URL and date). ConfigError when the points cannot be fitted."""
    notes: list[str] = []
    if not measurements.decode:
        raise ConfigError(
            f"'decode' points must be measured to fit a step time (got none; {measurements.stopped or 'no waves ran'})"
        )
    if not measurements.prefill:
        raise ConfigError(
            f"'prefill' points must be measured to fit a prefill time (got none; {measurements.stopped or 'none ran'})"
        )
    decode = fit_line([p.context_tokens for p in measurements.decode], [p.step_s for p in measurements.decode])

    if not decode.slope_pinned:
        notes.append("decode_step_per_token_s is 0: every decode wave held the same context, so the cost per "
                     "token of context cannot be told apart from the fixed cost")  # fmt: skip
    prefill, buckets, padding = _prefill(measurements.prefill)
    for name, line in (("decode", decode), ("prefill", prefill)):
        if line.quality.outliers:
            notes.append(f"{line.quality.outliers} {name} point(s) far off the line (noise on the server or client) "
                         "were down-weighted by the robust fit")  # fmt: skip
    if padding:
        notes.append(padding)
    if not prefill.slope_pinned:
        notes.append("prefill_per_token_s is 0: every prompt had the same length")
    timing = MeasuredTiming(
        decode_step_fixed_s=decode.fixed,
        decode_step_per_token_s=decode.slope,
        prefill_fixed_s=prefill.fixed,
        prefill_per_token_s=prefill.slope,
        prefill_floor_s=prefill.floor,
        prefill_buckets=buckets,
        source=source,
    )
    slots = measurements.slots or base.decode_slots
    if measurements.slots is None:
        notes.append(f"slots not measured: the base replica's {base.decode_slots} kept")
    try:
        config = dataclasses.replace(base, decode_slots=slots, timing=timing, efficiency=None)
    except ConfigError as error:
        raise ConfigError(
            f"'slots' measured {slots} must fit the base replica's chip and model ({error}); give --replica with "
            "the chip and model the server runs"
        ) from None
    timing, overhead, note = _overhead(config, timing, measurements)
    notes.append(note)
    config = dataclasses.replace(config, timing=timing)
    return Fit(config=config, decode=decode, prefill=prefill, client_overhead_s=overhead, notes=tuple(notes))
