"""One signal's phases on made-up scores: target, scale-up, scale-down, then the target again."""

from __future__ import annotations

from collections.abc import Callable

from tunehelp import score

from jetscale.tune.candidates import DEFAULT_BEHAVIOR, BehaviorChoice, Candidate, Signal
from jetscale.tune.evaluate import CandidateScore
from jetscale.tune.phases import Phase, SignalSearch
from jetscale.tune.search import Grid

GRID = Grid(values_milli=tuple(range(100, 1001, 100)), start=9, first_step=2)  # 0.1 .. 1.0, start at the top


def _drive(search: SignalSearch, judge: Callable[[Candidate], tuple[float, float]]) -> list[tuple[str, Candidate]]:
    scores: dict[Candidate, CandidateScore] = {}
    asked: list[tuple[str, Candidate]] = []
    while wanted := search.wanted(scores):
        for candidate in wanted:
            asked.append((search.phase.value, candidate))
            cost, attainment = judge(candidate)
            scores[candidate] = score(candidate, cost=cost, attainment=attainment)
    best = search.best(scores)
    assert best is not None
    asked.append(("best", best.candidate))
    return asked


def test_default_behavior_kept_when_no_rule_does_better() -> None:
    # attainment falls with the target; every behavior scores the same: no retarget
    asked = _drive(SignalSearch(Signal.SLOTS, GRID), lambda c: (1.0 / c.target, 1.0 if c.target <= 0.6 else 0.5))
    phases = [p for p, _ in asked]
    assert phases[0] == Phase.TARGET and Phase.RETARGET not in phases
    assert phases.count(Phase.SCALE_UP) == 2 and phases.count(Phase.SCALE_DOWN) == 3
    assert asked[-1][1] == Candidate(signal=Signal.SLOTS, target_milli=600, behavior=DEFAULT_BEHAVIOR)


def test_a_better_behavior_is_searched_again_and_allows_a_higher_target() -> None:
    gradual = BehaviorChoice(down="gradual")

    def judge(c: Candidate) -> tuple[float, float]:
        limit = 0.8 if c.behavior == gradual else 0.6  # the gradual scale-down holds the SLO up to 0.8
        return (1.0 / c.target, 1.0 if c.target <= limit else 0.5)

    asked = _drive(SignalSearch(Signal.SLOTS, GRID), judge)
    phases = [p for p, _ in asked]
    assert Phase.RETARGET in phases
    retargeted = [c for p, c in asked if p == Phase.RETARGET]
    assert all(c.behavior == gradual for c in retargeted)
    assert asked[-1][1] == Candidate(signal=Signal.SLOTS, target_milli=800, behavior=gradual)


def test_when_nothing_meets_the_slo_behaviors_are_tried_at_the_closest_target() -> None:
    asked = _drive(SignalSearch(Signal.BACKLOG, GRID, max_probes=4), lambda c: (1.0, 0.5 - c.target / 10))
    behavior_targets = {c.target_milli for p, c in asked if p in (Phase.SCALE_UP, Phase.SCALE_DOWN)}
    tried = [c.target_milli for p, c in asked if p == Phase.TARGET]
    assert behavior_targets == {min(tried)}  # the lowest target tried came closest
