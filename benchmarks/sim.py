"""Simulator speed: simulated requests per second of wall time, and peak memory, for a day of traffic.

Scenario: 24 h of diurnal traffic (trough at 0.2 x peak, one period per day) at a mean of 50 requests/s,
about 4.3 M requests, sharegpt-like sizes, replicas of v5e-8/llama2-7b, examples/hpa/backlog.yaml in the
loop. Each configuration runs in its own process, so that its peak resident memory is its own:

* round-robin (the default: engine events are scheduled only for draining replicas);
* least-outstanding (every replica's engine events are scheduled: the router needs current counts);
* round-robin with --records (one row kept per request);
* a fixed fleet of 16 replicas without an HPA, and the same arrivals submitted round-robin to 16
  ReplicaEngines by a bare loop (no router, scrapes, statistics): the engine's own cost, the floor
  under the simulator; the difference between these two rows is the simulator's overhead.

``--client-timeout S`` gives the simulated runs clients that give up after S seconds (``jetscale simulate
--client-timeout``): the cost of a deadline per request.

Prints a table; asserts nothing. Run:
``python benchmarks/sim.py [--hours H] [--mean-rps R] [--client-timeout S] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import resource
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
BASE = 0.2  # diurnal trough / peak: mean = peak x (1 + BASE) / 2
CONFIGS = {
    "round-robin": {"router": "round-robin", "records": False},
    "least-outstanding": {"router": "least-outstanding", "records": False},
    "round-robin, --records": {"router": "round-robin", "records": True},
    "fixed fleet of 16, no HPA": {"router": "round-robin", "records": False, "fixed": 16},
    "engine alone, 16 replicas": {"engine_only": True},
}


def _scenario(  # type: ignore[no-untyped-def]
    hours: float, mean_rps: float, router: str, records: bool, fixed: int = 0, timeout: float | None = None
):
    from jetscale.cli.hpa import load_hpa_file
    from jetscale.engine.presets import resolve_preset
    from jetscale.load.arrivals import parse_shape
    from jetscale.load.stats import parse_slos
    from jetscale.load.workload import parse_workload
    from jetscale.sim.scenario import OpenTraffic, Scenario

    duration = hours * 3600.0
    peak = mean_rps * 2 / (1 + BASE)
    shape = parse_shape(f"diurnal:base={BASE}", rate_rps=peak, duration_s=duration)
    return Scenario(
        replica=resolve_preset("v5e-8/llama2-7b"),
        traffic=OpenTraffic(shape=shape, workload=parse_workload("sharegpt-like"), seed=1),
        duration_s=duration,
        hpa=None if fixed else load_hpa_file(ROOT / "examples" / "hpa" / "backlog.yaml"),
        initial_replicas=fixed or None,
        router=router,
        slos=parse_slos("ttft_p95=2s,e2e_p99=30s"),
        records=records,
        client_timeout_s=timeout,
        seed=1,
    )


def _engine_only(hours: float, mean_rps: float, replicas: int = 16) -> dict[str, float]:
    from jetscale.engine.replica import ReplicaEngine
    from jetscale.sim.fleet import make_request

    scenario = _scenario(hours, mean_rps, "round-robin", False)
    wall, cpu = time.perf_counter(), time.process_time()
    engines = [ReplicaEngine(scenario.replica) for _ in range(replicas)]
    n = 0
    collect_at = 15.0  # advance every engine each 15 s, as the simulator's scrapes do
    for chunk in scenario.traffic.chunks(scenario.duration_s):  # type: ignore[union-attr]
        times, inputs, outputs = chunk.times_s.tolist(), chunk.input_tokens.tolist(), chunk.output_tokens.tolist()
        for j in range(len(times)):
            t = times[j]
            if t >= collect_at:
                for engine in engines:
                    engine.advance(collect_at)
                collect_at += 15.0
            engines[n % replicas].submit(make_request(n, inputs[j], outputs[j], t), t)
            n += 1
    for engine in engines:
        engine.advance(scenario.duration_s + 600.0)
    return {"requests": n, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu}


def run_one(name: str, hours: float, mean_rps: float, profile: bool, timeout: float | None = None) -> dict[str, float]:
    config = CONFIGS[name]
    if config.get("engine_only"):
        out = _engine_only(hours, mean_rps)
    else:
        from jetscale.sim.simulator import simulate

        scenario = _scenario(
            hours, mean_rps, str(config["router"]), bool(config["records"]), int(config.get("fixed", 0)), timeout
        )
        profiler = cProfile.Profile() if profile else None
        wall, cpu = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        result = simulate(scenario)
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(15)
        out = {
            "requests": result.counts.arrived,
            "wall_s": time.perf_counter() - wall,
            "cpu_s": time.process_time() - cpu,
            "events": result.events_processed,
            "replica_hours": result.replica_hours,
            "ttft_p99_s": result.ttft.p99_s,
            "scale_events": len(result.timeline.events),
            "abandoned": result.counts.abandoned,
        }
    out["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--mean-rps", type=float, default=50.0)
    parser.add_argument("--profile", action="store_true", help="cProfile the round-robin run (slower)")
    parser.add_argument("--client-timeout", type=float, default=None, help="clients give up after S seconds")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args.hours, args.mean_rps, args.profile, args.client_timeout)))
        return 0
    timeout = f", --client-timeout {args.client_timeout:g}s" if args.client_timeout is not None else ""
    table = Table(
        title=f"jetscale simulate: {args.hours:g} h diurnal at {args.mean_rps:g} req/s mean, "
        f"v5e-8/llama2-7b, backlog.yaml HPA{timeout}, one process each"
    )
    for column in ("configuration", "requests", "wall s", "simulated req/s (wall)", "req/s (CPU)", "peak RSS MiB",
                   "events", "replica-h", "TTFT p99 s"):  # fmt: skip
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for name in CONFIGS:
        command = [
            sys.executable,
            __file__,
            "--one",
            name,
            "--hours",
            str(args.hours),
            "--mean-rps",
            str(args.mean_rps),
        ]
        if args.profile and name == "round-robin":
            command.append("--profile")
        if args.client_timeout is not None:
            command += ["--client-timeout", str(args.client_timeout)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        if done.stderr:
            sys.stderr.write(done.stderr)
        r = json.loads(done.stdout.strip().splitlines()[-1])
        table.add_row(
            name,
            f"{r['requests']:,.0f}",
            f"{r['wall_s']:.1f}",
            f"{r['requests'] / r['wall_s']:,.0f}",
            f"{r['requests'] / r['cpu_s']:,.0f}",
            f"{r['peak_rss_mib']:,.0f}",
            f"{r['events']:,.0f}" if "events" in r else "-",
            f"{r['replica_hours']:,.1f}" if "replica_hours" in r else "-",
            f"{r['ttft_p99_s']:.2f}" if "ttft_p99_s" in r else "-",
        )
    Console(width=160).print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
