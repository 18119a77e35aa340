"""The asyncio shell around one pure engine: a clock, a driver task, and per-request handles.

Engine time is wall time since ``start()`` times ``speed``. One driver task sleeps until the engine's next
event (or until a new request wakes it), calls ``engine.advance(now)`` and resolves the handles of the
requests whose first token or completion happened. Streaming responses also get a shared "progress" tick
every ``stream_interval_s`` while any of them is decoding; nothing else wakes the driver, so an idle
server sleeps. Readiness, draining and admission (``submit`` -> handle or ``Rejection``) live here too,
so HTTP and gRPC front ends share one notion of each.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from jetscale.engine.api import Completion, Engine, EngineRequest, EngineSnapshot, Stage
from jetscale.errors import ServingError

__all__ = ["Clock", "Rejection", "RequestHandle", "ServingRuntime", "State", "WallClock"]

_WAKE_MARGIN_S = 1e-6  # sleep a hair past an event so float rounding never leaves it just in the future


class Clock(Protocol):
    """Wall time for the server shell; a test can substitute a fake that jumps."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class WallClock:
    """The process's monotonic clock and asyncio's sleep."""

    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class State(StrEnum):
    LOADING = "loading"  # the model is still loading (model_load_s has not passed)
    READY = "ready"
    DRAINING = "draining"  # SIGTERM: finishing in-flight requests, taking no new ones
    STOPPED = "stopped"
    FAILED = "failed"  # the engine raised; the server refuses everything


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejection:
    """Why a request was not admitted: the server state, or ``overloaded`` when the engine shed it."""

    state: State
    overloaded: bool
    retry_after_s: int  # wall seconds, >= 1, for Retry-After
    reason: str = "not_ready"  # or the engine's Shed: backlog_full, queue_wait
    expected_wait_s: float = 0.0  # wall seconds the request would have waited (when shed by the engine)


class RequestHandle:
    """One admitted request: events for its first token and its end, and the engine's record of it."""

    __slots__ = ("_released", "arrival_s", "completion", "done", "first_token", "input_tokens",
                 "output_tokens", "request_id")  # fmt: skip

    def __init__(self, *, request_id: int, input_tokens: int, output_tokens: int, arrival_s: float) -> None:
        self.request_id = request_id
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.arrival_s = arrival_s
        self.first_token = asyncio.Event()
        self.done = asyncio.Event()  # also set when the server stops or fails; then completion is None
        self.completion: Completion | None = None
        self._released = False


