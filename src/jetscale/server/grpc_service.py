"""JetStream's gRPC service, ``jetstream_proto.Orchestrator``, wire-compatible with JetStream's clients.

``Decode`` streams, as JetStream's orchestrator does, one ``DecodeResponse`` per decode step (one token:
its first from the prefill, then one per generate step) and ends with one empty sample. Text prompts get
``text`` and ``token_ids`` back; token prompts (client-side tokenization) get ``token_ids`` only.

Pacing. The engine computes steps in closed form and emits no per-step events, so each stream looks at
its request itself (``ServingRuntime.poll_tokens``): every half of the request's step time as observed so
far (at most ``stream_interval_s`` apart), and sends each new token as its own message, so a message
leaves within half a step of the engine producing its token.

Coalescing. The process's budget is ``MESSAGES_PER_S`` = 4,000 messages/s, shared by the streams in
flight: a stream whose steps come faster than ``streams / MESSAGES_PER_S`` seconds (high ``--speed``,
fast chips, many streams) sends one message with all its new tokens every ``streams / MESSAGES_PER_S``
seconds instead (a sample may carry several ids, which JetStream's proto allows). The figure: a bare
grpc.aio process writes 10,000 messages/s to one stream and 16,000-19,000 to 16-64 streams
(``benchmarks/grpc_stream_rate.py``, 2-core machine); each message here also costs a look at the engine
and its text (about twice the CPU), and the budget leaves the process half its time for HTTP and the
engine. So at speed 1 a full v5e-8 llama2-7b batch (88 slots, 17 ms steps: 5,200 steps/s) is coalesced
into messages of one or two tokens, and a batch of up to ~68 such streams is not.

Status codes: INVALID_ARGUMENT for bad input (the message names the field and value), also for bytes that
are not a ``DecodeRequest`` at all; RESOURCE_EXHAUSTED when the prefill backlog is full (JetStream's
retryable answer, with a ``retry-after`` trailer); UNAVAILABLE while loading or draining.
``HealthCheck`` answers ``is_live`` = ready.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import grpc
from google.protobuf.message import DecodeError, Message

from jetscale.errors import ServingError
from jetscale.server.contract import ModelService
from jetscale.server.proto import jetstream_pb2 as pb
from jetscale.server.proto import jetstream_pb2_grpc as pb_grpc
from jetscale.server.protocol import RequestError, validate_decode
from jetscale.server.runtime import Rejection, RequestHandle

__all__ = ["MESSAGES_PER_S", "OrchestratorService", "add_orchestrator"]

_Sample = pb.DecodeResponse.StreamContent.Sample

MESSAGES_PER_S = 4000  # the process's gRPC message budget; see the module docstring
_FIRST_LOOK_S = 0.002  # wall seconds between looks while a request's step time is still unknown


class _Undecodable:
    """What the request deserializer returns for bytes that do not parse as the request message."""

    __slots__ = ("error",)

    def __init__(self, error: str) -> None:
        self.error = error


def _parser(message: type[Message]) -> Callable[[bytes], object]:
    def parse(raw: bytes) -> object:
        try:
            return message.FromString(raw)
        except DecodeError as exc:  # grpc would answer UNKNOWN; Decode answers INVALID_ARGUMENT instead
            return _Undecodable(f"{message.__name__}: {exc}")

    return parse


def _message(text: str, token_ids: list[int]) -> pb.DecodeResponse:
    sample = _Sample(text=text, token_ids=token_ids)
    return pb.DecodeResponse(stream_content=pb.DecodeResponse.StreamContent(samples=[sample]))


class OrchestratorService(pb_grpc.OrchestratorServicer):
    def __init__(self, server: ModelService) -> None:
        self._server = server
        self._runtime = server.runtime
        self._streams = 0  # Decode streams in flight (they share MESSAGES_PER_S)

    async def Decode(
        self, request: pb.DecodeRequest, context: grpc.aio.ServicerContext[pb.DecodeRequest, pb.DecodeResponse]
    ) -> AsyncIterator[pb.DecodeResponse]:
        server = self._server
        if isinstance(request, _Undecodable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request does not parse ({request.error})")
            return
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
        self._streams += 1
        try:
            async for start, stop in self.steps(handle):
                ids = server.output_ids(handle, start, stop)
                yield _message("" if req.client_tokenized else server.tokenizer.decode(ids), ids)
            yield _message("", [])
        except ServingError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
        finally:
            self._streams -= 1
            self._runtime.release(handle)

    async def steps(self, handle: RequestHandle) -> AsyncIterator[tuple[int, int]]:
        """Ranges ``(start, stop)`` of new tokens of ``handle``, one token per range (one decode step) unless
        the stream is coalesced (see the module docstring). ``ServingError`` if the server stops first."""
        runtime = self._runtime
        await handle.first_token.wait()
        first_s = runtime.engine_now()  # about when the prefill produced the first token
        anchor_s, anchor = first_s, 0  # the first look that saw a decode step, and the tokens seen then
        step_s: float | None = None  # wall seconds per decode step, as observed
        sent = 0
        wait_s = 0.0
        while True:
            produced = await runtime.poll_tokens(handle, wait_s)
            # whether the count is final, read with it: the request may end while we are held at a yield
            finished = handle.done.is_set()
            if finished and handle.completion is None:
                raise ServingError(f"request {handle.request_id} cut off: the server is {runtime.state}")
            now_s = runtime.engine_now()
            if produced > max(anchor, 1):
                if anchor >= 2:
                    step_s = (now_s - anchor_s) / (produced - anchor) / runtime.speed
                else:  # a first estimate, which includes any wait for a slot; then timed from this look
                    step_s = (now_s - first_s) / (produced - 1) / runtime.speed
                    anchor_s, anchor = now_s, produced
            budget_s = max(self._streams, 1) / MESSAGES_PER_S  # this stream's share: seconds per message
            coalesced = step_s is not None and step_s < budget_s
            if produced > sent:
                if coalesced:
                    yield sent, produced
                else:
                    for k in range(sent, produced):
                        yield k, k + 1
                sent = produced
            if finished:
                break
            if step_s is None:
                wait_s = max(_FIRST_LOOK_S, budget_s)
            elif coalesced:
                wait_s = budget_s
            else:
                wait_s = max(min(step_s / 2, self._server.config.stream_interval_s), budget_s)

    async def HealthCheck(
        self,
        request: pb.HealthCheckRequest,
        context: grpc.aio.ServicerContext[pb.HealthCheckRequest, pb.HealthCheckResponse],
    ) -> pb.HealthCheckResponse:
        if isinstance(request, _Undecodable):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"the request does not parse ({request.error})")
        return pb.HealthCheckResponse(is_live=self._runtime.ready)


def add_orchestrator(grpc_server: grpc.aio.Server, server: ModelService) -> None:
    """Register the service as the generated ``add_OrchestratorServicer_to_server`` does, but with request
    parsers that hand undecodable bytes to the handler (INVALID_ARGUMENT) instead of failing in grpc."""
    service = OrchestratorService(server)
    handlers = {
        "Decode": grpc.unary_stream_rpc_method_handler(
            service.Decode, request_deserializer=_parser(pb.DecodeRequest),
            response_serializer=pb.DecodeResponse.SerializeToString,
        ),
        "HealthCheck": grpc.unary_unary_rpc_method_handler(
            service.HealthCheck, request_deserializer=_parser(pb.HealthCheckRequest),
            response_serializer=pb.HealthCheckResponse.SerializeToString,
        ),
    }  # fmt: skip
    generic = grpc.method_handlers_generic_handler("jetstream_proto.Orchestrator", handlers)
    grpc_server.add_generic_rpc_handlers((generic,))
