"""JetStream's gRPC service through a client generated from our jetstream.proto, over a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
from conftest import ManualClock, ServerFactory
from server_fakes import FakeEngine

from jetscale.server import ModelServer, Tokenizer
from jetscale.server.proto import jetstream_pb2 as pb
from jetscale.server.proto import jetstream_pb2_grpc as pb_grpc

TOKENIZER = Tokenizer()


@pytest.fixture
async def channel_to() -> AsyncIterator[object]:
    channels: list[grpc.aio.Channel] = []

    def open_channel(server: ModelServer) -> pb_grpc.OrchestratorStub:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        channels.append(channel)
        return pb_grpc.OrchestratorStub(channel)

    yield open_channel
    for channel in channels:
        await channel.close()


def text_request(max_tokens: int, text: str = "Why is the sky blue?") -> pb.DecodeRequest:
    return pb.DecodeRequest(max_tokens=max_tokens, text_content=pb.DecodeRequest.TextContent(text=text))


async def test_decode_streams_tokens_then_one_empty_sample(any_server: ModelServer, channel_to) -> None:  # type: ignore[no-untyped-def]
    stub = channel_to(any_server)
    responses = [r async for r in stub.Decode(text_request(12))]
    *tokens, last = responses
    assert list(last.stream_content.samples) == [pb.DecodeResponse.StreamContent.Sample()]
    ids = [i for r in tokens for s in r.stream_content.samples for i in s.token_ids]
    assert len(ids) == 12
    assert "".join(r.stream_content.samples[0].text for r in tokens) == TOKENIZER.decode(ids)


async def test_decode_of_token_ids_answers_with_ids_only(any_server: ModelServer, channel_to) -> None:  # type: ignore[no-untyped-def]
    stub = channel_to(any_server)
    request = pb.DecodeRequest(
        max_tokens=4,
        token_content=pb.DecodeRequest.TokenContent(token_ids=[1, 17, 18]),
        metadata=pb.DecodeRequest.Metadata(start_time=12.5),
    )
    responses = [r async for r in stub.Decode(request)]
    assert all(s.text == "" for r in responses for s in r.stream_content.samples)
    assert sum(len(s.token_ids) for r in responses for s in r.stream_content.samples) == 4


async def test_health_check_is_live_when_ready(any_server: ModelServer, channel_to) -> None:  # type: ignore[no-untyped-def]
    stub = channel_to(any_server)
    assert (await stub.HealthCheck(pb.HealthCheckRequest())).is_live is True


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        pytest.param(text_request(0), "max_tokens", id="max_tokens zero"),
        pytest.param(text_request(33), "max_tokens", id="max_tokens too large"),
        pytest.param(pb.DecodeRequest(max_tokens=3), "text_content", id="no content"),
        pytest.param(text_request(3, " ".join(["w"] * 65)), "text_content.text", id="prompt too long"),
        pytest.param(
            pb.DecodeRequest(max_tokens=3, token_content=pb.DecodeRequest.TokenContent(token_ids=[-1])),
            "token_content.token_ids[0]",
            id="negative token id",
        ),
        pytest.param(
            pb.DecodeRequest(max_tokens=3, text_content=pb.DecodeRequest.TextContent(text="a"), num_samples=2),
            "num_samples",
            id="two samples",
        ),
    ],
)
async def test_bad_decode_requests_are_invalid_argument(  # type: ignore[no-untyped-def]
    make_server: ServerFactory, channel_to, request_: pb.DecodeRequest, field: str
) -> None:
    stub = channel_to(await make_server())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        _ = [r async for r in stub.Decode(request_)]
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert f"'{field}'" in (caught.value.details() or "")


async def test_full_backlog_is_resource_exhausted_and_loading_is_unavailable(  # type: ignore[no-untyped-def]
    make_server: ServerFactory, channel_to
) -> None:
    clock = ManualClock()
    engine = FakeEngine(prefill_s=2.0, step_s=0.1, decode_slots=1, backlog_limit=1)
    server = await make_server(engine, clock=clock, speed=1.0, model_load_engine_s=1.0)
    stub = channel_to(server)

    with pytest.raises(grpc.aio.AioRpcError) as loading:
        _ = [r async for r in stub.Decode(text_request(3))]
    assert loading.value.code() is grpc.StatusCode.UNAVAILABLE
    assert not (await stub.HealthCheck(pb.HealthCheckRequest())).is_live

    await clock.advance(1.0)

    async def decode() -> int:
        return sum(len(s.token_ids) for r in [r async for r in stub.Decode(text_request(3))]
                   for s in r.stream_content.samples)  # fmt: skip

    accepted = []
    for expected in (1, 2):
        accepted.append(asyncio.create_task(decode()))
        while server.runtime.in_flight < expected:
            await asyncio.sleep(0.001)
    call = stub.Decode(text_request(3))
    with pytest.raises(grpc.aio.AioRpcError) as full:
        _ = [r async for r in call]
    assert full.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert ("retry-after", "2") in tuple(full.value.trailing_metadata() or ())
    for _ in range(20):
        await clock.advance(0.5)
    assert await asyncio.gather(*accepted) == [3, 3]
