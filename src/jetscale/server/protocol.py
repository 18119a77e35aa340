"""Request validation for every API the server speaks: JetStream HTTP and gRPC, and OpenAI.

Each parser takes a decoded JSON body (or the fields of a gRPC ``DecodeRequest``) and returns a small
frozen request, or raises ``RequestError`` naming the field and the value. Status codes: malformed JSON
400, a body over the size limit 413, anything else (missing, unknown, wrong type, out of range, prompt
too long) 422. Sampling parameters the simulated model has no use for (temperature, top_p, stop, ...,
and vLLM's ``ignore_eos``: the model never stops before ``max_tokens`` anyway) are accepted and
ignored; parameters that would change the response's shape (n > 1, echo, logprobs) are refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from jetscale.errors import ConfigError
from jetscale.server.config import ServerConfig
from jetscale.server.tokenizer import VOCAB_SIZE, Tokenizer

__all__ = [
    "CompletionRequest",
    "GenerateRequest",
    "RequestError",
    "parse_chat_completion",
    "parse_completion",
    "parse_generate",
    "parse_json_body",
    "validate_decode",
]

_GENERATE_FIELDS = frozenset({"max_tokens", "text_content", "token_content", "metadata"})
_SAMPLING_FIELDS = frozenset(
    {"temperature", "top_p", "stop", "seed", "user", "presence_penalty", "frequency_penalty", "logit_bias",
     "ignore_eos", "min_tokens", "top_k", "repetition_penalty"}  # the last four: vLLM's extensions
)  # fmt: skip
_COMPLETION_FIELDS = _SAMPLING_FIELDS | {
    "model", "prompt", "max_tokens", "stream", "stream_options", "n", "best_of", "echo", "logprobs", "suffix",
}  # fmt: skip
_CHAT_FIELDS = _SAMPLING_FIELDS | {
    "model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options", "n", "logprobs",
    "top_logprobs", "response_format", "tools", "tool_choice", "parallel_tool_calls", "functions",
    "function_call", "metadata", "store", "service_tier", "reasoning_effort", "modalities", "prediction",
    "audio", "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier",
}  # fmt: skip
_CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


class RequestError(ConfigError):
    """A client's request is invalid: ``field`` names it, ``value`` is what was sent."""

    def __init__(self, *, field: str, value: object, constraint: str, status: int = 422) -> None:
        self.field = field
        self.value = _short(value)
        self.status = status
        super().__init__(f"'{field}' must be {constraint} (got {_short_repr(value)})")


def _short(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return value if len(value) <= 80 else value[:77] + "..."
    return _short_repr(value)


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True, slots=True, kw_only=True)
class GenerateRequest:
    """A JetStream request (HTTP ``/v1/generate`` or gRPC ``Decode``)."""

    input_tokens: int
    max_tokens: int
    client_tokenized: bool  # the prompt came as token ids: answer with ids only, as JetStream does


@dataclass(frozen=True, slots=True, kw_only=True)
class CompletionRequest:
    """An OpenAI ``/v1/completions`` or ``/v1/chat/completions`` request."""

    model: str
    input_tokens: int
    max_tokens: int
    stream: bool
    include_usage: bool


def parse_json_body(raw: bytes) -> dict[str, object]:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(field="body", value=str(exc), constraint="valid JSON", status=400) from None
    if not isinstance(body, dict):
        raise RequestError(field="body", value=body, constraint="a JSON object")
    return body


def _check_keys(obj: Mapping[str, object], allowed: Iterable[str], path: str) -> None:
    allowed = frozenset(allowed)
    for key in obj:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise RequestError(field=where, value=obj[key], constraint="absent: the field is not known")


