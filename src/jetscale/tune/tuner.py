"""``jetscale tune``: GKE's JetStream threshold method, run in the simulator instead of by hand.

1. **Batch** (``jetscale.tune.batch``): the largest per-device batch whose KV cache fits in HBM, lowered
   until one replica at full batch meets the SLO.
2. **Coarse pass**: every signal's phases (``jetscale.tune.phases``: target, scale-up, scale-down,
   retarget), each candidate run on ``seeds`` seeds of the traffic compressed ``k`` times
   (``jetscale.tune.traffic``), ``k`` chosen so that one run simulates about ``coarse_requests``
   requests. The signals advance together, so each round's runs fill every worker.
3. **Confirm**: the best candidates of the coarse pass, two at a time in its order, on the full traffic
   (``seeds`` seeds each) until one meets the attainment there, and GKE's sample HPA (backlog 10, no
   behavior). The winner is the cheapest confirmed one that meets the attainment, or, when none does,
   the one that comes closest (``met`` is then False).
4. **Oracle** (``jetscale.sim.oracle``, the cheapest schedule that meets the SLO knowing the future) on
   the full traffic, computed in a worker while the search runs.

Signals that cannot work are not searched, with a warning: HBM under preallocation (flat), or HBM whose
range between idle and full batch is inside the HPA's tolerance.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from jetscale.engine.presets import ReplicaConfig
from jetscale.errors import ConfigError
from jetscale.hpa.types import HPASpec
from jetscale.sim.oracle import OracleSchedule
from jetscale.tune.batch import BatchChoice, BatchResult, choose_batch, full_batch_check
from jetscale.tune.candidates import Candidate, ManifestNames, Signal, gke_sample, hpa_for, signals_for
from jetscale.tune.evaluate import (
    CandidateScore,
    Evaluator,
    OracleRequest,
    RunScore,
    RunSpec,
    Setup,
    make_evaluator,
    rank_key,
)
from jetscale.tune.phases import SignalSearch
from jetscale.tune.signals import pinned_warning, saturated_slots, signal_grids
from jetscale.tune.traffic import expected_requests

__all__ = ["Progress", "TuneConfig", "TuneResult", "compression_for", "tune"]

Progress = Callable[[str, int, int], None]  # (what runs now, simulations done, simulations expected)
CONFIRM_WIDTH = 2  # candidates confirmed on the full traffic per round
CONFIRM_ROUNDS = 3


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TuneConfig:
    """Everything one tuning needs; see the module docstring for the stages."""

    replica: ReplicaConfig
    setup: Setup
    signals: tuple[Signal, ...] = tuple(Signal)
    attainment: float = 0.99
    min_replicas: int = 1
    max_replicas: int = 16
    seeds: int = 3
    batch: BatchChoice = field(default_factory=BatchChoice)
    coarse_requests: int = 100_000  # 0: no coarse pass (every run on the full traffic)
    jobs: int = 1
    oracle: bool = True
    oracle_window_s: float = 300.0
    names: ManifestNames = field(default_factory=ManifestNames)
    max_probes: int = 8

    def __post_init__(self) -> None:
        if not 0 < self.attainment <= 1:
            raise ConfigError(f"'--attainment' must be in (0, 1] (got {self.attainment})")
        if not self.setup.slos:
            raise ConfigError("'--slo' must name at least one SLO (got none)")
        if self.seeds < 1:
            raise ConfigError(f"'--seeds' must be >= 1 (got {self.seeds})")
        if self.min_replicas < 1:
            raise ConfigError(f"'--min-replicas' must be >= 1 (got {self.min_replicas})")
        if self.max_replicas < self.min_replicas:
            raise ConfigError(
                f"'--max-replicas' must be >= --min-replicas ({self.min_replicas}) (got {self.max_replicas})"
            )
        if self.coarse_requests < 0:
            raise ConfigError(f"'--coarse-requests' must be >= 0 (got {self.coarse_requests})")
        if self.jobs < 1:
            raise ConfigError(f"'--jobs' must be >= 1 (got {self.jobs})")
        if self.max_probes < 2:
            raise ConfigError(f"'max_probes' must be >= 2 (got {self.max_probes})")
        if not self.signals:
            raise ConfigError("'--signals' must name at least one signal (got none)")

    def hpa(self, candidate: Candidate, *, gke: bool = False) -> HPASpec:
        return hpa_for(
            candidate, min_replicas=self.min_replicas, max_replicas=self.max_replicas, names=self.names, gke=gke
        )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TuneResult:
    config: TuneConfig
    replica: ReplicaConfig  # with the chosen batch
    batch: BatchResult
    compression: int
    scores: tuple[CandidateScore, ...]  # the coarse pass, in the order they ran
    best: Mapping[Signal, CandidateScore]  # each signal's best in the coarse pass
    finalists: tuple[CandidateScore, ...]  # on the full traffic: the candidates confirmed, then GKE's sample
    winner: CandidateScore
    gke: CandidateScore
    oracle: OracleSchedule | None
    warnings: tuple[str, ...]
    skipped: tuple[Signal, ...]
    simulations: int
    wall_s: float

    @property
    def met(self) -> bool:
        return self.winner.feasible

    def manifests(self) -> tuple[HPASpec, HPASpec]:
        """The winner as a plain and as a GKE-spelled manifest."""
        return self.config.hpa(self.winner.candidate), self.config.hpa(self.winner.candidate, gke=True)


def compression_for(config: TuneConfig) -> int:
    if config.coarse_requests == 0:
        return 1
    n = expected_requests(config.setup.traffic, config.setup.duration_s)
    return max(1, math.ceil(n / config.coarse_requests))


class _Runner:
    """Scores candidates through an evaluator, counting runs for the progress bar."""

    def __init__(self, config: TuneConfig, replica: ReplicaConfig, progress: Progress | None) -> None:
        self.config, self.replica, self.progress = config, replica, progress
        self.sink: list[CandidateScore] | None = None  # tune(scored=...): every score as it is made
        self.done = 0
        self.expected = 0
        self.stage = ""

    def announce(self, stage: str) -> None:
        self.stage = stage
        if self.progress is not None:
            self.progress(stage, self.done, self.expected)

    def tick(self, _: RunScore | None = None) -> None:
        self.done += 1
        self.expected = max(self.expected, self.done)
        if self.progress is not None:
            self.progress(self.stage, self.done, self.expected)

    def score(
        self,
        evaluator: Evaluator,
        candidates: Sequence[tuple[Candidate, str]],
        compression: int,
        *,
        timeline: bool = False,
    ) -> list[CandidateScore]:
        seeds = self.config.seeds
        specs = [
            RunSpec(
                replica=self.replica,
                hpa=self.config.hpa(c),
                seed_index=i,
                compression=compression,
                keep_timeline=timeline and i == 0,
            )
            for c, _ in candidates
            for i in range(seeds)
        ]
        self.expected = max(self.expected, self.done + len(specs))
        runs = evaluator.run(specs, done=self.tick)
        scores = [
            CandidateScore(
                candidate=c,
                runs=tuple(runs[j * seeds : (j + 1) * seeds]),
                compression=compression,
                required=self.config.attainment,
                stage=stage,
            )
            for j, (c, stage) in enumerate(candidates)
        ]
        if self.sink is not None:
            self.sink.extend(scores)
        return scores


def tune(
    config: TuneConfig, *, progress: Progress | None = None, scored: list[CandidateScore] | None = None
) -> TuneResult:
    """Run the stages of the module docstring; see ``TuneResult``. ``scored`` gets every candidate's
    score as soon as it is made (what a caller stopped by Ctrl-C can still report)."""
    started = time.perf_counter()
    setup = config.setup
    if progress is not None:
        progress("batch size", 0, 1)
    batch = choose_batch(
        config.replica, config.batch, lambda cfg: full_batch_check(cfg, setup.traffic, setup.slos, seed=setup.seed)
    )
    replica = (
        config.replica
        if config.replica.decode_slots == batch.decode_slots
        else replace(config.replica, decode_slots=batch.decode_slots)
    )
    grids, warnings = signal_grids(signals_for(config.signals, replica.kind), replica, setup)
    if not grids:
        raise ConfigError(f"'--signals' must name a signal that can work here (got none): {'; '.join(warnings)}")
    k = compression_for(config)
    runner = _Runner(config, replica, progress)
    runner.sink = scored
    searches = [SignalSearch(s, g, max_probes=config.max_probes) for s, g in grids.items()]
    runner.expected = config.seeds * (len(searches) * (config.max_probes + 6) + (3 if k > 1 else 2))
    cache: dict[Candidate, CandidateScore] = {}
    with make_evaluator(setup, config.jobs) as evaluator:
        if config.oracle:
            hpa = config.hpa(gke_sample(replica.kind))
            request = OracleRequest(
                replica=replica, hpa=hpa, window_s=config.oracle_window_s, max_replicas=config.max_replicas
            )
            evaluator.start_oracle(request)
        order = _coarse_pass(searches, runner, evaluator, k, cache)
        confirmed, gke = _confirm(sorted(order, key=rank_key), runner, evaluator, full=k == 1)
        winner = min([*confirmed, gke], key=rank_key)
        if winner.runs[0].timeline is None:  # scored without its timeline (no coarse pass): run seed 0 again
            runner.announce("the winner's timeline")
            again = runner.score(evaluator, [(winner.candidate, winner.stage)], 1, timeline=True)[0]
            winner = replace(winner, runs=(again.runs[0], *winner.runs[1:]))
            confirmed = [winner if c.candidate == winner.candidate else c for c in confirmed]
        runner.announce("oracle")
        oracle = evaluator.oracle() if config.oracle else None
    bests = {s.signal: b for s in searches if (b := s.best(cache)) is not None}
    if Signal.SLOTS in grids:
        runner.announce("slots under a queue")
        warnings.extend(pinned_warning(config.signals, setup, *saturated_slots(replica, setup)))
    runner.expected = runner.done
    runner.announce("done")
    return TuneResult(
        config=config,
        replica=replica,
        batch=batch,
        compression=k,
        scores=tuple(order),
        best=bests,
        finalists=(*confirmed, gke),
        winner=winner,
        gke=gke,
        oracle=oracle,
        warnings=tuple(warnings),
        skipped=tuple(s for s in signals_for(config.signals, replica.kind) if s not in grids),
        simulations=runner.done,
        wall_s=time.perf_counter() - started,
    )


def _coarse_pass(
    searches: Sequence[SignalSearch],
    runner: _Runner,
    evaluator: Evaluator,
    k: int,
    cache: dict[Candidate, CandidateScore],
) -> list[CandidateScore]:
    """Every signal's phases, the candidates of all signals scored together round by round."""
    order: list[CandidateScore] = []
    while True:
        wanted: dict[Candidate, str] = {}
        for search in searches:
            for candidate in search.wanted(cache):
                wanted.setdefault(candidate, search.phase.value)
        if not wanted:
            return order
        runner.announce("search: " + ", ".join(sorted({f"{c.signal.value} {p}" for c, p in wanted.items()})))
        for score in runner.score(evaluator, list(wanted.items()), k):
            cache[score.candidate] = score
            order.append(score)


