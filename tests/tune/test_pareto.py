"""The Pareto front of cost against attainment."""

from __future__ import annotations

from pathlib import Path

import pytest
from tunehelp import score

from jetscale.tune.candidates import Candidate, Signal
from jetscale.tune.pareto import dominates, pareto_front, plot_front


def _points(*pairs: tuple[float, float]) -> list:  # type: ignore[type-arg]
    return [
        score(Candidate(signal=Signal.BACKLOG, target_milli=1000 * (i + 1)), cost=c, attainment=a)
        for i, (c, a) in enumerate(pairs)
    ]


@pytest.mark.parametrize(
    ("pairs", "front"),
    [
        pytest.param([(1, 0.5)], [(1, 0.5)], id="one"),
        pytest.param([(1, 0.5), (2, 0.9), (3, 0.99)], [(1, 0.5), (2, 0.9), (3, 0.99)], id="all-on-the-front"),
        pytest.param([(1, 0.9), (2, 0.8), (3, 0.99)], [(1, 0.9), (3, 0.99)], id="dearer-and-worse-is-dominated"),
        pytest.param([(2, 0.9), (2, 0.95)], [(2, 0.95)], id="same-cost-better"),
        pytest.param([(1, 0.9), (2, 0.9)], [(1, 0.9)], id="same-attainment-cheaper"),
        pytest.param([(3, 1.0), (1, 0.2), (2, 1.0)], [(1, 0.2), (2, 1.0)], id="unsorted"),
    ],
)
def test_front(pairs: list[tuple[float, float]], front: list[tuple[float, float]]) -> None:
    points = _points(*pairs)
    got = pareto_front(points)
    assert [(p.cost, p.attainment) for p in got] == front
    for p in points:  # every point off the front is dominated by one on it
        assert p in got or any(dominates(q, p) for q in got)


def test_plot_writes_a_png(tmp_path: Path) -> None:
    points = _points((1, 0.5), (2, 0.9), (3, 0.99))
    path = plot_front(points, tmp_path / "f.png", title="t", required=0.9, chosen=points[1], confirmed=points[1:2])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
