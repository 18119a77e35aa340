"""A vLLM-kind server over HTTP: vLLM 0.34.0's routes, response shapes, limits and error JSON.

The fake engine's server has max_model_len 96 (prompt limit 64 + output limit 32 of the test config), so
the limits are worked out by hand; the shapes are checked on vLLM's scheduler (``make_engine``) too.
"""

from __future__ import annotations

import json

import aiohttp
import pytest
from conftest import ServerFactory
from server_fakes import FakeEngine

from jetscale.server import ModelServer, Tokenizer
from jetscale.server.vllm_protocol import BUSY_MESSAGE

TOKENIZER = Tokenizer()
CMP = "/v1/completions"
CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]


def url(server: ModelServer, path: str) -> str:
    return f"http://127.0.0.1:{server.http_port}{path}"


async def call(
    server: ModelServer, path: str, body: object = None, *, method: str = "POST", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    async with aiohttp.ClientSession() as http:
        kwargs: dict[str, object] = {"headers": headers}
        if body is not None:
            kwargs["json"] = body
        async with http.request(method, url(server, path), **kwargs) as resp:  # type: ignore[arg-type]
            return resp.status, dict(resp.headers), await resp.text()


async def sse(server: ModelServer, path: str, body: dict[str, object]) -> list[dict[str, object]]:
    status, _, raw = await call(server, path, body)
    assert status == 200, raw
    events = [line.removeprefix("data: ") for line in raw.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


async def test_health_version_and_models_answer_as_vllm(vllm_server: ModelServer) -> None:
    status, _, body = await call(vllm_server, "/health", method="GET")
    assert (status, body) == (200, "")
    status, _, body = await call(vllm_server, "/version", method="GET")
    assert (status, json.loads(body)) == (200, {"version": "0.34.0"})
    status, _, body = await call(vllm_server, "/v1/models", method="GET")
    (card,) = json.loads(body)["data"]
    name = vllm_server.config.model_name
    assert status == 200
    assert (card["id"], card["object"], card["owned_by"], card["root"], card["parent"]) == (
        name, "model", "vllm", name, None,
    )  # fmt: skip
    assert card["max_model_len"] == vllm_server.config.max_model_len
    (permission,) = card["permission"]
    assert permission["object"] == "model_permission" and permission["id"].startswith("modelperm-")
    assert permission["allow_sampling"] is True and permission["organization"] == "*"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/", id="JetStream root"),
        pytest.param("GET", "/v1/health", id="JetStream health"),
        pytest.param("POST", "/v1/generate", id="JetStream generate"),
        pytest.param("POST", "/generate", id="sidecar generate"),
        pytest.param("GET", "/healthcheck", id="sidecar health"),
        pytest.param("GET", "/openapi.json", id="jetscale's OpenAPI document"),
    ],
)
async def test_jetstream_routes_are_not_served(make_server: ServerFactory, method: str, path: str) -> None:
    server = await make_server(FakeEngine(), kind="vllm", grpc_port=None)
    status, _, body = await call(server, path, {} if method == "POST" else None, method=method)
    assert status == 404
    assert json.loads(body) == {"error": {"message": "Not Found", "type": "Not Found", "param": None, "code": 404}}
    assert server.grpc_port is None


async def test_a_completion_has_vllms_fields_and_counts(vllm_server: ModelServer) -> None:
    prompt = "Why is the sky blue?"
    status, _, raw = await call(vllm_server, CMP, {"prompt": prompt, "max_tokens": 7})
    body = json.loads(raw)
    assert status == 200, raw
    assert body["id"].startswith("cmpl-") and len(body["id"]) == len("cmpl-") + 16
    assert body["object"] == "text_completion" and body["model"] == vllm_server.config.model_name
    assert body["system_fingerprint"].startswith("vllm-0.34.0-")
    assert body["service_tier"] is None and body["kv_transfer_params"] is None
    (choice,) = body["choices"]
    assert (choice["finish_reason"], choice["stop_reason"], choice["logprobs"]) == ("length", None, None)
    assert len(TOKENIZER.encode(choice["text"])) == 7
    prompt_tokens = TOKENIZER.count(prompt)
    assert body["usage"] == {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + 7, "completion_tokens": 7}


async def test_the_request_id_header_names_the_response(vllm_server: ModelServer) -> None:
    status, _, raw = await call(vllm_server, CHAT, {"messages": MESSAGES, "max_tokens": 2},
                                headers={"X-Request-Id": "trace-1"})  # fmt: skip
    assert status == 200 and json.loads(raw)["id"] == "chatcmpl-trace-1"
    status, _, raw = await call(vllm_server, CMP, {"prompt": "hi", "max_tokens": 2, "request_id": "body-2"})
    assert status == 200 and json.loads(raw)["id"] == "cmpl-body-2"


