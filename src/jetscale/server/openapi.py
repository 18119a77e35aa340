"""The HTTP API as an OpenAPI 3.0 document, served at ``GET /openapi.json``.

Written by hand from the parsers in protocol.py and the handlers in http.py, openai_api.py and
sidecar.py, and built per server, so that its limits are the server's own (``max_tokens`` up to
``max_output_tokens``, token ids below the vocabulary size, bodies up to ``max_body_bytes``).
tests/server/test_openapi.py checks that it documents every route and every request field the parsers
accept, and fuzzes a live server against it with schemathesis.

A field's schema says what the server enforces, not what OpenAI or vLLM define: a field the server
accepts and ignores (``temperature``, ``top_k``, ...) takes any value, and one it refuses unless empty
(``logprobs``, ``prompt_embeds``) takes only that. What OpenAPI 3.0 cannot say is in the descriptions:
the prompt limit counts tokens, not characters; streams (JetStream's concatenated protobuf JSON, OpenAI's
server-sent events, the sidecar's one JSON object per line) have no schema; a method a path does not
list is answered 405 with ``Allow``.
"""

from __future__ import annotations

from jetscale.server.config import ServerConfig
from jetscale.server.runtime import State
from jetscale.server.tokenizer import VOCAB_SIZE

__all__ = ["openapi_document"]

_Schema = dict[str, object]
_JSON = "application/json"
_ERROR_CODES = (400, 413, 422, 429, 503)  # what every POST route may answer besides 200
_CHAT_ROLES = ["system", "developer", "user", "assistant", "tool", "function"]
_ERROR_TYPES = ["invalid_request_error", "overloaded_error", "unavailable_error", "internal_error"]
# accepted with any value and ignored (protocol.py): OpenAI's sampling fields, then vLLM's extensions that
# change sampling, templating or caching, not the shape of the answer
_IGNORED = (
    "temperature", "top_p", "stop", "seed", "user", "presence_penalty", "frequency_penalty", "logit_bias",
    "top_k", "min_p", "repetition_penalty", "length_penalty", "stop_token_ids", "truncate_prompt_tokens",
    "allowed_token_ids", "bad_words", "guided_json", "guided_regex", "guided_choice", "guided_grammar",
    "guided_decoding_backend", "guided_whitespace_pattern", "structured_outputs", "response_format",
    "logits_processors", "return_tokens_as_token_ids", "cache_salt", "kv_transfer_params", "vllm_xargs",
)  # fmt: skip
_IGNORED_CHAT = (
    "top_logprobs", "tools", "tool_choice", "parallel_tool_calls", "functions", "function_call", "metadata",
    "store", "service_tier", "reasoning_effort", "modalities", "prediction", "audio", "web_search_options",
    "verbosity", "prompt_cache_key", "safety_identifier", "chat_template", "chat_template_kwargs", "documents",
    "mm_processor_kwargs", "structural_tag",
)  # fmt: skip
_VLLM_BOOLS = ("ignore_eos", "use_beam_search", "include_stop_str_in_output", "skip_special_tokens",
               "spaces_between_special_tokens", "add_special_tokens")  # fmt: skip


def openapi_document(config: ServerConfig) -> dict[str, object]:
    """The OpenAPI 3.0.3 document of a server with ``config``'s limits."""
    info = {
        "title": "jetscale serve",
        "version": "1",
        "description": (
            "A JetStream-compatible simulated LLM server: JetStream's HTTP API, OpenAI's completions API with "
            "vLLM's extensions, and GKE's jetstream-http sidecar API, on one port. Every error a route answers "
            "is the JSON `Error`. A method a path does not list is answered 405 with `Allow` (HEAD is allowed "
            "wherever GET is); an unknown path 404. A request whose line or headers do not parse (a line over "
            "8,190 bytes, a header without a colon) is answered 400 in text/plain before it reaches a route."
        ),
    }
    components = {"schemas": _schemas(config), "responses": _responses(config), "headers": _HEADERS}
    return {"openapi": "3.0.3", "info": info, "paths": _paths(config), "components": components}


# --- schema builders ---


def _ref(name: str) -> _Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(properties: _Schema, *, required: list[str] | None = None, **extra: object) -> _Schema:
    schema: _Schema = {"type": "object", "properties": properties, **extra}
    return {**schema, "required": required} if required else schema


def _str(**extra: object) -> _Schema:
    return {"type": "string", **extra}


def _int(lo: int | None = None, hi: int | None = None, **extra: object) -> _Schema:
    bounds = {k: v for k, v in (("minimum", lo), ("maximum", hi)) if v is not None}
    return {"type": "integer", **bounds, **extra}


def _arr(items: _Schema, **extra: object) -> _Schema:
    return {"type": "array", "items": items, **extra}


