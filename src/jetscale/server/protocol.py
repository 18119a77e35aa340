"""Request validation for every API the server speaks: JetStream HTTP and gRPC, and OpenAI.

Each parser takes a decoded JSON body (or the fields of a gRPC ``DecodeRequest``) and returns a small
frozen request, or raises ``RequestError`` naming the field and the value. Status codes: malformed JSON
400, a body over the size limit 413, anything else (missing, unknown, wrong type, out of range, prompt
too long) 422. Sampling parameters the simulated model has no use for (temperature, top_p, stop, ...)
are accepted and ignored; parameters that would change the response's shape (n > 1, echo, logprobs) are
refused.

vLLM's extensions of the OpenAI API (its ``CompletionRequest`` / ``ChatCompletionRequest`` in
``vllm/entrypoints/openai/protocol.py``), as clients such as guidellm send them:

* honoured: ``stream_options.continuous_usage_stats`` (usage, with the completion tokens so far, in every
  chunk; as in vLLM it needs ``include_usage``, which defaults to true when ``continuous_usage_stats`` is
  given alone); ``request_id`` (the response ``id`` becomes ``cmpl-<request_id>`` /
  ``chatcmpl-<request_id>``); ``min_tokens`` (an integer in 0..max_tokens; always met, the model runs to
  ``max_tokens``); ``priority`` (0 only: like vLLM without priority scheduling, anything else is refused);
* accepted and ignored (they change sampling, templating or caching, not the shape): ``ignore_eos``,
  ``top_k``, ``min_p``, ``repetition_penalty``, ``length_penalty``, ``use_beam_search``,
  ``stop_token_ids``, ``include_stop_str_in_output``, ``skip_special_tokens``,
  ``spaces_between_special_tokens``, ``truncate_prompt_tokens``, ``allowed_token_ids``, ``bad_words``,
  ``add_special_tokens``, ``guided_*``, ``structured_outputs``, ``response_format``, ``logits_processors``,
  ``return_tokens_as_token_ids``, ``cache_salt``, ``kv_transfer_params``, ``vllm_xargs``; for chat also
  ``add_generation_prompt``, ``continue_final_message`` (not both true, as in vLLM), ``chat_template``,
  ``chat_template_kwargs``, ``documents``, ``mm_processor_kwargs``, ``structural_tag``,
  ``include_reasoning``;
* refused (422), because the response would carry more than jetscale writes: ``prompt_logprobs``,
  ``return_token_ids``, ``prompt_embeds`` (no text to count), chat ``echo: true``.

vLLM ignores (with a logged warning) any field it does not know; jetscale refuses one that neither OpenAI
nor vLLM defines (422 naming the field), so a misspelt ``max_token`` is an error rather than a silent
default.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from jetscale.errors import ConfigError
from jetscale.safeload import LoadError, load_json
from jetscale.server.config import ServerConfig
from jetscale.server.tokenizer import VOCAB_SIZE, Tokenizer

__all__ = [
    "CompletionRequest",
    "GenerateRequest",
    "RequestError",
    "SidecarRequest",
    "chat_prompt",
    "parse_chat_completion",
    "parse_completion",
    "parse_generate",
    "parse_json_body",
    "parse_sidecar_generate",
    "validate_decode",
]

_GENERATE_FIELDS = frozenset({"max_tokens", "text_content", "token_content", "metadata"})
_SAMPLING_FIELDS = frozenset(
    {"temperature", "top_p", "stop", "seed", "user", "presence_penalty", "frequency_penalty", "logit_bias"}
)
# vLLM's extensions (see the module docstring): the ignored ones, then the ones checked or refused below
_VLLM_FIELDS = frozenset(
    {"ignore_eos", "top_k", "min_p", "repetition_penalty", "length_penalty", "use_beam_search", "stop_token_ids",
     "include_stop_str_in_output", "skip_special_tokens", "spaces_between_special_tokens", "truncate_prompt_tokens",
     "allowed_token_ids", "bad_words", "add_special_tokens", "guided_json", "guided_regex", "guided_choice",
     "guided_grammar", "guided_decoding_backend", "guided_whitespace_pattern", "structured_outputs",
     "response_format", "logits_processors", "return_tokens_as_token_ids", "cache_salt", "kv_transfer_params",
     "vllm_xargs",
     "min_tokens", "priority", "request_id", "prompt_logprobs", "return_token_ids", "prompt_embeds"}
)  # fmt: skip
_VLLM_CHAT_FIELDS = frozenset(
    {"add_generation_prompt", "continue_final_message", "chat_template", "chat_template_kwargs", "documents",
     "mm_processor_kwargs", "structural_tag", "include_reasoning", "echo"}
)  # fmt: skip
_VLLM_BOOLS = ("ignore_eos", "use_beam_search", "include_stop_str_in_output", "skip_special_tokens",
               "spaces_between_special_tokens", "add_special_tokens")  # fmt: skip
_COMPLETION_FIELDS = _SAMPLING_FIELDS | _VLLM_FIELDS | {
    "model", "prompt", "max_tokens", "stream", "stream_options", "n", "best_of", "echo", "logprobs", "suffix",
}  # fmt: skip
_CHAT_FIELDS = _SAMPLING_FIELDS | _VLLM_FIELDS | _VLLM_CHAT_FIELDS | {
    "model", "messages", "max_tokens", "max_completion_tokens", "stream", "stream_options", "n", "logprobs",
    "top_logprobs", "response_format", "tools", "tool_choice", "parallel_tool_calls", "functions",
    "function_call", "metadata", "store", "service_tier", "reasoning_effort", "modalities", "prediction",
    "audio", "web_search_options", "verbosity", "prompt_cache_key", "safety_identifier",
}  # fmt: skip
_STREAM_OPTIONS = ("include_usage", "continuous_usage_stats", "include_obfuscation")
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
    include_usage: bool  # a usage chunk before [DONE]
    continuous_usage: bool = False  # vLLM's continuous_usage_stats: usage in every chunk too
    request_id: str | None = None  # vLLM's request_id: the response id is built from it


@dataclass(frozen=True, slots=True, kw_only=True)
class SidecarRequest:
    """A ``POST /generate`` of GKE's ``jetstream-http`` sidecar."""

    input_tokens: int
    max_tokens: int
    stream: bool


