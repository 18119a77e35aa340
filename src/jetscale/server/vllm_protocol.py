"""Requests and errors as vLLM's OpenAI-compatible server (0.34.0) takes and answers them.

The request bodies are parsed by protocol.py, the same parsers as a JetStream-kind server's OpenAI
routes (the fields honoured, ignored or refused are listed there); this module applies vLLM's limits and
answers in vLLM's shapes:

* ``model`` may be absent, null or empty (the served model is meant); any other name is 404;
* the context limit is ``max_model_len`` (prompt + output tokens): ``max_tokens`` (chat: also
  ``max_completion_tokens``) over ``max_model_len`` is 400 with param ``max_tokens``; a prompt of
  ``max_model_len`` tokens or more is 400 with param ``input_tokens`` and vLLM's wording (vLLM refuses a
  prompt over the limit; jetscale also one that leaves no room for an output token, which the simulated
  model always produces); otherwise ``max_tokens`` is clamped to ``max_model_len - prompt``, and a chat
  without ``max_tokens`` gets that room. Completions default to 16 tokens, as in vLLM;
* every error is ``{"error": {"message", "type", "param", "code"}}`` with ``code`` the HTTP status:
  a body that is not JSON is 400 ``Bad Request`` (param ``body``); any other invalid field 400
  ``BadRequestError`` naming the field (jetscale refuses fields vLLM would ignore; see protocol.py);
  an unknown model 404 ``NotFoundError``; a shed request or a server that is not ready 503
  ``Service Unavailable`` with ``Retry-After``; an unknown path 404 ``Not Found``.

``/tokenize`` takes ``{model?, prompt, add_special_tokens, return_token_strs}`` or the chat form
``{model?, messages, add_generation_prompt, continue_final_message, ...}`` and answers
``{count, max_model_len, tokens, token_strs}``; ``/detokenize`` takes ``{model?, tokens}`` and answers
``{prompt}``. The simulated tokenizer has no special tokens, so ``add_special_tokens`` changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from jetscale.errors import JetscaleError
from jetscale.server.config import ServerConfig
from jetscale.server.httpcommon import dumps
from jetscale.server.protocol import (
    CompletionRequest,
    RequestError,
    _bool,
    _check_keys,
    _str,
    _token_ids,
    chat_prompt,
    parse_chat_completion,
    parse_completion,
)
from jetscale.server.runtime import Rejection
from jetscale.server.tokenizer import Tokenizer

__all__ = [
    "BUSY_MESSAGE",
    "TokenizeRequest",
    "VllmError",
    "VllmLimits",
    "error_json",
    "parse_detokenize",
    "parse_tokenize",
    "rejection_error",
    "request_error",
]

BUSY_MESSAGE = "The engine is busy and cannot take the request now; retry later or on another replica."
_TOKENIZE_FIELDS = frozenset({"model", "prompt", "add_special_tokens", "return_token_strs"})
_TOKENIZE_CHAT_FIELDS = frozenset(
    {"model", "messages", "add_generation_prompt", "continue_final_message", "add_special_tokens", "chat_template",
     "chat_template_kwargs", "tools", "mm_processor_kwargs", "return_token_strs"}
)  # fmt: skip


class VllmError(JetscaleError):
    """A request vLLM would refuse: the HTTP status, vLLM's error ``type`` and the ``param`` at fault."""

    def __init__(self, status: int, message: str, *, kind: str, param: str | None = None) -> None:
        self.status = status
        self.kind = kind
        self.param = param
        super().__init__(message)


def error_json(error: VllmError, headers: dict[str, str] | None = None) -> web.Response:
    body = {"error": {"message": str(error), "type": error.kind, "param": error.param, "code": error.status}}
    return web.json_response(body, status=error.status, headers=headers, dumps=dumps)


def request_error(exc: RequestError) -> VllmError:
    """A parser's ``RequestError`` as vLLM answers it: 400 (413 for a body over the limit)."""
    if exc.status == 413:
        return VllmError(413, str(exc), kind="Request Entity Too Large", param=exc.field)
    if exc.status == 400:  # not JSON at all: vLLM's request validation
        return VllmError(400, str(exc), kind="Bad Request", param=exc.field)
    return VllmError(400, str(exc), kind="BadRequestError", param=exc.field)


def rejection_error(rejection: Rejection) -> tuple[VllmError, dict[str, str]]:
    """A request the runtime did not admit: 503 with ``Retry-After``, shed or not ready."""
    message = BUSY_MESSAGE if rejection.overloaded else f"The server is not ready ({rejection.state}); retry later."
    return VllmError(503, message, kind="Service Unavailable"), {"Retry-After": str(rejection.retry_after_s)}


