"""Scoring one HPA in the simulator: a run per seed, reduced to cost, SLO attainment and a few facts about
the signals; and where the runs happen (in this process, or in a pool of processes, one per core).

**Attainment** of a run is the share of minutes in which the SLO held (each SLO's percentile over the
requests that ended in that minute within its target, as ``jetscale simulate`` counts ``minutes met``),
for the worst SLO; a run that refused requests can do no better than the share it served. A candidate's
attainment is the mean over its seeds, and it meets the requirement (``--attainment``) when that mean
does. **Cost** is replica-hours (a replica costs from creation until it is gone), the mean over seeds,
scaled up by the compression factor so that coarse and full runs read on one scale.

Runs are independent and seeded, so a pool gives the same numbers as one process in any order. Pool
workers receive the shared ``Setup`` (the traffic may be a large trace) once, when they start.
"""

from __future__ import annotations

import abc
import contextlib
import math
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from types import TracebackType

from jetscale.engine.presets import ReplicaConfig
from jetscale.hpa.types import ControllerConfig, HPASpec
from jetscale.load.stats import Slo
from jetscale.report.timeline import Timeline
from jetscale.sim.oracle import OracleSchedule, oracle_schedule
from jetscale.sim.result import SimResult
from jetscale.sim.scenario import Scenario, Startup
from jetscale.sim.simulator import simulate
from jetscale.tune.candidates import Candidate
from jetscale.tune.traffic import TunerTraffic, variant

__all__ = [
    "CandidateScore",
    "Evaluator",
    "LocalEvaluator",
    "PoolEvaluator",
    "RunScore",
    "RunSpec",
    "Setup",
    "evaluate",
    "make_evaluator",
    "scenario_for",
    "score_run",
]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Setup:
    """What every run of one tuning shares: traffic, SLOs, start-up, metrics pipeline, controller flags."""

    traffic: TunerTraffic
    duration_s: float
    slos: tuple[Slo, ...]
    startup: Startup = field(default_factory=Startup)
    router: str = "round-robin"
    scrape_interval_s: float = 15.0
    metrics_lag_s: float = 0.0
    drain_after_s: float = 600.0
    controller: ControllerConfig = field(default_factory=ControllerConfig)
    seed: int = 0
    client_timeout_s: float | None = None  # clients give up after this (Scenario.client_timeout_s)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RunSpec:
    """One run: a replica shape, an HPA, a seed, a compression factor (1: the full trace)."""

    replica: ReplicaConfig
    hpa: HPASpec
    seed_index: int = 0
    compression: int = 1
    keep_timeline: bool = False


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class RunScore:
    """One run, reduced. ``series``: (seconds on the full traffic's clock, replicas alive) at each minute
    of the run and at its end."""

    replica_hours: float
    attainment: float
    minutes: tuple[tuple[int, int], ...]  # per SLO: (minutes met, minutes with requests)
    observed_s: tuple[float, ...]  # per SLO: the whole run's percentile
    arrived: int
    rejected: int
    scale_ups: int
    scale_downs: int
    max_replicas: int
    final_replicas: int
    mean_ready: float
    hbm_low: float
    hbm_high: float
    series: tuple[tuple[float, int], ...]
    timeline: Timeline | None = None
    wall_s: float = 0.0


def scenario_for(setup: Setup, spec: RunSpec) -> Scenario:
    k = spec.compression
    return Scenario(
        replica=spec.replica,
        traffic=variant(setup.traffic, seed_index=spec.seed_index, compression=k),
        duration_s=setup.duration_s / k,
        hpa=spec.hpa,
        controller=setup.controller,
        startup=setup.startup,
        router=setup.router,
        scrape_interval_s=setup.scrape_interval_s,
        metrics_lag_s=setup.metrics_lag_s,
        drain_after_s=setup.drain_after_s,
        slos=setup.slos,
        seed=setup.seed + spec.seed_index,
        client_timeout_s=setup.client_timeout_s,
        name=spec.hpa.name,
    )


def _attainment(result: SimResult) -> float:
    return result.attainment  # one definition, shared with jetscale simulate (SimResult.attainment)


def score_run(result: SimResult, *, compression: int, keep_timeline: bool = False, wall_s: float = 0.0) -> RunScore:
    samples = result.timeline.samples
    events = result.timeline.events
    hbm = [s.hbm_usage for s in samples if not math.isnan(s.hbm_usage)]
    ready = [s.replicas_ready for s in samples]
    k = float(compression)
    end = result.duration_s
    times = [60.0 * m for m in range(math.ceil(end / 60.0))] + [end]
    series = tuple((t * k, result.replicas_at(min(t, end - 1e-9))) for t in times)
    return RunScore(
        replica_hours=result.replica_hours * k,
        attainment=_attainment(result),
        minutes=tuple((s.minutes_met, s.minutes_total) for s in result.slos),
        observed_s=tuple(s.observed_s for s in result.slos),
        arrived=result.counts.arrived,
        rejected=result.counts.rejected,
        scale_ups=sum(1 for e in events if e.to_replicas > e.from_replicas),
        scale_downs=sum(1 for e in events if e.to_replicas < e.from_replicas),
        max_replicas=max((n for _, n in series), default=0),
        final_replicas=series[-1][1],
        mean_ready=sum(ready) / len(ready) if ready else math.nan,
        hbm_low=min(hbm, default=math.nan),
        hbm_high=max(hbm, default=math.nan),
        series=series,
        timeline=result.timeline if keep_timeline else None,
        wall_s=wall_s,
    )