# The sidecar's request model (ai-on-gke tutorials-and-examples/inference-servers/jetstream/http-server):
# every field optional, these defaults, unknown fields ignored.
_SIDECAR_PROMPT = "This is an example prompt"
_SIDECAR_MAX_TOKENS = 100
_SIDECAR_STRINGS = ("server", "port", "session_cache")  # where the sidecar forwards to, and a cache key: unused


def parse_json_body(raw: bytes) -> dict[str, object]:
    """The body as a JSON object, read within ``jetscale.safeload``'s limits (nesting, number length);
    400 when it is not JSON or goes past a limit, 422 when it is JSON but not an object."""
    try:
        body = load_json(raw, what="body")
    except LoadError as exc:
        raise RequestError(field="body", value=exc.value, constraint=exc.constraint, status=400) from None
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


@dataclass(frozen=True, slots=True, kw_only=True)
class _Common:
    model: str
    stream: bool
    include_usage: bool
    continuous_usage: bool
    request_id: str | None


def _openai_common(body: Mapping[str, object], allowed: frozenset[str]) -> _Common:
    _check_keys(body, allowed, "")
    model = _str(body.get("model"), "model")
    if not model:
        raise RequestError(field="model", value=model, constraint="a non-empty string")
    for field in ("n", "best_of"):
        if body.get(field) not in (None, 1):
            raise RequestError(field=field, value=body[field], constraint="1 (one choice per request)")
    stream = _bool(body.get("stream"), "stream")
    include_usage = continuous = False
    if body.get("stream_options") is not None:
        options = _object(body["stream_options"], "stream_options")
        _check_keys(options, _STREAM_OPTIONS, "stream_options")
        continuous = _bool(options.get("continuous_usage_stats"), "stream_options.continuous_usage_stats")
        # OpenAI's default is false; vLLM's true, which matters only with continuous_usage_stats
        include_usage = _bool(options.get("include_usage"), "stream_options.include_usage", default=continuous)
        continuous = continuous and include_usage
    _vllm_common(body)
    request_id = body.get("request_id")
    if request_id is not None and (not isinstance(request_id, str) or not request_id):
        raise RequestError(field="request_id", value=request_id, constraint="a non-empty string")
    return _Common(model=model, stream=stream, include_usage=include_usage, continuous_usage=continuous,
                   request_id=request_id)  # fmt: skip


def _vllm_common(body: Mapping[str, object]) -> None:
    """The checks on vLLM's extensions that do not depend on the rest of the request."""
    for field in _VLLM_BOOLS:
        _bool(body.get(field), field)
    priority = body.get("priority")
    if priority is not None:
        _int(priority, "priority", lo=0, hi=0)  # vLLM refuses non-zero priorities without priority scheduling
    for field, constraint in (("prompt_logprobs", "null (not supported)"), ("prompt_embeds", "null (not supported)")):
        if body.get(field) is not None:
            raise RequestError(field=field, value=body[field], constraint=constraint)
    if body.get("return_token_ids"):
        raise RequestError(field="return_token_ids", value=body["return_token_ids"], constraint="false (not supported)")


