"""Step one of the guide: the per-device batch size that fills HBM under peak load without running out
of memory, then checked against the latency the SLO allows.

**Fits.** MaxText allocates every slot's KV cache up front (``max_target_length`` tokens per slot), so
the largest batch is the one whose cache fits next to the weights and the runtime reserve:
``slots = (HBM - weights - reserve) // (max_target_length x KV bytes per token)``, rounded down to a
whole per-device batch (slots = per-device batch x chips). ``ReplicaConfig`` refuses one more.

**Latency.** A larger batch serves more per replica (cheaper) but makes every decode step longer. At a
full batch, one replica runs a closed loop of as many users as slots, each sending again as soon as its
answer ends: every slot busy, no queue. If a SLO's percentile is missed there, no autoscaler can help (a
replica is never busier than that without a queue, and a queue only adds), so the batch is lowered: the
largest per-device batch that meets every SLO is found with the tuner's search (``search.batch_grid``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from jetscale.engine.presets import ReplicaConfig
from jetscale.errors import ConfigError
from jetscale.load.arrivals import ClosedLoop
from jetscale.load.stats import Slo
from jetscale.sim.scenario import ClosedTraffic, Scenario
from jetscale.sim.simulator import simulate
from jetscale.tune.search import SearchState, batch_grid, best_index, next_probe, record
from jetscale.tune.traffic import TunerTraffic, size_workload

__all__ = [
    "BatchCheck",
    "BatchChoice",
    "BatchMode",
    "BatchResult",
    "choose_batch",
    "full_batch_check",
    "max_per_device_batch",
    "parse_batch",
    "with_batch",
]


class BatchMode(StrEnum):
    AUTO = "auto"  # the largest that fits, lowered until its latency meets the SLO
    PRESET = "preset"  # keep the replica's own
    FIXED = "fixed"  # the per-device batch given


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchChoice:
    mode: BatchMode = BatchMode.AUTO
    per_device: int | None = None  # FIXED only

    def __post_init__(self) -> None:
        if (self.mode is BatchMode.FIXED) != (self.per_device is not None):
            raise ConfigError(f"'per_device' must be given exactly for a fixed batch (got {self.per_device!r})")
        if self.per_device is not None and self.per_device < 1:
            raise ConfigError(f"'--batch-size' must be >= 1 per device (got {self.per_device})")


def parse_batch(text: str) -> BatchChoice:
    """``auto``, ``preset`` or a per-device batch size."""
    raw = text.strip()
    if raw in (BatchMode.AUTO, BatchMode.PRESET):
        return BatchChoice(mode=BatchMode(raw))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"'--batch-size' must be auto, preset or a per-device batch size (got {text!r})") from None
    return BatchChoice(mode=BatchMode.FIXED, per_device=value)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchCheck:
    """One full-batch run: per SLO, the observed percentile (s) and whether it met the target."""

    per_device: int
    observed_s: tuple[float, ...]
    met: bool
    detail: str = ""  # each SLO: observed percentile, met or missed


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    per_device: int
    decode_slots: int
    max_per_device: int  # the largest that fits in HBM
    checks: tuple[BatchCheck, ...]
    reason: str


def max_per_device_batch(config: ReplicaConfig) -> int:
    """The largest per-device batch whose KV cache fits in HBM (0: not even one)."""
    free = config.hbm_total_bytes - config.weight_bytes - config.reserve_bytes
    per_slot = config.max_target_length * config.model.kv_bytes_per_token
    return max(0, free // per_slot) // config.accelerator.chips


def with_batch(config: ReplicaConfig, per_device: int) -> ReplicaConfig:
    return dataclasses.replace(config, decode_slots=per_device * config.accelerator.chips)


def full_batch_check(
    config: ReplicaConfig, traffic: TunerTraffic, slos: tuple[Slo, ...], *, duration_s: float = 600.0, seed: int = 0
) -> BatchCheck:
    """One replica at a full batch (a closed loop of ``decode_slots`` users, no think time)."""
    scenario = Scenario(
        replica=config,
        traffic=ClosedTraffic(
            loop=ClosedLoop(users=config.decode_slots, think_time_s=0.0),
            workload=size_workload(traffic),
            seed=seed,
        ),
        duration_s=duration_s,
        hpa=None,
        initial_replicas=1,
        slos=slos,
        seed=seed,
        name="full batch",
    )
    result = simulate(scenario)
    per_device = config.decode_slots // config.accelerator.chips
    return BatchCheck(
        per_device=per_device,
        observed_s=tuple(s.observed_s for s in result.slos),
        met=all(s.met for s in result.slos),
        detail="; ".join(f"{s.label}: {s.observed_s:.3g}s ({'met' if s.met else 'missed'})" for s in result.slos),
    )


Check = Callable[[ReplicaConfig], BatchCheck]


def choose_batch(config: ReplicaConfig, choice: BatchChoice, check: Check) -> BatchResult:
    """The batch to tune with (see the module docstring); ``check`` runs one full-batch test."""
    chips = config.accelerator.chips
    fits = max_per_device_batch(config)
    if choice.mode is BatchMode.PRESET:
        per_device = max(1, config.decode_slots // chips)
        return BatchResult(
            per_device=per_device,
            decode_slots=config.decode_slots,
            max_per_device=fits,
            checks=(),
            reason=f"kept the replica's own: {config.decode_slots} slots",
        )
    if choice.mode is BatchMode.FIXED:
        assert choice.per_device is not None
        fixed = with_batch(config, choice.per_device)  # ConfigError when it does not fit
        return BatchResult(
            per_device=choice.per_device,
            decode_slots=fixed.decode_slots,
            max_per_device=fits,
            checks=(),
            reason=f"given: {choice.per_device} per device",
        )
    if fits < 1:
        raise ConfigError(
            f"'decode_slots' must fit in HBM: not one slot per device fits next to the weights on "
            f"{config.accelerator.name} (got max_target_length {config.max_target_length})"
        )
    grid = batch_grid(fits)
    state = SearchState()
    checks: dict[int, BatchCheck] = {}
    while (index := next_probe(grid, state, max_probes=len(grid))) is not None:
        per_device = grid.values_milli[index] // 1000
        checks[per_device] = check(with_batch(config, per_device))
        state = record(state, index, checks[per_device].met)
    best = best_index(state)
    ordered = tuple(checks[b] for b in sorted(checks, reverse=True))
    if best is None:
        raise ConfigError(
            f"'--slo' cannot be met by one replica at any batch size: even 1 per device ({chips} slots) "
            f"misses it at full batch ({checks[1].detail})"
        )
    per_device = grid.values_milli[best] // 1000
    if per_device == fits:
        reason = f"the largest that fits in HBM ({fits} per device) meets the SLO at full batch"
    else:
        reason = (
            f"{fits} per device fits in HBM but misses the SLO at full batch; {per_device} is the largest that meets it"
        )
    return BatchResult(
        per_device=per_device, decode_slots=per_device * chips, max_per_device=fits, checks=ordered, reason=reason
    )
