"""The threshold search of GKE's JetStream autoscaling guide, made exact: bracket from the guide's starting
point, then bisect.

Each signal's targets form a ``Grid``, ascending: a higher target packs more work into a replica, so it is
cheaper and slower. Meeting the SLO is assumed monotone along the grid (feasible up to some index, not
above), and the search looks for the largest feasible index, the cheapest target that still meets it:

1. probe the starting point (backlog 4, "start at 3-5"; slots just below 1; HBM just below the level a
   full batch reaches);
2. bracket: while every probe met the SLO, step up; while none did, step down; the step doubles each time
   (``first_step``, then 2x, 4x, ...), so a far answer costs a few probes;
3. bisect between the largest index that met it and the smallest that did not.

The state is the list of probes (``SearchState``); ``next_probe`` and ``record`` are pure. A noisy,
non-monotone answer cannot loop: the search ends when no untried index lies between the two bounds, or
after ``max_probes``. The same search picks the batch size (``batch_grid``: the largest per-device batch
whose latency meets the SLO).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from jetscale.errors import ConfigError

__all__ = [
    "BACKLOG_START_MILLI",
    "Grid",
    "SearchState",
    "backlog_grid",
    "batch_grid",
    "best_index",
    "hbm_bounds",
    "hbm_grid",
    "next_probe",
    "record",
    "running_grid",
    "slots_grid",
]

BACKLOG_START_MILLI = 4000  # the guide: start between 3 and 5
_BACKLOG_VALUES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100, 120, 150, 200)


@dataclass(frozen=True, slots=True, kw_only=True)
class Grid:
    """Targets in milli-units, ascending (cheapest last); the search starts at ``start`` and its first
    bracketing step is ``first_step`` indices."""

    values_milli: tuple[int, ...]
    start: int
    first_step: int = 1

    def __post_init__(self) -> None:
        if not self.values_milli:
            raise ConfigError("'values_milli' must hold at least one target (got none)")
        if any(b <= a for a, b in zip(self.values_milli, self.values_milli[1:], strict=False)):
            raise ConfigError(f"'values_milli' must be strictly ascending (got {self.values_milli})")
        if not 0 <= self.start < len(self.values_milli):
            raise ConfigError(f"'start' must be an index of values_milli (got {self.start})")
        if self.first_step < 1:
            raise ConfigError(f"'first_step' must be >= 1 (got {self.first_step})")

    def __len__(self) -> int:
        return len(self.values_milli)

    def index_of(self, milli: int) -> int:
        """The index of the grid value nearest ``milli``."""
        return min(range(len(self.values_milli)), key=lambda i: (abs(self.values_milli[i] - milli), i))


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchState:
    """The probes so far, in order: (grid index, met the SLO)."""

    probes: tuple[tuple[int, bool], ...] = ()

    @property
    def feasible_low(self) -> int | None:
        """The largest index that met the SLO."""
        return max((i for i, ok in self.probes if ok), default=None)

    @property
    def infeasible_high(self) -> int | None:
        """The smallest index that did not."""
        return min((i for i, ok in self.probes if not ok), default=None)


def record(state: SearchState, index: int, feasible: bool) -> SearchState:
    return SearchState(probes=(*state.probes, (index, feasible)))


def best_index(state: SearchState) -> int | None:
    """The cheapest index known to meet the SLO (None: none did)."""
    return state.feasible_low


def next_probe(grid: Grid, state: SearchState, *, max_probes: int = 10) -> int | None:
    """The next index to try, or None when the search is over."""
    if len(state.probes) >= max_probes:
        return None
    tried = {i for i, _ in state.probes}
    low, high = state.feasible_low, state.infeasible_high
    last = len(grid) - 1
    if low is None and high is None:
        return grid.start
    if low is None:  # nothing met it yet: step down from the start, doubling
        assert high is not None
        if high == 0:
            return None
        step = max(grid.first_step, 2 * (grid.start - high))
        return _untried(max(0, grid.start - step), tried, high)
    if high is None:  # everything met it so far: step up, doubling
        if low == last:
            return None
        step = max(grid.first_step, 2 * (low - grid.start))
        return _untried(min(last, grid.start + step), tried, low)
    if high - low <= 1:
        return None
    mid = (low + high) // 2
    return mid if mid not in tried else None


def _untried(index: int, tried: set[int], bound: int) -> int | None:
    """``index``, or the nearest untried one towards ``bound`` (None when there is none)."""
    step = 1 if index < bound else -1
    i = index
    while i != bound:
        if i not in tried:
            return i
        i += step
    return None


# --- grids ---------------------------------------------------------------------------------------------
def backlog_grid(limit: int) -> Grid:
    """1..10, then 12, 15, 20, ... 200 requests (at most the replica's backlog limit); start at 4."""
    values = tuple(v * 1000 for v in _BACKLOG_VALUES if v <= max(1, limit))
    return Grid(
        values_milli=values, start=Grid(values_milli=values, start=0).index_of(BACKLOG_START_MILLI), first_step=2
    )


def slots_grid(tolerance: float) -> Grid:
    """0.05 .. the largest target that can still scale up (slots used cannot exceed 1, so a target needs
    1 / target > 1 + tolerance), in steps of 0.01; start at the top ("slightly below 1")."""
    top = min(950, math.floor(1000 / (1 + tolerance) / 10) * 10)
    values = tuple(range(50, top + 1, 10))
    return Grid(values_milli=values, start=len(values) - 1, first_step=5)


def running_grid(max_seqs: int, tolerance: float) -> Grid:
    """Requests running per replica: 1 .. the largest that can still scale up (the batch cannot exceed
    ``max_seqs``, so a target needs max_seqs / target > 1 + tolerance), about 40 values; start at the top
    (GKE: "just below the maximum batch size")."""
    top = max(1, math.floor(max_seqs / (1 + tolerance) - 1e-9))
    step = max(1, top // 40)
    values = tuple(v * 1000 for v in range(top, 0, -step))[::-1]
    return Grid(values_milli=values, start=len(values) - 1, first_step=max(1, len(values) // 10))


def hbm_bounds(floor: float, full: float, tolerance: float) -> tuple[float, float]:
    """The HBM targets that can work: above floor / (1 - tolerance) (an idle fleet, at the weights' share,
    must read as below target to scale down) and below full / (1 + tolerance) (a fleet at full batch
    must read as above it to scale up). Empty (low >= high) when HBM barely moves with load."""
    return floor / (1 - tolerance), full / (1 + tolerance)


def hbm_grid(floor: float, full: float, tolerance: float) -> Grid | None:
    """About 40 targets between ``hbm_bounds``; start at the top. None when the bounds are empty."""
    low, high = hbm_bounds(floor, full, tolerance)
    lo_milli, hi_milli = math.ceil(low * 1000 + 1e-9), math.floor(high * 1000)
    if hi_milli - lo_milli < 4:
        return None
    step = max(1, (hi_milli - lo_milli) // 40)
    values = tuple(range(hi_milli, lo_milli - 1, -step))[::-1]
    return Grid(values_milli=values, start=len(values) - 1, first_step=max(1, len(values) // 10))


def batch_grid(max_per_device: int) -> Grid:
    """Per-device batch sizes 1..max (in milli-units, as every grid); start at the largest."""
    if max_per_device < 1:
        raise ConfigError(f"'max_per_device' must be >= 1 (got {max_per_device})")
    values = tuple(1000 * b for b in range(1, max_per_device + 1))
    return Grid(values_milli=values, start=len(values) - 1, first_step=1)
