"""The HTTP front end: JetStream's routes, health and readiness, /metrics, and (from openai_api) OpenAI's.

JetStream's HTTP server (``jetstream/entrypoints/http/api_server.py``) answers:

* ``GET /`` -> ``{"message": "JetStream HTTP Server"}``;
* ``GET /v1/health`` -> ``{"is_live": "True"}`` (a string, as JetStream writes it); here 503 and
  ``"False"`` while the model loads or the server drains;
* ``POST /v1/generate`` -> a stream of ``DecodeResponse`` messages written as protobuf JSON (camelCase,
  pretty-printed, concatenated, no SSE framing), one per batch of new tokens, then an empty sample.
  A client that sends ``Accept: application/json`` gets one message with all tokens instead.

Added here: ``GET /healthz/live`` (200 while the process serves), ``GET /healthz/ready`` (200 when ready,
else 503 with the state), ``GET /metrics`` (Prometheus text format), and ``GET /health``, the path vLLM
and TGI serve and clients such as guidellm check before a run: 200 with an empty body when ready (as vLLM
answers), else 503 with a JSON error naming the state.

On the same port: GKE's ``jetstream-http`` sidecar API (``POST /generate``, ``GET /healthcheck``; see
sidecar.py), OpenAI's (see openai_api.py), and ``GET /openapi.json``, the OpenAPI 3.0 document of all of
them (see openapi.py). A method a path does not take is answered 405 with ``Allow`` naming those it takes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from google.protobuf.json_format import MessageToJson
from prometheus_client import CONTENT_TYPE_LATEST

from jetscale.errors import ServingError
from jetscale.server.contract import ModelService
from jetscale.server.httpcommon import (
    dumps,
    error_response,
    live_response,
    read_json,
    ready_response,
    rejection_response,
    request_error_response,
)
from jetscale.server.openai_api import OpenAIRoutes
from jetscale.server.openapi import openapi_document
from jetscale.server.proto import jetstream_pb2 as pb
from jetscale.server.protocol import RequestError, parse_generate
from jetscale.server.runtime import Rejection, RequestHandle, State
from jetscale.server.sidecar import SidecarRoutes

__all__ = ["create_http_app", "decode_response"]

_log = logging.getLogger(__name__)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_Sample = pb.DecodeResponse.StreamContent.Sample


def decode_response(text: str, token_ids: list[int]) -> pb.DecodeResponse:
    """One JetStream stream message with one sample."""
    sample = _Sample(text=text, token_ids=token_ids)
    return pb.DecodeResponse(stream_content=pb.DecodeResponse.StreamContent(samples=[sample]))


@web.middleware
async def _errors(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Every failure becomes a JSON error; nothing a client sends can produce a 500 with a stack trace."""
    try:
        return await handler(request)
    except RequestError as exc:
        return request_error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        # a 405 names the methods the path takes (RFC 9110 section 15.5.6)
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, exc.reason, kind="invalid_request_error", field="path", value=request.path,
                              headers=allow)  # fmt: skip
    except ConnectionResetError:
        # the client hung up, perhaps before the stream's headers went out (``prepare`` raises then): its
        # request was released, so cancelled, on the way out. Nobody reads this answer; aiohttp drops it
        # quietly on the closed transport instead of logging the error as a failure of the server
        return web.Response(status=499, reason="Client Closed Request")
    except ServingError:
        raise
    except Exception:
        _log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(500, "internal error", kind="internal_error")


class _JetStreamRoutes:
    def __init__(self, server: ModelService) -> None:
        self._server = server
        self._runtime = server.runtime

    async def root(self, _: web.Request) -> web.Response:
        return web.json_response({"message": "JetStream HTTP Server"})

    async def health(self, _: web.Request) -> web.Response:
        ready = self._runtime.ready
        return web.json_response({"is_live": str(ready)}, status=200 if ready else 503)

    async def vllm_health(self, _: web.Request) -> web.Response:
        state = self._runtime.state
        if state is State.READY:
            return web.Response(status=200)
        return error_response(503, f"the server is not ready ({state})", kind="unavailable_error")

    async def live(self, _: web.Request) -> web.Response:
        return live_response(self._runtime)

    async def ready(self, _: web.Request) -> web.Response:
        return ready_response(self._runtime)

    async def metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=self._server.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def generate(self, request: web.Request) -> web.StreamResponse:
        server = self._server
        req = parse_generate(await read_json(request, server.config.max_body_bytes), server.config, server.tokenizer)
        admitted = self._runtime.submit(input_tokens=req.input_tokens, output_tokens=req.max_tokens)
        if isinstance(admitted, Rejection):
            return rejection_response(admitted)
        handle = admitted
        try:
            if request.headers.get("Accept", "").split(";")[0].strip() == "application/json":
                await self._runtime.result(handle)
                ids = server.output_ids(handle, 0, handle.output_tokens)
                text = "" if req.client_tokenized else server.tokenizer.decode(ids)
                return web.Response(text=MessageToJson(decode_response(text, ids)), content_type="application/json")
            return await self._stream(request, handle, with_text=not req.client_tokenized)
        except ServingError as exc:
            return error_response(503, str(exc), kind="unavailable_error")
        finally:
            self._runtime.release(handle)

    async def _stream(self, request: web.Request, handle: RequestHandle, *, with_text: bool) -> web.StreamResponse:
        server = self._server
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        try:
            async for start, stop in self._runtime.progress(handle):
                ids = server.output_ids(handle, start, stop)
                text = server.tokenizer.decode(ids) if with_text else ""
                await response.write(MessageToJson(decode_response(text, ids)).encode())
            await response.write(MessageToJson(decode_response("", [])).encode())
            await response.write_eof()
        except (ServingError, ConnectionResetError):
            pass  # cut off by the server, or the client hung up: end without JetStream's final empty sample
        return response


def create_http_app(server: ModelService) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=server.config.max_body_bytes)
    jetstream = _JetStreamRoutes(server)
    openai = OpenAIRoutes(server)
    sidecar = SidecarRoutes(server)
    app.router.add_get("/", jetstream.root)
    app.router.add_get("/v1/health", jetstream.health)
    app.router.add_get("/health", jetstream.vllm_health)
    app.router.add_get("/healthz/live", jetstream.live)
    app.router.add_get("/healthz/ready", jetstream.ready)
    app.router.add_get("/metrics", jetstream.metrics)
    app.router.add_post("/v1/generate", jetstream.generate)
    app.router.add_get("/v1/models", openai.models)
    app.router.add_post("/v1/completions", openai.completions)
    app.router.add_post("/v1/chat/completions", openai.chat_completions)
    app.router.add_post("/generate", sidecar.generate)
    app.router.add_get("/healthcheck", sidecar.healthcheck)
    document = dumps(openapi_document(server.config)).encode()  # built once: the limits are fixed

    async def openapi(_: web.Request) -> web.Response:
        return web.Response(body=document, content_type="application/json")

    app.router.add_get("/openapi.json", openapi)
    return app
