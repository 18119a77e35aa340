"""The oracle: the cheapest replica schedule that meets the SLOs, knowing every arrival and the start-up
delay in advance. Every summary divides the HPA's cost by the oracle's.

Method. The run is cut into windows of ``window_s`` (default 300 s). For window k, [t_k, t_k + W):

1. Take the arrivals of [t_k - warmup, t_k + W) (the warm-up, default 60 s, puts realistic queues and
   batches in the replicas when the window starts) and replay them on a fixed fleet of n ready
   replicas behind the same router, with the same engine model (``Simulator`` without an HPA).
2. The window meets the SLOs when, for every SLO, its percentile over the requests that *arrived in the
   window* is within the target (a refused or abandoned request counts as infinitely slow; each request
   runs to its end, or to its client's timeout, even after the window closes).
3. n_k is the fewest replicas that meet them, found by a search started from the previous window's
   answer scaled by the change in arrivals (assumes more replicas never make latency worse); at most
   ``max_replicas`` (a window that cannot be met there is marked infeasible and gets the maximum).

Cost: replica k-windows, plus, because replicas must be ready when their window starts, each replica
added at t_k is paid from t_k - (mean start-up delay) (provisioning + pull + model load + readiness):
``sum_k n_k W + startup_s x sum_k max(0, n_k - n_{k-1})``. The fleet at t = 0 is ready for free, as the
HPA run's initial replicas are. Replicas removed at t_k cost nothing after t_k (draining is free), so
the oracle is a slightly optimistic lower bound; it is only defined for open-loop and trace traffic.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from jetscale.engine.presets import ReplicaConfig
from jetscale.errors import ConfigError
from jetscale.load.stats import Metric, Slo
from jetscale.load.trace import Trace
from jetscale.sim.result import RequestRecords
from jetscale.sim.scenario import ClosedTraffic, OpenTraffic, Scenario, TraceTraffic
from jetscale.sim.simulator import simulate

__all__ = ["OracleSchedule", "OracleWindow", "oracle_schedule", "window_meets"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OracleWindow:
    start_s: float
    end_s: float
    arrivals: int
    replicas: int
    feasible: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class OracleSchedule:
    windows: tuple[OracleWindow, ...]
    startup_s: float
    chips_per_replica: int
    simulations: int  # fleet replays the search ran

    @property
    def replica_seconds(self) -> float:
        total = sum(w.replicas * (w.end_s - w.start_s) for w in self.windows)
        previous = self.windows[0].replicas if self.windows else 0
        for w in self.windows:
            total += self.startup_s * max(0, w.replicas - previous)
            previous = w.replicas
        return total

    @property
    def replica_hours(self) -> float:
        return self.replica_seconds / 3600.0

    @property
    def chip_hours(self) -> float:
        return self.replica_hours * self.chips_per_replica

    @property
    def feasible(self) -> bool:
        return all(w.feasible for w in self.windows)

    def replicas_at(self, t_s: float) -> int:
        for w in self.windows:
            if w.start_s <= t_s < w.end_s:
                return w.replicas
        return self.windows[-1].replicas if self.windows else 0


def _values(records: RequestRecords, metric: Metric, keep: np.ndarray) -> np.ndarray:
    completed = records.completed
    ok = keep & completed
    if metric is Metric.TTFT:
        v = records.first_token_s - records.arrival_s
    elif metric is Metric.E2E:
        v = records.end_s - records.arrival_s
    else:
        rest = records.output_tokens - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(rest > 0, (records.end_s - records.first_token_s) / np.maximum(rest, 1), np.nan)
    kept = v[ok]
    failed = np.full(int(np.count_nonzero(keep & ~completed)), np.inf)  # refused or abandoned
    result: np.ndarray = np.concatenate([kept[np.isfinite(kept)], failed])
    return result


def window_meets(records: RequestRecords, slos: tuple[Slo, ...], start_s: float, end_s: float) -> bool:
    """Do the requests that arrived in [start_s, end_s) meet every SLO? (refused and abandoned requests
    count as infinite)."""
    keep = (records.arrival_s >= start_s) & (records.arrival_s < end_s)
    for slo in slos:
        values = _values(records, slo.metric, keep)
        if not len(values):
            continue
        rank = max(1, math.ceil(slo.percentile / 100.0 * len(values)))
        if float(np.partition(values, rank - 1)[rank - 1]) > slo.target_s:
            return False
    return True


def _arrays(traffic: OpenTraffic | TraceTraffic, duration_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    chunks = list(traffic.chunks(duration_s))
    if not chunks:
        return np.empty(0), np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return (
        np.concatenate([np.asarray(c.times_s, dtype=float) for c in chunks]),
        np.concatenate([np.asarray(c.input_tokens, dtype=np.int64) for c in chunks]),
        np.concatenate([np.asarray(c.output_tokens, dtype=np.int64) for c in chunks]),
    )


def oracle_schedule(
    scenario: Scenario,
    *,
    window_s: float = 300.0,
    warmup_s: float = 60.0,
    max_replicas: int = 256,
    progress: Callable[[float, float], None] | None = None,
) -> OracleSchedule:
    """The oracle schedule for ``scenario``'s traffic, replica shape, router, start-up and SLOs."""
    if not scenario.slos:
        raise ConfigError("'slos' must name at least one SLO for the oracle (got none)")
    traffic = scenario.traffic
    if isinstance(traffic, ClosedTraffic):
        raise ConfigError("'traffic' must be an open loop or a trace for the oracle (got a closed loop)")
    if not window_s > 0 or not warmup_s >= 0 or max_replicas < 1:
        raise ConfigError(
            f"'window_s' > 0, 'warmup_s' >= 0 and 'max_replicas' >= 1 are needed "
            f"(got {window_s}, {warmup_s}, {max_replicas})"
        )
    times, inputs, outputs = _arrays(traffic, scenario.duration_s)
    config = scenario.replica
    simulations = 0

    def meets(n: int, *, start: float, end: float) -> bool:
        nonlocal simulations
        simulations += 1
        lo = max(0.0, start - warmup_s)
        i, j = np.searchsorted(times, [lo, end], side="left")
        if i == j:
            return True
        trace = Trace(times_s=times[i:j] - lo, input_tokens=inputs[i:j], output_tokens=outputs[i:j])
        run = simulate(_fixed_fleet(scenario, config, trace, n, end - lo))
        assert run.records is not None
        return window_meets(run.records, scenario.slos, start - lo, end - lo)

    windows: list[OracleWindow] = []
    previous_n, previous_count = 1, 0
    start = 0.0
    while start < scenario.duration_s:
        end = min(start + window_s, scenario.duration_s)
        count = int(np.searchsorted(times, end) - np.searchsorted(times, start))
        guess = previous_n if previous_count == 0 else math.ceil(previous_n * count / previous_count)
        n, feasible = _fewest(partial(meets, start=start, end=end), min(max(1, guess), max_replicas), max_replicas)
        windows.append(OracleWindow(start_s=start, end_s=end, arrivals=count, replicas=n, feasible=feasible))
        previous_n, previous_count = n, max(count, 1)
        if progress is not None:
            progress(end, scenario.duration_s)
        start = end
    return OracleSchedule(
        windows=tuple(windows),
        startup_s=scenario.startup.mean_s(config),
        chips_per_replica=config.accelerator.chips,
        simulations=simulations,
    )


