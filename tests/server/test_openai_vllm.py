"""vLLM's extensions of the OpenAI API, as clients such as guidellm send them: honoured, ignored or refused.

The field list is vLLM's ``CompletionRequest`` / ``ChatCompletionRequest`` (vllm/entrypoints/openai/
protocol.py); continuous usage is checked against the shape vLLM streams (usage with the completion
tokens so far in every chunk, then the usage chunk).
"""

from __future__ import annotations

import json

import aiohttp
import pytest

from jetscale.server import ModelServer, Tokenizer

TOKENIZER = Tokenizer()
CMP = "/v1/completions"
CHAT = "/v1/chat/completions"
MESSAGES = [{"role": "user", "content": "Why is the sky blue?"}]
PROMPT_TOKENS = len(TOKENIZER.encode("Why is the sky blue?"))
CHAT_PROMPT_TOKENS = len(TOKENIZER.encode("user: Why is the sky blue?\nassistant:"))


def url(server: ModelServer, path: str) -> str:
    return f"http://127.0.0.1:{server.http_port}{path}"


async def sse(server: ModelServer, path: str, body: dict[str, object]) -> list[dict[str, object]]:
    async with aiohttp.ClientSession() as http, http.post(url(server, path), json=body) as resp:
        assert resp.status == 200, await resp.text()
        raw = await resp.text()
    events = [line.removeprefix("data: ") for line in raw.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


# guidellm 0.8's request bodies (its openai_http backend), with vLLM's other extensions beside them
VLLM_IGNORED = {
    "ignore_eos": True, "stop": None, "top_k": 5, "min_p": 0.1, "repetition_penalty": 1.1, "length_penalty": 1.0,
    "use_beam_search": False, "stop_token_ids": [2], "include_stop_str_in_output": False,
    "skip_special_tokens": True, "spaces_between_special_tokens": True, "truncate_prompt_tokens": 10,
    "allowed_token_ids": None, "bad_words": [], "add_special_tokens": True, "guided_json": None,
    "guided_regex": None, "guided_choice": None, "guided_grammar": None, "structured_outputs": None,
    "logits_processors": None, "return_tokens_as_token_ids": False, "cache_salt": "salt",
    "kv_transfer_params": None, "vllm_xargs": {"k": 1}, "priority": 0, "min_tokens": 2,
}  # fmt: skip
VLLM_CHAT_IGNORED = {
    "add_generation_prompt": True, "continue_final_message": False, "chat_template": "{{ messages }}",
    "chat_template_kwargs": {"enable_thinking": False}, "documents": [], "mm_processor_kwargs": {},
    "include_reasoning": True, "echo": False,
}  # fmt: skip


async def test_completion_stream_with_continuous_usage_has_usage_in_every_chunk(any_server: ModelServer) -> None:
    body = {"model": "m", "prompt": "Why is the sky blue?", "max_tokens": 10, "stream": True,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True}, **VLLM_IGNORED}  # fmt: skip
    chunks = await sse(any_server, CMP, body)
    *content, finish, usage = chunks
    counted = 0
    for chunk in content:
        counted += len(TOKENIZER.encode(chunk["choices"][0]["text"]))  # type: ignore[index]
        assert chunk["usage"] == {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": counted,
                                  "total_tokens": PROMPT_TOKENS + counted}  # fmt: skip
    total = {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": 10, "total_tokens": PROMPT_TOKENS + 10}
    assert (counted, finish["usage"]) == (10, total)
    assert (usage["choices"], usage["usage"]) == ([], total)


async def test_chat_stream_as_guidellm_sends_it(any_server: ModelServer) -> None:
    body = {"model": "m", "messages": MESSAGES, "stream": True, "max_completion_tokens": 6,
            "stream_options": {"include_usage": True, "continuous_usage_stats": True}, **VLLM_IGNORED,
            **VLLM_CHAT_IGNORED}  # fmt: skip
    role, *content, finish, usage = await sse(any_server, CHAT, body)
    assert role["usage"] == {"prompt_tokens": CHAT_PROMPT_TOKENS, "completion_tokens": 0,
                             "total_tokens": CHAT_PROMPT_TOKENS}  # fmt: skip
    sent = [c["usage"]["completion_tokens"] for c in content]  # type: ignore[index]
    assert sent == sorted(sent) and sent[-1] == 6
    assert finish["choices"][0]["finish_reason"] == "length"  # type: ignore[index]
    assert usage["usage"]["completion_tokens"] == 6  # type: ignore[index]


@pytest.mark.parametrize(
    ("options", "per_chunk", "final"),
    [
        ({"continuous_usage_stats": True}, True, True),  # vLLM: include_usage defaults to true
        ({"include_usage": False, "continuous_usage_stats": True}, False, False),  # vLLM: needs include_usage
        ({"include_usage": True}, False, True),
        ({}, False, False),  # OpenAI's default
    ],
    ids=["continuous-alone", "continuous-without-usage", "usage-only", "none"],
)
async def test_stream_options_combinations(
    any_server: ModelServer, options: dict[str, bool], per_chunk: bool, final: bool
) -> None:
    body = {"model": "m", "prompt": "hi", "max_tokens": 3, "stream": True, "stream_options": options}
    chunks = await sse(any_server, CMP, body)
    with_usage = ["usage" in c for c in chunks]
    assert with_usage[:-1] == [per_chunk] * (len(chunks) - 1)
    assert (chunks[-1]["choices"] == []) is final and with_usage[-1] is (per_chunk or final)


async def test_request_id_names_the_response(any_server: ModelServer) -> None:
    async with aiohttp.ClientSession() as http:
        body = {"model": "m", "prompt": "hi", "max_tokens": 2, "request_id": "abc-1"}
        async with http.post(url(any_server, CMP), json=body) as resp:
            assert (await resp.json())["id"] == "cmpl-abc-1"
    chunks = await sse(any_server, CHAT, {"model": "m", "messages": MESSAGES, "max_tokens": 2, "stream": True,
                                          "request_id": "abc-2"})  # fmt: skip
    assert {c["id"] for c in chunks} == {"chatcmpl-abc-2"}


@pytest.mark.parametrize(
    ("path", "extra", "field", "value"),
    [
        (CMP, {"min_tokens": 5}, "min_tokens", 5),  # more than max_tokens (4)
        (CMP, {"min_tokens": -1}, "min_tokens", -1),
        (CMP, {"priority": 1}, "priority", 1),
        (CMP, {"ignore_eos": "yes"}, "ignore_eos", "yes"),
        (CMP, {"prompt_logprobs": 1}, "prompt_logprobs", 1),
        (CMP, {"return_token_ids": True}, "return_token_ids", True),
        (CMP, {"prompt_embeds": "AAAA"}, "prompt_embeds", "AAAA"),
        (CMP, {"request_id": ""}, "request_id", ""),
        (CMP, {"stream_options": {"continuous_usage_stats": 1}}, "stream_options.continuous_usage_stats", 1),
        (CMP, {"max_token": 4}, "max_token", 4),  # a field neither OpenAI nor vLLM defines
        (CHAT, {"echo": True}, "echo", True),
        (CHAT, {"add_generation_prompt": True, "continue_final_message": True}, "continue_final_message", True),
        (CHAT, {"logprobs": 0.0}, "logprobs", 0.0),  # equal to False, yet not a boolean (schemathesis found it)
    ],
    ids=[
        "min-over-max",
        "min-negative",
        "priority",
        "ignore-eos-string",
        "prompt-logprobs",
        "return-token-ids",
        "prompt-embeds",
        "empty-request-id",
        "continuous-not-bool",
        "unknown",
        "chat-echo",
        "continue-and-add",
        "chat-logprobs-zero",
    ],
)
async def test_vllm_fields_that_change_the_answer_or_are_malformed_are_refused(
    any_server: ModelServer, path: str, extra: dict[str, object], field: str, value: object
) -> None:
    body: dict[str, object] = {"model": "m", "max_tokens": 4, **extra}
    body.update({"prompt": "hi"} if path == CMP else {"messages": MESSAGES})
    async with aiohttp.ClientSession() as http, http.post(url(any_server, path), json=body) as resp:
        assert resp.status == 422
        error = (await resp.json())["error"]
    assert (error["field"], error["value"]) == (field, value)
