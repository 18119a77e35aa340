"""Engine speed: requests per second of CPU time driven through one ReplicaEngine.

The two shells drive the engine differently:
* event-driven (the simulator): jump to the next arrival or to the engine's ``next_event_time``;
* ticked (the live server): ``advance`` and ``snapshot`` every 10 ms of engine time, plus submits.

Arrivals are Poisson at ``load`` x the preset's modeled peak request rate, sizes seeded lognormal
(about 200 tokens in, 250 out). Best of three runs, CPU time of this process. Prints a table; asserts
nothing. Run: ``python benchmarks/engine.py [requests]``.
"""

from __future__ import annotations

import math
import random
import sys
import time
from collections.abc import Callable

from rich.console import Console
from rich.table import Table

from jetscale.engine.api import EngineRequest
from jetscale.engine.presets import modeled_peak, resolve_preset
from jetscale.engine.replica import ReplicaEngine

Driver = Callable[[ReplicaEngine, list[EngineRequest]], int]


def workload(n: int, rate_rps: float, seed: int) -> list[EngineRequest]:
    rng = random.Random(seed)
    t = 0.0
    out = []
    for rid in range(n):
        t += rng.expovariate(rate_rps)
        n_in = min(1024, max(4, round(rng.lognormvariate(math.log(160), 0.7))))
        n_out = min(1024, max(1, round(rng.lognormvariate(math.log(200), 0.7))))
        out.append(EngineRequest(request_id=rid, input_tokens=n_in, output_tokens=n_out, arrival_s=t))
    return out


def event_driven(engine: ReplicaEngine, requests: list[EngineRequest]) -> int:
    """Returns the number of completions."""
    done = 0
    i = 0
    n = len(requests)
    while True:
        arrival = requests[i].arrival_s if i < n else math.inf
        event = engine.next_event_time()
        if event is not None and event <= arrival:
            done += len(engine.advance(event)[1])
        elif i < n:
            engine.submit(requests[i], arrival)
            i += 1
        else:
            return done


def ticked(engine: ReplicaEngine, requests: list[EngineRequest], tick_s: float = 0.01) -> int:
    """Returns the number of ticks."""
    ticks = 0
    i = 0
    n = len(requests)
    while i < n or engine.next_event_time() is not None:
        ticks += 1
        now = ticks * tick_s
        while i < n and requests[i].arrival_s <= now:
            engine.submit(requests[i], requests[i].arrival_s)
            i += 1
        engine.advance(now)
        engine.snapshot(now)
    return ticks


def best_cpu_s(run: Callable[[], int], repeats: int = 3) -> tuple[float, int]:
    best = math.inf
    result = 0
    for _ in range(repeats):
        start = time.process_time()
        result = run()
        best = min(best, time.process_time() - start)
    return best, result


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 50_000
    table = Table(title=f"ReplicaEngine speed: {n:,} Poisson requests, CPU time, best of 3")
    for column in ("preset", "load", "engine time s", "event-driven req/s", "ticked 10 ms: ticks/s", "req/s"):
        table.add_column(column, justify="left" if column == "preset" else "right")
    for preset in ("v5e-8/llama2-7b", "h100/llama3-8b"):
        config = resolve_preset(preset, prefill_backlog_limit=10 * n)
        peak = modeled_peak(config, input_tokens=160, output_tokens=200)
        for load in (0.5, 0.9, 1.5):
            requests = workload(n, load * peak.output_tokens_s / 200, seed=1)
            cpu_e, done = best_cpu_s(lambda: event_driven(ReplicaEngine(config), requests))  # noqa: B023
            assert done == n, (done, n)
            cpu_t, ticks = best_cpu_s(lambda: ticked(ReplicaEngine(config), requests))  # noqa: B023
            table.add_row(
                preset,
                f"{load:.1f}",
                f"{requests[-1].arrival_s:,.0f}",
                f"{n / cpu_e:,.0f}",
                f"{ticks / cpu_t:,.0f}",
                f"{n / cpu_t:,.0f}",
            )
    Console(width=140).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
