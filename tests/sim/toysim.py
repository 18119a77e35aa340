"""One toy replica whose timeline can be worked out by hand, for the simulator's tests of admission and
abandonment. The chip and model are those of tests/toy_replica.py (efficiencies 1, no overheads):
a prompt of up to 16 tokens prefills in 16 ms, a decode step over contexts totalling C tokens takes
10 + 0.02 C ms, and a one-token request ends at its prefill's end without taking a decode slot."""

from __future__ import annotations

import numpy as np
from toy_replica import CHIP, EXACT, MODEL

from jetscale.engine.presets import ReplicaConfig
from jetscale.load.trace import Trace
from jetscale.sim.scenario import Scenario, TraceTraffic, Traffic

__all__ = ["PREFILL_S", "burst", "one_replica", "toy"]

PREFILL_S = 0.016  # a prompt of up to 16 tokens


def toy(**overrides: object) -> ReplicaConfig:
    """The toy replica: 1 decode slot, prompts up to 32 tokens, 64 tokens per slot; ``overrides`` on top."""
    fields: dict[str, object] = {
        "accelerator": CHIP,
        "model": MODEL,
        "decode_slots": 1,
        "max_prefill_length": 32,
        "max_target_length": 64,
        "efficiency": EXACT,
        "model_load_s": 0.0,
        "name": "toy",
    }
    fields.update(overrides)
    return ReplicaConfig(**fields)  # type: ignore[arg-type]


def burst(n: int, *, at: float = 0.0, input_tokens: int = 16, output_tokens: int = 1) -> TraceTraffic:
    """``n`` requests arriving together at ``at`` (ids 0..n-1, prefilled in that order)."""
    return TraceTraffic(
        trace=Trace(
            times_s=np.full(n, at),
            input_tokens=np.full(n, input_tokens, dtype=np.int64),
            output_tokens=np.full(n, output_tokens, dtype=np.int64),
        ),
        name="burst",
    )


def one_replica(traffic: Traffic, replica: ReplicaConfig | None = None, **fields: object) -> Scenario:
    """A fixed fleet of one ready toy replica (no HPA) for 1 s, every request recorded."""
    kwargs: dict[str, object] = {"duration_s": 1.0, "initial_replicas": 1, "records": True, **fields}
    return Scenario(replica=replica or toy(), traffic=traffic, **kwargs)  # type: ignore[arg-type]
