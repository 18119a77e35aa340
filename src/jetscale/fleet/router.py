"""The fleet's Service: one port in front of the ready replicas, proxying every HTTP route.

Like a Kubernetes Service, it only knows the replicas that are ready (the ``ReplicaSet`` adds a replica
when its readiness probe passes and removes it before a drain or after a crash). Each request goes to one
of them, round-robin by default or to the one with the fewest requests outstanding
(``least-outstanding``). JetStream's ``/v1/generate`` stream and OpenAI's server-sent events pass through
chunk by chunk as the replica writes them; a body with a length is read whole and answered in one piece.

A request a replica refuses because it is not serving (503: loading, draining, stopped), or that cannot
reach it (connection refused or reset before any answer), is retried on another ready replica, each at
most once; the client only sees the 503 when every ready replica refused. Nothing is retried once bytes
of an answer have gone back to the client. Per request the router reads the body once, reuses pooled
keep-alive connections to the replicas and does a few counter updates: no parsing of what it proxies.

A body larger than a replica takes (``max_body_bytes``, by default the replicas' own ``MAX_BODY_BYTES``)
is refused here with the 413 a replica would answer, without buffering it or bothering a replica. The
router's own answers (413, 502, 503) are JSON of the replicas' error shape (``error_response``); it
answers no 405 of its own (every method is proxied), so a 405 and its ``Allow`` come from a replica.

``take_window`` hands the controller what the router saw since the last call (arrivals, outcomes, wall
latencies), for the live view and the timeline. ``on_arrival``, when set, is told the wall time (the
router's ``now``) of each request as it arrives, before it is routed (the parity test uses it to put the
live fleet's time and the load generator's on one axis).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import aiohttp
from aiohttp import web

from jetscale.server.config import MAX_BODY_BYTES, listen_error
from jetscale.server.httpcommon import error_response, request_error_response
from jetscale.server.protocol import RequestError

__all__ = ["Router", "RouterTotals", "RouterWindow", "RoutingPolicy"]

_HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "host",
     "content-length"}
)  # fmt: skip
_NOT_SERVING = 503


class RoutingPolicy(StrEnum):
    ROUND_ROBIN = "round-robin"
    LEAST_OUTSTANDING = "least-outstanding"


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterWindow:
    """What the router saw over ``wall_s`` seconds: requests that arrived, and those that finished (``ok``:
    a 2xx/3xx answer; ``failed``: 429, 5xx or a broken connection; ``client_errors``: other 4xx).
    ``e2e_s`` and ``ttfb_s`` are wall seconds of the finished ones (``ttfb_s``: streamed answers only)."""

    wall_s: float
    arrivals: int
    ok: int
    failed: int
    client_errors: int
    retries: int
    e2e_s: tuple[float, ...]
    ttfb_s: tuple[float, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterTotals:
    arrivals: int
    ok: int
    failed: int
    client_errors: int
    retries: int
    in_flight: int


class _Backend:
    __slots__ = ("name", "outstanding", "url")

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        self.outstanding = 0


class Router:
    """A reverse proxy over the ready replicas. Inert until ``start()``."""

    def __init__(
        self,
        *,
        policy: RoutingPolicy = RoutingPolicy.ROUND_ROBIN,
        host: str = "127.0.0.1",
        port: int = 8000,
        connect_timeout_s: float = 5.0,
        shutdown_timeout_s: float = 5.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        now: Callable[[], float] = time.monotonic,
        on_arrival: Callable[[float], None] | None = None,
    ) -> None:
        self.policy = policy
        self.max_body_bytes = max_body_bytes
        self.on_arrival = on_arrival  # public: may be set after construction
        self.host = host
        self._port = port
        self._connect_timeout_s = connect_timeout_s
        self._shutdown_timeout_s = shutdown_timeout_s
        self._now = now
        self._backends: list[_Backend] = []
        self._next = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.port: int | None = None
        self._totals = [0, 0, 0, 0, 0]  # arrivals, ok, failed, client errors, retries
        self._in_flight = 0
        self._window_start = now()
        self._window_totals = [0, 0, 0, 0, 0]
        self._e2e: list[float] = []
        self._ttfb: list[float] = []

    # ---- membership ----------------------------------------------------------------------------------
    def add(self, name: str, url: str) -> None:
        """Send traffic to ``url`` as ``name`` (replacing an older address of the same name)."""
        self._backends = [b for b in self._backends if b.name != name] + [_Backend(name, url.rstrip("/"))]

    def remove(self, name: str) -> None:
        self._backends = [b for b in self._backends if b.name != name]

    def update(self, name: str, url: str | None) -> None:
        """The ``ReplicaSet`` listener: a URL when ``name`` is ready, None when it leaves service."""
        if url is None:
            self.remove(name)
        else:
            self.add(name, url)

    @property
    def backends(self) -> dict[str, str]:
        return {b.name: b.url for b in self._backends}

    def outstanding(self) -> dict[str, int]:
        return {b.name: b.outstanding for b in self._backends}

    def _pick(self, tried: set[str]) -> _Backend | None:
        backends = self._backends
        n = len(backends)
        best: _Backend | None = None
        start = self._next % n if n else 0
        for k in range(n):
            backend = backends[(start + k) % n]
            if backend.name in tried:
                continue
            if self.policy is RoutingPolicy.ROUND_ROBIN:
                best = backend
                break
            if best is None or backend.outstanding < best.outstanding:
                best = backend
        if not tried:  # a retry does not move the rotation: the next request starts after the first pick
            self._next = start + 1 if best is None else backends.index(best) + 1
        return best

    # ---- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30.0)
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout_s)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)
        app = web.Application(client_max_size=self.max_body_bytes)
        app.router.add_route("*", "/{tail:.*}", self._proxy)
        # handler_cancellation: a client that hangs up cancels its handler, which closes the upstream
        # connection, which cancels the request in the replica
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=self._shutdown_timeout_s,
            handler_cancellation=True,
        )  # fmt: skip
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port, backlog=1024)
        try:
            await site.start()
        except (OSError, UnicodeError) as exc:
            await self.stop()
            raise listen_error(exc, host=self.host, port=self._port, what=" for the router") from None
        self.port = int(self._runner.addresses[0][1])
        self._window_start = self._now()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ---- statistics ----------------------------------------------------------------------------------
    def _count(self, index: int) -> None:
        self._totals[index] += 1
        self._window_totals[index] += 1

    def totals(self) -> RouterTotals:
        a, ok, failed, client, retries = self._totals
        return RouterTotals(
            arrivals=a, ok=ok, failed=failed, client_errors=client, retries=retries, in_flight=self._in_flight
        )

    def take_window(self) -> RouterWindow:
        now = self._now()
        a, ok, failed, client, retries = self._window_totals
        window = RouterWindow(
            wall_s=now - self._window_start,
            arrivals=a,
            ok=ok,
            failed=failed,
            client_errors=client,
            retries=retries,
            e2e_s=tuple(self._e2e),
            ttfb_s=tuple(self._ttfb),
        )
        self._window_start = now
        self._window_totals = [0, 0, 0, 0, 0]
        self._e2e, self._ttfb = [], []
        return window

    def _finish(self, status: int, started: float, first_byte: float) -> None:
        if status < 400:
            self._count(1)
        elif status == 429 or status >= 500:
            self._count(2)
        else:
            self._count(3)
        end = self._now()
        self._e2e.append(end - started)
        if not math.isnan(first_byte):
            self._ttfb.append(first_byte - started)

    # ---- the proxy -----------------------------------------------------------------------------------
    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        started = self._now()
        self._count(0)
        if self.on_arrival is not None:
            self.on_arrival(started)
        self._in_flight += 1
        try:
            return await self._forward(request, started)
        except asyncio.CancelledError:  # the client hung up before the answer began
            self._finish(499, started, math.nan)
            raise
        finally:
            self._in_flight -= 1

    def _too_large(self, value: str) -> web.Response:
        """The 413 a replica answers (``httpcommon.read_json``), with the same limit. The connection closes
        after it: the rest of the body is never read, and a stop need not wait for it."""
        constraint = f"at most {self.max_body_bytes} bytes"
        response = request_error_response(RequestError(field="body", value=value, constraint=constraint, status=413))
        response.force_close()
        return response

    async def _forward(self, request: web.Request, started: float) -> web.StreamResponse:
        assert self._session is not None
        length = request.content_length
        if length is not None and length > self.max_body_bytes:  # refused before a byte of it is read
            self._finish(413, started, math.nan)
            return self._too_large(f"{length} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:  # no length given (chunked), and more bytes than the limit
            self._finish(413, started, math.nan)
            return self._too_large("more bytes")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        tried: set[str] = set()
        while True:
            backend = self._pick(tried)
            if backend is None:
                self._finish(_NOT_SERVING, started, math.nan)
                return error_response(_NOT_SERVING, "no ready replica can take the request",
                                      kind="unavailable_error", headers={"Retry-After": "1"})  # fmt: skip
            tried.add(backend.name)
            backend.outstanding += 1
            try:
                try:
                    upstream = await self._session.request(
                        request.method, backend.url + request.path_qs, data=body or None, headers=headers
                    )
                except (aiohttp.ClientConnectionError, TimeoutError):
                    self._count(4)
                    continue
                async with upstream:
                    if upstream.status == _NOT_SERVING and len(tried) < len(self._backends):
                        await upstream.read()
                        self._count(4)
                        continue
                    return await self._relay(request, upstream, started)
            finally:
                backend.outstanding -= 1

    async def _relay(
        self, request: web.Request, upstream: aiohttp.ClientResponse, started: float
    ) -> web.StreamResponse:
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP}
        if upstream.content_length is not None:
            try:
                data = await upstream.read()
            except aiohttp.ClientError:
                self._finish(502, started, math.nan)
                return error_response(502, "the replica broke off", kind="bad_gateway")
            self._finish(upstream.status, started, math.nan)
            return web.Response(body=data, status=upstream.status, headers=headers)
        response = web.StreamResponse(status=upstream.status, headers=headers)
        await response.prepare(request)
        first = math.nan
        try:
            async for chunk in upstream.content.iter_any():
                if math.isnan(first):
                    first = self._now()
                await response.write(chunk)
            await response.write_eof()
        except aiohttp.ClientError:  # the replica broke off mid-answer: cut the client off too
            self._finish(502, started, first)
            if request.transport is not None:
                request.transport.close()
            return response
        except ConnectionResetError:  # the client hung up
            self._finish(499, started, first)
            return response
        self._finish(upstream.status, started, first)
        return response