def _null(schema: _Schema, description: str = "") -> _Schema:
    """``schema`` or null (null is the same as leaving the field out)."""
    return {**schema, "nullable": True, **({"description": description} if description else {})}


def _only(value: bool | int | None, description: str) -> _Schema:
    """A field refused unless it is null or this one value."""
    if value is None:
        return {"nullable": True, "enum": [None], "description": description}
    kind = "boolean" if isinstance(value, bool) else "integer"
    return {"type": kind, "enum": [value, None], "nullable": True, "description": description}


def _closed(properties: _Schema, *, required: list[str] | None = None, description: str = "") -> _Schema:
    """A nullable object whose unknown fields are refused (422)."""
    return _null(_obj(properties, required=required, additionalProperties=False), description)


_BOOL = _null({"type": "boolean"})
_ANY: _Schema = {"description": "Accepted with any value and ignored."}
_STATE = _str(enum=[str(s) for s in State])
_HEADERS: _Schema = {
    "Retry-After": {"description": "Wall seconds to wait before retrying.", "schema": _int(1)},
    "Allow": {"description": "The methods the path takes, e.g. `POST` or `GET,HEAD`.", "schema": _str()},
}


# --- components ---


def _responses(config: ServerConfig) -> _Schema:
    def error(description: str, headers: _Schema | None = None, *, text: bool = False) -> _Schema:
        content: _Schema = {_JSON: {"schema": _ref("Error")}}
        if text:
            content["text/plain"] = {"schema": _str()}
        answer: _Schema = {"description": description, "content": content}
        return {**answer, "headers": headers} if headers else answer

    retry = {"$ref": "#/components/headers/Retry-After"}
    return {
        "BadRequest": error(
            "The body is not JSON, nests deeper than 64, has a number of over 100 characters, NaN or Infinity, "
            "or its chunked framing or Content-Encoding does not decode. A request line or header that does not "
            "parse gets 400 in text/plain from the HTTP layer.",
            text=True,
        ),
        "NotFound": error("No such path."),
        "MethodNotAllowed": error(
            "The path does not take this method; `Allow` names those it takes.",
            {"Allow": {"$ref": "#/components/headers/Allow", "required": True}},
        ),
        "PayloadTooLarge": error(f"The body is over {config.max_body_bytes} bytes (decompressed)."),
        "UnprocessableEntity": error(
            "A field is missing, unknown, of the wrong type or out of range, or the prompt is longer than "
            f"{config.max_prefill_length} tokens; `field` names it and `value` is what was sent."
        ),
        "TooManyRequests": error(
            "The prefill backlog is full: retry after `Retry-After` seconds.",
            {"Retry-After": {**retry, "required": True}},
        ),
        "ServiceUnavailable": error(
            "The server is not ready (the model is loading, or it drains after SIGTERM), with `Retry-After`; or "
            "the request was cut off in flight (drained past the grace period, engine failure), without it.",
            {"Retry-After": retry},
        ),
    }


