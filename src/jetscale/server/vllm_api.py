"""The HTTP front end of a vLLM-kind server: vLLM's OpenAI-compatible API as vLLM 0.34.0 serves it.

Routes (vLLM's ``vllm serve``; nothing of JetStream's: ``/v1/generate``, ``/v1/health``, the sidecar's
``/generate`` and gRPC are absent, an unknown path is vLLM's 404 JSON):

* ``POST /v1/completions`` and ``POST /v1/chat/completions``: vLLM's response bodies (``stop_reason``,
  ``service_tier``, ``system_fingerprint`` = ``vllm-<version>-<hash>``, ``kv_transfer_params``, ...);
  streams are server-sent events, one chunk per batch of new tokens (a chat stream opens with the
  assistant role), a finish chunk, a usage chunk when ``stream_options.include_usage`` (usage on every
  chunk with ``continuous_usage_stats``), then ``data: [DONE]``; ``system_fingerprint`` is on the last
  chunk only. The response id is ``cmpl-`` / ``chatcmpl-`` and the ``X-Request-Id`` header, else the
  body's ``request_id``, else 16 random hex digits;
* ``GET /v1/models``: one model card, ``owned_by`` ``vllm``, ``root`` the model, ``max_model_len``, and
  the ``permission`` list vLLM writes;
* ``GET /health`` (and its alias ``/ping``): 200 with an empty body when ready, else 503;
* ``GET /version``: ``{"version": "0.34.0"}``, the vLLM release whose API and metrics these are;
* ``POST /tokenize``, ``POST /detokenize``; ``GET /metrics`` (vLLM's names: vllm_metrics.py);
* jetscale's ``GET /healthz/live`` and ``/healthz/ready``, which the fleet probes (both kinds).

POST routes take ``Content-Type: application/json`` only, as vLLM. Limits and error shapes:
vllm_protocol.py.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from jetscale.errors import ServingError
from jetscale.server.contract import ModelService
from jetscale.server.httpcommon import dumps, live_response, read_json, ready_response
from jetscale.server.protocol import CompletionRequest, RequestError
from jetscale.server.runtime import Rejection, RequestHandle, State
from jetscale.server.vllm_metrics import VLLM_VERSION
from jetscale.server.vllm_protocol import (
    VllmError,
    VllmLimits,
    error_json,
    parse_detokenize,
    parse_tokenize,
    rejection_error,
    request_error,
)

__all__ = ["create_vllm_app"]

_log = logging.getLogger(__name__)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Every failure is vLLM's error JSON; nothing a client sends produces a stack trace."""
    try:
        return await handler(request)
    except VllmError as exc:
        return error_json(exc)
    except RequestError as exc:
        return error_json(request_error(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_json(VllmError(exc.status, exc.reason, kind=exc.reason), headers=allow)
    except ConnectionResetError:  # the client hung up: nobody reads this (see http.py)
        return web.Response(status=499, reason="Client Closed Request")
    except ServingError:
        raise
    except Exception:
        _log.exception("unexpected error in %s %s", request.method, request.path)
        return error_json(VllmError(500, "internal error", kind="InternalServerError"))


def _usage(handle: RequestHandle, completion_tokens: int | None = None) -> dict[str, int]:
    completion = handle.output_tokens if completion_tokens is None else completion_tokens
    return {"prompt_tokens": handle.input_tokens, "total_tokens": handle.input_tokens + completion,
            "completion_tokens": completion}  # fmt: skip


class _VllmRoutes:
    def __init__(self, server: ModelService) -> None:
        self._server = server
        self._runtime = server.runtime
        self._limits = VllmLimits.of(server.config)
        self._created = int(time.time())
        digest = hashlib.sha256(f"{server.config.model_name}/{server.config.max_model_len}".encode()).hexdigest()
        self._fingerprint = f"vllm-{VLLM_VERSION}-{digest[:8]}"

    async def _body(self, request: web.Request) -> dict[str, object]:
        media = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise VllmError(400, f"'Content-Type' must be application/json (got {media or 'none'!r})",
                            kind="Bad Request", param="Content-Type")  # fmt: skip
        return await read_json(request, self._server.config.max_body_bytes)

    # ---- probes and information ---------------------------------------------------------------------
    async def health(self, _: web.Request) -> web.Response:
        state = self._runtime.state
        if state is State.READY:
            return web.Response(status=200)
        return error_json(VllmError(503, f"The server is not ready ({state}).", kind="Service Unavailable"))

    async def live(self, _: web.Request) -> web.Response:
        return live_response(self._runtime)

    async def ready(self, _: web.Request) -> web.Response:
        return ready_response(self._runtime)

    async def version(self, _: web.Request) -> web.Response:
        return web.json_response({"version": VLLM_VERSION})

    async def metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=self._server.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def models(self, _: web.Request) -> web.Response:
        name, created = self._limits.model_name, self._created
        permission = {
            "id": f"modelperm-{hashlib.sha256(name.encode()).hexdigest()[:32]}", "object": "model_permission",
            "created": created, "allow_create_engine": False, "allow_sampling": True, "allow_logprobs": True,
            "allow_search_indices": False, "allow_view": True, "allow_fine_tuning": False, "organization": "*",
            "group": None, "is_blocking": False,
        }  # fmt: skip
        card = {"id": name, "object": "model", "created": created, "owned_by": "vllm", "root": name, "parent": None,
                "max_model_len": self._limits.max_model_len, "permission": [permission]}  # fmt: skip
        return web.json_response({"object": "list", "data": [card]}, dumps=dumps)

    async def tokenize(self, request: web.Request) -> web.Response:
        body = self._limits.model(await self._body(request))
        req = parse_tokenize(body)
        tokenizer = self._server.tokenizer
        ids = tokenizer.encode(req.text)
        strs = [tokenizer.piece(i) for i in ids] if req.return_token_strs else None
        answer = {"count": len(ids), "max_model_len": self._limits.max_model_len, "tokens": ids, "token_strs": strs}
        return web.json_response(answer, dumps=dumps)

    async def detokenize(self, request: web.Request) -> web.Response:
        body = self._limits.model(await self._body(request))
        return web.json_response({"prompt": self._server.tokenizer.decode(parse_detokenize(body))}, dumps=dumps)

    # ---- completions --------------------------------------------------------------------------------
    async def completions(self, request: web.Request) -> web.StreamResponse:
        req = self._limits.completion(await self._body(request), self._server.tokenizer)
        return await self._complete(request, req, chat=False)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        req = self._limits.chat_completion(await self._body(request), self._server.tokenizer)
        return await self._complete(request, req, chat=True)

    async def _complete(self, request: web.Request, req: CompletionRequest, *, chat: bool) -> web.StreamResponse:
        admitted = self._runtime.submit(input_tokens=req.input_tokens, output_tokens=req.max_tokens)
        if isinstance(admitted, Rejection):
            error, headers = rejection_error(admitted)
            return error_json(error, headers=headers)
        handle = admitted
        base = request.headers.get("X-Request-Id") or req.request_id or secrets.token_hex(8)
        envelope: dict[str, object] = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{base}",
                    "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
                    "model": self._limits.model_name}  # fmt: skip
        try:
            if req.stream:
                envelope["object"] = "chat.completion.chunk" if chat else "text_completion"
                return await self._stream(request, req, handle, envelope, chat=chat)
            await self._runtime.result(handle)
            text = self._server.tokenizer.decode(self._server.output_ids(handle, 0, handle.output_tokens))
            if chat:
                message: dict[str, object] = {
                    "role": "assistant", "content": text, "refusal": None, "annotations": None, "audio": None,
                    "function_call": None, "tool_calls": [], "reasoning": None,
                }  # fmt: skip
                choice: dict[str, object] = {
                    "index": 0, "message": message, "logprobs": None, "finish_reason": "length", "stop_reason": None,
                    "token_ids": None,
                }  # fmt: skip
                extra: dict[str, object] = {"prompt_logprobs": None, "prompt_token_ids": None}
            else:
                choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length", "stop_reason": None,
                          "token_ids": None, "prompt_logprobs": None, "prompt_token_ids": None}  # fmt: skip
                extra = {}
            body = {**envelope, "choices": [choice], "service_tier": None, "system_fingerprint": self._fingerprint,
                    "usage": _usage(handle), **extra, "kv_transfer_params": None}  # fmt: skip
            return web.json_response(body, dumps=dumps)
        except ServingError as exc:
            return error_json(VllmError(503, str(exc), kind="Service Unavailable"))
        finally:
            self._runtime.release(handle)

    async def _stream(
        self, request: web.Request, req: CompletionRequest, handle: RequestHandle, envelope: dict[str, object],
        *, chat: bool,
    ) -> web.StreamResponse:  # fmt: skip
        server = self._server
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "Cache-Control": "no-cache"})  # fmt: skip
        await response.prepare(request)

        async def send(choices: list[dict[str, object]], sent: int, **extra: object) -> None:
            if req.continuous_usage:
                extra.setdefault("usage", _usage(handle, sent))
            await response.write(f"data: {dumps({**envelope, 'choices': choices, **extra})}\n\n".encode())

        def choice(text: str, finish: str | None, *, role: bool = False) -> dict[str, object]:
            if not chat:
                return {"index": 0, "text": text, "logprobs": None, "finish_reason": finish, "stop_reason": None}
            delta = {"role": "assistant", "content": text} if role else {"content": text}
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish, "stop_reason": None}

        try:
            if chat:
                await send([choice("", None, role=True)], 0)
            async for start, stop in self._runtime.progress(handle):
                await send([choice(server.tokenizer.decode(server.output_ids(handle, start, stop)), None)], stop)
            done = handle.output_tokens
            if req.include_usage:
                await send([choice("", "length")], done)
                await send([], done, usage=_usage(handle), system_fingerprint=self._fingerprint)
            else:
                await send([choice("", "length")], done, system_fingerprint=self._fingerprint)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ServingError, ConnectionResetError):
            pass  # cut off by the server, or the client hung up: no finish chunk, no [DONE]
        return response


def create_vllm_app(server: ModelService) -> web.Application:
    """The aiohttp application of a vLLM-kind server (see the module docstring)."""
    app = web.Application(middlewares=[_errors], client_max_size=server.config.max_body_bytes)
    routes = _VllmRoutes(server)
    gets: tuple[tuple[str, _Handler], ...] = (
        ("/health", routes.health), ("/ping", routes.health), ("/version", routes.version),
        ("/v1/models", routes.models), ("/metrics", routes.metrics), ("/healthz/live", routes.live),
        ("/healthz/ready", routes.ready),
    )  # fmt: skip
    for path, handler in gets:
        app.router.add_get(path, handler)
    posts: tuple[tuple[str, _Handler], ...] = (
        ("/v1/completions", routes.completions), ("/v1/chat/completions", routes.chat_completions),
        ("/tokenize", routes.tokenize), ("/detokenize", routes.detokenize),
    )  # fmt: skip
    for path, handler in posts:
        app.router.add_post(path, handler)
    return app
