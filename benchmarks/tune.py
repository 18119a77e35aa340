"""Tuner speed: the default ``jetscale tune`` (three signals, 24 h of diurnal traffic) and where its time goes.

Scenario: ``jetscale tune``'s defaults: v5e-8/llama2-7b, sharegpt-like sizes, a diurnal day peaking at 20
requests/s (about 1 M requests), SLO ttft_p95=2s,e2e_p99=30s at attainment 0.99, three seeds, every
signal, the oracle, ``--jobs`` workers (default 2, the budget being two cores). Prints one table: the
stages with their simulations, simulated requests and the wall time, then the recommendation.
The issue's budget is five minutes on two cores. Run: ``python benchmarks/tune.py [--jobs N] [--hours H]``.
"""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console
from rich.table import Table


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--rate", type=float, default=20.0)
    args = parser.parse_args(argv)

    from jetscale.engine.presets import resolve_preset
    from jetscale.load.arrivals import parse_shape
    from jetscale.load.stats import parse_slos
    from jetscale.load.workload import parse_workload
    from jetscale.sim.scenario import OpenTraffic
    from jetscale.tune.evaluate import Setup
    from jetscale.tune.tuner import TuneConfig, tune

    duration = args.hours * 3600.0
    setup = Setup(
        traffic=OpenTraffic(
            shape=parse_shape("diurnal", rate_rps=args.rate, duration_s=duration),
            workload=parse_workload("sharegpt-like"),
        ),
        duration_s=duration,
        slos=parse_slos("ttft_p95=2s,e2e_p99=30s"),
    )
    config = TuneConfig(replica=resolve_preset("v5e-8/llama2-7b"), setup=setup, jobs=args.jobs)
    marks: list[tuple[str, float]] = []

    def progress(stage: str, done: int, total: int) -> None:
        kind = stage.split(":")[0]
        if not marks or marks[-1][0] != kind:
            marks.append((kind, time.perf_counter()))

    started = time.perf_counter()
    result = tune(config, progress=progress)
    ended = time.perf_counter()
    table = Table(title=f"jetscale tune: {args.hours:g} h diurnal, peak {args.rate:g} req/s, {args.jobs} workers")
    for column in ("stage", "simulations", "requests simulated", "wall s"):
        table.add_column(column, justify="left" if column == "stage" else "right")
    search = [r for s in result.scores for r in s.runs]
    full = [r for s in result.finalists for r in s.runs]
    spans = {kind: (t, (marks[i + 1][1] if i + 1 < len(marks) else ended)) for i, (kind, t) in enumerate(marks)}
    for kind, runs in (("search", search), ("confirm on the full traffic", full)):
        start, end = spans.get(kind, (0.0, 0.0))
        table.add_row(kind, str(len(runs)), f"{sum(r.arrived for r in runs):,}", f"{end - start:.1f}")
    table.add_row("total (with batch, oracle, report-free)", str(result.simulations), "", f"{ended - started:.1f}")
    console = Console(width=140)
    console.print(table)
    w = result.winner
    console.print(
        f"search compressed {result.compression}x; winner {w.candidate.label}: {w.cost:.1f} replica-h, attainment "
        f"{w.attainment:.3f}; GKE sample {result.gke.cost:.1f} replica-h; oracle "
        f"{result.oracle.replica_hours if result.oracle else float('nan'):.1f} replica-h"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
