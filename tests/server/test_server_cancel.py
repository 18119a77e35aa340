"""Abandoned requests are cancelled through every front end: the issue's denial of service, counted.

200 HTTP requests (max_tokens 1024) whose clients hang up after 0.3 s and 200 gRPC streams cancelled by
their clients must give back their backlog places and slots, so that a probe right after is answered
about as fast as by an idle server; every one of them shows in ``jetscale_requests_cancelled_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time

import aiohttp
import grpc
from conftest import ServerFactory, real_engine

from jetscale.server import ModelServer
from jetscale.server.proto import jetstream_pb2 as pb
from jetscale.server.proto import jetstream_pb2_grpc as pb_grpc

PROMPT = "Tell me a very long story about the sea. " * 8


def cancelled_total(exposition: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for stage, value in re.findall(r'^jetscale_requests_cancelled_total\{[^}]*stage="(\w+)"[^}]*\} (\S+)$',
                                   exposition, flags=re.M):  # fmt: skip
        counts[stage] = counts.get(stage, 0.0) + float(value)
    return counts


async def wait_idle(server: ModelServer, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while server.runtime.in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert server.runtime.in_flight == 0


async def probe_s(session: aiohttp.ClientSession, base: str) -> float:
    started = time.monotonic()
    body = {"max_tokens": 4, "text_content": {"text": "ping"}}
    async with session.post(f"{base}/v1/generate", json=body, headers={"Accept": "application/json"},
                            timeout=aiohttp.ClientTimeout(total=30)) as response:  # fmt: skip
        assert response.status == 200
        await response.read()
    return time.monotonic() - started


async def abandon_http(base: str, n: int, *, stream: bool) -> int:
    hung_up = 0

    async def one(k: int) -> None:
        nonlocal hung_up
        body = {"max_tokens": 1024, "text_content": {"text": f"{k} {PROMPT}"}}
        headers = {} if stream else {"Accept": "application/json"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.3)) as session:
            try:
                async with session.post(f"{base}/v1/generate", json=body, headers=headers) as response:
                    await response.read()
            except TimeoutError:
                hung_up += 1

    await asyncio.gather(*(one(k) for k in range(n)))
    return hung_up


async def abandon_grpc(port: int, n: int) -> int:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.OrchestratorStub(channel)
        calls = [
            stub.Decode(pb.DecodeRequest(max_tokens=1024, text_content=pb.DecodeRequest.TextContent(text=PROMPT)))
            for _ in range(n)
        ]
        await asyncio.sleep(0.3)
        for call in calls:
            call.cancel()
        for call in calls:
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                async for _ in call:
                    pass
        return sum(call.cancelled() for call in calls)


async def test_abandoned_requests_free_their_places_and_are_counted(make_server: ServerFactory) -> None:
    engine, limits = real_engine()
    server = await make_server(engine, speed=1.0, **limits)
    base = f"http://127.0.0.1:{server.http_port}"
    async with aiohttp.ClientSession() as session:
        idle_s = await probe_s(session, base)
        before = server.runtime.accepted
        abandoned = await abandon_http(base, 100, stream=False)
        abandoned += await abandon_http(base, 100, stream=True)
        abandoned += await abandon_grpc(server.grpc_port or 0, 200)
        assert abandoned == 400
        await wait_idle(server)
        # a client may hang up before the server has read its request (on a busy machine, a few of the
        # 200 HTTP ones): nothing was admitted then, so nothing is held and nothing is to cancel
        admitted = server.runtime.accepted - before
        after_s = await probe_s(session, base)
        async with session.get(f"{base}/metrics") as response:
            counts = cancelled_total(await response.text())
    assert after_s <= idle_s + 2.0
    assert 200 <= admitted <= 400  # most of them reach the server
    assert server.runtime.cancelled == admitted == sum(counts.values())  # every admitted one, none ran out
    snap = server.runtime.snapshot()
    assert (snap.prefill_backlog, snap.slots_used, snap.generate_backlog, snap.transfer_backlog) == (0, 0, 0, 0)
    assert set(counts) <= {"prefill_backlog", "prefill", "transfer_backlog", "generate_backlog", "decode"}
    assert counts.get("decode", 0) > 0 and counts.get("prefill_backlog", 0) > 0
