"""What a replica's ``/metrics`` says, as numbers: the metric names an HPA manifest may scale on, each
read from one ``EngineSnapshot``.

This is the one mapping from engine gauges to the metric names of JetStream, vLLM, GKE's TPU device
plugin and ai-on-gke's prometheus-adapter rule: the server's ``/metrics`` exports its gauges through it
and the simulator scrapes with it, so both feed the HPA identical values for identical snapshots. Pure.

============================================  =================================================
metric name                                   value (per replica)
============================================  =================================================
``jetstream_prefill_backlog_size``            requests waiting for prefill
``jetstream_transfer_backlog_size``           prefilled requests waiting for the transfer
``jetstream_generate_backlog_size``           prefilled requests waiting for a decode slot
``num_requests_waiting``                      the three backlogs together
``jetstream_slots_used_percentage``           decode slots in use / decode slots (a fraction 0..1)
``kv_cache_utilization_perc``                 the same, as a percentage 0..100 (slot based)
``memory_used_percentage``                    HBM used / HBM total (a fraction 0..1, adapter name)
``accelerator_memory_used_ratio``             the same
``memory_used``, ``accelerator_memory_used_bytes``    HBM used, bytes
``memory_total``, ``accelerator_memory_total_bytes``  HBM total, bytes
``duty_cycle``, ``accelerator_duty_cycle``    percent of time busy since the previous snapshot
``vllm:num_requests_waiting``                 vLLM: requests in its waiting queue (every backlog)
``vllm:num_requests_running``                 vLLM: requests in its running batch
``vllm:kv_cache_usage_perc``                  vLLM: KV cache blocks in use (a fraction 0..1)
``vllm:gpu_cache_usage_perc``                 the same, vLLM's name before 0.9.2
============================================  =================================================

vLLM's names are read from the same snapshot as JetStream's (``EngineSnapshot``'s vLLM fields). A
server exports only its own kind's names (``jetscale.sim.signals.check_exported`` holds manifests to
that); the system metrics (HBM, duty cycle) are the node's and go with either.
"""

from __future__ import annotations

from collections.abc import Callable

from jetscale.engine.api import EngineSnapshot

__all__ = [
    "HBM_USAGE",
    "PREFILL_BACKLOG",
    "SIGNALS",
    "SLOTS_USED",
    "VLLM_KV_USAGE",
    "VLLM_RUNNING",
    "VLLM_WAITING",
    "is_known_signal",
    "signal_value",
]

PREFILL_BACKLOG = "jetstream_prefill_backlog_size"
SLOTS_USED = "jetstream_slots_used_percentage"
HBM_USAGE = "memory_used_percentage"
VLLM_WAITING = "vllm:num_requests_waiting"
VLLM_RUNNING = "vllm:num_requests_running"
VLLM_KV_USAGE = "vllm:kv_cache_usage_perc"


def _hbm_ratio(s: EngineSnapshot) -> float:
    return s.hbm_used_bytes / s.hbm_total_bytes if s.hbm_total_bytes else 0.0


SIGNALS: dict[str, Callable[[EngineSnapshot], float]] = {
    PREFILL_BACKLOG: lambda s: float(s.prefill_backlog),
    "jetstream_transfer_backlog_size": lambda s: float(s.transfer_backlog),
    "jetstream_generate_backlog_size": lambda s: float(s.generate_backlog),
    "num_requests_waiting": lambda s: float(s.prefill_backlog + s.transfer_backlog + s.generate_backlog),
    SLOTS_USED: lambda s: s.slots_used_fraction,
    "kv_cache_utilization_perc": lambda s: 100.0 * s.slots_used_fraction,
    HBM_USAGE: _hbm_ratio,
    "accelerator_memory_used_ratio": _hbm_ratio,
    "memory_used": lambda s: float(s.hbm_used_bytes),
    "accelerator_memory_used_bytes": lambda s: float(s.hbm_used_bytes),
    "memory_total": lambda s: float(s.hbm_total_bytes),
    "accelerator_memory_total_bytes": lambda s: float(s.hbm_total_bytes),
    "duty_cycle": lambda s: 100.0 * s.duty_cycle,
    "accelerator_duty_cycle": lambda s: 100.0 * s.duty_cycle,
    VLLM_WAITING: lambda s: float(s.prefill_backlog + s.transfer_backlog + s.generate_backlog),
    VLLM_RUNNING: lambda s: float(s.slots_used),
    VLLM_KV_USAGE: lambda s: s.kv_cache_usage,
    "vllm:gpu_cache_usage_perc": lambda s: s.kv_cache_usage,
}


def is_known_signal(name: str) -> bool:
    return name in SIGNALS


def signal_value(name: str, snapshot: EngineSnapshot) -> float | None:
    """The value of metric ``name`` for a replica whose gauges are ``snapshot``; None for a name that no
    replica exports (the HPA then sees the metric as missing)."""
    read = SIGNALS.get(name)
    return read(snapshot) if read is not None else None