def _object(value: object, field: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise RequestError(field=field, value=value, constraint="a JSON object")
    return value


def _int(value: object, field: str, *, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RequestError(field=field, value=value, constraint="an integer")
    if value < lo:
        raise RequestError(field=field, value=value, constraint=f">= {lo}")
    if hi is not None and value > hi:
        raise RequestError(field=field, value=value, constraint=f"<= {hi}")
    return value


def _str(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise RequestError(field=field, value=value, constraint="a string")
    return value


def _bool(value: object, field: str, *, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RequestError(field=field, value=value, constraint="true or false")
    return value


def _prompt_length(count: int, field: str, value: object, config: ServerConfig) -> int:
    if count < 1:
        raise RequestError(field=field, value=value, constraint="a prompt of at least 1 token")
    if count > config.max_prefill_length:
        raise RequestError(
            field=field,
            value=f"{count} tokens",
            constraint=f"at most {config.max_prefill_length} tokens (the max prefill length)",
        )
    return count


def _token_ids(value: object, field: str) -> int:
    if not isinstance(value, list):
        raise RequestError(field=field, value=value, constraint="a list of token ids")
    for k, token in enumerate(value):
        if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token < VOCAB_SIZE:
            raise RequestError(field=f"{field}[{k}]", value=token, constraint=f"a token id in 0..{VOCAB_SIZE - 1}")
    return len(value)


def validate_decode(
    *,
    max_tokens: object,
    text: str | None,
    token_ids: Sequence[int] | None,
    config: ServerConfig,
    tokenizer: Tokenizer,
    num_samples: int = 0,
    lora_adapter_id: str = "",
) -> GenerateRequest:
    """The checks shared by HTTP ``/v1/generate`` and gRPC ``Decode``."""
    tokens = _int(max_tokens, "max_tokens", lo=1, hi=config.max_output_tokens)
    if num_samples not in (0, 1):
        raise RequestError(field="num_samples", value=num_samples, constraint="0 or 1 (one sample per request)")
    if lora_adapter_id:
        raise RequestError(field="lora_adapter_id", value=lora_adapter_id, constraint="empty (no LoRA adapters)")
    if text is not None and token_ids is not None:
        raise RequestError(field="token_content", value="both", constraint="absent when text_content is given")
    if text is not None:
        count = _prompt_length(tokenizer.count(text), "text_content.text", text, config)
        return GenerateRequest(input_tokens=count, max_tokens=tokens, client_tokenized=False)
    if token_ids is not None:
        ids = list(token_ids)
        count = _prompt_length(_token_ids(ids, "token_content.token_ids"), "token_content.token_ids", ids, config)
        return GenerateRequest(input_tokens=count, max_tokens=tokens, client_tokenized=True)
    raise RequestError(field="text_content", value=None, constraint="given (or token_content)")


def parse_generate(body: Mapping[str, object], config: ServerConfig, tokenizer: Tokenizer) -> GenerateRequest:
    """``POST /v1/generate``: ``{max_tokens, text_content: {text} | token_content: {token_ids}, metadata}``."""
    _check_keys(body, _GENERATE_FIELDS, "")
    if "max_tokens" not in body:
        raise RequestError(field="max_tokens", value=None, constraint="given")
    text: str | None = None
    ids: list[int] | None = None
    if body.get("text_content") is not None:
        content = _object(body["text_content"], "text_content")
        _check_keys(content, ("text",), "text_content")
        text = _str(content.get("text"), "text_content.text")
    if body.get("token_content") is not None:
        content = _object(body["token_content"], "token_content")
        _check_keys(content, ("token_ids",), "token_content")
        raw = content.get("token_ids")
        _token_ids(raw, "token_content.token_ids")
        assert isinstance(raw, list)
        ids = raw
    if body.get("metadata") is not None:
        metadata = _object(body["metadata"], "metadata")
        _check_keys(metadata, ("start_time",), "metadata")
        start = metadata.get("start_time")
        if start is not None and (isinstance(start, bool) or not isinstance(start, int | float)):
            raise RequestError(field="metadata.start_time", value=start, constraint="a number")
    return validate_decode(max_tokens=body["max_tokens"], text=text, token_ids=ids, config=config, tokenizer=tokenizer)


def _openai_common(body: Mapping[str, object], allowed: frozenset[str]) -> tuple[str, bool, bool]:
    _check_keys(body, allowed, "")
    model = _str(body.get("model"), "model")
    if not model:
        raise RequestError(field="model", value=model, constraint="a non-empty string")
    for field in ("n", "best_of"):
        if body.get(field) not in (None, 1):
            raise RequestError(field=field, value=body[field], constraint="1 (one choice per request)")
    stream = _bool(body.get("stream"), "stream")
    include_usage = False
    if body.get("stream_options") is not None:
        options = _object(body["stream_options"], "stream_options")
        _check_keys(options, ("include_usage", "include_obfuscation"), "stream_options")
        include_usage = _bool(options.get("include_usage"), "stream_options.include_usage")
    return model, stream, include_usage


def _max_tokens(body: Mapping[str, object], field: str, default: int, config: ServerConfig) -> int:
    value = body.get(field)
    return default if value is None else _int(value, field, lo=1, hi=config.max_output_tokens)


def parse_completion(body: Mapping[str, object], config: ServerConfig, tokenizer: Tokenizer) -> CompletionRequest:
    """``POST /v1/completions``: one prompt (a string, or token ids), optionally streamed."""
    model, stream, include_usage = _openai_common(body, _COMPLETION_FIELDS)
    if body.get("echo"):
        raise RequestError(field="echo", value=body["echo"], constraint="false")
    if body.get("logprobs") is not None:
        raise RequestError(field="logprobs", value=body["logprobs"], constraint="null (not supported)")
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, str):
        count = tokenizer.count(prompt)
    elif isinstance(prompt, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        count = _token_ids(prompt, "prompt")
    else:
        raise RequestError(field="prompt", value=prompt, constraint="a string or a list of token ids (one prompt)")
    count = _prompt_length(count, "prompt", prompt, config)
    tokens = _max_tokens(body, "max_tokens", config.default_completion_tokens, config)
    return CompletionRequest(
        model=model, input_tokens=count, max_tokens=tokens, stream=stream, include_usage=include_usage
    )


def _message_text(message: Mapping[str, object], path: str) -> str:
    content = message.get("content")
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise RequestError(field=f"{path}.content", value=content, constraint="a string or a list of parts")
    texts = []
    for k, part in enumerate(content):
        part = _object(part, f"{path}.content[{k}]")
        if part.get("type") != "text":
            raise RequestError(field=f"{path}.content[{k}].type", value=part.get("type"), constraint="'text'")
        texts.append(_str(part.get("text"), f"{path}.content[{k}].text"))
    return " ".join(texts)


def parse_chat_completion(body: Mapping[str, object], config: ServerConfig, tokenizer: Tokenizer) -> CompletionRequest:
    """``POST /v1/chat/completions``. The prompt is ``"<role>: <content>\\n"`` per message, then ``"assistant:"``."""
    model, stream, include_usage = _openai_common(body, _CHAT_FIELDS)
    if body.get("logprobs"):
        raise RequestError(field="logprobs", value=body["logprobs"], constraint="false (not supported)")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError(field="messages", value=messages, constraint="a non-empty list of messages")
    lines = []
    for k, raw in enumerate(messages):
        message = _object(raw, f"messages[{k}]")
        role = message.get("role")
        if role not in _CHAT_ROLES:
            raise RequestError(field=f"messages[{k}].role", value=role, constraint=f"one of {', '.join(_CHAT_ROLES)}")
        lines.append(f"{role}: {_message_text(message, f'messages[{k}]')}\n")
    lines.append("assistant:")
    count = _prompt_length(tokenizer.count("".join(lines)), "messages", f"{len(messages)} messages", config)
    field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    tokens = _max_tokens(body, field, config.max_output_tokens, config)
    return CompletionRequest(
        model=model, input_tokens=count, max_tokens=tokens, stream=stream, include_usage=include_usage
    )
