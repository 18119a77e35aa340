"""``jetscale tune --verify``: the recommended HPA replayed on the local fleet (``jetscale up``'s replica
processes, router and HPA loop, sped up) and in the simulator, on the same plan; how well they agree.

**The plan** (a ``jetscale.fleet.demo.DemoPlan``): the tuned traffic's request rate, sampled at
``KNOTS`` points and squeezed into ``model_s`` model seconds (as the coarse pass squeezes it), given as
load in replicas' worth of modeled capacity; request sizes uniform around the traffic's means; the tuned
batch size. The speed is chosen so that the load generator sends at most ``MAX_WALL_RPS`` requests per
wall second (about what two cores carry next to the replicas, benchmarks/fleet.py), at most
``MAX_SPEED``. A new replica becomes ready after the tuned start-up's mean (as its model load), plus the
fleet's process start (``SPAWN_WALL_S`` wall seconds) in the simulator.

**Agreement**, over the plan's model seconds with the live clock shifted to start with the load (the
fleet's clock starts before the generator): ready replicas every sync period (mean and largest absolute
difference), scale-ups and scale-downs, replica-seconds, and the E2E p50 and p95 (model seconds). Written to
``OUT/verify/verify.json`` and ``verify.png``; the live run's own report is in ``OUT/verify/live/``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rich.console import Console

from jetscale.engine.presets import PRESETS
from jetscale.errors import ConfigError
from jetscale.load.arrivals import RateShape, ShapeKind
from jetscale.load.workload import parse_workload
from jetscale.report.timeline import Timeline
from jetscale.sim.scenario import Delay, OpenTraffic, Scenario, Startup
from jetscale.sim.simulator import simulate
from jetscale.tune.traffic import TunerTraffic, mean_sizes
from jetscale.tune.tuner import TuneConfig, TuneResult

__all__ = ["Agreement", "check_available", "verify_winner"]

KNOTS = 40
MAX_WALL_RPS = 80.0
MAX_SPEED = 10.0
MIN_SPEED = 0.5
SPAWN_WALL_S = 1.5  # from spawning ``jetscale serve`` to its listening line, on two cores


def _rates(traffic: TunerTraffic, duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The request rate at ``KNOTS`` + 1 times over the traffic."""
    t = np.linspace(0.0, duration_s, KNOTS + 1)
    if isinstance(traffic, OpenTraffic):
        return t, np.asarray(traffic.shape.rate_at(t), dtype=float)
    counts, _ = np.histogram(traffic.trace.times_s, bins=t)
    per_s = counts / (duration_s / KNOTS)
    return t, np.concatenate([per_s, per_s[-1:]])


def _speed(peak_rps: float, max_speed: float) -> float:
    return min(max_speed, MAX_WALL_RPS / peak_rps) if peak_rps > 0 else max_speed