def _schemas(config: ServerConfig) -> _Schema:
    limit = config.max_output_tokens
    prompt = f"1 to {config.max_prefill_length} tokens"
    example_tokens = min(16, limit)
    token_id = _int(0, VOCAB_SIZE - 1)
    usage = _obj({k: _int(0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")})
    error = {
        "message": _str(example="'max_tokens' must be >= 1 (got 0)"),
        "type": _str(enum=_ERROR_TYPES),
        "param": _null(_str(), "The field at fault (OpenAI's name)."),
        "field": _null(_str(), "The field at fault."),
        "value": {"description": "What was sent, shortened to 80 characters."},
        "code": _null(_str(), "Always null."),
    }
    sample = _obj({"text": _str(), "tokenIds": _arr(_int())})
    return {
        "Error": _obj({"error": _obj(error, required=list(error))}, required=["error"]),
        "DecodeRequest": _obj(
            {
                "max_tokens": _int(1, limit),
                "text_content": _closed({"text": _str()}, required=["text"], description=f"A prompt of {prompt}."),
                "token_content": _closed(
                    {"token_ids": _arr(token_id, minItems=1, maxItems=config.max_prefill_length)},
                    required=["token_ids"],
                ),
                "metadata": _closed({"start_time": _null({"type": "number"})}),
            },
            required=["max_tokens"],
            additionalProperties=False,
            description="JetStream's DecodeRequest: exactly one of `text_content` and `token_content`.",
            example={"max_tokens": example_tokens, "text_content": {"text": "Why is the sky blue?"}},
        ),
        "DecodeResponse": _obj(
            {"streamContent": _obj({"samples": _arr(sample)})},
            description="JetStream's DecodeResponse as protobuf JSON (camelCase; empty fields left out).",
        ),
        "CompletionRequest": _openai_request(
            config,
            _completion_fields(config, prompt),
            ["model", "prompt"],
            {"model": config.model_name, "prompt": "Why is the sky blue?", "max_tokens": example_tokens},
        ),
        "ChatCompletionRequest": _openai_request(
            config,
            _chat_fields(config, prompt),
            ["model", "messages"],
            {
                "model": config.model_name,
                "messages": [{"role": "user", "content": "Why is the sky blue?"}],
                "max_tokens": example_tokens,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        ),
        "Completion": _completion(usage, {"text": _str()}),
        "ChatCompletion": _completion(usage, {"message": _obj({"role": _str(enum=["assistant"]), "content": _str()})}),
        "ModelList": _obj(
            {
                "object": _str(enum=["list"]),
                "data": _arr(
                    _obj({"id": _str(), "object": _str(enum=["model"]), "created": _int(), "owned_by": _str()})
                ),
            }
        ),
        "SidecarRequest": _obj(
            {
                "prompt": _null(_str(), f"Default: an example prompt. {prompt}."),
                "max_tokens": _null(_int(1, limit), f"Default: {min(100, limit)}."),
                "stream": _BOOL,
                "priority": _null(_int(-(2**31), 2**31 - 1), "Ignored."),
                **{name: _null(_str(), "Ignored.") for name in ("session_cache", "server", "port")},
            },
            description="GKE jetstream-http's request: every field optional, unknown fields ignored.",
            example={"prompt": "Why is the sky blue?", "max_tokens": example_tokens},
        ),
        "SidecarResponse": _obj({"response": _str()}, required=["response"]),
        "JetStreamHealth": _obj({"is_live": _str(enum=["True", "False"])}),
        "SidecarHealth": _obj({"response": _obj({"is_live": {"type": "boolean"}})}),
        "Liveness": _obj({"live": {"type": "boolean"}, "state": _STATE}),
        "Readiness": _obj({"ready": {"type": "boolean"}, "state": _STATE, "in_flight": _int(0)}),
    }


def _completion(usage: _Schema, choice: _Schema) -> _Schema:
    choices = _arr(_obj({"index": _int(0), "logprobs": {"nullable": True}, **choice,
                         "finish_reason": _str(enum=["length"])}))  # fmt: skip
    return _obj({"id": _str(), "object": _str(), "created": _int(), "model": _str(), "choices": choices,
                 "usage": usage})  # fmt: skip


def _openai_request(config: ServerConfig, fields: _Schema, required: list[str], example: _Schema) -> _Schema:
    """The fields of both OpenAI requests, then ``fields``; any other field is refused (422)."""
    common: _Schema = {
        "model": _str(minLength=1, description="Any name: the served model answers."),
        "stream": _BOOL,
        "stream_options": _closed(
            {"include_usage": _BOOL, "continuous_usage_stats": _BOOL, "include_obfuscation": _ANY}
        ),
        "n": _only(1, "One choice per request."),
        "priority": _only(0, "vLLM's; 0 only (no priority scheduling)."),
        "request_id": _null(_str(minLength=1), "vLLM's; names the response."),
        "min_tokens": _null(_int(0, config.max_output_tokens), "vLLM's; at most `max_tokens`, always met."),
        "prompt_logprobs": _only(None, "Not supported."),
        "prompt_embeds": _only(None, "Not supported."),
        "return_token_ids": _only(False, "Not supported."),
        **dict.fromkeys(_VLLM_BOOLS, _BOOL),
        **dict.fromkeys(_IGNORED, _ANY),
    }
    return _obj({**common, **fields}, required=required, additionalProperties=False, example=example)


def _completion_fields(config: ServerConfig, prompt: str) -> _Schema:
    one: list[_Schema] = [_str(), _arr(_int(0, VOCAB_SIZE - 1), minItems=1)]
    return {
        "prompt": {"anyOf": [*one, _arr({"anyOf": one}, minItems=1, maxItems=1)],
                   "description": f"One prompt of {prompt}: text or token ids (or a batch of one)."},
        "max_tokens": _null(_int(1, config.max_output_tokens), f"Default {config.default_completion_tokens}."),
        "best_of": _only(1, "One choice per request."),
        "echo": _only(False, "Not supported."),
        "logprobs": _only(None, "Not supported."),
        "suffix": _ANY,
    }  # fmt: skip


def _chat_fields(config: ServerConfig, prompt: str) -> _Schema:
    part = _obj({"type": _str(enum=["text"]), "text": _str()}, required=["type", "text"])
    content = {"nullable": True, "anyOf": [_str(), _arr(part)]}
    message = _obj({"role": _str(enum=_CHAT_ROLES), "content": content}, required=["role"])
    max_tokens = _null(_int(1, config.max_output_tokens), f"Default {config.max_output_tokens}.")
    return {
        "messages": _arr(message, minItems=1, description=f"The prompt, `<role>: <content>` per message: {prompt}."),
        "max_tokens": max_tokens,
        "max_completion_tokens": {**max_tokens, "description": "Takes precedence over `max_tokens`."},
        "logprobs": _only(False, "Not supported."),
        "echo": _only(False, "Not supported."),
        "add_generation_prompt": _BOOL,
        "continue_final_message": _null({"type": "boolean"}, "Not true together with `add_generation_prompt`."),
        "include_reasoning": _BOOL,
        **dict.fromkeys(_IGNORED_CHAT, _ANY),
    }


# --- paths ---


def _answer(description: str, schema: _Schema, media_type: str = _JSON) -> _Schema:
    return {"description": description, "content": {media_type: {"schema": schema}}}


def _get(operation_id: str, summary: str, ok: _Schema, unavailable: _Schema | None = None) -> _Schema:
    responses = {"200": ok} if unavailable is None else {"200": ok, "503": unavailable}
    return {"get": {"operationId": operation_id, "summary": summary, "responses": responses}}


def _health(operation_id: str, summary: str, schema: str, ok: str = "Ready.") -> _Schema:
    """A health check: 200 when ready (or live), 503 with the same body otherwise."""
    return _get(operation_id, summary, _answer(ok, _ref(schema)), _answer("Not " + ok.lower(), _ref(schema)))


def _post(operation_id: str, summary: str, request: str, ok: _Schema) -> _Schema:
    responses = {"200": ok} | {str(code): _error(code) for code in _ERROR_CODES}
    body = {"required": True, "content": {_JSON: {"schema": _ref(request)}}}
    return {"post": {"operationId": operation_id, "summary": summary, "requestBody": body, "responses": responses}}


def _error(code: int) -> _Schema:
    names = {400: "BadRequest", 413: "PayloadTooLarge", 422: "UnprocessableEntity", 429: "TooManyRequests",
             503: "ServiceUnavailable"}  # fmt: skip
    return {"$ref": f"#/components/responses/{names[code]}"}


def _or_stream(description: str, schema: str) -> _Schema:
    """One JSON answer, or (no schema in OpenAPI 3.0) a stream."""
    return {"description": description, "content": {_JSON: {"schema": _ref(schema)}, "text/event-stream": {}}}


def _paths(config: ServerConfig) -> _Schema:
    openai = "With `stream: true`, server-sent events (`data: <chunk>` per batch of new tokens, then `data: [DONE]`)."
    return {
        "/": _get("root", "JetStream's banner", _answer("The banner.", _obj({"message": _str()}))),
        "/v1/health": _health("jetstreamHealth", "JetStream's health check", "JetStreamHealth"),
        "/health": _get("vllmHealth", "vLLM's and TGI's health check", {"description": "Ready: an empty body."},
                        _answer("Not ready.", _ref("Error"))),
        "/healthz/live": _health("live", "Liveness", "Liveness", "Live: not stopped or failed."),
        "/healthz/ready": _health("ready", "Readiness", "Readiness"),
        "/metrics": _get("metrics", "Prometheus metrics, with JetStream's names",
                         _answer("Prometheus text format.", _str(), "text/plain")),
        "/v1/generate": _post("generate", "JetStream's Decode", "DecodeRequest", _or_stream(
            "With `Accept: application/json`, one DecodeResponse with every token; otherwise a stream of "
            "pretty-printed DecodeResponse messages (concatenated, no SSE framing), one per batch of new tokens, "
            "then an empty sample.", "DecodeResponse")),
        "/v1/models": _get("models", "OpenAI's model list: the served model", _answer("One model.", _ref("ModelList"))),
        "/v1/completions": _post("completions", "OpenAI completions", "CompletionRequest",
                                 _or_stream(openai, "Completion")),
        "/v1/chat/completions": _post("chatCompletions", "OpenAI chat completions", "ChatCompletionRequest",
                                      _or_stream(openai, "ChatCompletion")),
        "/generate": _post("sidecarGenerate", "GKE jetstream-http sidecar's generate", "SidecarRequest", _answer(
            "All the text. With `stream: true`, one `{id, time_created, text}` object per line and batch of new "
            "tokens, then one with empty text, under the same content type (so not one JSON document).",
            _ref("SidecarResponse"))),
        "/healthcheck": _health("sidecarHealthcheck", "GKE jetstream-http sidecar's health check", "SidecarHealth"),
        "/openapi.json": _get("openapi", "This document", _answer("OpenAPI 3.0.",
                              _obj({}, required=["openapi", "info", "paths"]))),
    }  # fmt: skip