async def test_a_chat_without_max_tokens_gets_the_rest_of_the_context(make_server: ServerFactory) -> None:
    server = await make_server(FakeEngine(), kind="vllm", grpc_port=None)  # max_model_len 96
    prompt_tokens = TOKENIZER.count("user: Why is the sky blue?\nassistant:")
    status, _, raw = await call(server, CHAT, {"model": "fake-llm", "messages": MESSAGES})
    body = json.loads(raw)
    assert status == 200, raw
    message = body["choices"][0]["message"]
    assert message["role"] == "assistant" and message["tool_calls"] == [] and message["reasoning"] is None
    assert body["usage"]["prompt_tokens"] == prompt_tokens
    assert body["usage"]["completion_tokens"] == 96 - prompt_tokens == len(TOKENIZER.encode(message["content"]))


async def test_a_completion_stream_ends_with_the_usage_chunk_then_done(vllm_server: ModelServer) -> None:
    chunks = await sse(vllm_server, CMP, {"prompt": "Tell me", "max_tokens": 9, "stream": True,
                                          "stream_options": {"include_usage": True}})  # fmt: skip
    *content, finish, usage = chunks
    assert all(c["object"] == "text_completion" and "system_fingerprint" not in c for c in [*content, finish])
    assert all(c["choices"][0]["finish_reason"] is None for c in content)  # type: ignore[index]
    assert finish["choices"][0]["finish_reason"] == "length"  # type: ignore[index]
    text = "".join(c["choices"][0]["text"] for c in [*content, finish])  # type: ignore[index]
    assert len(TOKENIZER.encode(text)) == 9
    assert usage["choices"] == [] and str(usage["system_fingerprint"]).startswith("vllm-0.34.0-")
    assert usage["usage"] == {"prompt_tokens": 2, "total_tokens": 11, "completion_tokens": 9}


async def test_a_chat_stream_opens_with_the_assistant_role(vllm_server: ModelServer) -> None:
    chunks = await sse(vllm_server, CHAT, {"messages": MESSAGES, "max_tokens": 5, "stream": True})
    first, *rest = chunks
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": ""}  # type: ignore[index]
    assert all(c["object"] == "chat.completion.chunk" and "usage" not in c for c in chunks)
    assert rest[-1]["choices"][0]["finish_reason"] == "length"  # type: ignore[index]
    assert str(rest[-1]["system_fingerprint"]).startswith("vllm-")
    text = "".join(c["choices"][0]["delta"]["content"] for c in rest)  # type: ignore[index]
    assert len(TOKENIZER.encode(text)) == 5


LONG_PROMPT = "a " * 100  # 100 tokens, over max_model_len 96
CONTEXT = ("This model's maximum context length is 96 tokens. However, your prompt contains {} input tokens, which "
           "exceeds this limit even without any output tokens. Please reduce the length of the input prompt. "
           "(parameter=input_tokens, value={})")  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "status", "kind", "param", "message"),
    [
        pytest.param(CMP, {"model": "gpt-4", "prompt": "hi"}, 404, "NotFoundError", "model",
                     "'model' must be 'fake-llm', the model this server serves (got 'gpt-4')", id="unknown model"),
        pytest.param(CMP, {"prompt": LONG_PROMPT}, 400, "BadRequestError", "input_tokens", CONTEXT.format(100, 100),
                     id="prompt over max_model_len"),
        pytest.param(CMP, {"prompt": "a " * 96}, 400, "BadRequestError", "input_tokens", CONTEXT.format(96, 96),
                     id="prompt of max_model_len leaves no output token"),
        pytest.param(CHAT, {"messages": [{"role": "user", "content": LONG_PROMPT}]}, 400, "BadRequestError",
                     "input_tokens", None, id="chat prompt over max_model_len"),
        pytest.param(CMP, {"prompt": "hi", "max_tokens": 97}, 400, "BadRequestError", "max_tokens",
                     "max_tokens=97 cannot be greater than max_model_len=96. Please request fewer output tokens. "
                     "(parameter=max_tokens, value=97)", id="max_tokens over max_model_len"),
        pytest.param(CHAT, {"messages": MESSAGES, "max_completion_tokens": 200}, 400, "BadRequestError",
                     "max_completion_tokens", None, id="max_completion_tokens over max_model_len"),
        pytest.param(CMP, {"prompt": 7}, 400, "BadRequestError", "prompt", None, id="prompt of the wrong type"),
        pytest.param(CMP, {"prompt": "hi", "max_tokens": 0}, 400, "BadRequestError", "max_tokens",
                     "'max_tokens' must be >= 1 (got 0)", id="max_tokens zero"),
        pytest.param(CHAT, {"messages": []}, 400, "BadRequestError", "messages", None, id="no messages"),
        pytest.param(CMP, {"prompt": "hi", "max_token": 3}, 400, "BadRequestError", "max_token", None,
                     id="a misspelt field"),
        pytest.param("/tokenize", {"model": "other", "prompt": "hi"}, 404, "NotFoundError", "model", None,
                     id="tokenize with an unknown model"),
        pytest.param("/detokenize", {"tokens": [1, -2]}, 400, "BadRequestError", "tokens[1]", None,
                     id="detokenize a negative id"),
    ],
)  # fmt: skip
async def test_errors_are_vllms_json_with_the_param(
    make_server: ServerFactory, path: str, body: object, status: int, kind: str, param: str, message: str | None
) -> None:
    server = await make_server(FakeEngine(), kind="vllm", grpc_port=None)
    got, _, raw = await call(server, path, body)
    error = json.loads(raw)["error"]
    assert (got, error["code"], error["type"], error["param"]) == (status, status, kind, param), raw
    assert set(error) == {"message", "type", "param", "code"}
    if message is not None:
        assert error["message"] == message
    assert "\n" not in error["message"]


