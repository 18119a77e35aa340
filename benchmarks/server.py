"""Live server at full batch: achieved vs modeled output tokens/s, TTFT/TPOT vs model, CPU, per --speed.

For each speed, starts ``jetscale serve`` (no model load, no gRPC) as a subprocess and keeps it at full
batch with a closed loop of ``2 x decode_slots`` clients on JetStream's ``/v1/generate`` (one JSON
answer per request), every request ``modeled_peak``'s default shape (half the prefill length in, half
the rest of the cache out), so the prefill backlog never empties, as ``modeled_peak`` assumes (a whole
batch waits while the other decodes, so even at high speed resubmissions never leave the chips idle).

At full batch the replica runs in cycles: the backlog's prefills back to back, then ``output - 1``
decode steps for the whole batch, which ends together. Achieved tokens/s is measured over whole cycles,
from the start of one burst of completions to the start of a later one, in engine seconds (wall x
speed), against ``modeled_peak``. TTFT and TPOT are the server's own histograms (JetStream's
definitions: TTFT is the prefill, TPOT is (end - first token) / output tokens) over the same stretch;
their model is the same engine driven on a virtual clock by the same closed loop (clients resubmit
instantly). CPU is the server process's user + system time per wall second. Prints a table; asserts
nothing. Run: ``python benchmarks/server.py [--speeds 1,10] [--cycles 3]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from rich.console import Console
from rich.table import Table

from jetscale.engine.api import EngineRequest
from jetscale.engine.presets import ReplicaConfig, modeled_peak, resolve_preset
from jetscale.engine.replica import ReplicaEngine

LAUNCH = ["-c", "import sys; from jetscale.cli import main; main(sys.argv[1:])"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Result:
    speed: float
    cycles: int
    achieved_tokens_s: float
    modeled_tokens_s: float
    ttft_s: float
    ttft_model_s: float
    tpot_s: float
    tpot_model_s: float
    server_cpu: float  # CPU seconds per wall second
    requests: int


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


async def histogram_means(http: aiohttp.ClientSession, base: str) -> dict[str, tuple[float, float]]:
    async with http.get(f"{base}/metrics") as resp:
        text = await resp.text()
    out = {}
    for family in text_string_to_metric_families(text):
        if family.type == "histogram":
            total = next(s.value for s in family.samples if s.name.endswith("_sum"))
            count = next(s.value for s in family.samples if s.name.endswith("_count"))
            out[family.name] = (total, count)
    return out


def bursts(times: list[float], gap_s: float) -> list[int]:
    """Indices in sorted ``times`` where a burst of completions starts."""
    return [0] + [i for i in range(1, len(times)) if times[i] - times[i - 1] > gap_s]


def virtual_means(
    config: ReplicaConfig, n_in: int, n_out: int, *, clients: int, cycles: int, gap_s: float
) -> tuple[float, float]:
    """(TTFT, TPOT) means of the engine on a virtual clock, closed loop, after the first cycle."""
    engine = ReplicaEngine(config)
    next_id = 0

    def submit(t: float) -> None:
        nonlocal next_id
        engine.submit(EngineRequest(request_id=next_id, input_tokens=n_in, output_tokens=n_out, arrival_s=t), t)
        next_id += 1

    for _ in range(clients):
        submit(0.0)
    ttft, tpot, bursts_seen, last_end = [], [], 0, -1.0
    while bursts_seen <= cycles + 1:
        t = engine.next_event_time()
        assert t is not None
        for c in engine.advance(t)[1]:
            if c.end_s > last_end + gap_s:
                bursts_seen += 1
            last_end = c.end_s
            if bursts_seen > 1:
                ttft.append(c.first_token_s - c.prefill_start_s)
                tpot.append((c.end_s - c.first_token_s) / c.output_tokens)
            submit(t)
    return sum(ttft) / len(ttft), sum(tpot) / len(tpot)


async def run(preset: str, speed: float, cycles: int) -> Result:
    config = resolve_preset(preset, model_load_s=0.0)
    peak = modeled_peak(config)
    slots, n_in, n_out = config.decode_slots, peak.input_tokens, peak.output_tokens
    cycle_s = (n_out - 1) * peak.decode_step_s + slots * peak.prefill_s  # engine seconds
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *LAUNCH, "serve", "--preset", preset, "--port", "0", "--grpc-port", "-1",
        "--speed", str(speed), "--model-load-s", "0", "--server-id", "bench",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.stdout is not None
    line = (await proc.stdout.readline()).decode()
    base = "http://127.0.0.1:" + line.split("http=127.0.0.1:")[1].split()[0]
    body = {"max_tokens": n_out, "token_content": {"token_ids": [3 + k % 997 for k in range(n_in)]}}
    done: list[float] = []
    stop = asyncio.Event()
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            for _ in range(500):
                try:
                    async with http.get(f"{base}/healthz/ready") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    pass
                await asyncio.sleep(0.01)

            async def client() -> None:
                while not stop.is_set():
                    headers = {"Accept": "application/json"}
                    async with http.post(f"{base}/v1/generate", json=body, headers=headers) as resp:
                        await resp.read()
                        if resp.status == 200:
                            done.append(time.monotonic())
                        else:
                            await asyncio.sleep(0.01)

            clients = [asyncio.create_task(client()) for _ in range(2 * slots)]
            wall_cycle = cycle_s / speed
            await asyncio.sleep(1.5 * wall_cycle)  # the first burst (ramp-up) has ended
            before, cpu0, t0 = await histogram_means(http, base), cpu_seconds(proc.pid), time.monotonic()
            await asyncio.sleep(cycles * wall_cycle + 0.6 * wall_cycle)
            after, cpu1, t1 = await histogram_means(http, base), cpu_seconds(proc.pid), time.monotonic()
            stop.set()
            await asyncio.gather(*clients)
    finally:
        proc.terminate()
        await proc.wait()
    window = [t for t in sorted(done) if t0 <= t <= t1]
    starts = bursts(window, gap_s=0.25 * wall_cycle)
    first, last = starts[0], starts[-1]
    measured = len(starts) - 1
    tokens = (last - first) * n_out
    achieved = tokens / ((window[last] - window[first]) * speed)

    model_ttft, model_tpot = virtual_means(config, n_in, n_out, clients=2 * slots, cycles=cycles, gap_s=0.25 * cycle_s)

    def mean(name: str) -> float:
        total = after[name][0] - before[name][0]
        count = after[name][1] - before[name][1]
        return total / count if count else float("nan")

    return Result(
        speed=speed,
        cycles=measured,
        achieved_tokens_s=achieved,
        modeled_tokens_s=peak.output_tokens_s,
        ttft_s=mean("jetstream_time_to_first_token"),
        ttft_model_s=model_ttft,
        tpot_s=mean("jetstream_time_per_output_token"),
        tpot_model_s=model_tpot,
        server_cpu=(cpu1 - cpu0) / (t1 - t0),
        requests=last - first,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--preset", default="v5e-8/llama2-7b")
    parser.add_argument("--speeds", default="1,10", help="comma-separated --speed values")
    parser.add_argument("--cycles", type=int, default=3, help="full-batch cycles to measure per speed")
    args = parser.parse_args()
    results = [asyncio.run(run(args.preset, float(s), args.cycles)) for s in args.speeds.split(",")]
    table = Table(title=f"jetscale serve --preset {args.preset}, full batch (engine seconds)")
    for column in ("speed", "cycles", "requests", "achieved tok/s", "modeled tok/s", "achieved/modeled",
                   "TTFT ms (virtual)", "TPOT ms (virtual)", "server CPU"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            f"{r.speed:g}",
            str(r.cycles),
            str(r.requests),
            f"{r.achieved_tokens_s:,.0f}",
            f"{r.modeled_tokens_s:,.0f}",
            f"{r.achieved_tokens_s / r.modeled_tokens_s:.3f}",
            f"{1000 * r.ttft_s:.1f} ({1000 * r.ttft_model_s:.1f})",
            f"{1000 * r.tpot_s:.1f} ({1000 * r.tpot_model_s:.1f})",
            f"{100 * r.server_cpu:.1f}%",
        )
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
