"""The locust side of the load generator: one request per API, and the users that send them.

Imported only by the generator process (``jetscale.load.runner``), after locust has monkey-patched it
with gevent; nothing else in jetscale imports this module.

A request's life here: take its size (plan row or closed-loop draw) -> write ``sent_s`` and open a
``RecordBuffer`` row (outcome ``UNFINISHED``) -> send through locust's ``FastHttpSession``
(geventhttpclient, keep-alive) or the gRPC stub -> time the first streamed bytes (TTFT) and the end ->
count the tokens -> finish the row and report the request to locust's own statistics (as end-to-end
time). A request cut off when the run ends keeps its ``UNFINISHED`` row.

Users: an open loop (or trace) is one ``dispatcher`` user that spawns a greenlet per request at its
scheduled time, at most ``max_in_flight`` at once; a closed loop is ``users`` locust users, each sending
its next request after the previous one and a think time, as locust-load-inference does.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Callable
from typing import Any

import gevent
import gevent.pool
import numpy as np
from geventhttpclient.response import HTTPConnectionClosed
from geventhttpclient.useragent import RetriesExceeded
from locust import FastHttpUser, User
from locust.exception import StopUser

from jetscale.errors import ConfigError
from jetscale.load.config import LoadConfig, Mode, Plan, streams
from jetscale.load.protocol import (
    Api,
    jetstream_body,
    jetstream_tokens,
    openai_body,
    openai_json_tokens,
    parse_sse_data,
)
from jetscale.load.records import Outcome, RecordBuffer
from jetscale.load.workload import synthetic_prompt

__all__ = ["Context", "classify", "make_user_class"]

_HEADERS = {"Content-Type": "application/json", "Accept-Encoding": "identity"}
_NAN = math.nan
perf = time.perf_counter


class ProtocolError(Exception):
    """A response the generator could not understand."""


def classify(exc: BaseException) -> tuple[Outcome, int]:
    """The outcome of a failed request from the exception that ended it."""
    if isinstance(exc, RetriesExceeded):
        exc = getattr(exc, "original", None) or exc
    code = getattr(exc, "code", None)  # geventhttpclient's and locust's bad-status errors carry the status
    if isinstance(code, int) and not isinstance(exc, OSError) and 100 <= code <= 599:
        return Outcome.HTTP, code
    if isinstance(exc, (gevent.Timeout, socket.timeout, TimeoutError)):
        return Outcome.TIMEOUT, 0
    if isinstance(exc, (HTTPConnectionClosed, ConnectionError, OSError)):
        return Outcome.CONNECTION, 0
    if type(exc).__name__ in ("ConnectionError", "EmptyResponse"):  # geventhttpclient's own
        return Outcome.CONNECTION, 0
    return Outcome.PROTOCOL, 0


# --- Response readers: (first token perf time, output tokens, input tokens reported by the server) -----
Reader = Callable[[Any], tuple[float, int, int | None]]


def read_jetstream(raw: Any) -> tuple[float, int, int | None]:
    head = raw.read(1)
    first = perf()
    if not head:
        raise ProtocolError("empty response body")
    return first, jetstream_tokens(head + raw.read()), None


def read_openai_stream(raw: Any) -> tuple[float, int, int | None]:
    first, chunks, completion, prompt = _NAN, 0, None, None
    while True:
        line = raw.readline(b"\n")
        if not line:
            break
        if not line.startswith(b"data:"):
            continue
        try:
            event = parse_sse_data(line[5:])
        except ValueError as exc:
            raise ProtocolError(str(exc)) from None
        if event.done:
            raw.read()  # the end of the chunked body, so that the connection can be reused
            break
        if event.text_chunks and chunks == 0:
            first = perf()
        chunks += event.text_chunks
        completion = event.completion_tokens if event.completion_tokens is not None else completion
        prompt = event.prompt_tokens if event.prompt_tokens is not None else prompt
    return first, completion if completion is not None else chunks, prompt


def read_openai_json(raw: Any) -> tuple[float, int, int | None]:
    try:
        completion, prompt = openai_json_tokens(raw.read())
    except ValueError as exc:
        raise ProtocolError(str(exc)) from None
    return _NAN, completion, prompt


class Context:
    """State shared by the users of one run: the plan, the records, the clock and the stop flags."""

    def __init__(self, config: LoadConfig, plan: Plan, environment: Any) -> None:
        self.config = config
        self.plan = plan
        self.env = environment
        self.records = RecordBuffer()
        self.t0 = perf()
        self.stopping = False  # no new requests
        self.sending_done = False
        self.in_flight = 0
        self.issued = 0
        self.ok = 0
        self.failed = 0
        self.cap_waits = 0  # times the open-loop dispatcher found max_in_flight requests running
        self.tick: list[float] = []  # TTFTs finished since the last progress line
        _, self._rng_sizes, rng_users = streams(config.seed)
        self._user_seeds = rng_users.integers(0, 2**63, size=max(config.users, 1))
        self._next_user = 0
        self._sizes: tuple[Any, ...] = ()
        self._sizes_at = 0
        self.pool = gevent.pool.Pool(config.max_in_flight)
        synthetic_prompt(1, 0)  # builds the word table now, not in front of the first request
        api = config.api
        self.path = config.target.base_path + api.path
        self.reader: Reader = (
            read_jetstream if api is Api.JETSTREAM_HTTP else (read_openai_stream if config.stream else read_openai_json)
        )

    def now(self) -> float:
        return perf() - self.t0

    def body(self, prompt: str, max_tokens: int) -> bytes:
        c = self.config
        if c.api is Api.JETSTREAM_HTTP:
            return jetstream_body(prompt, max_tokens)
        return openai_body(
            c.api, prompt=prompt, max_tokens=max_tokens, model=c.model, stream=c.stream, ignore_eos=c.ignore_eos
        )

    def prompt(self, n_in: int, index: int, offset: int) -> str:
        text = self.plan.prompt(index) if index >= 0 else None
        return text if text is not None else synthetic_prompt(n_in, offset)

    def new_user(self) -> tuple[int, float]:
        """A closed-loop user's (think-time seed, start delay), in the order users start."""
        i = self._next_user
        self._next_user += 1
        offsets = self.config.closed_loop.start_offsets_s() if self.config.mode is Mode.CLOSED else None
        delay = float(offsets[i % len(offsets)]) if offsets is not None else 0.0
        return int(self._user_seeds[i % len(self._user_seeds)]), delay

    def next_size(self) -> tuple[int, int, int, int] | None:
        """The next closed-loop request's (input, max_tokens, prompt index, offset); None once the cap is reached."""
        cap = self.config.max_requests
        if self.stopping or (cap is not None and self.issued >= cap):
            self.stopping = True
            return None
        if self._sizes_at >= len(self._sizes[0]) if self._sizes else True:
            s = self.plan.workload.sample(self._rng_sizes, 4096)
            self._sizes = (
                s.input_tokens.tolist(),
                s.output_tokens.tolist(),
                s.prompt_index.tolist(),
                s.prompt_offset.tolist(),
            )
            self._sizes_at = 0
        i = self._sizes_at
        self._sizes_at += 1
        self.issued += 1
        a, b, c, d = self._sizes
        return a[i], b[i], c[i], d[i]

    # --- one request -------------------------------------------------------------------------------------
    def http_request(self, session: Any, scheduled_s: float, n_in: int, max_tokens: int, prompt: str) -> None:
        body = self.body(prompt, max_tokens)
        timer = gevent.Timeout.start_new(self.config.timeout_s)
        sent = perf()
        row = self.records.begin(
            scheduled_s=scheduled_s, sent_s=sent - self.t0, input_tokens=n_in, max_tokens=max_tokens
        )
        self.in_flight += 1
        first, out, n_in_server, outcome, code = _NAN, 0, None, Outcome.OK, 0
        try:
            with session.request(
                "POST", self.path, data=body, headers=_HEADERS, stream=True, catch_response=True, name=self.path
            ) as resp:
                try:
                    error = getattr(resp, "error", None)
                    if error is not None:
                        raise error
                    first, out, n_in_server = self.reader(resp._response)
                except (Exception, gevent.Timeout) as exc:
                    outcome, code = classify(exc)
                    resp.failure(exc)
                else:
                    resp.success()
                resp.request_meta["response_time"] = (perf() - sent) * 1000
                resp.request_meta["response_length"] = out
        except gevent.Timeout as exc:  # fired before locust had a response object
            if exc is not timer:
                raise
            outcome, code = Outcome.TIMEOUT, 0
        finally:
            timer.close()
            self.in_flight -= 1
        done = perf()
        self.records.finish(
            row,
            first_token_s=first - self.t0,
            done_s=done - self.t0,
            output_tokens=out,
            outcome=outcome,
            code=code,
            input_tokens=n_in_server,
        )
        if outcome is Outcome.OK:
            self.ok += 1
            if first == first:
                self.tick.append(first - sent)
        else:
            self.failed += 1

    def grpc_request(self, stub: Any, scheduled_s: float, n_in: int, max_tokens: int, prompt: str) -> None:
        import grpc

        from jetscale.load.grpc_client import decode_request

        sent = perf()
        row = self.records.begin(
            scheduled_s=scheduled_s, sent_s=sent - self.t0, input_tokens=n_in, max_tokens=max_tokens
        )
        self.in_flight += 1
        first, out, outcome, code, error = _NAN, 0, Outcome.OK, 0, None
        try:
            for message in stub.Decode(decode_request(prompt, max_tokens), timeout=self.config.timeout_s):
                tokens = 0
                for sample in message.stream_content.samples:
                    tokens += len(sample.token_ids) or (1 if sample.text else 0)
                if tokens and out == 0:
                    first = perf()
                out += tokens
        except grpc.RpcError as exc:
            status = exc.code() if hasattr(exc, "code") else None
            error = exc
            if status == grpc.StatusCode.DEADLINE_EXCEEDED:
                outcome, code = Outcome.TIMEOUT, 0
            else:
                outcome, code = Outcome.GRPC, int(status.value[0]) if status is not None else 2
        finally:
            self.in_flight -= 1
        done = perf()
        self.records.finish(
            row, first_token_s=first - self.t0, done_s=done - self.t0, output_tokens=out, outcome=outcome, code=code
        )
        self.env.events.request.fire(
            request_type="grpc",
            name="Decode",
            response_time=(done - sent) * 1000,
            response_length=out,
            exception=error,
            context={},
        )
        if outcome is Outcome.OK:
            self.ok += 1
            if first == first:
                self.tick.append(first - sent)
        else:
            self.failed += 1

    # --- the two traffic models ----------------------------------------------------------------------------
    def dispatch(self, send: Callable[[float, int, int, str], None]) -> None:
        """Open loop / trace: send every planned request at its time; late ones go as soon as possible."""
        plan = self.plan
        self.t0 = t0 = perf()  # the schedule starts when the dispatcher does, not when locust was asked to start it
        assert plan.sizes is not None
        times = plan.times_s.tolist()
        n_in, n_out = plan.sizes.input_tokens.tolist(), plan.sizes.output_tokens.tolist()
        index, offset = plan.sizes.prompt_index.tolist(), plan.sizes.prompt_offset.tolist()
        horizon = (self.config.duration_s if self.config.duration_s is not None else math.inf) + 1.0
        pool, sleep = self.pool, gevent.sleep
        for i, due in enumerate(times):
            delay = t0 + due - perf()
            sleep(delay if delay > 0 else 0)
            if self.stopping or perf() - t0 > horizon:
                break
            if pool.full():
                self.cap_waits += 1
                pool.wait_available()
            pool.spawn(send, due, n_in[i], n_out[i], self.prompt(n_in[i], index[i], offset[i]))
        self.sending_done = True

    def closed_step(self, send: Callable[[float, int, int, str], None]) -> None:
        size = self.next_size()
        if size is None:
            self.sending_done = True
            raise StopUser()
        n_in, n_out, index, offset = size
        send(_NAN, n_in, n_out, self.prompt(n_in, index, offset))


