"""The ``openai`` client, unmodified, against a vLLM-kind server on vLLM's scheduler: what it reads of
completions, chat, streams with usage and the model list, and the status codes of the errors it raises,
tallied over a bounded mix of requests."""

from __future__ import annotations

from collections import Counter

import openai
import pytest
from conftest import ServerFactory, real_vllm_engine
from server_fakes import FakeEngine

from jetscale.server import ModelServer, Tokenizer

TOKENIZER = Tokenizer()
MESSAGES = [{"role": "user", "content": "Tell me a story."}]


async def vllm_server(make_server: ServerFactory) -> ModelServer:
    engine, settings = real_vllm_engine()
    return await make_server(engine, **settings)


def client(server: ModelServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{server.http_port}/v1", api_key="unused", max_retries=0)


async def test_completions_and_chat_read_back_as_the_client_types_them(make_server: ServerFactory) -> None:
    server = await vllm_server(make_server)
    name = server.config.model_name
    async with client(server) as api:
        completion = await api.completions.create(model=name, prompt="Once upon a time", max_tokens=8)
        assert completion.id.startswith("cmpl-") and completion.model == name
        assert completion.choices[0].finish_reason == "length"
        assert len(TOKENIZER.encode(completion.choices[0].text)) == 8
        assert completion.usage is not None and completion.usage.completion_tokens == 8
        assert completion.usage.prompt_tokens == TOKENIZER.count("Once upon a time")
        assert (completion.system_fingerprint or "").startswith("vllm-0.34.0-")
        chat = await api.chat.completions.create(model=name, messages=MESSAGES, max_tokens=6)  # type: ignore[arg-type]
        assert chat.object == "chat.completion" and chat.choices[0].message.role == "assistant"
        assert len(TOKENIZER.encode(chat.choices[0].message.content or "")) == 6
        assert chat.usage is not None and chat.usage.total_tokens == chat.usage.prompt_tokens + 6


async def test_a_streamed_chat_ends_with_usage(make_server: ServerFactory) -> None:
    server = await vllm_server(make_server)
    async with client(server) as api:
        for _ in range(3):
            stream = await api.chat.completions.create(
                model=server.config.model_name, messages=MESSAGES, max_tokens=12, stream=True,  # type: ignore[arg-type]
                stream_options={"include_usage": True},
            )  # fmt: skip
            chunks = [chunk async for chunk in stream]
            *content, last = chunks
            assert last.choices == [] and last.usage is not None and last.usage.completion_tokens == 12
            assert all(c.usage is None for c in content)
            assert content[0].choices[0].delta.role == "assistant"
            assert content[-1].choices[0].finish_reason == "length"
            text = "".join(c.choices[0].delta.content or "" for c in content)
            assert len(TOKENIZER.encode(text)) == 12


async def test_the_model_list_is_vllms_card(make_server: ServerFactory) -> None:
    server = await vllm_server(make_server)
    async with client(server) as api:
        models = [model async for model in api.models.list()]
    (model,) = models
    assert (model.id, model.owned_by) == (server.config.model_name, "vllm")
    assert model.model_extra is not None and model.model_extra["max_model_len"] == server.config.max_model_len


async def test_error_status_codes_as_the_client_raises_them(make_server: ServerFactory) -> None:
    server = await vllm_server(make_server)
    shedding = await make_server(FakeEngine(backlog_limit=0), kind="vllm", grpc_port=None)
    name, limit = server.config.model_name, server.config.max_model_len
    cases = [
        (server, {"model": "no-such-model", "prompt": "hi", "max_tokens": 2}),
        (server, {"model": name, "prompt": "hi", "max_tokens": limit + 1}),
        (server, {"model": name, "prompt": "a " * limit, "max_tokens": 2}),
        (server, {"model": name, "prompt": "hi", "max_tokens": 2}),
        (shedding, {"model": "fake-llm", "prompt": "hi", "max_tokens": 2}),
    ]
    statuses: Counter[int] = Counter()
    params: Counter[str | None] = Counter()
    for _ in range(2):  # bounded: 10 requests
        for target, body in cases:
            async with client(target) as api:
                try:
                    await api.completions.create(**body)  # type: ignore[call-overload]
                    statuses[200] += 1
                except openai.APIStatusError as exc:
                    statuses[exc.status_code] += 1
                    error = exc.body if isinstance(exc.body, dict) else {}
                    params[error.get("param")] += 1
                    assert error.get("code") == exc.status_code
                    if exc.status_code == 503:
                        assert isinstance(exc, openai.InternalServerError)
                        assert int(exc.response.headers["Retry-After"]) >= 1
    assert statuses == {404: 2, 400: 4, 200: 2, 503: 2}
    assert params == {"model": 2, "max_tokens": 2, "input_tokens": 2, None: 2}


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_the_client_sees_a_completion_as_long_as_asked_within_the_context(
    make_server: ServerFactory, stream: bool
) -> None:
    server = await vllm_server(make_server)
    limit = server.config.max_model_len
    async with client(server) as api:
        prompt = "a " * (limit - 5)
        if stream:
            chunks = [c async for c in await api.completions.create(
                model=server.config.model_name, prompt=prompt, max_tokens=50, stream=True,
                stream_options={"include_usage": True})]  # fmt: skip
            usage = chunks[-1].usage
        else:
            usage = (await api.completions.create(model=server.config.model_name, prompt=prompt, max_tokens=50)).usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (limit - 5, 5)  # clamped
