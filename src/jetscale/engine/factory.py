"""The engine of a replica config: JetStream's scheduler or vLLM's, by the config's stack. Pure."""

from __future__ import annotations

from jetscale.engine.config import ReplicaConfig, ServerKind
from jetscale.engine.replica import ReplicaEngine
from jetscale.engine.vllm import VllmEngine

__all__ = ["make_engine"]


def make_engine(config: ReplicaConfig) -> ReplicaEngine | VllmEngine:
    """A fresh engine for one replica of ``config`` (``ReplicaEngine`` for JetStream, ``VllmEngine`` for vLLM)."""
    if config.kind is ServerKind.VLLM:
        return VllmEngine(config)
    return ReplicaEngine(config)
