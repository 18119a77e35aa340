"""The asyncio runtime on a manual clock: readiness, admission, exact event times, draining, failures."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator

import pytest
from conftest import ManualClock
from server_fakes import FakeEngine

from jetscale.engine.api import Completion, EngineSnapshot
from jetscale.errors import ServingError
from jetscale.server import Rejection, RequestHandle, ServingRuntime, State


class CountingEngine(FakeEngine):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.advances = 0

    def advance(self, now_s: float):  # type: ignore[no-untyped-def]
        self.advances += 1
        return super().advance(now_s)


class BrokenEngine(FakeEngine):
    def advance(self, now_s: float):  # type: ignore[no-untyped-def]
        if now_s > 0.05:
            raise RuntimeError("engine bug")
        return super().advance(now_s)


@pytest.fixture
async def clock() -> ManualClock:
    return ManualClock()


@contextlib.asynccontextmanager
async def started(engine: FakeEngine, clock: ManualClock, **kwargs: object) -> AsyncIterator[ServingRuntime]:
    done: list[Completion] = []
    runtime = ServingRuntime(
        engine,
        clock=clock,
        speed=kwargs.pop("speed", 1.0),  # type: ignore[arg-type]
        model_load_engine_s=kwargs.pop("model_load_engine_s", 0.0),  # type: ignore[arg-type]
        on_completion=done.append,
        stream_interval_s=0.02,
    )
    runtime.completions = done  # type: ignore[attr-defined]
    await runtime.start()
    runtime.mark_serving()
    try:
        yield runtime
    finally:
        await runtime.stop()


def admitted(result: RequestHandle | Rejection) -> RequestHandle:
    assert isinstance(result, RequestHandle), result
    return result


async def test_not_ready_until_the_model_load_has_passed_in_engine_time(clock: ManualClock) -> None:
    async with started(FakeEngine(), clock, speed=2.0, model_load_engine_s=10.0) as runtime:
        assert runtime.state is State.LOADING
        refused = runtime.submit(input_tokens=4, output_tokens=2)
        assert refused == Rejection(state=State.LOADING, overloaded=False, retry_after_s=5)
        await clock.advance(4.9)  # 9.8 engine seconds
        assert runtime.state is State.LOADING
        await clock.advance(0.1)
        assert runtime.state is State.READY
        assert runtime.startup_latency_engine_s == 10.0
        admitted(runtime.submit(input_tokens=4, output_tokens=2))


async def test_first_token_and_completion_arrive_at_the_engine_times(clock: ManualClock) -> None:
    async with started(FakeEngine(prefill_s=0.1, step_s=0.01), clock) as runtime:
        handle = admitted(runtime.submit(input_tokens=5, output_tokens=3))
        await clock.advance(0.099)
        assert not handle.first_token.is_set()
        await clock.advance(0.002)
        assert handle.first_token.is_set() and not handle.done.is_set()
        await clock.advance(0.02)
        completion = await runtime.result(handle)
        assert (completion.first_token_s, completion.end_s) == (pytest.approx(0.1), pytest.approx(0.12))
        assert runtime.completions == [completion]  # type: ignore[attr-defined]


async def test_full_prefill_backlog_refuses_with_a_retry_after(clock: ManualClock) -> None:
    async with started(FakeEngine(prefill_s=3.5, decode_slots=1, backlog_limit=2), clock) as runtime:
        results = [runtime.submit(input_tokens=4, output_tokens=2) for _ in range(4)]
        assert [isinstance(r, RequestHandle) for r in results] == [True, True, True, False]
        assert results[3] == Rejection(
            state=State.READY, overloaded=True, retry_after_s=4, reason="backlog_full", expected_wait_s=7.0
        )
        snap = runtime.snapshot()
        assert (snap.prefill_backlog, snap.slots_used) == (2, 0)


async def test_progress_yields_contiguous_ranges_up_to_the_last_token(clock: ManualClock) -> None:
    async with started(FakeEngine(prefill_s=0.1, step_s=0.01), clock) as runtime:
        handle = admitted(runtime.submit(input_tokens=5, output_tokens=9))
        ranges: list[tuple[int, int]] = []

        async def read() -> None:
            async for r in runtime.progress(handle):
                ranges.append(r)

        reader = asyncio.create_task(read())
        for _ in range(12):
            await clock.advance(0.02)
        await reader
        assert ranges[0][0] == 0 and ranges[-1][1] == 9
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        assert len(ranges) > 1  # streamed in pieces, not all at the end


async def test_draining_refuses_new_requests_and_waits_for_in_flight_ones(clock: ManualClock) -> None:
    async with started(FakeEngine(prefill_s=0.1, step_s=0.01), clock) as runtime:
        handle = admitted(runtime.submit(input_tokens=5, output_tokens=3))
        runtime.begin_drain()
        refused = runtime.submit(input_tokens=5, output_tokens=3)
        assert isinstance(refused, Rejection) and refused.state is State.DRAINING
        idle = asyncio.create_task(runtime.wait_idle(timeout_s=10.0))
        await clock.advance(0.2)
        assert handle.done.is_set() and not idle.done()  # finished but its response is not written yet
        runtime.release(handle)
        assert await idle is True
        assert runtime.in_flight == 0


async def test_drain_times_out_when_requests_outlast_the_grace_period(clock: ManualClock) -> None:
    async with started(FakeEngine(prefill_s=100.0), clock) as runtime:
        admitted(runtime.submit(input_tokens=5, output_tokens=3))
        runtime.begin_drain()
        idle = asyncio.create_task(runtime.wait_idle(timeout_s=1.0))
        await clock.advance(1.0)
        assert await idle is False
        assert runtime.in_flight == 1


async def test_an_engine_failure_ends_waiting_requests_and_refuses_new_ones(clock: ManualClock) -> None:
    async with started(BrokenEngine(prefill_s=0.1), clock) as runtime:
        handle = admitted(runtime.submit(input_tokens=5, output_tokens=3))
        await clock.advance(0.2)
        assert runtime.state is State.FAILED
        with pytest.raises(ServingError, match="cut off"):
            await runtime.result(handle)
        refused = runtime.submit(input_tokens=5, output_tokens=3)
        assert isinstance(refused, Rejection) and refused.state is State.FAILED


async def test_an_idle_server_never_wakes_its_driver(clock: ManualClock) -> None:
    engine = CountingEngine()
    async with started(engine, clock) as _runtime:
        await clock.advance(0.0)
        before = engine.advances
        for _ in range(50):
            await clock.advance(10.0)
        assert engine.advances == before


async def test_stop_cuts_off_requests_still_waiting(clock: ManualClock) -> None:
    async with started(FakeEngine(prefill_s=100.0), clock) as runtime:
        handle = admitted(runtime.submit(input_tokens=5, output_tokens=3))
        await runtime.stop()
        assert runtime.state is State.STOPPED
        with pytest.raises(ServingError):
            await runtime.result(handle)


async def test_snapshot_advances_the_engine_to_now(clock: ManualClock) -> None:
    async with started(FakeEngine(prefill_s=0.1, step_s=0.01, decode_slots=2), clock) as runtime:
        for _ in range(3):
            admitted(runtime.submit(input_tokens=10, output_tokens=30))
        await clock.advance(0.35)
        snap: EngineSnapshot = runtime.snapshot()
        assert (snap.prefill_backlog, snap.generate_backlog, snap.slots_used) == (0, 1, 2)
        assert snap.slots_used_fraction == 1.0


async def test_progress_keeps_the_last_tokens_when_the_request_ends_while_the_consumer_waits(
    clock: ManualClock,
) -> None:
    # A slow consumer (a gRPC or HTTP write) holds the stream at its yield; the request ends meanwhile.
    # Every token must still be streamed: 4 tokens = the prefill's first + 3 decode steps of 0.5 s.
    async with started(FakeEngine(prefill_s=0.1, step_s=0.5), clock) as runtime:
        handle = runtime.submit(input_tokens=3, output_tokens=4)
        assert isinstance(handle, RequestHandle)
        ranges: list[tuple[int, int]] = []
        stream = runtime.progress(handle)

        async def consume() -> None:
            async for r in stream:
                ranges.append(r)
                if len(ranges) == 1:
                    await clock.advance(5.0)  # the whole request ends while this chunk is being written

        task = asyncio.create_task(consume())
        await clock.advance(0.1)  # the prefill ends: the first token, with 3 steps still to run
        for _ in range(50):
            if task.done():
                break
            await clock.advance(0.05)
        await task
        assert ranges[0] == (0, 1), ranges
        assert ranges[0][0] == 0, ranges
        assert ranges[-1][1] == 4
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