def make_user_class(ctx: Context, stub: Any = None) -> type[User]:
    """The locust user class of this run: the open-loop dispatcher or a closed-loop user, HTTP or gRPC."""
    config = ctx.config
    grpc_api = config.api is Api.JETSTREAM_GRPC
    if grpc_api and stub is None:
        raise ConfigError("'--api jetstream-grpc' needs a gRPC stub")

    def sender(user: Any) -> Callable[[float, int, int, str], None]:
        if grpc_api:
            return lambda s, i, o, p: ctx.grpc_request(stub, s, i, o, p)
        session = user.client
        return lambda s, i, o, p: ctx.http_request(session, s, i, o, p)

    def open_task(user: Any) -> None:
        ctx.dispatch(sender(user))
        raise StopUser()

    def closed_task(user: Any) -> None:
        ctx.closed_step(sender(user))

    def on_start(user: Any) -> None:
        seed, delay = ctx.new_user()
        user.rng = np.random.default_rng(seed)
        if delay > 0:
            gevent.sleep(delay)

    def wait_time(user: Any) -> float:
        return config.closed_loop.think_time(user.rng) if config.mode is Mode.CLOSED else 0.0

    attrs: dict[str, Any] = {
        "host": config.target.url,
        "tasks": [open_task if config.mode is not Mode.CLOSED else closed_task],
        "on_start": on_start,
        "wait_time": wait_time,
    }
    if grpc_api:
        return type("JetscaleGrpcUser", (User,), attrs)
    attrs.update(
        network_timeout=config.timeout_s,
        connection_timeout=min(config.timeout_s, 10.0),
        concurrency=config.max_in_flight if config.mode is not Mode.CLOSED else 1,
        max_retries=0,
        insecure=True,
    )
    return type("JetscaleHttpUser", (FastHttpUser,), attrs)