async def test_max_tokens_is_clamped_to_the_rest_of_the_context(make_server: ServerFactory) -> None:
    server = await make_server(FakeEngine(), kind="vllm", grpc_port=None)
    status, _, raw = await call(server, CMP, {"prompt": "a " * 90, "max_tokens": 20})
    assert status == 200, raw
    assert json.loads(raw)["usage"] == {"prompt_tokens": 90, "total_tokens": 96, "completion_tokens": 6}


@pytest.mark.parametrize(
    ("data", "headers", "param"),
    [
        pytest.param(b"{not json", {"Content-Type": "application/json"}, "body", id="not JSON"),
        pytest.param(b'{"prompt": "hi"}', {"Content-Type": "text/plain"}, "Content-Type", id="not application/json"),
    ],
)
async def test_a_body_vllm_cannot_read_is_a_bad_request(
    make_server: ServerFactory, data: bytes, headers: dict[str, str], param: str
) -> None:
    server = await make_server(FakeEngine(), kind="vllm", grpc_port=None)
    async with aiohttp.ClientSession() as http, http.post(url(server, CMP), data=data, headers=headers) as resp:
        error = (await resp.json())["error"]
        assert (resp.status, error["type"], error["param"], error["code"]) == (400, "Bad Request", param, 400)


async def test_a_shed_request_is_503_with_retry_after_and_counted(make_server: ServerFactory) -> None:
    server = await make_server(FakeEngine(backlog_limit=0), kind="vllm", grpc_port=None)
    status, headers, raw = await call(server, CMP, {"prompt": "hi"})
    assert status == 503 and int(headers["Retry-After"]) >= 1
    assert json.loads(raw) == {"error": {"message": BUSY_MESSAGE, "type": "Service Unavailable", "param": None,
                                         "code": 503}}  # fmt: skip
    _, _, text = await call(server, "/metrics", method="GET")
    assert 'jetscale_requests_shed_total{id="replica-0",reason="backlog_full"} 1.0' in text


async def test_while_loading_health_and_requests_are_503(make_server: ServerFactory) -> None:
    server = await make_server(FakeEngine(), kind="vllm", grpc_port=None, model_load_engine_s=1e6)
    status, _, raw = await call(server, "/health", method="GET")
    assert status == 503 and json.loads(raw)["error"]["type"] == "Service Unavailable"
    status, headers, raw = await call(server, CHAT, {"messages": MESSAGES})
    assert status == 503 and "Retry-After" in headers and "not ready (loading)" in json.loads(raw)["error"]["message"]
    status, _, _ = await call(server, "/healthz/ready", method="GET")
    assert status == 503  # the fleet's probe, on both kinds


async def test_tokenize_and_detokenize_round_trip(vllm_server: ModelServer) -> None:
    text = "Why is the sky blue?"
    status, _, raw = await call(vllm_server, "/tokenize", {"prompt": text})
    answer = json.loads(raw)
    assert status == 200
    assert answer == {"count": TOKENIZER.count(text), "max_model_len": vllm_server.config.max_model_len,
                      "tokens": TOKENIZER.encode(text), "token_strs": None}  # fmt: skip
    _, _, raw = await call(vllm_server, "/tokenize", {"prompt": text, "return_token_strs": True})
    assert "".join(json.loads(raw)["token_strs"]) == TOKENIZER.decode(answer["tokens"])
    _, _, raw = await call(vllm_server, "/detokenize", {"model": vllm_server.config.model_name,
                                                        "tokens": answer["tokens"]})  # fmt: skip
    assert json.loads(raw) == {"prompt": TOKENIZER.decode(answer["tokens"])}


async def test_tokenize_renders_chat_messages_as_a_chat_completion_does(vllm_server: ModelServer) -> None:
    _, _, with_prompt = await call(vllm_server, "/tokenize", {"messages": MESSAGES})
    _, _, without = await call(vllm_server, "/tokenize", {"messages": MESSAGES, "add_generation_prompt": False})
    assert json.loads(with_prompt)["count"] == TOKENIZER.count("user: Why is the sky blue?\nassistant:")
    assert json.loads(without)["count"] == TOKENIZER.count("user: Why is the sky blue?\n")
