"""The router's limits are the replicas': a body a replica would refuse is refused by the router itself, with
the replica's 413 (same limit, same JSON error shape), and nothing of it reaches a replica; a body at the
limit goes through. The router's own answers have the replicas' error shape, a replica's 405 keeps its
``Allow``, and a router that cannot listen says which field is at fault.

The replica here is a real ``ModelServer`` (``jetscale serve``'s ``build_server``) in the test's event
loop; the counting backend is a small aiohttp app. All on 127.0.0.1.
"""

from __future__ import annotations

import io
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web

from jetscale.cli.serve import build_server
from jetscale.fleet.router import Router
from jetscale.server.app import ModelServer
from jetscale.server.config import MAX_BODY_BYTES, ListenError, ServerConfig

LIMIT = MAX_BODY_BYTES
ERROR_KEYS = {"message", "type", "param", "field", "value", "code"}


@asynccontextmanager
async def replica() -> AsyncIterator[ModelServer]:
    server, _ = build_server(preset="v5e-8/llama2-7b", port=0, grpc_port=None, model_load_s=0.0, server_id="r-0")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@asynccontextmanager
async def counting_backend(seen: list[int]) -> AsyncIterator[str]:
    """A backend that takes bodies of any size (up to 4 x the limit) and records the size of each one."""

    async def handle(request: web.Request) -> web.Response:
        seen.append(len(await request.read()))
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=4 * LIMIT)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def router(*urls: str) -> AsyncIterator[Router]:
    r = Router(port=0)
    await r.start()
    for i, url in enumerate(urls):
        r.add(f"r-{i}", url)
    try:
        yield r
    finally:
        await r.stop()


async def _chunks(size: int) -> AsyncIterator[bytes]:
    """``size`` bytes sent chunked (no Content-Length), in pieces of 64 KiB."""
    piece = 64 << 10
    for start in range(0, size, piece):
        yield b"x" * min(piece, size - start)


Body = Callable[[int], object]
WITH_LENGTH: Body = lambda size: io.BytesIO(b"x" * size)  # noqa: E731  (BytesIO: a Content-Length, no warning)
CHUNKED: Body = _chunks


async def _post(http: aiohttp.ClientSession, url: str, body: object) -> tuple[int, dict[str, object]]:
    async with http.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
        return response.status, await response.json()


def test_the_router_s_limit_is_the_replicas() -> None:
    assert Router().max_body_bytes == ServerConfig(server_id="x", model_name="m").max_body_bytes == LIMIT


@pytest.mark.parametrize(
    ("body", "value"),
    [pytest.param(WITH_LENGTH, f"{LIMIT + 1} bytes", id="with a length"),
     pytest.param(CHUNKED, "more bytes", id="chunked")],
)  # fmt: skip
async def test_a_body_over_the_limit_gets_the_replica_s_413_from_the_router(body: Body, value: str) -> None:
    async with replica() as server, aiohttp.ClientSession() as http:
        direct = await _post(http, f"http://127.0.0.1:{server.http_port}/v1/generate", body(LIMIT + 1))
        async with router(f"http://127.0.0.1:{server.http_port}") as r:
            proxied = await _post(http, f"http://127.0.0.1:{r.port}/v1/generate", body(LIMIT + 1))
            totals = r.totals()
    assert proxied == direct
    status, answer = proxied
    assert status == 413
    error = answer["error"]
    assert isinstance(error, dict) and set(error) == ERROR_KEYS
    assert (error["field"], error["value"]) == ("body", value)
    assert error["message"] == f"'body' must be at most {LIMIT} bytes (got {value!r})"
    assert (totals.client_errors, totals.retries) == (1, 0)


@pytest.mark.parametrize("body", [pytest.param(WITH_LENGTH, id="with a length"), pytest.param(CHUNKED, id="chunked")])
async def test_nothing_over_the_limit_reaches_a_replica_and_the_limit_itself_does(body: Body) -> None:
    seen: list[int] = []
    async with counting_backend(seen) as url, router(url) as r, aiohttp.ClientSession() as http:
        over, _ = await _post(http, f"http://127.0.0.1:{r.port}/v1/completions", body(LIMIT + 1))
        at, _ = await _post(http, f"http://127.0.0.1:{r.port}/v1/completions", body(LIMIT))
    assert (over, at) == (413, 200)
    assert seen == [LIMIT]


async def test_a_replica_s_405_keeps_its_allow_header_through_the_router() -> None:
    async with replica() as server, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{server.http_port}"
        async with http.delete(f"{url}/v1/generate") as response:
            direct = (response.status, response.headers.get("Allow"), await response.json())
        async with router(url) as r, http.delete(f"http://127.0.0.1:{r.port}/v1/generate") as response:
            proxied = (response.status, response.headers.get("Allow"), await response.json())
    assert proxied == direct
    assert direct[0] == 405


async def test_the_router_s_own_503_has_the_replicas_error_shape() -> None:
    async with router() as r, aiohttp.ClientSession() as http:
        status, answer = await _post(http, f"http://127.0.0.1:{r.port}/v1/completions", b"{}")
        async with http.get(f"http://127.0.0.1:{r.port}/v1/models") as response:
            retry_after = response.headers.get("Retry-After")
    assert (status, retry_after) == (503, "1")
    error = answer["error"]
    assert isinstance(error, dict) and set(error) == ERROR_KEYS and error["type"] == "unavailable_error"


async def test_a_router_on_a_port_in_use_names_the_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = int(sock.getsockname()[1])
        r = Router(port=taken)
        with pytest.raises(ListenError, match=f"cannot listen for the router on 127.0.0.1:{taken}") as caught:
            await r.start()
    assert (caught.value.field, caught.value.port) == ("port", taken)
    assert str(caught.value.flag_error("--port")).startswith(f"'--port' must be a port free to listen on at 127.0.0.1 "
                                                            f"(got {taken}: ")  # fmt: skip


async def test_a_router_on_a_host_name_that_is_no_name_names_the_host() -> None:
    r = Router(host="not..a..host", port=0)
    with pytest.raises(ListenError) as caught:
        await r.start()
    assert (caught.value.field, caught.value.reason) == ("host", "not a valid host name")