def _min_tokens(body: Mapping[str, object], max_tokens: int) -> None:
    if body.get("min_tokens") is not None:
        _int(body["min_tokens"], "min_tokens", lo=0, hi=max_tokens)


def _max_tokens(body: Mapping[str, object], field: str, default: int, config: ServerConfig) -> int:
    value = body.get(field)
    return default if value is None else _int(value, field, lo=1, hi=config.max_output_tokens)


def parse_completion(body: Mapping[str, object], config: ServerConfig, tokenizer: Tokenizer) -> CompletionRequest:
    """``POST /v1/completions``: one prompt (a string, or token ids), optionally streamed."""
    common = _openai_common(body, _COMPLETION_FIELDS)
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
    _min_tokens(body, tokens)
    return _completion_request(common, count, tokens)


def _completion_request(common: _Common, input_tokens: int, max_tokens: int) -> CompletionRequest:
    return CompletionRequest(
        model=common.model, input_tokens=input_tokens, max_tokens=max_tokens, stream=common.stream,
        include_usage=common.include_usage, continuous_usage=common.continuous_usage, request_id=common.request_id,
    )  # fmt: skip


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


def chat_prompt(messages: object, *, add_generation_prompt: bool = True) -> str:
    """The prompt of a chat: ``"<role>: <content>\\n"`` per message, then ``"assistant:"`` (the generation
    prompt) unless ``add_generation_prompt`` is false. ``RequestError`` names a malformed message."""
    if not isinstance(messages, list) or not messages:
        raise RequestError(field="messages", value=messages, constraint="a non-empty list of messages")
    lines = []
    for k, raw in enumerate(messages):
        message = _object(raw, f"messages[{k}]")
        role = message.get("role")
        if role not in _CHAT_ROLES:
            raise RequestError(field=f"messages[{k}].role", value=role, constraint=f"one of {', '.join(_CHAT_ROLES)}")
        lines.append(f"{role}: {_message_text(message, f'messages[{k}]')}\n")
    if add_generation_prompt:
        lines.append("assistant:")
    return "".join(lines)


def parse_chat_completion(body: Mapping[str, object], config: ServerConfig, tokenizer: Tokenizer) -> CompletionRequest:
    """``POST /v1/chat/completions``. The prompt is ``"<role>: <content>\\n"`` per message, then ``"assistant:"``."""
    common = _openai_common(body, _CHAT_FIELDS)
    logprobs = body.get("logprobs")
    if logprobs is not None and logprobs is not False:  # 0 and 0.0 equal False but are not booleans
        raise RequestError(field="logprobs", value=logprobs, constraint="false (not supported)")
    if _bool(body.get("echo"), "echo"):
        raise RequestError(field="echo", value=body["echo"], constraint="false (not supported)")
    for field in ("add_generation_prompt", "continue_final_message", "include_reasoning"):
        _bool(body.get(field), field)
    if body.get("add_generation_prompt") and body.get("continue_final_message"):
        raise RequestError(field="continue_final_message", value=True,
                           constraint="false when add_generation_prompt is true")  # fmt: skip
    messages = body.get("messages")
    prompt = chat_prompt(messages)
    assert isinstance(messages, list)
    count = _prompt_length(tokenizer.count(prompt), "messages", f"{len(messages)} messages", config)
    field = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    tokens = _max_tokens(body, field, config.max_output_tokens, config)
    _min_tokens(body, tokens)
    return _completion_request(common, count, tokens)


def parse_sidecar_generate(body: Mapping[str, object], config: ServerConfig, tokenizer: Tokenizer) -> SidecarRequest:
    """``POST /generate``: ``{prompt, max_tokens, stream, priority, session_cache, server, port}``, each optional
    (null = absent), with the sidecar's defaults; fields it does not know are ignored, as the sidecar does."""
    for field in _SIDECAR_STRINGS:
        if body.get(field) is not None:
            _str(body[field], field)
    if body.get("priority") is not None:
        _int(body["priority"], "priority", lo=-(2**31), hi=2**31 - 1)  # an int32 in DecodeRequest; unused
    raw_prompt = body.get("prompt")
    prompt = _SIDECAR_PROMPT if raw_prompt is None else _str(raw_prompt, "prompt")
    count = _prompt_length(tokenizer.count(prompt), "prompt", prompt, config)
    raw_tokens = body.get("max_tokens")
    # the sidecar's default, within this server's limit
    tokens = min(_SIDECAR_MAX_TOKENS, config.max_output_tokens) if raw_tokens is None else raw_tokens
    max_tokens = _int(tokens, "max_tokens", lo=1, hi=config.max_output_tokens)
    return SidecarRequest(input_tokens=count, max_tokens=max_tokens, stream=_bool(body.get("stream"), "stream"))