def check_available(config: TuneConfig) -> None:
    """Refuse ``--verify`` before the search when the fleet cannot replay this tuning."""
    if config.replica.name not in PRESETS:
        raise ConfigError(
            f"'--verify' needs a preset replica (jetscale serve runs presets) (got {config.replica.name or 'a file'!r})"
        )
    _, rates = _rates(config.setup.traffic, config.setup.duration_s)
    peak = float(rates.max())
    if _speed(peak, MAX_SPEED) < MIN_SPEED:
        raise ConfigError(
            f"'--verify' cannot replay a peak of {peak:.0f} requests/s on the local fleet "
            f"(two cores carry about {MAX_WALL_RPS * MIN_SPEED:.0f}/s at speed {MIN_SPEED:g})"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Agreement:
    speed: float
    model_s: float
    mean_abs_replicas: float  # mean |live - sim| of ready replicas over the syncs
    max_abs_replicas: int
    scale_events: tuple[tuple[int, int], tuple[int, int]]  # (ups, downs): live, sim
    replica_seconds: tuple[float, float]  # live, sim
    e2e_p50_s: tuple[float, float]
    e2e_p95_s: tuple[float, float]
    failed_requests: int

    def describe(self) -> str:
        (lu, ld), (su, sd) = self.scale_events
        return (
            f"verify (local fleet at {self.speed:.2g}x vs simulator, {self.model_s:.0f} model s): ready replicas "
            f"differ by {self.mean_abs_replicas:.2f} on average (at most {self.max_abs_replicas}); scale-ups/downs "
            f"live {lu}/{ld}, sim {su}/{sd}; replica-seconds live {self.replica_seconds[0]:.0f}, sim "
            f"{self.replica_seconds[1]:.0f}; E2E p50 live {self.e2e_p50_s[0]:.2f}s, sim {self.e2e_p50_s[1]:.2f}s, "
            f"p95 live {self.e2e_p95_s[0]:.2f}s, sim {self.e2e_p95_s[1]:.2f}s; {self.failed_requests} failed requests"
        )


def _ready_at(timeline: Timeline, times: np.ndarray) -> np.ndarray:
    t = np.asarray(timeline.column("t_s"), dtype=float)
    ready = np.asarray(timeline.column("replicas_ready"), dtype=float)
    if not len(t):
        return np.zeros(len(times))
    index = np.clip(np.searchsorted(t, times, side="right") - 1, 0, len(t) - 1)
    return ready[index]


def _replica_seconds(timeline: Timeline, end_s: float) -> float:
    """Replicas running (ready or starting) integrated over [0, end_s]."""
    total = 0.0
    for a, b in itertools.pairwise(timeline.samples):
        lo, hi = max(a.t_s, 0.0), min(b.t_s, end_s)
        if hi > lo:
            total += (a.replicas_ready + a.replicas_starting) * (hi - lo)
    return total


def _aligned(timeline: Timeline, first_rps: float) -> Timeline:
    """The live timeline with t = 0 when the load began. The fleet's clock starts with the fleet, and the
    load generator some seconds later; the first sample that saw requests tells when: its rate over the
    window before it, against the plan's first rate, is the share of that window the load was on."""
    samples = timeline.samples
    first = next((i for i, s in enumerate(samples) if s.request_rate_rps > 0), None)
    if first is None:
        return timeline
    t1 = samples[first].t_s
    t0 = samples[first - 1].t_s if first > 0 else 0.0
    share = min(1.0, samples[first].request_rate_rps / first_rps) if first_rps > 0 else 1.0
    offset = t1 - share * (t1 - t0)
    return Timeline(
        samples=[replace(s, t_s=s.t_s - offset) for s in samples],
        events=[replace(e, t_s=e.t_s - offset) for e in timeline.events],
        targets=dict(timeline.targets),
        title=timeline.title,
    )


def _events(timeline: Timeline, end_s: float) -> tuple[int, int]:
    """Scale-ups and scale-downs within [0, end_s]."""
    events = [e for e in timeline.events if 0 <= e.t_s <= end_s]
    ups = sum(1 for e in events if e.to_replicas > e.from_replicas)
    return ups, len(events) - ups


def verify_winner(
    result: TuneResult,
    out_dir: Path,
    *,
    console: Console,
    hpa_path: Path,
    model_s: float = 900.0,
    max_speed: float = MAX_SPEED,
) -> Agreement:
    """Replay the winner (its manifest at ``hpa_path``) on the fleet and in the simulator; compare."""
    from jetscale.fleet.demo import DemoPlan, run_demo

    cfg, setup = result.config, result.config.setup
    times, rates = _rates(setup.traffic, setup.duration_s)
    squeeze = max(1.0, setup.duration_s / model_s)
    mean_in, mean_out = mean_sizes(setup.traffic)
    replica = result.replica
    n_in = max(2, min(round(mean_in), replica.max_prefill_length))
    n_out = max(2, min(round(mean_out), replica.max_target_length - n_in))
    speed = _speed(float(rates.max()), max_speed)
    startup_s = setup.startup.mean_s(replica)
    base = DemoPlan(
        hpa_path=hpa_path,
        preset=replica.name,
        batch_size=replica.decode_slots,
        input_tokens=(max(1, n_in // 2), n_in + n_in // 2),
        output_tokens=(max(2, n_out // 2), n_out + n_out // 2),
        speed=speed,
        model_load_s=startup_s,
        sync_period_s=setup.controller.sync_period_s,
        stream=False,
        seed=setup.seed,
        title="jetscale tune --verify",
    )
    per_replica = base.replica_rps()
    load = tuple((float(t) / squeeze, float(r) / per_replica) for t, r in zip(times, rates, strict=True))
    plan = replace(base, load=load)
    demo = asyncio.run(run_demo(plan, out_dir / "live", console=console, live=False))
    live = _aligned(demo.timeline, plan.rate_knots()[0][1])
    scenario = Scenario(
        replica=replica,
        traffic=OpenTraffic(
            shape=RateShape(kind=ShapeKind.CSV, knots=tuple(plan.rate_knots())),
            workload=parse_workload(plan.workload),
            seed=plan.seed,
        ),
        duration_s=plan.duration_s,
        hpa=cfg.hpa(result.winner.candidate),
        controller=setup.controller,
        startup=Startup(
            provision=Delay(), pull=Delay(), load=Delay(low_s=startup_s), ready=Delay(low_s=SPAWN_WALL_S * speed)
        ),
        slos=setup.slos,
        seed=setup.seed,
        name="verify (simulator)",
    )
    sim = simulate(scenario)
    grid = np.arange(0.0, plan.duration_s, setup.controller.sync_period_s)
    diff = np.abs(_ready_at(live, grid) - _ready_at(sim.timeline, grid))
    summary = demo.load.summary if demo.load is not None else None
    agreement = Agreement(
        speed=speed,
        model_s=plan.duration_s,
        mean_abs_replicas=float(diff.mean()) if len(diff) else math.nan,
        max_abs_replicas=int(diff.max()) if len(diff) else 0,
        scale_events=(_events(live, plan.duration_s), _events(sim.timeline, plan.duration_s)),
        replica_seconds=(_replica_seconds(live, plan.duration_s), _replica_seconds(sim.timeline, plan.duration_s)),
        e2e_p50_s=(summary.e2e.p50_s * speed if summary else math.nan, sim.e2e.p50_s),
        e2e_p95_s=(summary.e2e.p95_s * speed if summary else math.nan, sim.e2e.p95_s),
        failed_requests=demo.failed_requests,
    )
    _write(agreement, live, sim.timeline, out_dir)
    return agreement


def _write(agreement: Agreement, live: Timeline, sim: Timeline, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    doc = {f: getattr(agreement, f) for f in agreement.__dataclass_fields__}
    doc["summary"] = agreement.describe()
    (out_dir / "verify.json").write_text(json.dumps(doc, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    fig, ax = plt.subplots(figsize=(10, 3.5))
    for timeline, label, color in ((live, "local fleet", "tab:red"), (sim, "simulator", "tab:blue")):
        ax.step(timeline.column("t_s"), timeline.column("replicas_ready"), where="post", label=label, color=color)
    ax.set_xlabel("model time (s)")
    ax.set_ylabel("ready replicas")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "verify.png", dpi=90)
    plt.close(fig)
