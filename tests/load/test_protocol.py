"""Wire formats: targets, JetStream and OpenAI bodies, token counting from real response shapes."""

from __future__ import annotations

import json

import pytest
from google.protobuf.json_format import MessageToJson

from jetscale.errors import ConfigError
from jetscale.load.protocol import (
    Api,
    Target,
    jetstream_body,
    jetstream_tokens,
    openai_body,
    openai_json_tokens,
    parse_sse_data,
    parse_target,
)


@pytest.mark.parametrize(
    ("text", "api", "target"),
    [
        pytest.param(
            "http://127.0.0.1:9000", Api.JETSTREAM_HTTP, Target(scheme="http", host="127.0.0.1", port=9000), id="http"
        ),
        pytest.param(
            "127.0.0.1:9000", Api.JETSTREAM_HTTP, Target(scheme="http", host="127.0.0.1", port=9000), id="bare"
        ),
        pytest.param(
            "http://localhost:8000/v1", Api.OPENAI, Target(scheme="http", host="localhost", port=8000), id="v1"
        ),
        pytest.param(
            "https://h.example/proxy/v1/",
            Api.OPENAI_CHAT,
            Target(scheme="https", host="h.example", port=443, base_path="/proxy"),
            id="https-prefix",
        ),
        pytest.param(
            "127.0.0.1:9001", Api.JETSTREAM_GRPC, Target(scheme="grpc", host="127.0.0.1", port=9001), id="grpc"
        ),
        pytest.param(
            "grpc://[::1]:9001", Api.JETSTREAM_GRPC, Target(scheme="grpc", host="::1", port=9001), id="grpc-v6"
        ),
    ],
)
def test_parse_target(text: str, api: Api, target: Target) -> None:
    assert parse_target(text, api) == target


def test_target_urls() -> None:
    assert Target(scheme="grpc", host="::1", port=9).url == "[::1]:9"
    assert Target(scheme="http", host="h", port=80, base_path="/p").url == "http://h:80/p"


@pytest.mark.parametrize(
    ("text", "api", "message"),
    [
        pytest.param("ftp://127.0.0.1:21", Api.OPENAI, "must be an http:// or https:// URL", id="scheme"),
        pytest.param("http://:9000", Api.JETSTREAM_HTTP, "must name a host", id="no-host"),
        pytest.param("http://127.0.0.1:notaport", Api.JETSTREAM_HTTP, "must be a URL", id="bad-port"),
        pytest.param("127.0.0.1", Api.JETSTREAM_GRPC, "must include a port", id="grpc-no-port"),
    ],
)
def test_bad_targets(text: str, api: Api, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_target(text, api)
    assert message in str(info.value) and "'--target'" in str(info.value)


def test_jetstream_body_is_what_jetstream_http_expects() -> None:
    assert json.loads(jetstream_body("hi there", 7)) == {"max_tokens": 7, "text_content": {"text": "hi there"}}


def _jetstream_stream(chunks: list[list[int]]) -> bytes:
    """A /v1/generate body as the jetscale server (and JetStream) write it: MessageToJson, concatenated."""
    from jetscale.server.http import decode_response

    parts = [MessageToJson(decode_response("".join(f" t{i}" for i in ids), ids)) for ids in chunks]
    parts.append(MessageToJson(decode_response("", [])))
    return "".join(parts).encode()


@pytest.mark.parametrize(
    ("chunks", "tokens"),
    [
        pytest.param([[5]], 1, id="one"),
        pytest.param([[5], [6], [7]], 3, id="token-per-chunk"),
        pytest.param([[5, 6, 7, 8], [9]], 5, id="batched-chunks"),
        pytest.param([], 0, id="empty"),
    ],
)
def test_jetstream_token_count_from_protobuf_json(chunks: list[list[int]], tokens: int) -> None:
    assert jetstream_tokens(_jetstream_stream(chunks)) == tokens


def test_jetstream_token_count_without_ids_counts_texts() -> None:
    body = b'{"streamContent": {"samples": [{"text": "a"}]}}{"streamContent": {"samples": [{"text": "b"}]}}'
    assert jetstream_tokens(body) == 2


@pytest.mark.parametrize(
    ("api", "stream", "ignore_eos", "expected"),
    [
        pytest.param(
            Api.OPENAI, True, False, {"prompt": "p", "stream_options": {"include_usage": True}}, id="completions"
        ),
        pytest.param(
            Api.OPENAI_CHAT,
            False,
            True,
            {"messages": [{"role": "user", "content": "p"}], "ignore_eos": True},
            id="chat",
        ),
    ],
)
def test_openai_bodies(api: Api, stream: bool, ignore_eos: bool, expected: dict[str, object]) -> None:
    body = json.loads(openai_body(api, prompt="p", max_tokens=9, model="m", stream=stream, ignore_eos=ignore_eos))
    assert body["model"] == "m" and body["max_tokens"] == 9 and body["stream"] is stream
    for key, value in expected.items():
        assert body[key] == value
    assert ("stream_options" in body) is stream and ("ignore_eos" in body) is ignore_eos


@pytest.mark.parametrize(
    ("data", "done", "chunks", "completion"),
    [
        pytest.param(b" [DONE]", True, 0, None, id="done"),
        pytest.param(b'{"choices":[{"text":"hi"}]}', False, 1, None, id="completion-text"),
        pytest.param(b'{"choices":[{"delta":{"role":"assistant","content":""}}]}', False, 0, None, id="role-only"),
        pytest.param(b'{"choices":[{"delta":{"content":" x"}}]}', False, 1, None, id="chat-delta"),
        pytest.param(b'{"choices":[],"usage":{"completion_tokens":12,"prompt_tokens":3}}', False, 0, 12, id="usage"),
    ],
)
def test_sse_events(data: bytes, done: bool, chunks: int, completion: int | None) -> None:
    event = parse_sse_data(data)
    assert (event.done, event.text_chunks, event.completion_tokens) == (done, chunks, completion)


@pytest.mark.parametrize("data", [b"not json", b"[1]", b'{"error": {"message": "overloaded"}}'])
def test_bad_sse_events_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError):
        parse_sse_data(data)


@pytest.mark.parametrize(
    ("body", "tokens"),
    [
        pytest.param(
            {"choices": [{"text": "abc"}], "usage": {"completion_tokens": 4, "prompt_tokens": 2}}, (4, 2), id="usage"
        ),
        pytest.param({"choices": [{"message": {"content": "x" * 40}}]}, (10, None), id="no-usage-chat"),
        pytest.param({"choices": [{"text": ""}]}, (0, None), id="empty"),
    ],
)
def test_openai_json_tokens(body: dict[str, object], tokens: tuple[int, int | None]) -> None:
    assert openai_json_tokens(json.dumps(body).encode()) == tokens
