"""Driving the fleet with ``jetscale load``'s generator, as one of the fleet's supervised children.

The generator runs in its own process (locust patches its process with gevent), exactly as
``jetscale load`` runs it: a validated ``LoadConfig`` written to ``OUT/config.json``, then
``python -m jetscale.load.runner OUT/config.json``. Started here through ``jetscale.fleet.procs``, it is
in its own process group and dies with the fleet, so a demo stopped by a signal leaves no generator
behind; its raw results are analysed with ``jetscale.load.launch.analyse`` into the usual summary.

``shape_csv`` writes a rate shape given in model time (seconds, requests per model second) as the wall
time CSV the generator reads: at ``speed`` x, t_wall = t / speed and rps_wall = rps x speed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from jetscale.errors import ServingError
from jetscale.fleet import procs
from jetscale.load.config import LoadConfig
from jetscale.load.launch import analyse
from jetscale.load.records import Records
from jetscale.load.runner import ERROR_FILE, RAW_RECORDS, RUN_INFO
from jetscale.load.stats import Summary

__all__ = ["LoadResult", "run_generator", "shape_csv"]


def shape_csv(knots: Sequence[tuple[float, float]], speed: float) -> str:
    """``t,rps`` rows (wall time, wall rate) for knots in model time and model rate."""
    rows = ["t,rps"] + [f"{t / speed:g},{rps * speed:g}" for t, rps in knots]
    return "\n".join(rows) + "\n"


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class LoadResult:
    summary: Summary
    records: Records
    info: dict[str, object]
    out_dir: Path


async def run_generator(config: LoadConfig, *, write_reports: bool = True) -> LoadResult:
    """Run the generator for ``config`` to its end and analyse what it recorded.

    Cancelling the task stops the generator (SIGTERM, then SIGKILL) and raises ``CancelledError``."""
    out = Path(config.out_dir).absolute()
    out.mkdir(parents=True, exist_ok=True)
    for stale in (RAW_RECORDS, RUN_INFO, ERROR_FILE):
        (out / stale).unlink(missing_ok=True)
    config_path = out / "config.json"
    config_path.write_text(config.to_json())
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log = (out / "generator.log").open("ab")
    try:
        proc = await procs.spawn(
            [sys.executable, "-m", "jetscale.load.runner", str(config_path)], env=env, stdout=log, stderr=log
        )
        try:
            status = await procs.wait(proc)
        except asyncio.CancelledError:
            await procs.terminate(proc, 5.0)
            raise
    finally:
        log.close()
    error_path = out / ERROR_FILE
    if error_path.exists():
        error = json.loads(error_path.read_text())
        raise ServingError(f"the load generator failed: {error.get('message')}")
    if status != 0:
        raise ServingError(f"the load generator exited with status {status}; see {out / 'generator.log'}")
    summary, records, info = analyse(config, out)
    if write_reports:
        from jetscale.load.report import write_outputs

        write_outputs(config, summary, records, info, out)
    return LoadResult(summary=summary, records=records, info=info, out_dir=out)
