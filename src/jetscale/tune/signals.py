"""Which signals can work for this replica and traffic, each one's grid of targets, and the warnings for
those that cannot.

* **backlog** (``jetstream_prefill_backlog_size``): targets 1..200 requests waiting per replica (at most
  the replica's backlog limit), from 4.
* **slots** (``jetstream_slots_used_percentage``, a fraction): the gauge cannot exceed 1, so a target
  above 1 / (1 + tolerance) can never scale up; targets 0.05 up to that, from the top. Whenever requests
  queue, slots used is pinned at 1 (every slot busy before a request waits): the signal sees spare
  capacity, never the depth of a queue (``saturated_slots`` measures it on one replica with a queue).
* vLLM's (GKE's signals for vLLM): **waiting** (``vllm:num_requests_waiting``) on the backlog's grid,
  **running** (``vllm:num_requests_running``) on counts up to ``max_num_seqs / (1 + tolerance)`` (the
  batch cannot exceed max_num_seqs), **kv** (``vllm:kv_cache_usage_perc``, a fraction) on the slots' grid.
* **hbm** (``memory_used_percentage``, HBM used / total): at least the weights' share (the floor) and, at
  a full batch of these requests, ``modeled_peak``'s figure. A target must sit between
  floor / (1 - tolerance) and full / (1 + tolerance) to be able to scale both ways (``hbm_bounds``).
  Under preallocation (MaxText's, ``hbm_mode: preallocated``) the gauge is flat whatever the load, and
  the signal cannot work at all.
"""

from __future__ import annotations

from collections.abc import Sequence

from jetscale.engine.presets import HbmMode, ReplicaConfig, modeled_peak
from jetscale.load.arrivals import ClosedLoop
from jetscale.sim.scenario import ClosedTraffic, Scenario
from jetscale.sim.simulator import simulate
from jetscale.tune.candidates import Signal
from jetscale.tune.evaluate import Setup
from jetscale.tune.search import Grid, backlog_grid, hbm_grid, running_grid, slots_grid
from jetscale.tune.traffic import mean_sizes, size_workload

__all__ = ["PINNED_SLOTS", "PINNED_WARN_SHARE", "full_batch_hbm", "pinned_warning", "saturated_slots", "signal_grids"]

PINNED_SLOTS = 0.99  # slots used at or above this is "pinned at 1"
PINNED_WARN_SHARE = 0.8  # warn when slots used was pinned at 1 in this share of the queued scrapes


def full_batch_hbm(replica: ReplicaConfig, setup: Setup) -> float:
    """HBM used / total at a full batch of requests of the traffic's mean size (paged KV)."""
    mean_in, mean_out = mean_sizes(setup.traffic)
    n_in = min(max(1, round(mean_in)), replica.max_prefill_length)
    n_out = max(2, min(round(mean_out), replica.max_target_length - n_in))
    peak = modeled_peak(replica, input_tokens=n_in, output_tokens=n_out)
    return peak.hbm_used_bytes / peak.hbm_total_bytes


def signal_grids(
    signals: Sequence[Signal], replica: ReplicaConfig, setup: Setup
) -> tuple[dict[Signal, Grid], list[str]]:
    """Each signal's target grid, and a warning for each signal that cannot work (left out of the grids)."""
    tolerance = setup.controller.tolerance
    grids: dict[Signal, Grid] = {}
    warnings: list[str] = []
    for signal in signals:
        if signal is Signal.BACKLOG or signal is Signal.WAITING:
            grids[signal] = backlog_grid(replica.prefill_backlog_limit)
        elif signal is Signal.SLOTS or signal is Signal.KV:
            grids[signal] = slots_grid(tolerance)
        elif signal is Signal.RUNNING:
            grids[signal] = running_grid(replica.decode_slots, tolerance)
        elif replica.hbm_mode is HbmMode.PREALLOCATED:
            flat = (replica.weight_bytes + replica.kv_cache_bytes + replica.reserve_bytes) / replica.hbm_total_bytes
            warnings.append(
                f"hbm cannot work here: it is flat under preallocation (hbm_mode preallocated): every replica "
                f"reads {flat:.3f} of its HBM in use whatever the load (the weights and every slot's KV cache "
                "are allocated up front), so the HPA would only hold or grow to its maximum; not tuned"
            )
        else:
            floor = (replica.weight_bytes + replica.reserve_bytes) / replica.hbm_total_bytes
            full = full_batch_hbm(replica, setup)
            grid = hbm_grid(floor, full, tolerance)
            if grid is None:
                warnings.append(
                    f"hbm cannot work here: HBM in use moves only from {floor:.3f} (the weights) to {full:.3f} "
                    f"(a full batch of these requests), too little around any target for the HPA's tolerance "
                    f"of {tolerance:g} to scale both ways; not tuned"
                )
            else:
                grids[signal] = grid
    return grids, warnings


def saturated_slots(replica: ReplicaConfig, setup: Setup, *, duration_s: float = 300.0) -> tuple[int, int]:
    """One replica with a queue (a closed loop of twice its slots, no think time), scraped every 5 s:
    (scrapes where requests waited for prefill, of which slots used read 1)."""
    scenario = Scenario(
        replica=replica,
        traffic=ClosedTraffic(
            loop=ClosedLoop(users=2 * replica.decode_slots, think_time_s=0.0),
            workload=size_workload(setup.traffic),
            seed=setup.seed,
        ),
        duration_s=duration_s,
        initial_replicas=1,
        scrape_interval_s=5.0,
        seed=setup.seed,
        name="saturated",
    )
    queued = [s for s in simulate(scenario).timeline.samples if s.prefill_backlog >= 1.0]
    return len(queued), sum(1 for s in queued if s.slots_used >= PINNED_SLOTS)


def pinned_warning(signals: Sequence[Signal], setup: Setup, queued: int, pinned: int) -> list[str]:
    """A warning when slots used sat at 1 in nearly every scrape in which requests queued."""
    if Signal.SLOTS not in signals or queued < 4 or pinned < PINNED_WARN_SHARE * queued:
        return []
    top = slots_grid(setup.controller.tolerance).values_milli[-1] / 1000
    return [
        f"slots is pinned at 1 under backlog: one replica with a queue read slots used = 1 in {pinned} of the "
        f"{queued} scrapes where requests waited for prefill, so the slots signal cannot tell a short queue from "
        f"a long one: it only scales on spare slots (a target of at most {top:.2f} = 1 / (1 + tolerance)) and "
        "adds replicas at a fixed pace under a queue; the backlog is the signal that sees a queue"
    ]
