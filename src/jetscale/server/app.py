"""One replica server: the engine runtime behind the front ends and metrics of its kind.

A kind is read here, in ``_KINDS``: a JetStream-kind server answers JetStream's HTTP API, OpenAI's, GKE's
sidecar API and gRPC, with JetStream's metric names (http.py, openai_api.py, sidecar.py, grpc_service.py,
metrics.py); a vLLM-kind server answers vLLM's OpenAI-compatible API with vLLM's metric names and no gRPC
(vllm_api.py, vllm_metrics.py). The front ends see the server through contract.py's ``ModelService``
and never import this module.

``ModelServer`` wires the parts (runtime, tokenizer, metrics, front ends) and owns their lifecycle:
``start()`` binds the sockets (the server reports ready once the model load time has passed as well),
``drain()`` stops admitting and waits for in-flight requests, ``stop()`` closes everything.
``serve_until_signalled`` is what ``jetscale serve`` runs: start, wait for SIGTERM/SIGINT, drain within
the grace period, stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

import grpc
from aiohttp import web
from aiohttp.log import server_logger

from jetscale.engine.api import Completion, Engine
from jetscale.engine.config import ServerKind
from jetscale.server.config import ListenError, ServerConfig, listen_error
from jetscale.server.contract import MetricsSink, ModelService
from jetscale.server.grpc_service import add_orchestrator
from jetscale.server.http import create_http_app
from jetscale.server.httpcommon import ProtocolErrorLog
from jetscale.server.metrics import ServerMetrics
from jetscale.server.runtime import Clock, RequestHandle, ServingRuntime
from jetscale.server.tokenizer import Tokenizer, output_token_ids
from jetscale.server.vllm_api import create_vllm_app
from jetscale.server.vllm_metrics import VllmMetrics

__all__ = ["ModelServer", "serve_until_signalled"]


def _jetstream_metrics(server: ModelServer) -> MetricsSink:
    return ServerMetrics(
        server_id=server.config.server_id,
        snapshot=server.runtime.snapshot,
        model_load_engine_s=server.config.model_load_engine_s,
        startup_latency_engine_s=lambda: server.runtime.startup_latency_engine_s,
    )


def _vllm_metrics(server: ModelServer) -> MetricsSink:
    cfg = server.config
    return VllmMetrics(server_id=cfg.server_id, model_name=cfg.model_name, max_model_len=cfg.max_model_len,
                       snapshot=server.runtime.snapshot)  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class _Kind:
    """What a server kind serves: its metrics, its HTTP application, and whether it has gRPC."""

    metrics: Callable[[ModelServer], MetricsSink]
    http_app: Callable[[ModelService], web.Application]
    grpc: bool


_KINDS = {
    ServerKind.JETSTREAM: _Kind(metrics=_jetstream_metrics, http_app=create_http_app, grpc=True),
    ServerKind.VLLM: _Kind(metrics=_vllm_metrics, http_app=create_vllm_app, grpc=False),
}


class ModelServer:
    """A server of ``config.kind`` around ``engine`` (a ``ModelService``). Inert until ``start()``."""

    def __init__(self, engine: Engine, config: ServerConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.tokenizer = Tokenizer()
        self.runtime = ServingRuntime(
            engine,
            speed=config.speed,
            model_load_engine_s=config.model_load_engine_s,
            clock=clock,
            stream_interval_s=config.stream_interval_s,
            on_completion=self._on_completion,
            on_cancel=lambda stage: self.metrics.cancelled(stage),
            on_shed=lambda reason: self.metrics.shed(reason),
        )
        self._kind = _KINDS[config.kind]
        self.metrics: MetricsSink = self._kind.metrics(self)
        self._runner: web.AppRunner | None = None
        self._grpc: grpc.aio.Server | None = None
        self.http_port: int | None = None
        self.grpc_port: int | None = None

    def _on_completion(self, completion: Completion) -> None:
        self.metrics.observe(completion)

    def output_ids(self, handle: RequestHandle, start: int, stop: int) -> list[int]:
        """Output tokens ``start..stop-1`` of ``handle`` (deterministic for the seed and request id)."""
        return output_token_ids(seed=self.config.seed, request_id=handle.request_id, start=start, stop=stop)

    async def start(self) -> None:
        cfg = self.config
        await self.runtime.start()
        try:
            await self._start_http()
            if cfg.grpc_port is not None and self._kind.grpc:
                self._grpc = grpc.aio.server(options=[("grpc.so_reuseport", 0)])  # a taken port is an error
                add_orchestrator(self._grpc, self)
                try:
                    self.grpc_port = self._grpc.add_insecure_port(f"{cfg.host}:{cfg.grpc_port}")
                except RuntimeError:  # HTTP listens on the same host: the port is at fault
                    raise ListenError(host=cfg.host, port=cfg.grpc_port, field="grpc_port",
                                      reason="the port is taken", what=" for gRPC") from None  # fmt: skip
                await self._grpc.start()
        except BaseException:
            await self.stop()
            raise
        self.runtime.mark_serving()

    async def _start_http(self) -> None:
        cfg = self.config
        # handler_cancellation: a client that hangs up cancels its handler, whose ``finally`` releases the
        # request, which cancels it in the engine (the only way a non-streamed request learns of it);
        # logger: a request too malformed to parse is one log line, not a traceback (see httpcommon)
        self._runner = web.AppRunner(
            self._kind.http_app(self), access_log=None, handle_signals=False, shutdown_timeout=1.0,
            handler_cancellation=True, logger=ProtocolErrorLog(server_logger),
        )  # fmt: skip
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, cfg.host, cfg.http_port).start()
        except (OSError, UnicodeError) as exc:  # UnicodeError: a host name that cannot be encoded
            raise listen_error(exc, host=cfg.host, port=cfg.http_port) from None
        self.http_port = int(self._runner.addresses[0][1])

    async def drain(self, grace_s: float | None = None) -> bool:
        """Refuse new requests and wait for in-flight ones; True if all finished within ``grace_s``."""
        self.runtime.begin_drain()
        return await self.runtime.wait_idle(self.config.grace_period_s if grace_s is None else grace_s)

    async def stop(self) -> None:
        if self._grpc is not None:
            await self._grpc.stop(grace=0.5)
            self._grpc = None
        await self.runtime.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ModelServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def serve_until_signalled(
    server: ModelServer,
    *,
    on_started: Callable[[ModelServer], None] = lambda _: None,
    log: Callable[[str], None] = lambda _: None,
) -> int:
    """Run ``server`` until SIGTERM or SIGINT, then drain and stop. Returns the process exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        on_started(server)
        stopper = asyncio.ensure_future(stop.wait())
        failure = asyncio.ensure_future(server.runtime.wait_failure())
        try:
            await asyncio.wait({stopper, failure}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            failure.cancel()
        if server.runtime.failure is not None:
            log(f"engine failed: {server.runtime.failure!r}")
            await server.stop()
            return 1
        in_flight = server.runtime.in_flight
        log(f"draining: {in_flight} request(s) in flight, grace period {server.config.grace_period_s:g}s")
        if not await server.drain():
            log(f"grace period over: {server.runtime.in_flight} request(s) cut off")
        await server.stop()
        log("stopped")
        return 0
    finally:
        for sig in signals:
            with contextlib.suppress(Exception):
                loop.remove_signal_handler(sig)