def _confirm(
    ranked: Sequence[CandidateScore], runner: _Runner, evaluator: Evaluator, *, full: bool
) -> tuple[list[CandidateScore], CandidateScore]:
    """The best coarse candidates on the full traffic, ``CONFIRM_WIDTH`` at a time, until one meets the
    attainment (at most ``CONFIRM_ROUNDS`` rounds; one when none met it in the coarse pass); and GKE's
    sample. Without a coarse pass the scores are already full: only the sample runs."""
    gke = gke_sample(runner.replica.kind)
    if full:
        runner.announce("GKE sample")
        return list(ranked[:1]), runner.score(evaluator, [(gke, "gke sample")], 1, timeline=True)[0]
    feasible = [s.candidate for s in ranked if s.feasible]
    queue = feasible or [s.candidate for s in ranked]
    confirmed: list[CandidateScore] = []
    gke_score: CandidateScore | None = None
    for _ in range(CONFIRM_ROUNDS if feasible else 1):
        picks: list[tuple[Candidate, str]] = [(c, "confirm") for c in queue[:CONFIRM_WIDTH]]
        queue = queue[CONFIRM_WIDTH:]
        if gke_score is None:
            picks.append((gke, "gke sample"))
        runner.announce("confirm on the full traffic: " + ", ".join(c.label for c, _ in picks))
        for score in runner.score(evaluator, picks, 1, timeline=True):
            if score.candidate == gke:
                gke_score = score
            else:
                confirmed.append(score)
        if any(s.feasible for s in confirmed) or not queue:
            break
    assert gke_score is not None
    return confirmed, gke_score