class ServingRuntime:
    """Drives ``engine`` on ``clock``; see the module docstring. Inert until ``start()``."""

    def __init__(
        self,
        engine: Engine,
        *,
        speed: float,
        model_load_engine_s: float,
        clock: Clock | None = None,
        stream_interval_s: float = 0.02,
        on_completion: Callable[[Completion], None] | None = None,
        on_cancel: Callable[[Stage], None] | None = None,
        on_shed: Callable[[str], None] | None = None,
    ) -> None:
        self._engine = engine
        self._clock: Clock = clock if clock is not None else WallClock()
        self._speed = speed
        self._model_load_s = model_load_engine_s
        self._stream_interval_s = stream_interval_s
        self._on_completion = on_completion
        self._on_cancel = on_cancel
        self._on_shed = on_shed
        self.cancelled = 0  # requests whose client went away before they finished
        self.accepted = 0  # requests admitted (given a handle), whatever became of them
        self._t0: float | None = None
        self._now = 0.0
        self._advanced_to = 0.0
        self._serving_since_s: float | None = None
        self._draining = False
        self._stopped = False
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()
        self._handles: dict[int, RequestHandle] = {}
        self._next_id = 0
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._progress_waiters = 0
        self._last_tick = 0.0
        self._task: asyncio.Task[None] | None = None

    # ---- time -------------------------------------------------------------------------------------
    @property
    def speed(self) -> float:
        return self._speed

    def engine_now(self) -> float:
        """Engine seconds since start; never goes backwards."""
        if self._t0 is not None:
            self._now = max(self._now, (self._clock.now() - self._t0) * self._speed)
        return self._now

    def _to_wall(self, engine_s: float) -> float:
        assert self._t0 is not None
        return self._t0 + engine_s / self._speed

    def _retry_after(self, engine_s: float) -> int:
        return max(1, math.ceil(engine_s / self._speed))

    # ---- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        if self._task is None:
            self._t0 = self._clock.now()
            self._last_tick = self._t0
            self._task = asyncio.create_task(self._drive(), name="jetscale-engine-driver")

    def mark_serving(self) -> None:
        """The front ends are listening; from now on (and after the model load) the server is ready."""
        if self._serving_since_s is None:
            self._serving_since_s = self.engine_now()

    @property
    def startup_latency_engine_s(self) -> float | None:
        """Engine seconds from start to ready (model load, or binding the sockets if that took longer)."""
        if self._serving_since_s is None:
            return None
        return max(self._model_load_s, self._serving_since_s)

    @property
    def state(self) -> State:
        if self._failure is not None:
            return State.FAILED
        if self._stopped:
            return State.STOPPED
        if self._draining:
            return State.DRAINING
        if self._serving_since_s is None or self.engine_now() < self._model_load_s:
            return State.LOADING
        return State.READY

    @property
    def ready(self) -> bool:
        return self.state is State.READY

    @property
    def failure(self) -> BaseException | None:
        return self._failure

    async def wait_failure(self) -> None:
        """Return when the engine has raised (the server then refuses everything)."""
        await self._failed.wait()

    @property
    def in_flight(self) -> int:
        """Admitted requests whose responses have not been released yet."""
        return self._in_flight

    def begin_drain(self) -> None:
        """Stop admitting; in-flight requests go on."""
        self._draining = True

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait (wall seconds) until no request is in flight; True if that happened in time."""
        return await self._race(self._idle, timeout_s)

    async def stop(self) -> None:
        """Stop the driver; requests still waiting end with ``completion`` None."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._abort_all()

    # ---- requests ---------------------------------------------------------------------------------
    def submit(self, *, input_tokens: int, output_tokens: int) -> RequestHandle | Rejection:
        state = self.state
        if state is not State.READY:
            wait_s = self._model_load_s - self._now if state is State.LOADING else 1.0
            self._shed("not_ready")
            return Rejection(state=state, overloaded=False, retry_after_s=self._retry_after(wait_s))
        now = self._advance()
        request_id = self._next_id
        self._next_id += 1
        request = EngineRequest(
            request_id=request_id, input_tokens=input_tokens, output_tokens=output_tokens, arrival_s=now
        )
        try:
            accepted = self._engine.submit(request, now)
        except Exception as exc:
            self._fail(exc)
            return Rejection(state=State.FAILED, overloaded=False, retry_after_s=1)
        if not accepted:
            refusal = self._engine.last_refusal
            reason = str(refusal.reason) if refusal is not None else "backlog_full"
            retry_s = refusal.retry_in_s if refusal is not None else 0.0
            self._shed(reason)
            return Rejection(
                state=state, overloaded=True, retry_after_s=self._retry_after(retry_s), reason=reason,
                expected_wait_s=(refusal.expected_wait_s if refusal is not None else 0.0) / self._speed,
            )  # fmt: skip
        handle = RequestHandle(
            request_id=request_id, input_tokens=input_tokens, output_tokens=output_tokens, arrival_s=now
        )
        self._handles[request_id] = handle
        self.accepted += 1
        self._in_flight += 1
        self._idle.clear()
        self._wake.set()
        return handle

    def release(self, handle: RequestHandle) -> None:
        """The response for ``handle`` is written, or abandoned: every front end calls this when it is done
        with a request, whatever happened (``finally``). A request that has not finished by then lost its
        client (a hang-up, a cancelled stream, a failed write, a cancelled handler), so it is cancelled in
        the engine: it leaves its backlog, or frees its slot at the next step. Counts towards draining."""
        if handle._released:
            return
        handle._released = True
        if not handle.done.is_set() and self._handles.pop(handle.request_id, None) is not None:
            handle.done.set()
            stage = None
            if self._failure is None:
                try:
                    stage = self._engine.cancel(handle.request_id, self.engine_now())
                except Exception as exc:  # an engine bug: refuse everything rather than hang every client
                    self._fail(exc)
            if stage is not None:
                self.cancelled += 1
                if self._on_cancel is not None:
                    self._on_cancel(stage)
                self._wake.set()  # the driver's next event may have moved
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    def _shed(self, reason: str) -> None:
        if self._on_shed is not None:
            self._on_shed(reason)

    def tokens_generated(self, handle: RequestHandle) -> int:
        """Tokens of ``handle`` produced by the engine's current time (for streaming)."""
        if handle.completion is not None:
            return handle.output_tokens
        if not handle.first_token.is_set() or handle.done.is_set():
            return 0
        produced = self._engine.tokens_generated(handle.request_id, self._advanced_to)
        return min(max(produced, 1), handle.output_tokens)

    async def wait_progress(self) -> None:
        """Wait for the next streaming tick (or any first token or completion)."""
        event = self._progress
        self._progress_waiters += 1
        if self._progress_waiters == 1:
            self._wake.set()
        try:
            await event.wait()
        finally:
            self._progress_waiters -= 1

    async def progress(self, handle: RequestHandle) -> AsyncIterator[tuple[int, int]]:
        """Ranges ``(start, stop)`` of new output tokens of ``handle`` as they are produced, to the last one.

        Raises ``ServingError`` if the server stops or fails before the request ends.
        """
        await handle.first_token.wait()
        sent = 0
        while True:
            # Read "finished" before the count: the consumer may hold us at the yield while the request
            # ends, so a count read earlier is not final; after a yield, look again before waiting.
            finished = handle.done.is_set()
            produced = self.tokens_generated(handle)
            if produced > sent:
                yield sent, produced
                sent = produced
                continue
            if finished:
                break
            await self.wait_progress()
        if handle.completion is None:
            raise ServingError(f"request {handle.request_id} cut off: the server is {self.state}")

    async def result(self, handle: RequestHandle) -> Completion:
        """Wait for ``handle`` to finish; ``ServingError`` if the server stops or fails first."""
        await handle.done.wait()
        if handle.completion is None:
            raise ServingError(f"request {handle.request_id} cut off: the server is {self.state}")
        return handle.completion

    def snapshot(self) -> EngineSnapshot:
        """The engine's gauges now (the engine is advanced to now first)."""
        return self._engine.snapshot(self._advance())

    # ---- the driver -------------------------------------------------------------------------------
    def _advance(self) -> float:
        now = self.engine_now()
        if self._failure is not None or self._t0 is None:
            return now
        try:
            firsts, completions = self._engine.advance(now)
        except Exception as exc:  # an engine bug: refuse everything rather than hang every client
            self._fail(exc)
            return now
        self._advanced_to = now
        for first in firsts:
            handle = self._handles.get(first.request_id)
            if handle is not None:
                handle.first_token.set()
        for completion in completions:
            done = self._handles.pop(completion.request_id, None)
            if done is not None:
                done.completion = completion
                done.first_token.set()
                done.done.set()
            if self._on_completion is not None:
                self._on_completion(completion)
        if firsts or completions:
            self._notify_progress()
        return now

    def _notify_progress(self) -> None:
        event, self._progress = self._progress, asyncio.Event()
        self._last_tick = self._clock.now()
        event.set()

    async def _drive(self) -> None:
        try:
            while self._failure is None:
                self._wake.clear()
                self._advance()
                deadline: float | None = None
                next_event = self._engine.next_event_time()
                if next_event is not None:
                    deadline = self._to_wall(next_event) + _WAKE_MARGIN_S
                if self._progress_waiters:
                    tick = self._last_tick + self._stream_interval_s
                    if self._clock.now() >= tick:
                        self._notify_progress()
                        tick = self._last_tick + self._stream_interval_s
                    deadline = tick if deadline is None else min(deadline, tick)
                timeout = None if deadline is None else max(0.0, deadline - self._clock.now())
                await self._race(self._wake, timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        if self._failure is None:
            self._failure = exc
            self._failed.set()
            self._abort_all()

    async def _race(self, event: asyncio.Event, timeout_s: float | None) -> bool:
        """Wait for ``event`` at most ``timeout_s`` wall seconds on the runtime's clock."""
        if event.is_set():
            return True
        waiter = asyncio.ensure_future(event.wait())
        if timeout_s is None:
            await waiter
            return True
        sleeper = asyncio.ensure_future(self._clock.sleep(timeout_s))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()
        return event.is_set()

    def _abort_all(self) -> None:
        for handle in self._handles.values():
            handle.first_token.set()
            handle.done.set()
        self._handles.clear()
        self._notify_progress()

    # ---- self-paced streams (gRPC: one message per decode step) -----------------------------------
    async def poll_tokens(self, handle: RequestHandle, wait_s: float) -> int:
        """Wait ``wait_s`` wall seconds on the runtime's clock, advance the engine to now and return the
        tokens of ``handle`` produced by then. For a stream that chooses its own wake-ups instead of the
        shared ``stream_interval_s`` tick. A plain sleep, the cheapest wake-up: the request's end does not
        cut it short, so its last tokens wait as long as its others (one wait of the caller's)."""
        if wait_s > 0 and not handle.done.is_set():
            await self._clock.sleep(wait_s)
        self._advance()
        return self.tokens_generated(handle)
