"""The router: policies, retries on draining or vanished replicas, streaming passthrough, statistics.

Backends are small aiohttp apps in the test's own event loop, on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from jetscale.fleet.router import Router, RoutingPolicy

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def backend(handler: Handler) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def answering(name: str, status: int = 200, delay_s: float = 0.0) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        await asyncio.sleep(delay_s)
        return web.json_response({"replica": name, "path": request.path_qs, "body": body.decode()}, status=status)

    return handle


@asynccontextmanager
async def router(policy: RoutingPolicy = RoutingPolicy.ROUND_ROBIN) -> AsyncIterator[Router]:
    r = Router(policy=policy, port=0)
    await r.start()
    try:
        yield r
    finally:
        await r.stop()


async def post(http: aiohttp.ClientSession, r: Router, path: str = "/v1/completions") -> tuple[int, dict[str, str]]:
    async with http.post(f"http://127.0.0.1:{r.port}{path}", data=b'{"prompt":"hi"}') as response:
        return response.status, await response.json()


async def test_round_robin_spreads_requests_evenly_and_keeps_path_and_body() -> None:
    async with backend(answering("a")) as a, backend(answering("b")) as b, backend(answering("c")) as c, \
            router() as r, aiohttp.ClientSession() as http:  # fmt: skip
        for name, url in (("a", a), ("b", b), ("c", c)):
            r.add(name, url)
        answers = [await post(http, r, "/v1/completions?x=1") for _ in range(9)]
    assert sorted(body["replica"] for _, body in answers) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    assert {(status, body["path"], body["body"]) for status, body in answers} == {
        (200, "/v1/completions?x=1", '{"prompt":"hi"}')
    }
    assert r.totals().ok == 9


async def test_least_outstanding_avoids_the_busy_replica() -> None:
    async with backend(answering("slow", delay_s=0.5)) as slow, backend(answering("fast")) as fast, \
            router(RoutingPolicy.LEAST_OUTSTANDING) as r, aiohttp.ClientSession() as http:  # fmt: skip
        r.add("slow", slow)
        r.add("fast", fast)
        first = asyncio.ensure_future(post(http, r))  # goes to "slow" (first in order) and stays there
        for _ in range(100):
            if r.outstanding()["slow"]:
                break
            await asyncio.sleep(0.005)
        rest = [await post(http, r) for _ in range(4)]
        assert (await first)[1]["replica"] == "slow"
    assert [body["replica"] for _, body in rest] == ["fast"] * 4


async def test_a_draining_replica_s_503_is_retried_elsewhere() -> None:
    async with backend(answering("draining", status=503)) as bad, backend(answering("ok")) as good, \
            router() as r, aiohttp.ClientSession() as http:  # fmt: skip
        r.add("draining", bad)
        r.add("ok", good)
        answers = [await post(http, r) for _ in range(4)]
    assert answers == [(200, {"replica": "ok", "path": "/v1/completions", "body": '{"prompt":"hi"}'})] * 4
    totals = r.totals()
    assert (totals.ok, totals.failed, totals.retries) == (4, 0, 2)  # half the picks hit the draining one first


async def test_a_vanished_replica_is_retried_elsewhere() -> None:
    async with backend(answering("ok")) as good, router() as r, aiohttp.ClientSession() as http:
        async with backend(answering("gone")) as gone:
            pass  # closed: its port now refuses connections
        r.add("gone", gone)
        r.add("ok", good)
        answers = [await post(http, r) for _ in range(3)]
    assert [status for status, _ in answers] == [200, 200, 200]
    assert r.totals().retries >= 1


async def test_when_every_replica_refuses_the_client_gets_503() -> None:
    async with backend(answering("a", status=503)) as a, router() as r, aiohttp.ClientSession() as http:
        r.add("a", a)
        status, _ = await post(http, r)
        r.remove("a")
        empty_status, body = await post(http, r)
    assert (status, empty_status) == (503, 503)
    assert "no ready replica" in str(body)
    assert r.totals().failed == 2


async def test_streams_pass_through_chunk_by_chunk() -> None:
    release = asyncio.Event()

    async def streaming(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        await release.wait()  # the second chunk only once the client has the first
        await response.write(b"data: second\n\n")
        await response.write_eof()
        return response

    async with backend(streaming) as url, router() as r, aiohttp.ClientSession() as http:
        r.add("s", url)
        async with http.post(f"http://127.0.0.1:{r.port}/v1/completions", data=b"{}") as response:
            first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), timeout=5)
            release.set()
            rest = await response.content.read()
            content_type = response.headers["Content-Type"]
    assert (first, rest, content_type) == (b"data: first\n\n", b"data: second\n\n", "text/event-stream")
    window = r.take_window()
    assert (window.arrivals, window.ok, len(window.ttfb_s), len(window.e2e_s)) == (1, 1, 1, 1)
    assert window.ttfb_s[0] <= window.e2e_s[0]
    assert r.take_window().arrivals == 0  # a window is handed out once


def test_membership_replaces_an_address_and_removes() -> None:
    r = Router()
    r.update("a", "http://127.0.0.1:1/")
    r.update("b", "http://127.0.0.1:2")
    r.update("a", "http://127.0.0.1:3")
    assert r.backends == {"b": "http://127.0.0.1:2", "a": "http://127.0.0.1:3"}
    r.update("b", None)
    assert r.backends == {"a": "http://127.0.0.1:3"}


@pytest.mark.parametrize("policy", list(RoutingPolicy))
def test_pick_skips_replicas_already_tried(policy: RoutingPolicy) -> None:
    r = Router(policy=policy)
    for name in ("a", "b", "c"):
        r.add(name, f"http://127.0.0.1/{name}")
    picked = [r._pick({"a", "b"}), r._pick({"a", "b", "c"})]
    assert [p.name if p is not None else None for p in picked] == ["c", None]
