"""Local fleet capacity: how many replicas and requests/s the fleet sustains on this machine while every
request's latency stays within 2 % of the engine model, at --speed 1 and 10.

For each speed and replica count N: a fleet of N ``jetscale serve`` replicas (an HPA pinned at N, so the
controller and the scraper run but never rescale) behind the router, loaded through the router by
``jetscale load``'s generator (open-loop Poisson, OpenAI ``/v1/completions``, one JSON answer per request)
at ``--util`` of the fleet's modeled capacity (``modeled_peak`` of the demo's replica shape). All of it
runs on this machine: replicas, router, controller, scraper and generator.

Latency error = (mean client end-to-end latency x speed) / (mean engine latency) - 1, where the engine
latency is the replicas' own ``jetstream_time_per_request`` histogram (model seconds) over exactly the
same requests (scraped before and after the run). The fleet *sustains* a point when that error is within
2 %, no request failed and the generator kept to its schedule. CPU is the busy time of the fleet (this process:
router, controller, scraper; the replicas) and of the generator per wall second of load, in cores (from
/proc: other work on the machine is not counted). Prints a table; asserts nothing.

Run: ``python benchmarks/fleet.py [--speeds 1,10] [--replicas 1,2,4,8] [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from rich.console import Console
from rich.table import Table

from jetscale.engine.presets import modeled_peak, resolve_preset
from jetscale.fleet import Fleet, FleetConfig, ServeCommand
from jetscale.fleet.loadgen import run_generator
from jetscale.fleet.scrape import parse_exposition
from jetscale.hpa.spec import parse_hpa
from jetscale.load.config import parse_options

PRESET, BATCH, INPUT, OUTPUT = "v5e-8/llama2-7b", 8, 128, 512  # the demo's replica shape and requests
TOLERANCE = 0.02


@dataclass(frozen=True)
class Point:
    speed: float
    replicas: int
    wall_rps: float
    model_rps: float
    ok: int
    failed: int
    kept_up: bool
    error: float
    cpu_cores: float
    generator_cpu: float

    @property
    def sustained(self) -> bool:
        return abs(self.error) <= TOLERANCE and self.failed == 0 and self.kept_up


def pinned_hpa(n: int) -> dict[str, object]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "bench"},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "bench"},
            "minReplicas": n,
            "maxReplicas": n,
            "metrics": [{"type": "Pods", "pods": {"metric": {"name": "jetstream_prefill_backlog_size"},
                                                   "target": {"type": "AverageValue", "averageValue": 5}}}],
        },
    }  # fmt: skip


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` so far (from /proc)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


async def request_latency_totals(fleet: Fleet) -> tuple[float, float]:
    """Sum and count of jetstream_time_per_request over every ready replica (model seconds)."""
    total, count = 0.0, 0.0
    async with aiohttp.ClientSession() as http:
        for url in fleet.replicas.ready_urls().values():
            async with http.get(f"{url}/metrics") as response:
                found = parse_exposition(await response.text(), ["jetstream_time_per_request_sum",
                                                                 "jetstream_time_per_request_count"])  # fmt: skip
            total += sum(s.value for s in found.get("jetstream_time_per_request_sum", ()))
            count += sum(s.value for s in found.get("jetstream_time_per_request_count", ()))
    return total, count


async def measure(speed: float, n: int, util: float, seconds: float, work: Path, stream: bool) -> Point:
    shape = resolve_preset(PRESET, decode_slots=BATCH)
    per_replica = modeled_peak(shape, input_tokens=INPUT, output_tokens=OUTPUT).output_tokens_s / OUTPUT
    model_rps = util * n * per_replica
    config = FleetConfig(
        hpa=parse_hpa(pinned_hpa(n)),
        command=ServeCommand(preset=PRESET, speed=speed, batch_size=BATCH, model_load_s=2.0 * speed),
        speed=speed,
        port=0,
        log_dir=work / f"logs-{speed:g}-{n}",
        ready_timeout_wall_s=120.0,
    )
    async with Fleet(config) as fleet:
        load = parse_options(
            target=fleet.url, api="openai", out_dir=str(work / f"load-{speed:g}-{n}"), rate=f"{model_rps * speed:g}",
            duration=f"{seconds:g}s", workload=f"fixed:input={INPUT},output={OUTPUT}", stream=stream, quiet=True,
            html=False, drain="120s",
        )  # fmt: skip
        pids = [os.getpid()] + [v.pid for v in fleet.views() if v.pid is not None]
        before = await request_latency_totals(fleet)
        cpu0 = cpu_seconds(pids)
        result = await run_generator(load, write_reports=False)
        fleet_cpu = cpu_seconds(pids) - cpu0
        after = await request_latency_totals(fleet)
    wall = float(result.info["elapsed_s"])
    cores = (fleet_cpu + float(str(result.info.get("cpu_s", 0.0)))) / wall
    s = result.summary
    model_mean = (after[0] - before[0]) / max(1.0, after[1] - before[1])
    error = (s.e2e.mean_s * speed) / model_mean - 1 if model_mean > 0 else float("nan")
    return Point(
        speed=speed,
        replicas=n,
        wall_rps=s.sent / max(wall, 1e-9),
        model_rps=model_rps,
        ok=s.ok,
        failed=s.failed + s.unfinished,
        kept_up=s.generator.kept_up,
        error=error,
        cpu_cores=cores,
        generator_cpu=float(str(result.info.get("cpu_share", 0.0))),
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speeds", default="1,10")
    parser.add_argument("--replicas", default="1,2,4,8")
    parser.add_argument("--util", type=float, default=0.7, help="load as a fraction of modeled capacity")
    parser.add_argument("--seconds", type=float, default=20.0, help="wall seconds of load per point")
    parser.add_argument("--stream", action="store_true", help="streamed answers (server-sent events)")
    args = parser.parse_args()
    console = Console(width=150)
    points: list[Point] = []
    with tempfile.TemporaryDirectory(prefix="jetscale-bench-fleet-") as tmp:
        for speed in (float(x) for x in args.speeds.split(",")):
            for n in (int(x) for x in args.replicas.split(",")):
                point = await measure(speed, n, args.util, args.seconds, Path(tmp), args.stream)
                points.append(point)
                console.print(f"speed {speed:g}, {n} replicas: {point.wall_rps:.1f} req/s, error {point.error:+.2%}")
    table = Table(title=f"Local fleet on {os.cpu_count()} cores: {PRESET}, batch {BATCH}, {INPUT} in / {OUTPUT} out, "
                        f"load {args.util:.0%} of modeled capacity")  # fmt: skip
    for column in ("speed", "replicas", "req/s (wall)", "req/s (model)", "ok", "failed", "latency vs model",
                   "fleet+gen CPU cores", "generator CPU", "sustained"):  # fmt: skip
        table.add_column(column, justify="right")
    for p in points:
        table.add_row(
            f"{p.speed:g}", str(p.replicas), f"{p.wall_rps:.1f}", f"{p.model_rps:.2f}", str(p.ok), str(p.failed),
            f"{p.error:+.2%}", f"{p.cpu_cores:.2f}", f"{p.generator_cpu:.0%}", "yes" if p.sustained else "no",
        )  # fmt: skip
    console.print(table)
    for speed in sorted({p.speed for p in points}):
        ok = [p for p in points if p.speed == speed and p.sustained]
        best = max(ok, key=lambda p: p.replicas, default=None)
        verdict = (f"{best.replicas} replicas at {best.wall_rps:.1f} req/s wall ({best.model_rps:.2f} model)"
                   if best else "nothing within 2 %")  # fmt: skip
        console.print(f"speed {speed:g}: sustains {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
