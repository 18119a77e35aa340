"""``jetscale serve``: a JetStream-compatible model server around the engine model.

One process serves one replica: JetStream's HTTP API (``/v1/generate``, ``/v1/health``) and gRPC
service (``jetstream_proto.Orchestrator``), OpenAI's completions API, and Prometheus ``/metrics`` with
JetStream's metric names, all driven by an ``Engine`` on a (possibly compressed) wall clock.
"""

from jetscale.server.app import ModelServer, serve_until_signalled
from jetscale.server.config import ServerConfig
from jetscale.server.runtime import Clock, Rejection, RequestHandle, ServingRuntime, State, WallClock
from jetscale.server.tokenizer import Tokenizer

__all__ = [
    "Clock",
    "ModelServer",
    "Rejection",
    "RequestHandle",
    "ServerConfig",
    "ServingRuntime",
    "State",
    "Tokenizer",
    "WallClock",
    "serve_until_signalled",
]
