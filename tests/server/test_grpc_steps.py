"""gRPC ``Decode`` paces itself: one message per decode step, within half a step of the engine; coalesced
beyond the process's message budget; and bytes that are not a DecodeRequest are INVALID_ARGUMENT."""

from __future__ import annotations

import asyncio
import itertools

import grpc
import pytest
from conftest import ManualClock, ServerFactory, settle
from server_fakes import FakeEngine

from jetscale.server import ModelServer
from jetscale.server.grpc_service import MESSAGES_PER_S, OrchestratorService
from jetscale.server.proto import jetstream_pb2 as pb
from jetscale.server.proto import jetstream_pb2_grpc as pb_grpc
from jetscale.server.runtime import RequestHandle


async def paced(
    server: ModelServer,
    clock: ManualClock,
    handle: RequestHandle,
    *,
    tick_s: float,
    until_s: float,
    hold_s: float = 0.0,
) -> list[tuple[float, int, int]]:
    """The ranges ``OrchestratorService.steps`` yields for ``handle``, with the (manual) time each came out;
    the consumer takes ``hold_s`` to write each one (a slow client)."""
    got: list[tuple[float, int, int]] = []

    async def consume() -> None:
        async for start, stop in OrchestratorService(server).steps(handle):
            got.append((clock.t, start, stop))
            if hold_s:
                await clock.sleep(hold_s)

    task = asyncio.create_task(consume())
    while clock.t < until_s and not task.done():
        await clock.advance(tick_s)
    await settle()
    assert task.done()
    await task
    return got


async def test_one_message_per_decode_step_within_half_a_step(make_server: ServerFactory) -> None:
    clock = ManualClock()
    step_s = 0.1  # wall seconds at speed 1
    server = await make_server(FakeEngine(prefill_s=0.1, step_s=step_s), clock=clock, speed=1.0)
    handle = server.runtime.submit(input_tokens=4, output_tokens=6)
    assert isinstance(handle, RequestHandle)
    got = await paced(server, clock, handle, tick_s=0.01, until_s=2.0)
    assert [(start, stop) for _, start, stop in got] == [(k, k + 1) for k in range(6)]
    # the prefill ends at 0.1 with token 1; the slot then adds one token per step: token k at 0.1 + (k-1) x step
    for t, _, stop in got:
        produced_s = 0.1 + (stop - 1) * step_s
        assert produced_s - 1e-9 <= t <= produced_s + step_s / 2 + 0.011, (stop, t)
    server.runtime.release(handle)


async def test_a_slow_reader_still_gets_every_token_when_the_request_ends_during_a_write(
    make_server: ServerFactory,
) -> None:
    clock = ManualClock()
    server = await make_server(FakeEngine(prefill_s=0.1, step_s=0.1), clock=clock, speed=1.0)
    handle = server.runtime.submit(input_tokens=4, output_tokens=6)
    assert isinstance(handle, RequestHandle)
    got = await paced(server, clock, handle, tick_s=0.01, until_s=4.0, hold_s=0.25)
    assert [(start, stop) for _, start, stop in got] == [(k, k + 1) for k in range(6)]
    server.runtime.release(handle)


async def test_steps_faster_than_the_budget_are_coalesced(make_server: ServerFactory) -> None:
    clock = ManualClock()
    # at speed 100 a 10 ms step is 0.1 ms of wall time: faster than one stream's share of the budget
    assert 1 / MESSAGES_PER_S > 0.01 / 100
    server = await make_server(FakeEngine(prefill_s=0.1, step_s=0.01), clock=clock, speed=100.0)
    handle = server.runtime.submit(input_tokens=4, output_tokens=32)
    assert isinstance(handle, RequestHandle)
    got = await paced(server, clock, handle, tick_s=0.001, until_s=0.1)
    ranges = [(start, stop) for _, start, stop in got]
    assert ranges[0][0] == 0 and ranges[-1][1] == 32
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))  # contiguous, nothing lost
    assert len(ranges) < 32 and max(stop - start for start, stop in ranges) > 1
    server.runtime.release(handle)


async def test_a_real_stream_sends_one_token_per_message(make_server: ServerFactory) -> None:
    server = await make_server(FakeEngine(prefill_s=0.01, step_s=0.01), speed=1.0)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pb_grpc.OrchestratorStub(channel)
        request = pb.DecodeRequest(max_tokens=12, token_content=pb.DecodeRequest.TokenContent(token_ids=[5, 6]))
        responses = [r async for r in stub.Decode(request)]
    per_message = [len(s.token_ids) for r in responses for s in r.stream_content.samples]
    assert per_message == [1] * 12 + [0]


GARBAGE = [
    pytest.param(b"\xff\xff\xff\xff", id="invalid-wire-type"),
    pytest.param(b"\x2a\x05ab", id="truncated-text-content"),
    pytest.param(b"\x20" + b"\xff" * 11, id="overlong-varint"),
]


@pytest.mark.parametrize("raw", GARBAGE)
async def test_bytes_that_are_not_a_request_are_invalid_argument(make_server: ServerFactory, raw: bytes) -> None:
    server = await make_server()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        # identity serializers: the bytes go out as they are, in a real HTTP/2 gRPC frame
        decode = channel.unary_stream("/jetstream_proto.Orchestrator/Decode")
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            _ = [r async for r in decode(raw)]
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert "does not parse" in (refused.value.details() or "")
        health = channel.unary_unary("/jetstream_proto.Orchestrator/HealthCheck")
        with pytest.raises(grpc.aio.AioRpcError) as refused_health:
            await health(raw)
        assert refused_health.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        # the server goes on serving, and nothing is left in flight
        good = pb.DecodeRequest(max_tokens=3, text_content=pb.DecodeRequest.TextContent(text="hi"))
        answers = [pb.DecodeResponse.FromString(r) async for r in decode(good.SerializeToString())]
    assert sum(len(s.token_ids) for r in answers for s in r.stream_content.samples) == 3
    assert (server.runtime.in_flight, server.runtime.cancelled) == (0, 0)
