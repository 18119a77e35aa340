"""One signal's tuning, phase by phase, as the guide orders it: the target, then the HPA behavior.

1. **target**: the threshold search (``jetscale.tune.search``) with Kubernetes' default behavior.
2. **scale-up**: each scale-up rule of ``SCALE_UP`` (default, burst, damped) at the target just above the
   best one (the cheapest that failed: can a behavior make it work?), or at the best one when it is the
   grid's last, or at the closest when none met the SLO; the best rule is kept. The guide asks for this
   below a backlog of 10, where one burst moves the average a lot; it is tried for every signal.
3. **scale-down**: with that scale-up rule, each scale-down rule of ``SCALE_DOWN`` (default window, a
   shorter and a longer one, and a gradual one that removes a pod a minute): against flapping.
4. **retarget**: if the behavior changed, the target search again from that point with it (a behavior
   that holds the fleet steadier may allow a higher, cheaper target).

"Best" is ``rank_key``: among candidates that met the SLO the cheapest (then the one that scaled least),
else the one with the highest attainment. ``SignalSearch`` only says which candidates it wants scored
next; the caller scores them (all signals at once, so the runs fill every core) and asks again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum

from jetscale.tune.candidates import DEFAULT_BEHAVIOR, SCALE_DOWN, SCALE_UP, BehaviorChoice, Candidate, Signal
from jetscale.tune.evaluate import CandidateScore, rank_key
from jetscale.tune.search import Grid, SearchState, best_index, next_probe, record

__all__ = ["Phase", "SignalSearch"]

Scores = Mapping[Candidate, CandidateScore]


class Phase(StrEnum):
    TARGET = "target"
    SCALE_UP = "scale-up"
    SCALE_DOWN = "scale-down"
    RETARGET = "retarget"
    DONE = "done"


class SignalSearch:
    """See the module docstring. ``wanted(scores)`` returns the candidates to score next ([] when done)."""

    def __init__(self, signal: Signal, grid: Grid, *, max_probes: int = 8) -> None:
        self.signal = signal
        self.grid = grid
        self.max_probes = max_probes
        self.phase = Phase.TARGET
        self.behavior: BehaviorChoice = DEFAULT_BEHAVIOR
        self.anchor: int | None = None  # grid index the behavior phases use
        self._state = SearchState()
        self._grid = grid

    def _candidate(self, index: int, behavior: BehaviorChoice) -> Candidate:
        return Candidate(signal=self.signal, target_milli=self.grid.values_milli[index], behavior=behavior)

    def wanted(self, scores: Scores) -> list[Candidate]:
        while True:
            if self.phase in (Phase.TARGET, Phase.RETARGET):
                index = next_probe(self._grid, self._state, max_probes=self.max_probes)
                if index is None:
                    self._end_search(scores)
                    continue
                candidate = self._candidate(index, self.behavior)
                if candidate not in scores:
                    return [candidate]
                self._state = record(self._state, index, scores[candidate].feasible)
            elif self.phase is Phase.SCALE_UP:
                options = [BehaviorChoice(up=up) for up in SCALE_UP]
                missing = self._missing(options, scores)
                if missing:
                    return missing
                self.behavior = self._best(options, scores)
                self.phase = Phase.SCALE_DOWN
            elif self.phase is Phase.SCALE_DOWN:
                options = [BehaviorChoice(up=self.behavior.up, down=down) for down in SCALE_DOWN]
                missing = self._missing(options, scores)
                if missing:
                    return missing
                self.behavior = self._best(options, scores)
                if self.behavior == DEFAULT_BEHAVIOR:
                    self.phase = Phase.DONE
                else:
                    assert self.anchor is not None
                    self.phase = Phase.RETARGET
                    self._grid = replace(self.grid, start=self.anchor)
                    self._state = SearchState()
            else:
                return []

    def _missing(self, options: list[BehaviorChoice], scores: Scores) -> list[Candidate]:
        assert self.anchor is not None
        return [c for c in (self._candidate(self.anchor, b) for b in options) if c not in scores]

    def _best(self, options: list[BehaviorChoice], scores: Scores) -> BehaviorChoice:
        anchor = self.anchor
        assert anchor is not None
        return min(options, key=lambda b: rank_key(scores[self._candidate(anchor, b)]))

    def _end_search(self, scores: Scores) -> None:
        if self.phase is Phase.RETARGET:
            self.phase = Phase.DONE
            return
        best = best_index(self._state)
        above = self._state.infeasible_high
        if best is None:  # none met the SLO: the behavior phases start from the closest
            probes = [self._candidate(i, self.behavior) for i, _ in self._state.probes]
            closest = min(probes, key=lambda c: rank_key(scores[c]))
            self.anchor = self.grid.values_milli.index(closest.target_milli)
        elif above is not None and above > best:  # can a behavior make the next, cheaper target work?
            self.anchor = above
        else:  # the cheapest target of the grid already works: a behavior can only make it cheaper
            self.anchor = best
        self.phase = Phase.SCALE_UP

    def best(self, scores: Scores) -> CandidateScore | None:
        """The best candidate of this signal scored so far."""
        mine = [s for c, s in scores.items() if c.signal is self.signal]
        return min(mine, key=rank_key) if mine else None
