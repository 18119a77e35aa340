"""GKE's jetstream-http sidecar API (POST /generate, GET /healthcheck) and vLLM's GET /health, over HTTP.

The request and answer shapes are those of ai-on-gke's ``http-server/http_server.py`` (the sidecar) and
of the clients that call it: the locust-load-inference HTTP user and the latency profile generator
(``--backend jetstream``), which read ``response`` (or, streamed, each object's ``text``).
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from conftest import ManualClock, ServerFactory
from server_fakes import FakeEngine

from jetscale.server import ModelServer, Tokenizer

TOKENIZER = Tokenizer()


def url(server: ModelServer, path: str) -> str:
    return f"http://127.0.0.1:{server.http_port}{path}"


async def test_generate_answers_the_whole_text_under_response(any_server: ModelServer) -> None:
    body = {"prompt": "Why is the sky blue?", "max_tokens": 7}
    async with aiohttp.ClientSession() as http, http.post(url(any_server, "/generate"), json=body) as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        answer = await resp.json()
    assert list(answer) == ["response"]
    assert len(TOKENIZER.encode(answer["response"])) == 7


async def test_generate_streams_one_object_per_batch_then_an_empty_one(any_server: ModelServer) -> None:
    body = {"prompt": "Why is the sky blue?", "max_tokens": 9, "stream": True}
    async with aiohttp.ClientSession() as http, http.post(url(any_server, "/generate"), json=body) as resp:
        assert resp.status == 200 and resp.content_type == "application/json"
        raw = await resp.text()
    chunks = [json.loads(line) for line in raw.splitlines()]
    assert all(set(c) == {"id", "time_created", "text"} for c in chunks)
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("generate-")
    assert chunks[-1]["text"] == "" and all(c["text"] for c in chunks[:-1])
    assert len(TOKENIZER.encode("".join(c["text"] for c in chunks))) == 9


async def test_generate_takes_the_sidecars_defaults_and_ignores_unknown_fields(make_server: ServerFactory) -> None:
    server = await make_server(max_output_tokens=200)
    # the ai-on-gke latency profile generator adds temperature; the sidecar's own fields are accepted too
    body = {"temperature": 1.0, "priority": 0, "session_cache": "", "server": "127.0.0.1", "port": "9000"}
    async with aiohttp.ClientSession() as http, http.post(url(server, "/generate"), json=body) as resp:
        assert resp.status == 200
        answer = await resp.json()
    assert len(TOKENIZER.encode(answer["response"])) == 100  # the sidecar's default max_tokens
    assert server.runtime.in_flight == 0


async def test_generate_default_max_tokens_is_capped_at_the_servers_limit(make_server: ServerFactory) -> None:
    server = await make_server(max_output_tokens=20)
    async with aiohttp.ClientSession() as http, http.post(url(server, "/generate"), json={"prompt": "hi"}) as resp:
        assert resp.status == 200
        assert len(TOKENIZER.encode((await resp.json())["response"])) == 20


@pytest.mark.parametrize(
    ("body", "field", "value"),
    [
        ({"prompt": "hi", "max_tokens": 0}, "max_tokens", 0),
        ({"prompt": "hi", "max_tokens": 100_000}, "max_tokens", 100_000),
        ({"prompt": "hi", "max_tokens": "5"}, "max_tokens", "5"),
        ({"prompt": 12, "max_tokens": 5}, "prompt", 12),
        ({"prompt": "   ", "max_tokens": 5}, "prompt", "   "),
        ({"prompt": "hi", "stream": "yes"}, "stream", "yes"),
        ({"prompt": "hi", "priority": "high"}, "priority", "high"),
        ({"prompt": "hi", "session_cache": 3}, "session_cache", 3),
    ],
    ids=[
        "zero",
        "over-limit",
        "string-tokens",
        "prompt-number",
        "empty-prompt",
        "stream-string",
        "priority-string",
        "session-cache-number",
    ],
)
async def test_generate_refuses_bad_values_naming_the_field(
    any_server: ModelServer, body: dict[str, object], field: str, value: object
) -> None:
    async with aiohttp.ClientSession() as http, http.post(url(any_server, "/generate"), json=body) as resp:
        assert resp.status == 422
        error = (await resp.json())["error"]
    assert (error["field"], error["value"]) == (field, value)


async def test_generate_sheds_with_429_and_retry_after_when_the_backlog_is_full(make_server: ServerFactory) -> None:
    clock = ManualClock()
    server = await make_server(FakeEngine(prefill_s=2.0, decode_slots=1, backlog_limit=1), clock=clock, speed=1.0)
    body = {"prompt": "hi", "max_tokens": 2}
    async with aiohttp.ClientSession() as http:

        async def generate() -> tuple[int, str]:
            async with http.post(url(server, "/generate"), json=body) as resp:
                return resp.status, (await resp.json())["response"]

        accepted = []
        for expected in (1, 2):  # one prefilling, one in the backlog
            accepted.append(asyncio.create_task(generate()))
            while server.runtime.in_flight < expected:
                await asyncio.sleep(0.001)
        async with http.post(url(server, "/generate"), json=body) as resp:
            assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
            assert (await resp.json())["error"]["type"] == "overloaded_error"
        for _ in range(12):
            await clock.advance(0.5)
        results = await asyncio.gather(*accepted)
    assert [(status, len(TOKENIZER.encode(text))) for status, text in results] == [(200, 2), (200, 2)]


async def test_health_paths_answer_200_when_ready_and_503_while_loading(make_server: ServerFactory) -> None:
    clock = ManualClock()
    server = await make_server(clock=clock, speed=1.0, model_load_engine_s=1.0)
    async with aiohttp.ClientSession() as http:
        async with http.get(url(server, "/health")) as resp:
            assert resp.status == 503 and (await resp.json())["error"]["type"] == "unavailable_error"
        async with http.get(url(server, "/healthcheck")) as resp:
            assert (resp.status, await resp.json()) == (503, {"response": {"is_live": False}})
        await clock.advance(1.0)
        async with http.get(url(server, "/health")) as resp:
            assert (resp.status, await resp.read()) == (200, b"")  # vLLM's answer: 200, no body
        async with http.get(url(server, "/healthcheck")) as resp:
            assert (resp.status, await resp.json()) == (200, {"response": {"is_live": True}})
