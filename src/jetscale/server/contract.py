"""What a front end needs from the running model server, and nothing else: the contract between them.

The front ends (JetStream HTTP in http.py, gRPC in grpc_service.py, OpenAI in openai_api.py, GKE's sidecar
in sidecar.py, vLLM's OpenAI server in vllm_api.py) serve one ``ModelService``: its shell config, the
runtime that admits and drives requests, the tokenizer that counts and spells text, the metrics that
``/metrics`` writes, and the output tokens of a request. ``app.ModelServer`` is the one implementation;
it assembles the front ends of its kind, so the imports run one way: app -> front ends -> this module,
never back (tests/server/test_server_imports.py checks it).

``ServerMetrics`` (JetStream's names) and ``VllmMetrics`` (vLLM's) are both a ``MetricsSink``: the runtime
feeds them completions, cancellations and sheds; ``/metrics`` reads ``exposition()``.
"""

from __future__ import annotations

from typing import Protocol

from jetscale.engine.api import Completion, Stage
from jetscale.server.config import ServerConfig
from jetscale.server.runtime import RequestHandle, ServingRuntime
from jetscale.server.tokenizer import Tokenizer

__all__ = ["MetricsSink", "ModelService"]


class MetricsSink(Protocol):
    """One server's metrics: fed by the runtime, written by ``/metrics``."""

    def observe(self, completion: Completion) -> None:
        """One request finished."""
        ...

    def cancelled(self, stage: Stage) -> None:
        """One request abandoned by its client, dropped from ``stage``."""
        ...

    def shed(self, reason: str) -> None:
        """One request refused (``backlog_full``, ``queue_wait`` or ``not_ready``)."""
        ...

    def exposition(self) -> bytes:
        """The Prometheus text format, as ``/metrics`` serves it."""
        ...


class ModelService(Protocol):
    """The running model server, as the front ends see it (read-only)."""

    @property
    def config(self) -> ServerConfig: ...

    @property
    def runtime(self) -> ServingRuntime: ...

    @property
    def tokenizer(self) -> Tokenizer: ...

    @property
    def metrics(self) -> MetricsSink: ...

    def output_ids(self, handle: RequestHandle, start: int, stop: int) -> list[int]:
        """Output tokens ``start..stop-1`` of ``handle`` (deterministic for the seed and request id)."""
        ...
