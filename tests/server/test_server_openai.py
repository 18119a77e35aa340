"""The official ``openai`` client, unmodified, against /v1/completions, /v1/chat/completions and /v1/models."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from jetscale.server import ModelServer, Tokenizer

TOKENIZER = Tokenizer()


@pytest.fixture
async def client(any_server: ModelServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=f"http://127.0.0.1:{any_server.http_port}/v1", api_key="unused", max_retries=0
    ) as c:
        yield c


async def test_completion(client: openai.AsyncOpenAI, any_server: ModelServer) -> None:
    prompt = "The capital of France is"
    done = await client.completions.create(model="any-name", prompt=prompt, max_tokens=9, temperature=0.0)
    choice = done.choices[0]
    assert (choice.finish_reason, done.object, done.model) == (
        "length",
        "text_completion",
        any_server.config.model_name,
    )
    assert len(TOKENIZER.encode(choice.text)) == 9
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.total_tokens) == (5, 9, 14)


async def test_streamed_completion_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.completions.create(
        model="m", prompt=[5, 6, 7], max_tokens=11, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert len(TOKENIZER.encode(text)) == 11
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (3, 11)


async def test_chat_completion(client: openai.AsyncOpenAI) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there!"}]
    done = await client.chat.completions.create(model="m", messages=messages, max_tokens=6)  # type: ignore[arg-type]
    message = done.choices[0].message
    assert (message.role, done.choices[0].finish_reason, done.object) == ("assistant", "length", "chat.completion")
    assert len(TOKENIZER.encode(message.content or "")) == 6
    prompt = "system: Be brief.\nuser: Hi there!\nassistant:"
    assert done.usage is not None and done.usage.prompt_tokens == len(TOKENIZER.encode(prompt))


async def test_streamed_chat_completion(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="m",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Tell me a story"}]}],
        max_completion_tokens=15,
        stream=True,
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(TOKENIZER.encode(text)) == 15
    assert chunks[-1].choices[0].finish_reason == "length"
    assert {c.object for c in chunks} == {"chat.completion.chunk"}


async def test_models_lists_the_served_model(client: openai.AsyncOpenAI, any_server: ModelServer) -> None:
    models = [m.id async for m in client.models.list()]
    assert models == [any_server.config.model_name]


async def test_client_errors_carry_the_field(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        await client.completions.create(model="m", prompt="hi", max_tokens=0)
    assert caught.value.status_code == 422
    assert "'max_tokens' must be >= 1 (got 0)" in str(caught.value)