def _fewest(meets: Callable[[int], bool], guess: int, cap: int) -> tuple[int, bool]:
    """The smallest n in [1, cap] with ``meets(n)``, searched from ``guess``; (cap, False) if none."""
    if meets(guess):
        high = guess  # known good; find a bad one below, doubling the step
        step = 1
        while high - step >= 1 and meets(high - step):
            high -= step
            step *= 2
        low = max(0, high - step)  # known bad (or 0)
    else:
        low = guess  # known bad; find a good one above
        step = 1
        while True:
            if low + step >= cap:
                if low >= cap or not meets(cap):
                    return cap, False
                high = cap
                break
            if meets(low + step):
                high = low + step
                break
            low += step
            step *= 2
    while high - low > 1:
        mid = (low + high) // 2
        if meets(mid):
            high = mid
        else:
            low = mid
    return high, True


def _fixed_fleet(scenario: Scenario, config: ReplicaConfig, trace: Trace, replicas: int, duration_s: float) -> Scenario:
    return Scenario(
        replica=config,
        traffic=TraceTraffic(trace=trace, name="oracle window"),
        duration_s=duration_s,
        hpa=None,
        initial_replicas=replicas,
        router=scenario.router,
        scrape_interval_s=max(duration_s, 1.0),
        drain_after_s=3600.0,
        records=True,
        client_timeout_s=scenario.client_timeout_s,
    )
