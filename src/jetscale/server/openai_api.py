"""OpenAI-compatible routes: ``/v1/completions``, ``/v1/chat/completions`` and ``/v1/models``.

One model per server (its name is the preset's model); the ``model`` a client sends is accepted whatever
it is and the served name is echoed. Every completion runs to ``max_tokens`` (the simulated model never
stops early), so ``finish_reason`` is ``"length"``. Streams are server-sent events, one chunk per batch of
new tokens, a final chunk with the finish reason, a usage chunk when ``stream_options.include_usage``, then
``data: [DONE]``; with vLLM's ``stream_options.continuous_usage_stats`` every chunk also carries ``usage``
with the completion tokens sent so far, as vLLM writes it. A vLLM ``request_id`` names the response
(``cmpl-<request_id>``); otherwise the id is made of the server id and a sequence number. Usage counts
come from the server's tokenizer (see tokenizer.py); which of vLLM's fields are honoured, ignored or
refused is listed in protocol.py.
"""

from __future__ import annotations

import time

from aiohttp import web

from jetscale.errors import ServingError
from jetscale.server.contract import ModelService
from jetscale.server.httpcommon import dumps, error_response, read_json, rejection_response
from jetscale.server.protocol import CompletionRequest, parse_chat_completion, parse_completion
from jetscale.server.runtime import Rejection, RequestHandle

__all__ = ["OpenAIRoutes"]


def _usage(handle: RequestHandle, completion_tokens: int | None = None) -> dict[str, int]:
    completion = handle.output_tokens if completion_tokens is None else completion_tokens
    return {
        "prompt_tokens": handle.input_tokens,
        "completion_tokens": completion,
        "total_tokens": handle.input_tokens + completion,
    }


class OpenAIRoutes:
    def __init__(self, server: ModelService) -> None:
        self._server = server
        self._runtime = server.runtime
        self._created = int(time.time())

    async def models(self, _: web.Request) -> web.Response:
        model = {"id": self._server.config.model_name, "object": "model", "created": self._created,
                 "owned_by": "jetscale"}  # fmt: skip
        return web.json_response({"object": "list", "data": [model]}, dumps=dumps)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        server = self._server
        body = await read_json(request, server.config.max_body_bytes)
        return await self._complete(request, parse_completion(body, server.config, server.tokenizer), chat=False)

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        server = self._server
        body = await read_json(request, server.config.max_body_bytes)
        parsed = parse_chat_completion(body, server.config, server.tokenizer)
        return await self._complete(request, parsed, chat=True)

    async def _complete(self, request: web.Request, req: CompletionRequest, *, chat: bool) -> web.StreamResponse:
        admitted = self._runtime.submit(input_tokens=req.input_tokens, output_tokens=req.max_tokens)
        if isinstance(admitted, Rejection):
            return rejection_response(admitted)
        handle = admitted
        try:
            if req.stream:
                return await self._stream(request, req, handle, chat=chat)
            await self._runtime.result(handle)
            text = self._server.tokenizer.decode(self._server.output_ids(handle, 0, handle.output_tokens))
            if chat:
                choice: dict[str, object] = {
                    "index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                    "finish_reason": "length",
                }  # fmt: skip
            else:
                choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": "length"}
            body = self._envelope(handle, req, chat=chat, chunk=False)
            body["choices"] = [choice]
            body["usage"] = _usage(handle)
            return web.json_response(body, dumps=dumps)
        except ServingError as exc:
            return error_response(503, str(exc), kind="unavailable_error")
        finally:
            self._runtime.release(handle)

    def _envelope(self, handle: RequestHandle, req: CompletionRequest, *, chat: bool, chunk: bool) -> dict[str, object]:
        server = self._server
        if chat:
            kind = "chat.completion.chunk" if chunk else "chat.completion"
            prefix = "chatcmpl"
        else:
            kind, prefix = "text_completion", "cmpl"
        name = req.request_id if req.request_id is not None else f"{server.config.server_id}-{handle.request_id}"
        return {
            "id": f"{prefix}-{name}",
            "object": kind,
            "created": int(time.time()),
            "model": server.config.model_name,
        }

    async def _stream(
        self, request: web.Request, req: CompletionRequest, handle: RequestHandle, *, chat: bool
    ) -> web.StreamResponse:
        server = self._server
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "Cache-Control": "no-cache"})  # fmt: skip
        await response.prepare(request)
        base = self._envelope(handle, req, chat=chat, chunk=True)

        async def send(choices: list[dict[str, object]], sent: int, **extra: object) -> None:
            if req.continuous_usage:
                extra.setdefault("usage", _usage(handle, sent))
            await response.write(f"data: {dumps({**base, 'choices': choices, **extra})}\n\n".encode())

        def choice(text: str | None, finish: str | None, *, role: bool = False) -> dict[str, object]:
            if not chat:
                return {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
            delta: dict[str, object] = {"role": "assistant"} if role else {}
            if text is not None:
                delta["content"] = text
            return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

        try:
            if chat:
                await send([choice("", None, role=True)], 0)
            async for start, stop in self._runtime.progress(handle):
                await send([choice(server.tokenizer.decode(server.output_ids(handle, start, stop)), None)], stop)
            await send([choice(None if chat else "", "length")], handle.output_tokens)
            if req.include_usage:
                await send([], handle.output_tokens, usage=_usage(handle))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ServingError, ConnectionResetError):
            pass  # cut off by the server, or the client hung up: no finish chunk, no [DONE]
        return response
