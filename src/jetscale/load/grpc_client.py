"""JetStream's gRPC API from the load generator's side: ``jetstream_proto.Orchestrator/Decode`` stubs.

The generated modules live in ``jetscale.server.proto`` (``jetstream_pb2``, ``jetstream_pb2_grpc``,
from JetStream's ``jetstream.proto``). ``check_stubs`` is safe in any process; ``make_stub`` is for the
gevent generator process only, because it switches gRPC to gevent's loop first.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from jetscale.errors import ConfigError

__all__ = ["check_stubs", "decode_request", "make_stub"]


@cache
def _modules() -> tuple[Any, Any]:
    try:
        from jetscale.server.proto import jetstream_pb2, jetstream_pb2_grpc
    except ImportError as exc:
        raise ConfigError(
            f"'--api jetstream-grpc' needs the generated stubs jetscale.server.proto.jetstream_pb2(_grpc) ({exc})"
        ) from None
    return jetstream_pb2, jetstream_pb2_grpc


def check_stubs() -> None:
    """Raise ``ConfigError`` unless the JetStream gRPC stubs can be imported."""
    pb2, _ = _modules()
    if not hasattr(pb2, "DecodeRequest"):
        raise ConfigError("jetscale.server.proto.jetstream_pb2 has no DecodeRequest message")


def decode_request(prompt: str, max_tokens: int) -> Any:
    pb2, _ = _modules()
    return pb2.DecodeRequest(max_tokens=max_tokens, text_content={"text": prompt})


def make_stub(address: str) -> tuple[Any, Any]:
    """(stub, channel) for ``host:port``, with gRPC running on gevent (generator process only)."""
    import grpc
    from grpc.experimental import gevent as grpc_gevent

    grpc_gevent.init_gevent()
    _, pb2_grpc = _modules()
    channel = grpc.insecure_channel(address)
    return pb2_grpc.OrchestratorStub(channel), channel
