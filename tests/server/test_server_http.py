"""JetStream's HTTP API over a real socket: /v1/generate (streamed and not), health, readiness, overload."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from conftest import ManualClock, ServerFactory, server_config
from server_fakes import FakeEngine, split_json

from jetscale.errors import ServingError
from jetscale.server import ModelServer, State, Tokenizer

TOKENIZER = Tokenizer()


def url(server: ModelServer, path: str) -> str:
    return f"http://127.0.0.1:{server.http_port}{path}"


def sample(message: dict[str, object]) -> dict[str, object]:
    samples = message["streamContent"]["samples"]  # type: ignore[index]
    assert len(samples) == 1
    return samples[0]  # type: ignore[no-any-return]


async def test_generate_streams_token_chunks_then_an_empty_sample(any_server: ModelServer) -> None:
    body = {"max_tokens": 20, "text_content": {"text": "Why is the sky blue?"}}
    async with aiohttp.ClientSession() as http, http.post(url(any_server, "/v1/generate"), json=body) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        text = "".join([chunk.decode() async for chunk in resp.content.iter_any()])
    messages = split_json(text)
    assert sample(messages[-1]) == {}
    ids: list[int] = []
    for message in messages[:-1]:
        piece = sample(message)
        assert piece["text"] == TOKENIZER.decode(piece["tokenIds"])  # type: ignore[arg-type]
        ids += piece["tokenIds"]  # type: ignore[operator]
    assert len(ids) == 20
    assert '\n  "streamContent"' in text  # pretty-printed like JetStream's MessageToJson


async def test_generate_with_token_ids_answers_with_ids_only(any_server: ModelServer) -> None:
    body = {"max_tokens": 5, "token_content": {"token_ids": [1, 500, 501, 502]}, "metadata": {"start_time": 1.5}}
    async with aiohttp.ClientSession() as http, http.post(url(any_server, "/v1/generate"), json=body) as resp:
        messages = split_json(await resp.text())
    assert resp.status == 200
    assert all("text" not in sample(m) for m in messages)
    assert sum(len(sample(m).get("tokenIds", [])) for m in messages) == 5  # type: ignore[arg-type]


async def test_generate_answers_one_message_when_the_client_accepts_json(any_server: ModelServer) -> None:
    body = {"max_tokens": 7, "text_content": {"text": "hello"}}
    headers = {"Accept": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(url(any_server, "/v1/generate"), json=body, headers=headers) as r,
    ):
        message = json.loads(await r.text())
    piece = sample(message)
    assert len(piece["tokenIds"]) == 7  # type: ignore[arg-type]
    assert piece["text"] == TOKENIZER.decode(piece["tokenIds"])  # type: ignore[arg-type]


async def test_output_text_depends_only_on_the_seed_and_the_request(make_server: ServerFactory) -> None:
    servers = [await make_server(seed=seed) for seed in (7, 7, 8)]
    body = {"max_tokens": 6, "text_content": {"text": "same prompt"}}
    texts = []
    async with aiohttp.ClientSession() as http:
        for server in servers:
            async with http.post(url(server, "/v1/generate"), json=body, headers={"Accept": "application/json"}) as r:
                texts.append(sample(json.loads(await r.text()))["text"])
    assert texts[0] == texts[1] != texts[2]


async def test_not_ready_before_the_model_load_time(make_server: ServerFactory) -> None:
    clock = ManualClock()
    server = await make_server(FakeEngine(), clock=clock, speed=1.0, model_load_engine_s=5.0)
    body = {"max_tokens": 3, "text_content": {"text": "hi"}}
    async with aiohttp.ClientSession() as http:
        async with http.get(url(server, "/v1/health")) as resp:
            assert (resp.status, await resp.json()) == (503, {"is_live": "False"})
        async with http.get(url(server, "/healthz/ready")) as resp:
            assert resp.status == 503 and (await resp.json())["state"] == "loading"
        async with http.get(url(server, "/healthz/live")) as resp:
            assert resp.status == 200
        async with http.post(url(server, "/v1/generate"), json=body) as resp:
            assert (resp.status, resp.headers["Retry-After"]) == (503, "5")
        await clock.advance(5.0)
        async with http.get(url(server, "/v1/health")) as resp:
            assert (resp.status, await resp.json()) == (200, {"is_live": "True"})
        async with http.get(url(server, "/healthz/ready")) as resp:
            assert resp.status == 200 and (await resp.json())["ready"] is True


async def test_a_full_prefill_backlog_answers_429_and_accepted_requests_still_end(make_server: ServerFactory) -> None:
    clock = ManualClock()
    engine = FakeEngine(prefill_s=2.5, step_s=0.1, decode_slots=1, backlog_limit=1)
    server = await make_server(engine, clock=clock, speed=1.0)
    body = {"max_tokens": 3, "text_content": {"text": "hi"}}
    headers = {"Accept": "application/json"}
    async with aiohttp.ClientSession() as http:

        async def generate() -> tuple[int, str]:
            async with http.post(url(server, "/v1/generate"), json=body, headers=headers) as resp:
                return resp.status, await resp.text()

        accepted = []
        for expected_in_flight in (1, 2):
            accepted.append(asyncio.create_task(generate()))
            while server.runtime.in_flight < expected_in_flight:
                await asyncio.sleep(0.001)
        async with http.post(url(server, "/v1/generate"), json=body) as resp:
            assert resp.status == 429
            assert resp.headers["Retry-After"] == "3"  # the prefill under way ends in 2.5 s
            assert (await resp.json())["error"]["type"] == "overloaded_error"
        for _ in range(12):
            await clock.advance(0.5)
        results = await asyncio.gather(*accepted)
    assert [status for status, _ in results] == [200, 200]
    assert server.runtime.in_flight == 0


async def test_unknown_routes_and_methods_get_json_errors(any_server: ModelServer) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(url(any_server, "/v2/nothing")) as resp:
            assert resp.status == 404 and (await resp.json())["error"]["value"] == "/v2/nothing"
        async with http.get(url(any_server, "/v1/generate")) as resp:
            assert resp.status == 405 and "error" in await resp.json()


async def test_root_says_what_it_is(any_server: ModelServer) -> None:
    async with aiohttp.ClientSession() as http, http.get(url(any_server, "/")) as resp:
        assert await resp.json() == {"message": "JetStream HTTP Server"}


async def test_a_client_that_hangs_up_mid_stream_does_not_stay_in_flight(make_server: ServerFactory) -> None:
    clock = ManualClock()
    server = await make_server(FakeEngine(prefill_s=0.1, step_s=0.1), clock=clock, speed=1.0)
    body = {"max_tokens": 30, "text_content": {"text": "hi"}}
    async with aiohttp.ClientSession() as http:
        resp = await http.post(url(server, "/v1/generate"), json=body)
        await clock.advance(0.2)
        assert b"tokenIds" in await resp.content.readany()
        resp.close()  # hang up
    for _ in range(30):
        await clock.advance(0.1)
    for _ in range(100):
        if server.runtime.in_flight == 0:
            break
        await asyncio.sleep(0.01)
    assert server.runtime.in_flight == 0


@pytest.mark.parametrize("which", ["http_port", "grpc_port"])
async def test_a_port_in_use_is_a_serving_error(make_server: ServerFactory, which: str) -> None:
    first = await make_server()
    taken = first.http_port if which == "http_port" else first.grpc_port
    second = ModelServer(FakeEngine(), server_config(**{which: taken}))
    with pytest.raises(ServingError, match=f"cannot listen.*127.0.0.1:{taken}"):
        await second.start()
    assert second.runtime.state is State.STOPPED