def _validation(param: str, value: object, message: str) -> VllmError:
    """vLLM's validation errors end with the parameter and value."""
    return VllmError(400, f"{message} (parameter={param}, value={value})", kind="BadRequestError", param=param)


@dataclass(frozen=True, slots=True)
class VllmLimits:
    """One server's model name and context limit, and the parsers' config that leaves both to this module."""

    model_name: str
    max_model_len: int
    parse_config: ServerConfig

    @classmethod
    def of(cls, config: ServerConfig) -> VllmLimits:
        # the shared parsers check only a prompt's form here (any length: it is checked below, in vLLM's
        # words) and max_tokens in 1..max_model_len (above: refused below first, in vLLM's words)
        relaxed = dataclasses.replace(config, max_prefill_length=2**31, max_output_tokens=config.max_model_len)
        return cls(model_name=config.model_name, max_model_len=config.max_model_len, parse_config=relaxed)

    def model(self, body: Mapping[str, object]) -> dict[str, object]:
        """``body`` with the served model filled in where none is named; 404 for another model."""
        model = body.get("model")
        if model is None or model == "":
            return {**body, "model": self.model_name}
        if isinstance(model, str) and model != self.model_name:
            raise VllmError(404, f"'model' must be {self.model_name!r}, the model this server serves (got {model!r})",
                            kind="NotFoundError", param="model")  # fmt: skip
        return dict(body)

    def _max_tokens(self, body: Mapping[str, object], fields: tuple[str, ...]) -> None:
        for field in fields:
            value = body.get(field)
            if isinstance(value, int) and not isinstance(value, bool) and value > self.max_model_len:
                raise _validation(field, value, f"{field}={value} cannot be greater than max_model_len="
                                  f"{self.max_model_len}. Please request fewer output tokens.")  # fmt: skip

    def _fit(self, req: CompletionRequest) -> CompletionRequest:
        n, limit = req.input_tokens, self.max_model_len
        if n >= limit:
            raise _validation("input_tokens", n, f"This model's maximum context length is {limit} tokens. However, "
                              f"your prompt contains {n} input tokens, which exceeds this limit even without any "
                              "output tokens. Please reduce the length of the input prompt.")  # fmt: skip
        return dataclasses.replace(req, max_tokens=min(req.max_tokens, limit - n))

    def completion(self, body: Mapping[str, object], tokenizer: Tokenizer) -> CompletionRequest:
        body = self.model(body)
        self._max_tokens(body, ("max_tokens",))
        return self._fit(parse_completion(body, self.parse_config, tokenizer))

    def chat_completion(self, body: Mapping[str, object], tokenizer: Tokenizer) -> CompletionRequest:
        body = self.model(body)
        self._max_tokens(body, ("max_tokens", "max_completion_tokens"))
        return self._fit(parse_chat_completion(body, self.parse_config, tokenizer))


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenizeRequest:
    text: str
    return_token_strs: bool


def parse_tokenize(body: Mapping[str, object]) -> TokenizeRequest:
    """``POST /tokenize``: a prompt, or chat messages rendered as a chat completion renders them."""
    strs = _bool(body.get("return_token_strs"), "return_token_strs")
    _bool(body.get("add_special_tokens"), "add_special_tokens")
    if "messages" in body:
        _check_keys(body, _TOKENIZE_CHAT_FIELDS, "")
        generation = _bool(body.get("add_generation_prompt"), "add_generation_prompt", default=True)
        if generation and _bool(body.get("continue_final_message"), "continue_final_message"):
            raise RequestError(field="continue_final_message", value=True,
                               constraint="false when add_generation_prompt is true")  # fmt: skip
        text = chat_prompt(body["messages"], add_generation_prompt=generation)
        return TokenizeRequest(text=text, return_token_strs=strs)
    _check_keys(body, _TOKENIZE_FIELDS, "")
    return TokenizeRequest(text=_str(body.get("prompt"), "prompt"), return_token_strs=strs)


def parse_detokenize(body: Mapping[str, object]) -> list[int]:
    """``POST /detokenize``: ``{model?, tokens}``, token ids of the server's vocabulary."""
    _check_keys(body, ("model", "tokens"), "")
    tokens = body.get("tokens")
    _token_ids(tokens, "tokens")
    assert isinstance(tokens, list)
    return tokens
