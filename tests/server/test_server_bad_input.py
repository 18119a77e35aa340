"""Bad requests over HTTP: each gets 400/413/422 and a JSON error naming the field (never a 500)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
from conftest import ServerFactory

LONG_TEXT = " ".join(["word"] * 65)  # the test server's max prefill length is 64 tokens


@dataclass(frozen=True)
class Case:
    id: str
    path: str
    body: object  # bytes are sent as they are; anything else as JSON
    status: int
    field: str
    value: object = ...  # ... = not checked


GEN = "/v1/generate"
CMP = "/v1/completions"
CHAT = "/v1/chat/completions"
TEXT = {"text_content": {"text": "hello"}}
CASES = [
    Case("generate invalid JSON", GEN, b"{not json", 400, "body"),
    Case("generate body not UTF-8", GEN, b"\xff\xfe", 400, "body"),
    Case("generate body is a list", GEN, [1, 2], 422, "body"),
    Case("generate JSON nested 1,000 deep", GEN, b'{"max_tokens": 3, "x": ' + b"[" * 1000 + b"]" * 1000 + b"}", 400,
         "body", "1001 levels"),
    Case("generate 3,000-digit number", GEN, b'{"max_tokens": ' + b"9" * 3000 + b"}", 400, "body"),
    Case("completions NaN", CMP, b'{"model": "m", "prompt": "hi", "temperature": NaN}', 400, "body"),
    Case("generate missing max_tokens", GEN, TEXT, 422, "max_tokens"),
    Case("generate unknown field", GEN, {"max_tokens": 3, **TEXT, "num_samples": 2}, 422, "num_samples", 2),
    Case("generate unknown nested field", GEN, {"max_tokens": 3, "text_content": {"text": "a", "x": 1}}, 422,
         "text_content.x", 1),
    Case("generate max_tokens zero", GEN, {"max_tokens": 0, **TEXT}, 422, "max_tokens", 0),
    Case("generate max_tokens negative", GEN, {"max_tokens": -4, **TEXT}, 422, "max_tokens", -4),
    Case("generate max_tokens too large", GEN, {"max_tokens": 33, **TEXT}, 422, "max_tokens", 33),
    Case("generate max_tokens a string", GEN, {"max_tokens": "5", **TEXT}, 422, "max_tokens", "5"),
    Case("generate max_tokens a bool", GEN, {"max_tokens": True, **TEXT}, 422, "max_tokens", True),
    Case("generate max_tokens a float", GEN, {"max_tokens": 2.5, **TEXT}, 422, "max_tokens", 2.5),
    Case("generate no content", GEN, {"max_tokens": 3}, 422, "text_content"),
    Case("generate both contents", GEN, {"max_tokens": 3, **TEXT, "token_content": {"token_ids": [5]}}, 422,
         "token_content"),
    Case("generate text not a string", GEN, {"max_tokens": 3, "text_content": {"text": 12}}, 422,
         "text_content.text", 12),
    Case("generate empty prompt", GEN, {"max_tokens": 3, "text_content": {"text": "  "}}, 422, "text_content.text"),
    Case("generate prompt over max prefill", GEN, {"max_tokens": 3, "text_content": {"text": LONG_TEXT}}, 422,
         "text_content.text", "65 tokens"),
    Case("generate token id out of range", GEN, {"max_tokens": 3, "token_content": {"token_ids": [5, 32000]}}, 422,
         "token_content.token_ids[1]", 32000),
    Case("generate token ids not a list", GEN, {"max_tokens": 3, "token_content": {"token_ids": "5"}}, 422,
         "token_content.token_ids"),
    Case("generate start_time not a number", GEN, {"max_tokens": 3, **TEXT, "metadata": {"start_time": "x"}}, 422,
         "metadata.start_time", "x"),
    Case("completions missing model", CMP, {"prompt": "hi"}, 422, "model"),
    Case("completions unknown field", CMP, {"model": "m", "prompt": "hi", "foo": 1}, 422, "foo", 1),
    Case("completions n > 1", CMP, {"model": "m", "prompt": "hi", "n": 2}, 422, "n", 2),
    Case("completions two prompts", CMP, {"model": "m", "prompt": ["a", "b"]}, 422, "prompt"),
    Case("completions no prompt", CMP, {"model": "m"}, 422, "prompt"),
    Case("completions max_tokens zero", CMP, {"model": "m", "prompt": "hi", "max_tokens": 0}, 422, "max_tokens", 0),
    Case("completions prompt too long", CMP, {"model": "m", "prompt": LONG_TEXT}, 422, "prompt", "65 tokens"),
    Case("completions stream not a bool", CMP, {"model": "m", "prompt": "hi", "stream": "yes"}, 422, "stream", "yes"),
    Case("completions echo", CMP, {"model": "m", "prompt": "hi", "echo": True}, 422, "echo", True),
    Case("chat no messages", CHAT, {"model": "m", "messages": []}, 422, "messages"),
    Case("chat unknown role", CHAT, {"model": "m", "messages": [{"role": "robot", "content": "x"}]}, 422,
         "messages[0].role", "robot"),
    Case("chat image part", CHAT, {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
         422, "messages[0].content[0].type", "image_url"),
    Case("chat max_completion_tokens too large", CHAT,
         {"model": "m", "messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 999}, 422,
         "max_completion_tokens", 999),
    Case("oversize body", GEN, {"max_tokens": 3, "text_content": {"text": "x" * 5000}}, 413, "body"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_bad_input_is_refused_naming_the_field(make_server: ServerFactory, case: Case) -> None:
    server = await make_server(max_body_bytes=4096)
    data = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    headers = {"Content-Type": "application/json"}
    url = f"http://127.0.0.1:{server.http_port}{case.path}"
    async with aiohttp.ClientSession() as http, http.post(url, data=data, headers=headers) as resp:
        status, error = resp.status, (await resp.json())["error"]
    assert status == case.status
    assert error["field"] == error["param"] == case.field
    assert f"'{case.field}'" in error["message"]
    if case.value is not ...:
        assert error["value"] == case.value
    assert server.runtime.in_flight == 0


async def test_an_oversize_chunked_body_is_413(make_server: ServerFactory) -> None:
    server = await make_server(max_body_bytes=4096)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    url = f"http://127.0.0.1:{server.http_port}/v1/generate"
    async with aiohttp.ClientSession() as http, http.post(url, data=chunks()) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["field"] == "body"