def evaluate(setup: Setup, spec: RunSpec) -> RunScore:
    """Simulate ``spec`` and score it."""
    scenario = scenario_for(setup, spec)
    start = time.perf_counter()
    result = simulate(scenario)
    return score_run(
        result, compression=spec.compression, keep_timeline=spec.keep_timeline, wall_s=time.perf_counter() - start
    )


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class CandidateScore:
    """A candidate's runs over its seeds, at one compression, against the required attainment."""

    candidate: Candidate
    runs: tuple[RunScore, ...]
    compression: int
    required: float
    stage: str = ""

    @property
    def cost(self) -> float:
        """Mean replica-hours (full-trace scale)."""
        return sum(r.replica_hours for r in self.runs) / len(self.runs)

    @property
    def attainment(self) -> float:
        return sum(r.attainment for r in self.runs) / len(self.runs)

    @property
    def worst_attainment(self) -> float:
        return min(r.attainment for r in self.runs)

    @property
    def feasible(self) -> bool:
        return self.attainment >= self.required - 1e-12

    @property
    def flaps(self) -> float:
        """Mean scale events per run."""
        return sum(r.scale_ups + r.scale_downs for r in self.runs) / len(self.runs)


def rank_key(score: CandidateScore) -> tuple[int, float, float, float]:
    """Sort key, best first: feasible ones by cost (then fewer scale events), then the rest by attainment."""
    if score.feasible:
        return (0, round(score.cost, 6), score.flaps, -score.attainment)
    return (1, -score.attainment, round(score.cost, 6), score.flaps)


# --- where runs happen -----------------------------------------------------------------------------------
Done = Callable[[RunScore], None]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class OracleRequest:
    replica: ReplicaConfig
    hpa: HPASpec
    window_s: float
    max_replicas: int


def _oracle(setup: Setup, request: OracleRequest) -> OracleSchedule:
    scenario = scenario_for(setup, RunSpec(replica=request.replica, hpa=request.hpa))
    return oracle_schedule(scenario, window_s=request.window_s, max_replicas=request.max_replicas)


class Evaluator(abc.ABC):
    """Runs ``RunSpec`` lists and one oracle; see ``LocalEvaluator`` and ``PoolEvaluator``."""

    jobs = 1

    @abc.abstractmethod
    def run(self, specs: Sequence[RunSpec], done: Done | None = None) -> list[RunScore]:
        """Score every spec, in order; ``done`` is called after each."""

    @abc.abstractmethod
    def start_oracle(self, request: OracleRequest) -> None:
        """Begin computing the oracle's schedule (in the background where workers allow)."""

    @abc.abstractmethod
    def oracle(self) -> OracleSchedule | None:
        """The oracle's schedule once computed, None if none was asked for."""

    def __enter__(self) -> Evaluator:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:  # noqa: B027 - a no-op by default; the pool overrides it
        """Release the workers (nothing to do in-process)."""


class LocalEvaluator(Evaluator):
    """Every run in this process, in order; the oracle when it is asked for."""

    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self._oracle_request: OracleRequest | None = None
        self._oracle: OracleSchedule | None = None

    def run(self, specs: Sequence[RunSpec], done: Done | None = None) -> list[RunScore]:
        out = []
        for spec in specs:
            score = evaluate(self.setup, spec)
            if done is not None:
                done(score)
            out.append(score)
        return out

    def start_oracle(self, request: OracleRequest) -> None:
        self._oracle_request = request

    def oracle(self) -> OracleSchedule | None:
        if self._oracle is None and self._oracle_request is not None:
            self._oracle = _oracle(self.setup, self._oracle_request)
        return self._oracle


_worker_setup: list[Setup] = []  # a pool worker's shared Setup, set once by ``_init_worker``


def _init_worker(setup: Setup) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops the pool (PoolEvaluator)
    _worker_setup[:] = [setup]


def _run_in_worker(spec: RunSpec) -> RunScore:
    return evaluate(_worker_setup[0], spec)


def _oracle_in_worker(request: OracleRequest) -> OracleSchedule:
    return _oracle(_worker_setup[0], request)


class PoolEvaluator(Evaluator):
    """Runs spread over ``jobs`` worker processes (started fresh, not forked: the parent may hold threads,
    such as the progress bar's); the oracle runs in one of them while the search goes on."""

    def __init__(self, setup: Setup, jobs: int) -> None:
        self.setup = setup
        self.jobs = jobs
        self._pool: ProcessPoolExecutor | None = None
        self._oracle_future: Future[OracleSchedule] | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.setup,),
            )
        return self._pool

    def run(self, specs: Sequence[RunSpec], done: Done | None = None) -> list[RunScore]:
        pool = self._executor()
        with _ctrl_c_after():
            futures = [pool.submit(_run_in_worker, spec) for spec in specs]
        if done is not None:
            for future in futures:
                future.add_done_callback(lambda f: done(f.result()) if f.exception() is None else None)
        return [f.result() for f in futures]

    def start_oracle(self, request: OracleRequest) -> None:
        with _ctrl_c_after():
            self._oracle_future = self._executor().submit(_oracle_in_worker, request)

    def oracle(self) -> OracleSchedule | None:
        return self._oracle_future.result() if self._oracle_future is not None else None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None and issubclass(kind, KeyboardInterrupt) and self._pool is not None:
            for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                process.terminate()  # Ctrl-C: drop the runs in flight (and the oracle) rather than wait for them
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


@contextlib.contextmanager
def _ctrl_c_after() -> Iterator[None]:
    """Hold a Ctrl-C back until the block is done: the pool starts workers as runs are submitted, and one
    cut off while it is being started dies with a traceback. The signal is raised again right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if caught:
            signal.raise_signal(signal.SIGINT)


def make_evaluator(setup: Setup, jobs: int) -> Evaluator:
    return LocalEvaluator(setup) if jobs <= 1 else PoolEvaluator(setup, jobs)
