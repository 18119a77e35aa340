"""``jetscale serve``: a model server around the engine model, JetStream- or vLLM-compatible.

One process serves one replica of one kind. A JetStream-kind server answers JetStream's HTTP API
(``/v1/generate``, ``/v1/health``) and gRPC service (``jetstream_proto.Orchestrator``), OpenAI's
completions API, and Prometheus ``/metrics`` with JetStream's metric names; a vLLM-kind server answers
vLLM's OpenAI-compatible API and ``/metrics`` with vLLM's names. Both are driven by an ``Engine`` on a
(possibly compressed) wall clock.

The names below are loaded on first use, so that importing one module of the package (a front end, the
runtime) does not import the app that assembles them all.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

_HOME = {
    "ModelServer": "app",
    "serve_until_signalled": "app",
    "ServerConfig": "config",
    "Clock": "runtime",
    "Rejection": "runtime",
    "RequestHandle": "runtime",
    "ServingRuntime": "runtime",
    "State": "runtime",
    "WallClock": "runtime",
    "Tokenizer": "tokenizer",
}


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'jetscale.server' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"jetscale.server.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
