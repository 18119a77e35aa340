"""GKE's ``jetstream-http`` sidecar API, served by the replica itself on its HTTP port.

GKE's JetStream tutorials (GoogleCloudPlatform/ai-on-gke, ``tutorials-and-examples/inference-servers/
jetstream/http-server``, image ``jetstream-http``) run a small FastAPI sidecar next to the JetStream server
that turns HTTP into gRPC ``Decode`` calls; the ai-on-gke benchmarks (the locust-load-inference HTTP user
and the latency profile generator, ``--backend jetstream``) talk to it. jetscale answers the same requests
without the extra process:

* ``POST /generate`` with ``{"prompt", "max_tokens", "stream", "priority", "session_cache", "server",
  "port"}``, all optional (the sidecar's defaults: a fixed example prompt, 100 tokens, capped here at the
  server's ``max_output_tokens``); unknown fields are ignored, as the sidecar's request model ignores them.
  Answer: ``{"response": "<all the generated text>"}``. With ``"stream": true``: one JSON object per
  batch of new tokens, ``{"id": "generate-<hex>", "time_created": <unix seconds>, "text": "..."}``, then
  one with empty text (the sidecar forwards JetStream's final empty sample), content type
  ``application/json``. The sidecar concatenates these objects with nothing between them; here each ends
  with a newline, so line readers can split them and readers that strip whitespace are unaffected.
* ``GET /healthcheck`` -> ``{"response": {"is_live": true}}`` when ready.

Differences: errors use jetscale's JSON error shape and status codes (422 for a bad field, 429 with
``Retry-After`` when the backlog is full, 503 while loading or draining, also for ``/healthcheck``), where
the sidecar answers 500 with ``{"detail": ...}`` for anything the gRPC call raised.
"""

from __future__ import annotations

import time
import uuid

from aiohttp import web

from jetscale.errors import ServingError
from jetscale.server.contract import ModelService
from jetscale.server.httpcommon import dumps, error_response, read_json, rejection_response
from jetscale.server.protocol import parse_sidecar_generate
from jetscale.server.runtime import Rejection, RequestHandle

__all__ = ["SidecarRoutes"]


class SidecarRoutes:
    def __init__(self, server: ModelService) -> None:
        self._server = server
        self._runtime = server.runtime

    async def healthcheck(self, _: web.Request) -> web.Response:
        ready = self._runtime.ready
        return web.json_response({"response": {"is_live": ready}}, status=200 if ready else 503, dumps=dumps)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        server = self._server
        body = await read_json(request, server.config.max_body_bytes)
        req = parse_sidecar_generate(body, server.config, server.tokenizer)
        admitted = self._runtime.submit(input_tokens=req.input_tokens, output_tokens=req.max_tokens)
        if isinstance(admitted, Rejection):
            return rejection_response(admitted)
        handle = admitted
        try:
            if req.stream:
                return await self._stream(request, handle)
            await self._runtime.result(handle)
            text = server.tokenizer.decode(server.output_ids(handle, 0, handle.output_tokens))
            return web.json_response({"response": text}, dumps=dumps)
        except ServingError as exc:
            return error_response(503, str(exc), kind="unavailable_error")
        finally:
            self._runtime.release(handle)

    async def _stream(self, request: web.Request, handle: RequestHandle) -> web.StreamResponse:
        server = self._server
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        name = f"generate-{uuid.uuid4().hex}"

        async def send(text: str) -> None:
            await response.write((dumps({"id": name, "time_created": time.time(), "text": text}) + "\n").encode())

        try:
            async for start, stop in self._runtime.progress(handle):
                await send(server.tokenizer.decode(server.output_ids(handle, start, stop)))
            await send("")
            await response.write_eof()
        except (ServingError, ConnectionResetError):
            pass  # cut off by the server, or the client hung up: no final empty object
        return response
