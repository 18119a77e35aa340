"""JetStream's gRPC service, ``jetstream_proto.Orchestrator``, wire-compatible with JetStream's clients.

``Decode`` streams one ``DecodeResponse`` per batch of new tokens (a sample may carry several token ids,
which JetStream's proto allows) and ends, as JetStream does, with one empty sample. Text prompts get
``text`` and ``token_ids`` back; token prompts (client-side tokenization) get ``token_ids`` only.
Status codes: INVALID_ARGUMENT for bad input (the message names the field and value),
RESOURCE_EXHAUSTED when the prefill backlog is full (JetStream's retryable answer, with a
``retry-after`` trailer), UNAVAILABLE while loading or draining. ``HealthCheck`` answers ``is_live`` =
ready.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from jetscale.errors import ServingError
from jetscale.server.proto import jetstream_pb2 as pb
from jetscale.server.proto import jetstream_pb2_grpc as pb_grpc
from jetscale.server.protocol import RequestError, validate_decode
from jetscale.server.runtime import Rejection

if TYPE_CHECKING:
    from jetscale.server.app import ModelServer

__all__ = ["OrchestratorService", "add_orchestrator"]

_Sample = pb.DecodeResponse.StreamContent.Sample


def _message(text: str, token_ids: list[int]) -> pb.DecodeResponse:
    sample = _Sample(text=text, token_ids=token_ids)
    return pb.DecodeResponse(stream_content=pb.DecodeResponse.StreamContent(samples=[sample]))


class OrchestratorService(pb_grpc.OrchestratorServicer):
    def __init__(self, server: ModelServer) -> None:
        self._server = server
        self._runtime = server.runtime

    async def Decode(
        self, request: pb.DecodeRequest, context: grpc.aio.ServicerContext[pb.DecodeRequest, pb.DecodeResponse]
    ) -> AsyncIterator[pb.DecodeResponse]:
        server = self._server
        content = request.WhichOneof("content")
        try:
            req = validate_decode(
                max_tokens=request.max_tokens,
                text=request.text_content.text if content == "text_content" else None,
                token_ids=list(request.token_content.token_ids) if content == "token_content" else None,
                config=server.config,
                tokenizer=server.tokenizer,
                num_samples=request.num_samples,
                lora_adapter_id=request.lora_adapter_id,
            )
        except RequestError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            return
        admitted = self._runtime.submit(input_tokens=req.input_tokens, output_tokens=req.max_tokens)
        if isinstance(admitted, Rejection):
            context.set_trailing_metadata((("retry-after", str(admitted.retry_after_s)),))
            if admitted.overloaded:
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "the prefill backlog is full; retry later")
                return
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"the server is not ready ({admitted.state})")
            return
        handle = admitted
        try:
            async for start, stop in self._runtime.progress(handle):
                ids = server.output_ids(handle, start, stop)
                yield _message("" if req.client_tokenized else server.tokenizer.decode(ids), ids)
            yield _message("", [])
        except ServingError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        finally:
            self._runtime.release(handle)

    async def HealthCheck(
        self,
        request: pb.HealthCheckRequest,
        context: grpc.aio.ServicerContext[pb.HealthCheckRequest, pb.HealthCheckResponse],
    ) -> pb.HealthCheckResponse:
        return pb.HealthCheckResponse(is_live=self._runtime.ready)


def add_orchestrator(grpc_server: grpc.aio.Server, server: ModelServer) -> None:
    pb_grpc.add_OrchestratorServicer_to_server(OrchestratorService(server), grpc_server)  # type: ignore[no-untyped-call]
