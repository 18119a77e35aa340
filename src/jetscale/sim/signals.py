"""Which metrics a manifest may scale a replica on: the engine's signals (``jetscale.engine.signals``, the
one mapping from an engine snapshot to the exported metric names, re-exported here for the simulator's
scrapes) and ``check_exported``: a server exports only its own kind's names, so a manifest that scales
a JetStream replica on a ``vllm:`` metric or a vLLM replica on a ``jetstream_`` one is refused (the HPA
would see it missing forever); the system metrics (HBM, duty cycle) are the node's and go with either.
"""

from __future__ import annotations

from jetscale.engine.config import ServerKind
from jetscale.engine.signals import (
    HBM_USAGE,
    PREFILL_BACKLOG,
    SIGNALS,
    SLOTS_USED,
    VLLM_KV_USAGE,
    VLLM_RUNNING,
    VLLM_WAITING,
    is_known_signal,
    signal_value,
)
from jetscale.errors import ConfigError
from jetscale.hpa.types import HPASpec

__all__ = [
    "HBM_USAGE",
    "PREFILL_BACKLOG",
    "SIGNALS",
    "SLOTS_USED",
    "VLLM_KV_USAGE",
    "VLLM_RUNNING",
    "VLLM_WAITING",
    "check_exported",
    "is_known_signal",
    "signal_value",
]

# the names only one kind of server exports, by prefix
_SERVER_PREFIX = {ServerKind.JETSTREAM: "jetstream_", ServerKind.VLLM: "vllm:"}


def check_exported(spec: HPASpec, kind: ServerKind, *, stack: str = "") -> None:
    """ConfigError naming the first metric of ``spec`` that a ``kind`` server does not export."""
    for index, metric in enumerate(spec.metrics):
        for other, prefix in _SERVER_PREFIX.items():
            if other is not kind and metric.name.startswith(prefix):
                server = f"this {kind.value} replica" + (f" (stack {stack})" if stack else "")
                raise ConfigError(
                    f"'spec.metrics[{index}]' must be a metric {server} exports: {metric.name} is {other.value}'s "
                    f"(got {metric.raw_name or metric.name})"
                )
