"""The bracket-then-bisect search on grids whose feasible region is known, and the grids of each signal."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from jetscale.errors import ConfigError
from jetscale.tune.search import (
    Grid,
    SearchState,
    backlog_grid,
    batch_grid,
    best_index,
    hbm_bounds,
    hbm_grid,
    next_probe,
    record,
    slots_grid,
)


def _run(grid: Grid, feasible: Callable[[int], bool], max_probes: int = 50) -> tuple[int | None, list[int]]:
    state = SearchState()
    probes = []
    while (index := next_probe(grid, state, max_probes=max_probes)) is not None:
        probes.append(index)
        state = record(state, index, feasible(index))
    return best_index(state), probes


GRID_20 = Grid(values_milli=tuple(range(1000, 21000, 1000)), start=3, first_step=2)


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        pytest.param(-1, None, id="none-feasible"),
        pytest.param(0, 0, id="only-the-lowest"),
        pytest.param(2, 2, id="just-below-start"),
        pytest.param(3, 3, id="exactly-the-start"),
        pytest.param(4, 4, id="just-above-start"),
        pytest.param(11, 11, id="far-above"),
        pytest.param(19, 19, id="all-feasible"),
    ],
)
def test_search_finds_the_largest_feasible_index(threshold: int, expected: int | None) -> None:
    best, probes = _run(GRID_20, lambda i: i <= threshold)
    assert best == expected
    assert len(probes) == len(set(probes)), "no index is tried twice"
    assert probes[0] == GRID_20.start
    assert len(probes) <= 2 * math.ceil(math.log2(len(GRID_20))) + 2  # bracket + bisect, logarithmic


def test_bracket_steps_double_from_the_start() -> None:
    _, probes = _run(GRID_20, lambda i: i <= 18)
    assert probes[:4] == [3, 5, 7, 11]  # start, +2, +4, +8


def test_a_noisy_answer_cannot_loop() -> None:
    answers = iter([True, False, True, False, True, False, True, False] * 5)
    best, probes = _run(GRID_20, lambda i: next(answers))
    assert len(probes) == len(set(probes)) <= len(GRID_20)
    assert best is not None


def test_max_probes_ends_the_search_with_the_best_so_far() -> None:
    best, probes = _run(GRID_20, lambda i: i <= 15, max_probes=3)
    assert len(probes) == 3
    assert best == max(i for i in probes if i <= 15)


@pytest.mark.parametrize(
    ("values", "start", "step"),
    [
        pytest.param((), 0, 1, id="empty"),
        pytest.param((2, 1), 0, 1, id="descending"),
        pytest.param((1, 2), 2, 1, id="start-out-of-range"),
        pytest.param((1, 2), 0, 0, id="zero-step"),
    ],
)
def test_bad_grids_are_refused(values: tuple[int, ...], start: int, step: int) -> None:
    with pytest.raises(ConfigError):
        Grid(values_milli=values, start=start, first_step=step)


def test_backlog_grid_starts_at_four_and_respects_the_backlog_limit() -> None:
    grid = backlog_grid(1024)
    assert grid.values_milli[grid.start] == 4000
    assert grid.values_milli[0] == 1000 and grid.values_milli[-1] == 200_000
    assert backlog_grid(50).values_milli[-1] == 50_000


@pytest.mark.parametrize(("tolerance", "top"), [(0.1, 900), (0.0, 950), (0.25, 800)])
def test_slots_grid_tops_out_where_a_target_can_still_scale_up(tolerance: float, top: int) -> None:
    grid = slots_grid(tolerance)
    assert grid.values_milli[-1] == top and grid.start == len(grid) - 1
    assert top / 1000 * (1 + tolerance) <= 1.0 + 1e-9  # a full fleet (slots 1.0) reads above the tolerance band


def test_hbm_grid_lies_inside_the_bounds_that_scale_both_ways() -> None:
    low, high = hbm_bounds(0.2, 0.6, 0.1)
    assert low == pytest.approx(0.2 / 0.9) and high == pytest.approx(0.6 / 1.1)
    grid = hbm_grid(0.2, 0.6, 0.1)
    assert grid is not None
    assert low <= grid.values_milli[0] / 1000 and grid.values_milli[-1] / 1000 <= high
    assert grid.start == len(grid) - 1
    assert hbm_grid(0.30, 0.32, 0.1) is None  # HBM barely moves with load


def test_batch_grid_runs_from_one_to_the_largest() -> None:
    grid = batch_grid(14)
    assert [v // 1000 for v in grid.values_milli] == list(range(1, 15))
    assert grid.values_milli[grid.start] == 14_000
    with pytest.raises(ConfigError, match="max_per_device"):
        batch_grid(0)
