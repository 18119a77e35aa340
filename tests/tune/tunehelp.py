"""Small tuning setups shared by the tuner's tests: fixed-size requests on an 8- or 16-slot replica."""

from __future__ import annotations

from jetscale.engine.presets import ReplicaConfig, modeled_peak, resolve_preset
from jetscale.load.arrivals import parse_shape
from jetscale.load.stats import parse_slos
from jetscale.load.workload import parse_workload
from jetscale.sim.scenario import Delay, OpenTraffic, Startup
from jetscale.tune.candidates import Candidate
from jetscale.tune.evaluate import CandidateScore, RunScore, Setup

PRESET = "v5e-8/llama2-7b"
FAST_STARTUP = Startup(provision=Delay(), pull=Delay(low_s=5.0), load=Delay(low_s=10.0), ready=Delay())
IN_TOKENS, OUT_TOKENS = 100, 100


def replica(per_device: int) -> ReplicaConfig:
    return resolve_preset(PRESET, decode_slots=8 * per_device)


def capacity_rps(config: ReplicaConfig) -> float:
    """Requests per second one replica serves at a full batch of the fixed-size requests (the engine model)."""
    peak = modeled_peak(config, input_tokens=IN_TOKENS, output_tokens=OUT_TOKENS)
    return peak.output_tokens_s / OUT_TOKENS


def setup(rate_rps: float, *, duration_s: float, slo: str = "e2e_p99=3s", shape: str = "constant") -> Setup:
    return Setup(
        traffic=OpenTraffic(
            shape=parse_shape(shape, rate_rps=rate_rps, duration_s=duration_s),
            workload=parse_workload(f"fixed:input={IN_TOKENS},output={OUT_TOKENS}"),
            seed=1,
        ),
        duration_s=duration_s,
        slos=parse_slos(slo),
        startup=FAST_STARTUP,
        seed=1,
    )


def run_score(*, cost: float, attainment: float, flaps: int = 0) -> RunScore:
    """A made-up run with the given numbers (for tests of the tuner's logic, not of the simulator)."""
    return RunScore(
        replica_hours=cost,
        attainment=attainment,
        minutes=((0, 0),),
        observed_s=(0.0,),
        arrived=1,
        rejected=0,
        scale_ups=flaps,
        scale_downs=0,
        max_replicas=1,
        final_replicas=1,
        mean_ready=1.0,
        hbm_low=0.0,
        hbm_high=0.0,
        series=((0.0, 1),),
    )


def score(
    candidate: Candidate, *, cost: float, attainment: float, required: float = 0.9, flaps: int = 0
) -> CandidateScore:
    return CandidateScore(
        candidate=candidate,
        runs=(run_score(cost=cost, attainment=attainment, flaps=flaps),),
        compression=1,
        required=required,
    )
